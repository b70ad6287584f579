/**
 * The VoidRail-level handshake deadline. ZMTP's handshakeInterval and heartbeats close a peer
 * that stalls inside ZMTP, but a peer whose ZMTP library answers PING by itself (libzmq does) can
 * complete the ZMTP handshake and then never authenticate: without a deadline it would hold its
 * connection, and the router's memory for it, forever. So when the router requires keys, each new
 * connection has `timeoutMs` to be welcomed (HELLO with a valid key) or to vouch for a registered
 * dealer (a BEAT with a known token); otherwise it is closed.
 */
import type { Buffer } from "node:buffer";
import { type Router, ZmtpError, ZmtpErrorCode } from "../zmtp/index.ts";

/** What HelloDeadline needs of a Router socket (narrow, so a test can drive it with a fake). */
export type HelloDeadlineSocket = Pick<Router, "routingKey" | "unreadFrom" | "closePeer">;

/**
 * One timer per connection that has not identified itself yet.
 *
 * @example
 * const hello = new HelloDeadline(socket, 1000);
 * socket.events.on("handshake", ({ routingId }) => hello.start(routingId));
 * // on a welcomed HELLO or a valid BEAT from it, and when it disconnects:
 * hello.met(socket.routingKey(routingId));
 */
export class HelloDeadline {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly socket: HelloDeadlineSocket,
    readonly timeoutMs: number,
  ) {}

  /** Starts the clock for a connection whose ZMTP handshake has just completed. */
  start(routingId: Buffer): void {
    this.arm(this.socket.routingKey(routingId), routingId);
  }

  /** The connection identified itself, or is gone: its clock stops. Unknown keys are ignored. */
  met(key: string): void {
    const timer = this.timers.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(key);
  }

  /** Stops every clock (the router is stopping). */
  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Connections still on the clock. */
  get pending(): number {
    return this.timers.size;
  }

  private arm(key: string, routingId: Buffer): void {
    const timer = setTimeout(() => {
      this.timers.delete(key);
      // Its HELLO may have arrived and be waiting behind other peers' messages: look again later
      // rather than close a peer for the router's own backlog.
      if (this.socket.unreadFrom(routingId) > 0) {
        this.arm(key, routingId);
        return;
      }
      this.socket.closePeer(
        routingId,
        new ZmtpError(ZmtpErrorCode.HANDSHAKE_TIMEOUT, `no VoidRail HELLO with a valid key within ${this.timeoutMs} ms`),
      );
    }, this.timeoutMs);
    // Open sockets keep a process alive, not this timer.
    (timer as { unref?: () => void }).unref?.();
    this.timers.set(key, timer);
  }
}
