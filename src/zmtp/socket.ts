/**
 * What Router and Dealer share: binding, connecting (with reconnect), the set of live peers,
 * fair-queued receiving with per-peer high-water marks, options and typed events.
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { bunTransport } from "./transport/bun.ts";
import { FrameParts } from "./codec.ts";
import { Connection, type ConnectionOptions, type ConnectionOwner, type SocketType } from "./connection.ts";
import { formatEndpoint, parseEndpoint } from "./endpoint.ts";
import { ZmtpError, ZmtpErrorCode } from "./errors.ts";
import type { Mechanism } from "./mechanism/mechanism.ts";
import { type CurveSocketOptions, curveMechanismFromOptions } from "./mechanism/curve.ts";
import { nullMechanism } from "./mechanism/null.ts";
import { nodeTransport } from "./transport/node.ts";
import { Fifo } from "../util/fifo.ts";
import type { Transport, TransportListener, TransportStream } from "./transport/transport.ts";
import { type ConnectorHost, Connector } from "./connector.ts";

/** A message as accepted by send(): one frame or several (FrameParts as a relay received them). */
export type MessageLike = Uint8Array | string | readonly (Uint8Array | string | FrameParts)[];

/**
 * What send() returns when it has nothing to wait for: the message is queued for its peer (or,
 * on a Router without `mandatory`, dropped as unroutable). It is one shared, resolved promise, so
 * a hot path can compare against it and skip attaching handlers to every send.
 */
export const SEND_DONE: Promise<void> = Promise.resolve();

/** Options shared by every socket. Times are in milliseconds, names as in zeromq.js v6. */
export interface SocketOptions extends CurveSocketOptions {
  /** Identity announced to peers [ZMQ_ROUTING_ID]. A Router uses a peer's to route to it. Default: none. */
  routingId?: string | Uint8Array;
  /** Messages queued per peer before send() waits [ZMQ_SNDHWM]. 0 = no limit. Default 1000. */
  sendHighWaterMark?: number;
  /** Messages queued per peer before reading from it pauses [ZMQ_RCVHWM]. 0 = no limit. Default 1000. */
  receiveHighWaterMark?: number;
  /** How long send() may wait for room; -1 waits forever, 0 fails at once with EAGAIN [ZMQ_SNDTIMEO]. Default -1. */
  sendTimeout?: number;
  /** How long receive() may wait; -1 waits forever [ZMQ_RCVTIMEO]. Default -1. */
  receiveTimeout?: number;
  /** Largest message accepted from a peer, in bytes; bigger closes that connection [ZMQ_MAXMSGSIZE]. -1 = no limit. Default -1. */
  maxMessageSize?: number;
  /**
   * A message over `maxMessageSize` is skipped as it arrives (its bytes are never held) and
   * reported as an `oversize` event, and the connection carries on, instead of being closed as
   * libzmq does. For protocols that can answer such a message. Default false.
   */
  discardOversize?: boolean;
  /**
   * For relays that pass large frames on without reading them: a frame above this many bytes
   * that arrives in several reads is delivered as a FrameParts (the received pieces, not copied
   * into one buffer) in place of a Buffer, and send() writes it back as it is. Messages stay typed
   * `Buffer[]`: a receiver with this option checks `frame instanceof FrameParts` (and calls
   * `toBuffer()`) before reading a frame that may be that large. Values under 16 KiB count as
   * 16 KiB. -1 (default): every frame is one Buffer.
   */
  keepPartsAbove?: number;
  /** Deadline for a new connection's handshake [ZMQ_HANDSHAKE_IVL]. 0 = none. Default 30000. */
  handshakeInterval?: number;
  /** Send a PING this often [ZMQ_HEARTBEAT_IVL]. 0 = off. Default 0. */
  heartbeatInterval?: number;
  /**
   * Close a connection silent this long after a PING [ZMQ_HEARTBEAT_TIMEOUT]. A ZMTP 3.0 peer,
   * which has no PING to answer, is closed once silent this long. Default: heartbeatInterval.
   */
  heartbeatTimeout?: number;
  /** TTL announced in our PINGs: the peer closes if it hears nothing for this long [ZMQ_HEARTBEAT_TTL]. Default 0. */
  heartbeatTimeToLive?: number;
  /** First delay before reconnecting [ZMQ_RECONNECT_IVL]. Default 100. */
  reconnectInterval?: number;
  /** Upper bound of the doubling reconnect delay; 0 = no backoff [ZMQ_RECONNECT_IVL_MAX]. Default 0. */
  reconnectMaxInterval?: number;
  /** Security mechanism. Default: NULL, or CURVE when a `curve*` option is set. */
  mechanism?: Mechanism;
  /** "bun" (Bun.listen/Bun.connect) or "node" (node:net). Default: bun under Bun, node elsewhere. */
  transport?: "bun" | "node";
  /**
   * A message sent first on every new connection, before anything queued [ZMQ_HELLO_MSG, a
   * libzmq draft option]. A function is called per connection. Protocols that must introduce
   * themselves again after a reconnect (VoidRail's HELLO) use this. Default: none.
   */
  helloMessage?: MessageLike | (() => MessageLike);
  /**
   * Where to log connections closed for a reason (protocol errors, timeouts, duplicate ids).
   * Default: one line on stderr per event via console.warn; pass `null` for silence.
   */
  logger?: ZmtpLogger | null;
}

