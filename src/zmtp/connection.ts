/**
 * One ZMTP connection to one peer: greeting, mechanism handshake, message framing, heartbeats,
 * write batching and backpressure. It knows nothing about routing; its owner (a socket) does.
 */
import { Buffer } from "node:buffer";
import {
  type Command,
  Decoder,
  encodeErrorCommand,
  encodeGreeting,
  encodePing,
  encodeCommand,
  FrameFlag,
  FrameParts,
  type Greeting,
  parseCommand,
  parseErrorCommand,
  parsePing,
  writeFrameHeader,
} from "./codec.ts";
import { ZmtpError, ZmtpErrorCode, ZmtpProtocolError } from "./errors.ts";
import type { HandshakeResult, Mechanism, MechanismSession, MessageBox } from "./mechanism/mechanism.ts";
import type { StreamHandlers, TransportStream } from "./transport/transport.ts";

export type SocketType = "DEALER" | "ROUTER";

/** Which peer socket types each of ours may talk to (RFC 28 and RFC 37 "Socket type compatibility"). */
const COMPATIBLE_PEERS: Record<SocketType, readonly string[]> = {
  DEALER: ["DEALER", "ROUTER", "REP"],
  ROUTER: ["DEALER", "REQ", "ROUTER"],
};

export interface ConnectionOptions {
  socketType: SocketType;
  /** Announced as the Identity property; empty for none. */
  routingId: Buffer;
  mechanism: Mechanism;
  /** Largest message (all frames together) accepted from the peer; -1 for no limit. */
  maxMessageSize: number;
  /**
   * What a message over maxMessageSize does: false (default) closes the connection; true skips
   * the rest of that message as it arrives (never holding it) and tells the owner (onOversize).
   */
  discardOversize?: boolean;
  /** Frames above this many bytes (at least 16 KiB) that arrive in several reads are delivered as FrameParts; -1 (default) for never. */
  keepPartsAbove?: number;
  handshakeIntervalMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  heartbeatTimeToLiveMs: number;
  /** Messages that may wait for the kernel before the connection stops being writable; 0 for no limit. */
  sendHighWaterMark: number;
}

export interface ConnectionOwner {
  onReady(connection: Connection): void;
  onMessage(connection: Connection, frames: Buffer[]): void;
  /**
   * With `discardOversize`: a message over maxMessageSize was skipped. `frames` are those that
   * came whole before it passed the bound (the ones that say what it was); `size` is its total.
   */
  onOversize?(connection: Connection, frames: Buffer[], size: number): void;
  /** The connection went from full to able to take more messages. */
  onWritable(connection: Connection): void;
  /** Called exactly once. `reason` is undefined for an orderly close by either side. */
  onClose(connection: Connection, reason: ZmtpError | undefined, wasReady: boolean): void;
}

/** Write batches start at this size; a batch holds every small frame encoded in one tick. */
const BATCH_BUFFER_SIZE = 64 * 1024;
/**
 * Messages queued on a connection before they are written without waiting for the end of the
 * tick. Flushing only once per tick, a process handed 64 requests at once held all 64 of its
 * sends until it had handled every request, and the next process of the chain sat idle
 * meanwhile: the hops of a call ran one after another, on one core of the two. Writing every 32
 * messages lets the next process start early. Measured on 2 cores (6 alternating runs each,
 * bench/rpc.ts set-up, 64 calls in flight): median ~38k calls/s per tick, ~50k at 16 or 32.
 * The price is more writes: with both ends in one thread (nothing to overlap with) peak echo
 * throughput drops by about a quarter (bench/zmtp.ts, ~730k → ~580k msg/s).
 */
const EAGER_FLUSH_MESSAGES = 32;
/** Bodies above this are written by reference instead of being copied into the batch. */
const COPY_LIMIT = 16 * 1024;

enum State {
  Greeting,
  Handshake,
  Ready,
  Closed,
}

