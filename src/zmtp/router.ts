/**
 * ROUTER socket: every received message starts with the sender's routing id, and every sent
 * message is routed by its first frame.
 */
import { Buffer } from "node:buffer";
import { FrameParts } from "./codec.ts";
import { ZmtpError, ZmtpErrorCode } from "./errors.ts";
import { Fifo } from "../util/fifo.ts";
import { type MessageLike, type Peer, SEND_DONE, Socket, type SocketOptions, toFrames } from "./socket.ts";

export interface RouterOptions extends SocketOptions {
  /**
   * Reject sends to an unknown or vanished peer with EHOSTUNREACH instead of dropping them
   * silently [ZMQ_ROUTER_MANDATORY]. Default false.
   */
  mandatory?: boolean;
  /**
   * When a second peer claims a routing id in use, hand the id over to it and disconnect the
   * first [ZMQ_ROUTER_HANDOVER]. Default false: the newcomer is refused and the first keeps it.
   */
  handover?: boolean;
}

interface PendingSend {
  frames: (Uint8Array | string | FrameParts)[];
  resolve(): void;
  reject(error: Error): void;
  timer?: ReturnType<typeof setTimeout>;
}

interface RouterPeerState {
  waiting: Fifo<PendingSend>;
}

/**
 * A ZeroMQ ROUTER.
 *
 * Full peers: where libzmq silently drops a message to a peer past its send high-water mark,
 * this Router makes send() wait until that peer has room (or `sendTimeout` passes: EAGAIN), so
 * nothing is lost and a slow peer slows its sender. Only the sender to that peer waits; sends to
 * other peers proceed. Use `sendTimeout: 0` to fail fast instead.
 *
 * @example
 * const router = new Router();
 * await router.bind("tcp://127.0.0.1:0");
 * for await (const [id, ...frames] of router) await router.send([id, ...frames]);
 */
export class Router extends Socket {
  protected readonly type = "ROUTER" as const;
  private readonly mandatory: boolean;
  private readonly handover: boolean;
  private readonly byRoutingKey = new Map<string, Peer>();
  /**
   * Peers by the very routing id Buffer this socket hands out at the head of each received
   * message. Replies usually pass that Buffer back: finding the peer by identity spares building
   * and hashing a key string on every send.
   */
  private readonly byRoutingIdFrame = new WeakMap<Uint8Array, Peer>();
  private readonly peerStates = new WeakMap<Peer, RouterPeerState>();
  // libzmq generates 5-byte ids: a zero byte, then a 32-bit counter from a random start.
  private nextGeneratedId = (Math.random() * 0x1_0000_0000) >>> 0;

  constructor(options: RouterOptions = {}) {
    const { mandatory, handover, ...socketOptions } = options;
    super(socketOptions);
    this.mandatory = mandatory ?? false;
    this.handover = handover ?? false;
  }

  /** Routing ids of the peers connected now. */
  get routingIds(): Buffer[] {
    return [...this.byRoutingKey.values()].map((peer) => peer.routingId);
  }

  /** The long-term CURVE public key (Z85) of the connected peer with this routing id; "" under NULL; undefined when none is connected. */
  publicKeyOf(routingId: Uint8Array | string): string | undefined {
    return this.byRoutingKey.get(keyOf(routingId))?.connection.peerPublicKey;
  }

  /** Whether a peer with this routing id is connected. */
  hasPeer(routingId: Uint8Array | string): boolean {
    return this.byRoutingKey.has(keyOf(routingId));
  }

  /**
   * The string under which this Router files the peer with this routing id (its bytes as
   * latin1): a ready-made map key for applications that keep state per peer. For the routing id
   * Buffer a received message starts with, it is found by identity, not rebuilt.
   */
  routingKey(routingId: Uint8Array | string): string {
    return (typeof routingId === "string" ? undefined : this.byRoutingIdFrame.get(routingId)?.routingKey) ?? keyOf(routingId);
  }

  /**
   * Counts as traffic from the peer with this routing id for the heartbeat rules (as a frame
   * from it would), when the application has heard from it some other way, e.g. from a helper
   * connection of the same process. Returns whether such a peer is connected.
   */
  noteAlive(routingId: Uint8Array | string): boolean {
    const peer = this.byRoutingKey.get(keyOf(routingId));
    peer?.connection.noteAlive();
    return peer !== undefined;
  }

  /**
   * Messages received from the peer with this routing id that no receive() has taken yet (0 for
   * an unknown peer). An application that gives peers a deadline to say something checks this
   * before closing one: what the peer said may be waiting behind other peers' messages.
   */
  unreadFrom(routingId: Uint8Array | string): number {
    return this.byRoutingKey.get(keyOf(routingId))?.inbox.length ?? 0;
  }

  /**
   * Closes the connection of the peer with this routing id, for `reason`: the peer gets it in a
   * ZMTP ERROR command, the socket logs it and emits `disconnect` with it. Returns whether such a
   * peer was connected.
   */
  closePeer(routingId: Uint8Array | string, reason: ZmtpError): boolean {
    const peer = this.byRoutingKey.get(keyOf(routingId));
    peer?.connection.fail(reason);
    return peer !== undefined;
  }