/** The one method the sockets log through; consola instances fit. */
export interface ZmtpLogger {
  warn(message: string): void;
}

const consoleLogger: ZmtpLogger = { warn: (message) => console.warn(`[zmtp] ${message}`) };

type ResolvedOptions = Required<
  Omit<SocketOptions, "routingId" | "transport" | "logger" | "helloMessage" | "discardOversize" | keyof CurveSocketOptions>
> & {
  routingId: Buffer;
};

/** Events every socket emits; listeners get one object argument. */
export interface SocketEventMap {
  bind: { endpoint: string };
  /** A transport connection was accepted on a bound endpoint. */
  accept: { endpoint: string; remoteAddress: string };
  /** A transport connection to a connected endpoint was established. */
  connect: { endpoint: string };
  /** A connection attempt failed; another follows after `delayMs`. */
  "connect:retry": { endpoint: string; delayMs: number; error: Error };
  /** The ZMTP handshake completed: the peer can now send and receive. */
  handshake: {
    endpoint: string;
    routingId: Buffer;
    remoteAddress: string;
    /** The peer's long-term CURVE public key (Z85); "" under NULL. */
    publicKey: string;
    /** What a CURVE server's authenticator named the peer. */
    userId?: string;
  };
  /** The handshake failed (protocol error, timeout, incompatible peer, duplicate id). */
  "handshake:error": { endpoint: string; remoteAddress: string; error: ZmtpError };
  /**
   * With `discardOversize`: a message from this peer passed `maxMessageSize` and was skipped.
   * `frames` are the ones that arrived whole before it passed the bound (the first ones, which
   * usually say what the message was); `size` is the whole message's bytes; `limit` the bound.
   */
  oversize: { endpoint: string; routingId: Buffer; remoteAddress: string; frames: Buffer[]; size: number; limit: number };
  /** A peer that had completed its handshake is gone; `error` says why unless it closed cleanly. */
  disconnect: { endpoint: string; routingId: Buffer; remoteAddress: string; error?: ZmtpError };
  close: Record<string, never>;
}

/** A typed facade over EventEmitter (BullMQ's listener style). */
export class SocketEvents {
  private readonly emitter = new EventEmitter();
  on<K extends keyof SocketEventMap>(event: K, listener: (event: SocketEventMap[K]) => void): this {
    this.emitter.on(event, listener);
    return this;
  }
  once<K extends keyof SocketEventMap>(event: K, listener: (event: SocketEventMap[K]) => void): this {
    this.emitter.once(event, listener);
    return this;
  }
  off<K extends keyof SocketEventMap>(event: K, listener: (event: SocketEventMap[K]) => void): this {
    this.emitter.off(event, listener);
    return this;
  }
  emit<K extends keyof SocketEventMap>(event: K, payload: SocketEventMap[K]): void {
    if (this.emitter.listenerCount(event) > 0) this.emitter.emit(event, payload);
  }
}