export class Connection {
  /** The peer's Identity property (empty when it set none). Valid once ready. */
  peerRoutingId: Buffer = Buffer.alloc(0);
  peerSocketType = "";
  /** The peer's long-term CURVE public key (Z85); "" under NULL. Valid once ready. */
  peerPublicKey = "";
  /** What a CURVE server's authenticator named the peer; undefined otherwise. */
  peerUserId: string | undefined = undefined;
  /** Free slot for the owning socket's per-peer state. */
  owned: unknown = undefined;
  readonly handlers: StreamHandlers;

  private state = State.Greeting;
  private readonly decoder: Decoder;
  private session: MechanismSession | null = null;
  /** Seals and opens every frame once an encrypting handshake is done; null under NULL (one branch per frame). */
  private box: MessageBox | null = null;
  private peerMinorVersion = 1;
  private incoming: (Buffer | FrameParts)[] = [];
  private incomingSize = 0;

  private batch: Buffer = Buffer.allocUnsafe(BATCH_BUFFER_SIZE);
  private batchStart = 0;
  private batchEnd = 0;
  private sealed: Buffer[] = [];
  private flushScheduled = false;
  private blocked = false;
  private queuedMessages = 0;
  private unflushedMessages = 0;
  private wasFull = false;
  private readingPaused = false;

  private lastReceivedAt = Date.now();
  /** PINGs sent since the peer was last heard from (any traffic answers them all). */
  private unansweredPings = 0;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private peerTimeToLiveMs = 0;

  constructor(
    private readonly stream: TransportStream,
    private readonly options: ConnectionOptions,
    private readonly owner: ConnectionOwner,
    /** The endpoint this connection belongs to, for events and logs. */
    readonly endpoint: string,
  ) {
    const overhead = options.mechanism.frameOverhead;
    // A frame on the wire may be the message's bound plus the box around it (CURVE).
    const bound = options.maxMessageSize < 0 ? -1 : options.maxMessageSize + overhead;
    // Never below COPY_LIMIT: smaller frames are cheaper copied than kept in pieces. Never under a
    // box: a sealed frame is opened whole.
    const keepPartsAbove =
      overhead > 0 || options.keepPartsAbove === undefined || options.keepPartsAbove < 0
        ? -1
        : Math.max(options.keepPartsAbove, COPY_LIMIT);
    this.decoder = options.discardOversize
      ? new Decoder({ discardAbove: bound, keepPartsAbove })
      : new Decoder({ maxFrameSize: bound, keepPartsAbove });
    this.handlers = {
      data: (chunk) => this.onData(chunk),
      drain: () => this.onDrain(),
      close: (error) => this.onTransportClose(error),
    };
  }

  get remoteAddress(): string {
    return this.stream.remoteAddress;
  }

  get isReady(): boolean {
    return this.state === State.Ready;
  }

  // A method, not an inline comparison: handlers called above may close us mid-loop.
  private isClosed(): boolean {
    return this.state === State.Closed;
  }

  /** True while the peer can take another message without passing the send high-water mark. */
  get writable(): boolean {
    return this.state === State.Ready && (this.options.sendHighWaterMark <= 0 || this.queuedMessages < this.options.sendHighWaterMark);
  }

  /** Sends our greeting and arms the handshake deadline. */
  start(): void {
    this.writeRaw(encodeGreeting(this.options.mechanism.name, this.options.mechanism.asServer));
    if (this.options.handshakeIntervalMs > 0) {
      this.handshakeTimer = setTimeout(() => {
        this.fail(
          new ZmtpProtocolError(`handshake not completed within ${this.options.handshakeIntervalMs} ms`, ZmtpErrorCode.HANDSHAKE_TIMEOUT),
        );
      }, this.options.handshakeIntervalMs);
      unref(this.handshakeTimer);
    }
    this.flushSoon();
  }

  /** Queues one multipart message; it is written with everything else sent in this tick. */
  send(frames: readonly (Uint8Array | string | FrameParts)[]): void {
    if (this.state === State.Closed) return;
    const last = frames.length - 1;
    for (let i = 0; i <= last; i++) this.appendFrame(frames[i], i < last ? FrameFlag.MORE : 0);
    this.queuedMessages++;
    if (!this.writable) this.wasFull = true;
    if (++this.unflushedMessages >= EAGER_FLUSH_MESSAGES) this.flush();
    else this.flushSoon();
  }