  /**
   * Sends `[routingId, ...frames]` to the peer with that id. Resolves once queued for it.
   * Unknown id: resolves (dropped) or, with `mandatory`, rejects with EHOSTUNREACH.
   */
  send(message: MessageLike): Promise<void> {
    if (this.closed) return Promise.reject(new ZmtpError(ZmtpErrorCode.CLOSED, "socket closed"));
    const frames = toFrames(message);
    if (frames.length < 2) return Promise.reject(new TypeError("a Router message needs a routing id frame and at least one more"));
    const first = frames.shift()!;
    if (first instanceof FrameParts) return Promise.reject(new TypeError("a routing id frame must be a string or a Uint8Array"));
    const id = first;
    const known = typeof id === "string" ? undefined : this.byRoutingIdFrame.get(id);
    const peer = known !== undefined && this.byRoutingKey.get(known.routingKey) === known ? known : this.byRoutingKey.get(keyOf(id));
    if (peer === undefined) return this.unroutable(id);
    const state = this.peerStates.get(peer)!;
    if (state.waiting.length === 0 && peer.connection.writable) {
      peer.connection.send(frames);
      return SEND_DONE;
    }
    if (this.options.sendTimeout === 0) return Promise.reject(new ZmtpError(ZmtpErrorCode.AGAIN, "peer is at its send high-water mark"));
    return new Promise((resolve, reject) => {
      const pending: PendingSend = { frames, resolve, reject };
      if (this.options.sendTimeout > 0) {
        pending.timer = setTimeout(() => {
          state.waiting.remove((p) => p === pending);
          reject(new ZmtpError(ZmtpErrorCode.AGAIN, `peer still full after ${this.options.sendTimeout} ms`));
        }, this.options.sendTimeout);
      }
      state.waiting.push(pending);
    });
  }

  protected onPeerReady(peer: Peer): boolean {
    if (peer.routingId.length === 0) {
      const id = Buffer.alloc(5);
      id.writeUInt32BE(this.nextGeneratedId, 1);
      this.nextGeneratedId = (this.nextGeneratedId + 1) >>> 0;
      peer.routingId = id;
      peer.routingKey = id.toString("latin1");
    }
    const existing = this.byRoutingKey.get(peer.routingKey);
    if (existing !== undefined) {
      const reason = new ZmtpError(ZmtpErrorCode.PROTOCOL, `routing id ${peer.routingId.toString("hex")} is already in use`);
      if (!this.handover) {
        peer.connection.close(reason, false);
        return false;
      }
      this.byRoutingKey.delete(existing.routingKey);
      existing.connection.close(reason, false);
    }
    this.byRoutingKey.set(peer.routingKey, peer);
    this.byRoutingIdFrame.set(peer.routingId, peer);
    this.peerStates.set(peer, { waiting: new Fifo() });
    return true;
  }

  protected onPeerGone(peer: Peer): void {
    if (this.byRoutingKey.get(peer.routingKey) === peer) this.byRoutingKey.delete(peer.routingKey);
    const state = this.peerStates.get(peer);
    if (state === undefined) return;
    for (const pending of state.waiting.drain()) {
      if (pending.timer) clearTimeout(pending.timer);
      if (this.mandatory)
        pending.reject(new ZmtpError(ZmtpErrorCode.HOST_UNREACHABLE, "peer disconnected before the message could be sent"));
      else pending.resolve();
    }
  }

  protected onPeerWritable(peer: Peer): void {
    const state = this.peerStates.get(peer);
    if (state === undefined) return;
    while (state.waiting.length > 0 && peer.connection.writable) {
      const pending = state.waiting.shift()!;
      if (pending.timer) clearTimeout(pending.timer);
      peer.connection.send(pending.frames);
      pending.resolve();
    }
  }

  protected deliver(peer: Peer, frames: Buffer[]): Buffer[] {
    frames.unshift(peer.routingId);
    return frames;
  }

  protected onClosed(error: ZmtpError): void {
    for (const peer of this.byRoutingKey.values()) {
      const state = this.peerStates.get(peer);
      for (const pending of state?.waiting.drain() ?? []) {
        if (pending.timer) clearTimeout(pending.timer);
        pending.reject(error);
      }
    }
    this.byRoutingKey.clear();
  }

  private unroutable(id: Uint8Array | string): Promise<void> {
    if (!this.mandatory) return SEND_DONE;
    const hex = Buffer.from(id as Buffer).toString("hex");
    return Promise.reject(new ZmtpError(ZmtpErrorCode.HOST_UNREACHABLE, `no peer with routing id ${hex}`));
  }
}

function keyOf(id: Uint8Array | string): string {
  if (typeof id === "string") return Buffer.from(id).toString("latin1");
  return (Buffer.isBuffer(id) ? id : Buffer.from(id.buffer, id.byteOffset, id.byteLength)).toString("latin1");
}
