/** DEALER socket: round-robin over connected peers on send, fair-queued on receive. */
import type { Buffer } from "node:buffer";
import type { FrameParts } from "./codec.ts";
import { ZmtpError, ZmtpErrorCode } from "./errors.ts";
import { Fifo } from "../util/fifo.ts";
import { type MessageLike, type Peer, SEND_DONE, Socket, type SocketOptions, toFrames } from "./socket.ts";

export type DealerOptions = SocketOptions;

interface PendingSend {
  frames: (Uint8Array | string | FrameParts)[];
  resolve(): void;
  reject(error: Error): void;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * A ZeroMQ DEALER. send() resolves once the message is queued for a peer; with no peer
 * connected, or every peer at its high-water mark, it waits (in order) for one, or rejects with
 * EAGAIN after `sendTimeout`.
 *
 * @example
 * const dealer = new Dealer();
 * dealer.connect("tcp://127.0.0.1:5555");
 * await dealer.send(["hello"]);
 * const [reply] = await dealer.receive();
 */
export class Dealer extends Socket {
  protected readonly type = "DEALER" as const;
  private readonly ready: Peer[] = [];
  private nextPeer = 0;
  private readonly waiting = new Fifo<PendingSend>();

  constructor(options: DealerOptions = {}) {
    super(options);
  }

  send(message: MessageLike): Promise<void> {
    if (this.closed) return Promise.reject(new ZmtpError(ZmtpErrorCode.CLOSED, "socket closed"));
    const frames = toFrames(message);
    if (this.waiting.length === 0) {
      const peer = this.pickWritablePeer();
      if (peer !== undefined) {
        peer.connection.send(frames);
        return SEND_DONE;
      }
    }
    if (this.options.sendTimeout === 0) return Promise.reject(new ZmtpError(ZmtpErrorCode.AGAIN, "no peer can take a message now"));
    return new Promise((resolve, reject) => {
      const pending: PendingSend = { frames, resolve, reject };
      if (this.options.sendTimeout > 0) {
        pending.timer = setTimeout(() => {
          this.waiting.remove((p) => p === pending);
          reject(new ZmtpError(ZmtpErrorCode.AGAIN, `no peer could take the message within ${this.options.sendTimeout} ms`));
        }, this.options.sendTimeout);
      }
      this.waiting.push(pending);
    });
  }

  protected onPeerReady(peer: Peer): boolean {
    this.ready.push(peer);
    this.flushWaiting();
    return true;
  }

  protected onPeerGone(peer: Peer): void {
    const index = this.ready.indexOf(peer);
    if (index >= 0) this.ready.splice(index, 1);
    if (this.nextPeer >= this.ready.length) this.nextPeer = 0;
  }

  protected onPeerWritable(_peer: Peer): void {
    this.flushWaiting();
  }

  protected deliver(_peer: Peer, frames: Buffer[]): Buffer[] {
    return frames;
  }

  protected onClosed(error: ZmtpError): void {
    for (const pending of this.waiting.drain()) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  private flushWaiting(): void {
    while (this.waiting.length > 0) {
      const peer = this.pickWritablePeer();
      if (peer === undefined) return;
      const pending = this.waiting.shift()!;
      if (pending.timer) clearTimeout(pending.timer);
      peer.connection.send(pending.frames);
      pending.resolve();
    }
  }

  private pickWritablePeer(): Peer | undefined {
    const count = this.ready.length;
    for (let tried = 0; tried < count; tried++) {
      const index = (this.nextPeer + tried) % count;
      const peer = this.ready[index];
      if (peer.connection.writable) {
        this.nextPeer = (index + 1) % count;
        return peer;
      }
    }
    return undefined;
  }
}