  /**
   * Counts as traffic from the peer for the heartbeat and TTL rules, as if it had just sent a
   * frame: for liveness news that reached the application some other way.
   */
  noteAlive(): void {
    this.lastReceivedAt = Date.now();
    this.unansweredPings = 0;
  }

  pauseReading(): void {
    if (this.readingPaused || this.state === State.Closed) return;
    this.readingPaused = true;
    this.stream.pause();
  }

  resumeReading(): void {
    if (!this.readingPaused || this.state === State.Closed) return;
    this.readingPaused = false;
    this.stream.resume();
  }

  /**
   * Closes the connection. With `graceful`, what is queued is written first (linger); otherwise
   * the transport is torn down at once. `reason` reaches the owner's onClose.
   */
  close(reason?: ZmtpError, graceful = true): void {
    if (this.state === State.Closed) return;
    const wasReady = this.state === State.Ready;
    this.state = State.Closed;
    this.clearTimers();
    if (graceful) {
      // Linger: hand everything queued to the transport, which writes it before ending.
      this.seal();
      for (const chunk of this.sealed) this.stream.write(chunk);
      this.sealed = [];
      this.stream.end();
    } else {
      this.stream.destroy();
    }
    this.owner.onClose(this, reason, wasReady);
  }

  /**
   * Closes the connection for `reason`, telling the peer why with a ZMTP ERROR command where the
   * protocol allows it (after greetings), then writing what is queued.
   */
  fail(reason: ZmtpError): void {
    if (this.state === State.Closed) return;
    if (this.state !== State.Greeting && reason.code !== ZmtpErrorCode.CONNECTION_RESET) {
      this.appendFrame(encodeErrorCommand(reason.message), FrameFlag.COMMAND);
    }
    this.close(reason, true);
  }

  private onData(chunk: Buffer): void {
    if (this.state === State.Closed) return;
    this.lastReceivedAt = Date.now();
    this.unansweredPings = 0;
    try {
      this.decoder.push(chunk);
      for (;;) {
        const item = this.decoder.next();
        if (item === undefined) break;
        if (item.kind === "greeting") this.onGreeting(item.greeting);
        else if (item.kind === "discarded") this.onDiscarded(item.size);
        // Pieces only without a box (keepPartsAbove is off under CURVE).
        else if (item.kind === "parts") this.onFrame(item.parts, item.more);
        else if (this.box !== null) this.onSealedFrame(item.frame.body, item.frame.more || item.frame.command);
        else if (item.frame.command) this.onCommand(parseCommand(item.frame.body));
        else this.onFrame(item.frame.body, item.frame.more);
        if (this.isClosed()) return;
      }
    } catch (error) {
      this.fail(error instanceof ZmtpError ? error : new ZmtpProtocolError(`decoder failure: ${(error as Error).message}`));
    }
  }

  private onGreeting(greeting: Greeting): void {
    const ours = this.options.mechanism.name;
    if (greeting.mechanism !== ours) {
      // A security mismatch is a configuration error worth saying plainly on both sides.
      const hint =
        ours === "CURVE" && greeting.mechanism === "NULL"
          ? " (an unencrypted peer: it needs this server's public key as curveServerKey)"
          : ours === "NULL" && greeting.mechanism === "CURVE"
            ? " (the peer requires CURVE encryption: set curveServerKey)"
            : "";
      throw new ZmtpProtocolError(
        `peer uses the ${greeting.mechanism} mechanism; this socket uses ${ours}${hint}`,
        ours === "NULL" && greeting.mechanism === "NULL" ? ZmtpErrorCode.PROTOCOL : ZmtpErrorCode.SECURITY,
      );
    }
    // A peer announcing a later 3.x (or a future major) speaks 3.1 to us; 3.0 has no PING/PONG.
    this.peerMinorVersion = greeting.major > 3 ? 1 : greeting.minor;
    this.state = State.Handshake;
    this.session = this.options.mechanism.createSession(
      { "Socket-Type": this.options.socketType, Identity: this.options.routingId },
      { remoteAddress: this.stream.remoteAddress },
    );
    for (const command of this.session.start()) this.appendFrame(command, FrameFlag.COMMAND);
    this.flushSoon();
  }