/** Per-peer state a socket keeps beside the connection. */
export class Peer {
  readonly inbox = new Fifo<Buffer[]>();
  inReadRing = false;
  /** Router: the id messages to this peer are addressed by. Dealer: the peer's announced id. */
  routingId: Buffer;
  routingKey: string;
  gone = false;
  constructor(readonly connection: Connection) {
    this.routingId = connection.peerRoutingId;
    this.routingKey = connection.peerRoutingId.toString("latin1");
  }
}

interface ReceiveWaiter {
  resolve(message: Buffer[]): void;
  reject(error: Error): void;
  timer?: ReturnType<typeof setTimeout>;
}

const DEFAULTS: Omit<ResolvedOptions, "routingId" | "mechanism"> = {
  sendHighWaterMark: 1000,
  receiveHighWaterMark: 1000,
  sendTimeout: -1,
  receiveTimeout: -1,
  maxMessageSize: -1,
  keepPartsAbove: -1,
  handshakeInterval: 30_000,
  heartbeatInterval: 0,
  heartbeatTimeout: 0,
  heartbeatTimeToLive: 0,
  reconnectInterval: 100,
  reconnectMaxInterval: 0,
};

/**
 * The frames of a message as a new array (send() may take it apart; the caller's stays intact).
 * Frames are passed through as they are: the connection copies them into its write batch, and
 * wrapping each Uint8Array in a Buffer first cost more than the copy (it forces JSC to
 * materialise the array's ArrayBuffer).
 */
export function toFrames(message: MessageLike): (Uint8Array | string | FrameParts)[] {
  if (typeof message === "string" || message instanceof Uint8Array) return [message];
  if (!Array.isArray(message) || message.length === 0) throw new TypeError("a message needs at least one frame");
  const frames = message.slice() as (Uint8Array | string | FrameParts)[];
  for (const frame of frames) {
    if (typeof frame !== "string" && !(frame instanceof Uint8Array) && !(frame instanceof FrameParts))
      throw new TypeError("every frame must be a string or a Uint8Array");
  }
  return frames;
}

export abstract class Socket implements AsyncIterable<Buffer[]> {
  readonly events = new SocketEvents();
  /** The endpoint of the last successful bind(), with the real port when 0 or * was asked for. */
  lastEndpoint: string | undefined;
  protected readonly options: ResolvedOptions;
  protected abstract readonly type: SocketType;
  private readonly transport: Transport;
  private readonly listeners = new Map<string, TransportListener>();
  private readonly connectors = new Map<string, Connector>();
  private readonly connections = new Set<Connection>();
  private readonly readRing = new Fifo<Peer>();
  private readonly receiveWaiters = new Fifo<ReceiveWaiter>();
  private closedFlag = false;
  private readonly owner: ConnectionOwner;
  private readonly logger: ZmtpLogger | null;
  private readonly helloMessage: SocketOptions["helloMessage"];
  private readonly discardOversize: boolean;