  private onCommand(command: Command): void {
    if (this.state === State.Greeting) throw new ZmtpProtocolError("command before greeting");
    if (this.state === State.Handshake) {
      const result = this.session!.onCommand(command);
      for (const reply of result.send) this.appendFrame(reply, FrameFlag.COMMAND);
      if (result.refused) {
        this.close(result.refused, true);
        return;
      }
      if (result.done) this.completeHandshake(result.done);
      this.flushSoon();
      return;
    }
    switch (command.name) {
      case "PING": {
        const ping = parsePing(command.data);
        if (ping.ttlDeciseconds > 0) this.watchPeerTimeToLive(ping.ttlDeciseconds * 100);
        this.appendFrame(encodeCommand("PONG", ping.context), FrameFlag.COMMAND);
        this.flushSoon();
        return;
      }
      case "PONG":
        return; // Any traffic counts as liveness; onData has already noted it.
      case "ERROR":
        throw new ZmtpProtocolError(`peer sent ERROR: ${parseErrorCommand(command.data)}`);
      default:
        // SUBSCRIBE/CANCEL and unknown commands mean nothing to DEALER/ROUTER: ignore, as libzmq does.
        return;
    }
  }

  private completeHandshake(result: HandshakeResult): void {
    const metadata = result.peerMetadata;
    const socketType = metadata.get("socket-type")?.toString("latin1") ?? "";
    if (!COMPATIBLE_PEERS[this.options.socketType].includes(socketType)) {
      throw new ZmtpProtocolError(
        `invalid socket type: ${this.options.socketType} cannot talk to "${socketType}"`,
        ZmtpErrorCode.INCOMPATIBLE_SOCKET,
      );
    }
    this.peerSocketType = socketType;
    this.peerRoutingId = Buffer.from(metadata.get("identity") ?? Buffer.alloc(0));
    this.peerPublicKey = result.peerPublicKey ?? "";
    this.peerUserId = result.userId;
    // Everything after the handshake's last (clear) command is boxed, in both directions.
    this.box = result.box ?? null;
    this.state = State.Ready;
    this.session = null;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    // ZMTP 3.0 peers get the timer too, for the silence rule in onHeartbeatTick.
    if (this.options.heartbeatIntervalMs > 0) this.startHeartbeatTimer(this.options.heartbeatIntervalMs);
    this.owner.onReady(this);
  }

  /**
   * A frame of an encrypted connection: the outer frame carries no flags (libzmq ORs them into
   * the message, so a MORE or COMMAND outside the box is refused); the real flags are inside.
   */
  private onSealedFrame(body: Buffer, outerFlags: boolean): void {
    if (outerFlags) throw new ZmtpProtocolError("frame with MORE or COMMAND set outside the CURVE box");
    const plaintext = this.box!.open(body);
    const flags = plaintext[0];
    const payload = plaintext.subarray(1);
    if ((flags & FrameFlag.COMMAND) !== 0) this.onCommand(parseCommand(payload));
    else this.onFrame(payload, (flags & FrameFlag.MORE) !== 0);
  }

  private onFrame(body: Buffer | FrameParts, more: boolean): void {
    if (this.state !== State.Ready) throw new ZmtpProtocolError("message frame before the handshake completed");
    this.incoming.push(body);
    this.incomingSize += body.byteLength;
    if (this.options.maxMessageSize >= 0 && this.incomingSize > this.options.maxMessageSize) {
      throw new ZmtpProtocolError(
        `message of over ${this.options.maxMessageSize} bytes exceeds maxMessageSize`,
        ZmtpErrorCode.MESSAGE_TOO_LARGE,
      );
    }
    if (more) return;
    const frames = this.incoming;
    this.incoming = [];
    this.incomingSize = 0;
    // FrameParts only where the owner asked for them (keepPartsAbove): see SocketOptions.
    this.owner.onMessage(this, frames as Buffer[]);
  }

  private onDiscarded(size: number): void {
    if (this.state !== State.Ready) throw new ZmtpProtocolError("message frame before the handshake completed");
    const frames = this.incoming;
    this.incoming = [];
    this.incomingSize = 0;
    this.owner.onOversize?.(this, frames as Buffer[], size);
  }

  private watchPeerTimeToLive(ttlMs: number): void {
    this.peerTimeToLiveMs = ttlMs;
    if (this.heartbeatTimer === undefined) this.startHeartbeatTimer(Math.max(10, Math.floor(ttlMs / 2)));
  }

  private startHeartbeatTimer(tickMs: number): void {
    this.heartbeatTimer = setInterval(() => this.onHeartbeatTick(), tickMs);
    unref(this.heartbeatTimer);
  }

  private onHeartbeatTick(): void {
    const silentMs = Date.now() - this.lastReceivedAt;
    if (this.peerTimeToLiveMs > 0 && silentMs > this.peerTimeToLiveMs) {
      this.fail(new ZmtpProtocolError(`peer silent for ${silentMs} ms, past the TTL it asked for`, ZmtpErrorCode.HANDSHAKE_TIMEOUT));
      return;
    }
    if (this.options.heartbeatIntervalMs <= 0) return;
    const timeoutMs = this.options.heartbeatTimeoutMs > 0 ? this.options.heartbeatTimeoutMs : this.options.heartbeatIntervalMs;
    if (this.peerMinorVersion < 1) {
      // ZMTP 3.0 has no PING to ask with, so silence alone decides. Without this rule a 3.0 peer
      // that stopped sending (mid-frame included) held its connection open forever.
      if (silentMs >= timeoutMs) {
        this.fail(
          new ZmtpProtocolError(
            `heartbeat timeout: ZMTP 3.0 peer (no PING) silent for ${silentMs} ms, past ${timeoutMs} ms`,
            ZmtpErrorCode.HANDSHAKE_TIMEOUT,
          ),
        );
      }
      return;
    }
    // The oldest unanswered PING went out `unansweredPings` ticks ago. Counting ticks rather than
    // the silence keeps the deadline at heartbeatTimeout after that PING: the silence also spans
    // the wait for the first PING, and testing it against timeout + interval dropped a frozen
    // peer up to a whole interval late.
    if (this.unansweredPings > 0 && this.unansweredPings * this.options.heartbeatIntervalMs >= timeoutMs) {
      this.fail(
        new ZmtpProtocolError(
          `heartbeat timeout: no answer to a PING within ${timeoutMs} ms (peer silent for ${silentMs} ms)`,
          ZmtpErrorCode.HANDSHAKE_TIMEOUT,
        ),
      );
      return;
    }
    this.appendFrame(encodePing(this.options.heartbeatTimeToLiveMs / 100), FrameFlag.COMMAND);
    this.unansweredPings++;
    this.flushSoon();
  }

  private appendFrame(body: Uint8Array | string | FrameParts, flags: number): void {
    if (this.box !== null) {
      this.appendSealedFrame(this.box, body, flags);
      return;
    }
    const size = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    const copied = size <= COPY_LIMIT;
    this.reserve(9 + (copied ? size : 0));
    this.batchEnd = writeFrameHeader(this.batch, this.batchEnd, size, flags);
    if (!copied) {
      this.seal();
      if (typeof body === "string") this.sealed.push(Buffer.from(body));
      // Written as the pieces it arrived in: a relay forwards a large frame without copying it.
      else if (body instanceof FrameParts) for (const part of body.parts) this.sealed.push(part);
      else this.sealed.push(asBuffer(body));
      return;
    }
    if (typeof body === "string") this.batchEnd += this.batch.write(body, this.batchEnd);
    else if (body instanceof FrameParts) {
      // Received ones are larger than COPY_LIMIT; this is for one an application built itself.
      for (const part of body.parts) {
        this.batch.set(part, this.batchEnd);
        this.batchEnd += part.byteLength;
      }
    } else {
      this.batch.set(body, this.batchEnd);
      this.batchEnd += size;
    }
  }