  constructor(options: SocketOptions = {}) {
    const {
      routingId,
      transport,
      logger,
      helloMessage,
      discardOversize,
      curveServer,
      curveSecretKey,
      curvePublicKey,
      curveServerKey,
      curveAuthenticator,
      ...rest
    } = options;
    this.helloMessage = helloMessage;
    this.discardOversize = discardOversize === true;
    this.logger = logger === undefined ? consoleLogger : logger;
    const curve = curveMechanismFromOptions({ curveServer, curveSecretKey, curvePublicKey, curveServerKey, curveAuthenticator });
    if (curve !== undefined) {
      if (rest.mechanism !== undefined) throw new TypeError("give either mechanism or the curve* options, not both");
      rest.mechanism = curve;
    }
    for (const [key, value] of Object.entries(rest)) {
      if (key !== "mechanism" && value !== undefined && (typeof value !== "number" || !Number.isFinite(value))) {
        throw new TypeError(`socket option ${key} must be a finite number`);
      }
    }
    const id = routingId === undefined ? Buffer.alloc(0) : Buffer.from(routingId);
    if (id.length > 255) throw new RangeError("routingId must be at most 255 bytes");
    this.options = { ...DEFAULTS, mechanism: nullMechanism, ...stripUndefined(rest), routingId: id };
    this.transport = (transport ?? (typeof Bun !== "undefined" ? "bun" : "node")) === "bun" ? bunTransport : nodeTransport;
    this.owner = {
      onReady: (connection) => this.onConnectionReady(connection),
      onMessage: (connection, frames) => this.onConnectionMessage(connection, frames),
      onOversize: (connection, frames, size) => {
        const peer = connection.owned as Peer | undefined;
        if (peer === undefined) return;
        const { endpoint, remoteAddress } = connection;
        this.events.emit("oversize", {
          endpoint,
          routingId: peer.routingId,
          remoteAddress,
          frames,
          size,
          limit: this.options.maxMessageSize,
        });
      },
      onWritable: (connection) => {
        const peer = connection.owned as Peer | undefined;
        if (peer) this.onPeerWritable(peer);
      },
      onClose: (connection, reason, wasReady) => this.onConnectionClose(connection, reason, wasReady),
    };
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Which runtime transport this socket uses. */
  get transportName(): "bun" | "node" {
    return this.transport.name;
  }

  /** Listens on `endpoint`. Resolves once bound; `lastEndpoint` then holds the real address. */
  async bind(endpoint: string): Promise<void> {
    this.assertOpen();
    const parsed = parseEndpoint(endpoint);
    let boundName = formatEndpoint(parsed);
    const listener = await this.transport.listen(parsed, (stream) => {
      this.events.emit("accept", { endpoint: boundName, remoteAddress: stream.remoteAddress });
      return this.startConnection(stream, boundName).handlers;
    });
    boundName = formatEndpoint(listener.endpoint);
    if (this.closedFlag) {
      listener.close();
      throw new ZmtpError(ZmtpErrorCode.CLOSED, "socket closed during bind");
    }
    const bound = formatEndpoint(listener.endpoint);
    this.listeners.set(bound, listener);
    this.lastEndpoint = bound;
    this.events.emit("bind", { endpoint: bound });
  }

  /** Stops listening on an endpoint given to bind() (as bound, i.e. as in lastEndpoint). */
  unbind(endpoint: string): void {
    const listener = this.listeners.get(endpoint) ?? this.listeners.get(formatEndpoint(parseEndpoint(endpoint)));
    if (!listener) throw new ZmtpError(ZmtpErrorCode.BAD_ENDPOINT, `not bound to ${endpoint}`);
    listener.close();
    this.listeners.delete(formatEndpoint(listener.endpoint));
  }

  /**
   * Connects to `endpoint` and keeps reconnecting, with backoff, whenever the connection is lost.
   * Returns at once: the peer need not be listening yet. Throws only for a malformed endpoint.
   */
  connect(endpoint: string): void {
    this.assertOpen();
    const parsed = parseEndpoint(endpoint);
    const key = formatEndpoint(parsed);
    if (this.connectors.has(key)) return;
    const connector = new Connector(this.connectorHost, parsed, key, {
      intervalMs: this.options.reconnectInterval,
      maxIntervalMs: this.options.reconnectMaxInterval,
    });
    this.connectors.set(key, connector);
    connector.attempt();
  }

  /** Stops reconnecting to `endpoint` and closes its connection. */
  disconnect(endpoint: string): void {
    const key = formatEndpoint(parseEndpoint(endpoint));
    const connector = this.connectors.get(key);
    if (!connector) throw new ZmtpError(ZmtpErrorCode.BAD_ENDPOINT, `not connected to ${endpoint}`);
    this.connectors.delete(key);
    connector.stop();
  }

  /**
   * Closes every listener and connection. Queued outgoing messages are handed to the transport
   * first (libzmq's linger). Pending receive() calls reject with ENOTSOCK; iteration ends.
   */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const listener of this.listeners.values()) listener.close();
    this.listeners.clear();
    for (const connector of this.connectors.values()) connector.stop();
    this.connectors.clear();
    for (const connection of [...this.connections]) connection.close(undefined, true);
    const error = new ZmtpError(ZmtpErrorCode.CLOSED, "socket closed");
    for (const waiter of this.receiveWaiters.drain()) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.onClosed(error);
    this.events.emit("close", {});
  }

  /**
   * Resolves with the next message, fair-queued across peers (one message from each peer in
   * turn). A Router's messages start with the sender's routing id.
   */
  receive(): Promise<Buffer[]> {
    const peer = this.readRing.shift();
    if (peer !== undefined) return Promise.resolve(this.takeFrom(peer));
    if (this.closedFlag) return Promise.reject(new ZmtpError(ZmtpErrorCode.CLOSED, "socket closed"));
    return new Promise((resolve, reject) => {
      const waiter: ReceiveWaiter = { resolve, reject };
      if (this.options.receiveTimeout >= 0) {
        waiter.timer = setTimeout(() => {
          this.receiveWaiters.remove((w) => w === waiter);
          reject(new ZmtpError(ZmtpErrorCode.AGAIN, `no message within ${this.options.receiveTimeout} ms`));
        }, this.options.receiveTimeout);
      }
      this.receiveWaiters.push(waiter);
    });
  }

  /**
   * The next message if one has arrived, else undefined; never waits. Draining what is already
   * here this way costs no promise per message, which a busy receive loop notices.
   */
  tryReceive(): Buffer[] | undefined {
    const peer = this.readRing.shift();
    return peer === undefined ? undefined : this.takeFrom(peer);
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer[]> {
    return {
      next: () =>
        this.receive().then(
          (value) => ({ value, done: false }),
          (error) => {
            if (error instanceof ZmtpError && error.code === ZmtpErrorCode.CLOSED) return { value: undefined, done: true };
            throw error;
          },
        ),
      return: async () => ({ value: undefined, done: true }),
    };
  }

  /** Number of peers that have completed their handshake. */
  get peerCount(): number {
    let count = 0;
    for (const connection of this.connections) if (connection.isReady) count++;
    return count;
  }

  // ---- hooks for Router and Dealer ----

  /** A handshake completed. Return false to refuse the peer (its connection is then closed). */
  protected abstract onPeerReady(peer: Peer): boolean;
  protected abstract onPeerGone(peer: Peer): void;
  protected abstract onPeerWritable(peer: Peer): void;
  /** Shapes a received message (a Router prefixes the routing id). */
  protected abstract deliver(peer: Peer, frames: Buffer[]): Buffer[];
  protected onClosed(_error: ZmtpError): void {}

  protected assertOpen(): void {
    if (this.closedFlag) throw new ZmtpError(ZmtpErrorCode.CLOSED, "socket closed");
  }

  // ---- internals ----

  /** What this socket's Connectors use of it. */
  private readonly connectorHost: ConnectorHost = {
    connect: (endpoint, attach) => this.transport.connect(endpoint, attach),
    startConnection: (stream, endpoint) => this.startConnection(stream, endpoint),
    connected: (endpoint) => this.events.emit("connect", { endpoint }),
    retrying: (endpoint, delayMs, error) => this.events.emit("connect:retry", { endpoint, delayMs, error }),
  };

  /** @internal */
  startConnection(stream: TransportStream, endpoint: string): Connection {
    const options: ConnectionOptions = {
      socketType: this.type,
      routingId: this.options.routingId,
      mechanism: this.options.mechanism,
      maxMessageSize: this.options.maxMessageSize,
      discardOversize: this.discardOversize && this.options.maxMessageSize >= 0,
      keepPartsAbove: this.options.keepPartsAbove,
      handshakeIntervalMs: this.options.handshakeInterval,
      heartbeatIntervalMs: this.options.heartbeatInterval,
      heartbeatTimeoutMs: this.options.heartbeatTimeout,
      heartbeatTimeToLiveMs: this.options.heartbeatTimeToLive,
      sendHighWaterMark: this.options.sendHighWaterMark,
    };
    const connection = new Connection(stream, options, this.owner, endpoint);
    this.connections.add(connection);
    connection.start();
    return connection;
  }

  /** @internal */
  connectionClosedHook: ((connection: Connection) => void) | undefined;

  private onConnectionReady(connection: Connection): void {
    if (this.closedFlag) {
      connection.close(undefined, false);
      return;
    }
    const peer = new Peer(connection);
    connection.owned = peer;
    if (this.helloMessage !== undefined) {
      connection.send(toFrames(typeof this.helloMessage === "function" ? this.helloMessage() : this.helloMessage));
    }
    if (!this.onPeerReady(peer)) {
      connection.owned = undefined;
      return;
    }
    this.events.emit("handshake", {
      endpoint: connection.endpoint,
      routingId: peer.routingId,
      remoteAddress: connection.remoteAddress,
      publicKey: connection.peerPublicKey,
      userId: connection.peerUserId,
    });
  }

  private onConnectionMessage(connection: Connection, frames: Buffer[]): void {
    const peer = connection.owned as Peer | undefined;
    if (peer === undefined) return;
    // Hand straight to a waiting receive() when nothing else is queued: the common, fast case.
    if (this.readRing.length === 0) {
      const waiter = this.receiveWaiters.shift();
      if (waiter !== undefined) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.resolve(this.deliver(peer, frames));
        return;
      }
    }
    peer.inbox.push(frames);
    if (!peer.inReadRing) {
      peer.inReadRing = true;
      this.readRing.push(peer);
    }
    const hwm = this.options.receiveHighWaterMark;
    if (hwm > 0 && peer.inbox.length >= hwm) connection.pauseReading();
  }

  private takeFrom(peer: Peer): Buffer[] {
    const frames = peer.inbox.shift()!;
    if (peer.inbox.length > 0) this.readRing.push(peer);
    else peer.inReadRing = false;
    const hwm = this.options.receiveHighWaterMark;
    // Resume below half the mark, so a peer at the limit is not paused and resumed per message.
    if (hwm > 0 && peer.inbox.length <= hwm >> 1) peer.connection.resumeReading();
    return this.deliver(peer, frames);
  }

  private onConnectionClose(connection: Connection, reason: ZmtpError | undefined, wasReady: boolean): void {
    this.connections.delete(connection);
    const peer = connection.owned as Peer | undefined;
    if (reason !== undefined && reason.code !== ZmtpErrorCode.CONNECTION_RESET) {
      this.logger?.warn(`${this.type} ${connection.endpoint}: closed connection from ${connection.remoteAddress}: ${reason.message}`);
    }
    if (wasReady && peer !== undefined) {
      peer.gone = true;
      // Messages already received from the peer stay readable: nothing that arrived is dropped.
      this.onPeerGone(peer);
      this.events.emit("disconnect", {
        endpoint: connection.endpoint,
        routingId: peer.routingId,
        remoteAddress: connection.remoteAddress,
        error: reason,
      });
    } else if (reason !== undefined) {
      this.events.emit("handshake:error", { endpoint: connection.endpoint, remoteAddress: connection.remoteAddress, error: reason });
    }
    this.connectionClosedHook?.(connection);
    for (const connector of this.connectors.values()) connector.onConnectionClosed(connection);
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