  /** Writes one frame as a boxed body (CURVE MESSAGE), sealed where it lies in the batch. */
  private appendSealedFrame(box: MessageBox, payload: Uint8Array | string | FrameParts, flags: number): void {
    const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
    const sealedSize = box.overhead + size;
    this.reserve(9 + (sealedSize <= COPY_LIMIT ? sealedSize : 0));
    this.batchEnd = writeFrameHeader(this.batch, this.batchEnd, sealedSize, 0);
    let body: Buffer;
    if (sealedSize <= COPY_LIMIT) {
      body = this.batch.subarray(this.batchEnd, this.batchEnd + sealedSize);
      this.batchEnd += sealedSize;
    } else {
      this.seal();
      body = Buffer.allocUnsafe(sealedSize);
      this.sealed.push(body);
    }
    if (typeof payload === "string") body.write(payload, box.overhead);
    else if (payload instanceof FrameParts) {
      // Relayed from a connection without a box: the pieces are copied into this one's box.
      let offset = box.overhead;
      for (const part of payload.parts) {
        body.set(part, offset);
        offset += part.length;
      }
    } else body.set(payload, box.overhead);
    box.seal(body, flags);
  }

  private writeRaw(bytes: Buffer): void {
    this.seal();
    this.sealed.push(bytes);
  }

  /** Makes room for `bytes` in the batch buffer, starting a new one when the current is full. */
  private reserve(bytes: number): void {
    if (this.batch.length - this.batchEnd >= bytes) return;
    this.seal();
    this.batch = Buffer.allocUnsafe(Math.max(BATCH_BUFFER_SIZE, bytes));
    this.batchStart = 0;
    this.batchEnd = 0;
  }

  /** Ends the current batch segment. Written regions are never reused: transports may hold them. */
  private seal(): void {
    if (this.batchEnd > this.batchStart) {
      this.sealed.push(this.batch.subarray(this.batchStart, this.batchEnd));
      this.batchStart = this.batchEnd;
    }
  }

  // Flushing on setImmediate, not per message or per microtask, batches a whole tick of sends
  // into one write: measured ~4x the throughput of per-microtask flushing.
  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.state !== State.Closed) this.flush();
    });
  }

  private flush(): void {
    this.unflushedMessages = 0;
    if (this.blocked) return;
    this.seal();
    const chunks = this.sealed;
    if (chunks.length === 0) return;
    this.sealed = [];
    let accepted = true;
    // The transport queues whatever it cannot write yet, in order, so write every chunk.
    for (const chunk of chunks) accepted = this.stream.write(chunk) && accepted;
    if (!accepted) {
      this.blocked = true;
      return;
    }
    this.onAllWritten();
  }

  private onDrain(): void {
    this.blocked = false;
    if (this.state === State.Closed) return;
    if (this.sealed.length > 0 || this.batchEnd > this.batchStart) this.flush();
    else this.onAllWritten();
  }

  private onAllWritten(): void {
    this.queuedMessages = 0;
    if (this.wasFull) {
      this.wasFull = false;
      this.owner.onWritable(this);
    }
  }

  private onTransportClose(error?: Error): void {
    if (this.state === State.Closed) return;
    const reason = error ? new ZmtpError(ZmtpErrorCode.CONNECTION_RESET, `connection lost: ${error.message}`, { cause: error }) : undefined;
    const wasReady = this.state === State.Ready;
    const midHandshake = !wasReady;
    const mechanismReason = midHandshake && this.session !== null ? this.session.describeClose?.() : undefined;
    const unfinished = this.decoder.bufferedBytes + this.incomingSize;
    this.state = State.Closed;
    this.clearTimers();
    // A peer that closes in the middle of a frame or message broke the protocol: say what was lost.
    const truncated =
      wasReady && unfinished > 0
        ? new ZmtpProtocolError(`peer closed mid-message: ${unfinished} bytes of an incomplete frame or message discarded`)
        : undefined;
    this.owner.onClose(
      this,
      reason ??
        truncated ??
        mechanismReason ??
        (midHandshake
          ? new ZmtpProtocolError("peer closed the connection during the handshake", ZmtpErrorCode.CONNECTION_RESET)
          : undefined),
      wasReady,
    );
  }

  private clearTimers(): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.handshakeTimer = undefined;
    this.heartbeatTimer = undefined;
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Timers must not keep a process alive on their own; open sockets do that. */
function unref(timer: ReturnType<typeof setTimeout>): void {
  (timer as { unref?: () => void }).unref?.();
}
