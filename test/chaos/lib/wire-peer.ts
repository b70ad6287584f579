/**
 * A VoidRail peer on a bare ZMTP DEALER socket: it sends whatever frames a test builds, valid or
 * not, and records every message the router sends back, so a test sees exactly what one bad
 * input produced.
 */
import { type ClientMessage, type DealerMessage, decodeMessage } from "../../../src/protocol/index.ts";
import { Dealer } from "../../../src/zmtp/index.ts";
import { waitFor } from "../../helpers/wait.ts";

export class WirePeer {
  /** What the router sent, decoded as the role this peer plays would decode it. */
  readonly received: (ClientMessage | DealerMessage)[] = [];
  /** Messages that did not decode as a client would. */
  readonly undecodable: string[] = [];
  private readonly socket = new Dealer({ logger: null });
  private readonly wakers = new Set<() => void>();
  private connected: Promise<void>;

  constructor(
    address: string,
    private readonly role: "client" | "dealer" = "client",
  ) {
    this.connected = new Promise((resolve) => this.socket.events.once("handshake", () => resolve()));
    this.socket.connect(address);
    void (async () => {
      for await (const frames of this.socket) {
        const message = this.role === "client" ? decodeMessage(frames, "client") : decodeMessage(frames, "dealer");
        if (message.ok) this.received.push(message);
        else this.undecodable.push(message.error.message);
        for (const wake of [...this.wakers]) wake();
      }
    })();
  }

  ready(timeoutMs = 5_000): Promise<void> {
    return waitFor(this.connected, { timeoutMs, message: "the wire peer's connection to the router" });
  }

  send(frames: (Uint8Array | string)[]): void {
    void this.socket.send(frames);
  }

  /** Waits until `count` messages in all have arrived; returns the ones from `from` on. */
  async until(count: number, timeoutMs: number, what: string): Promise<(ClientMessage | DealerMessage)[]> {
    await waitFor(
      new Promise<void>((resolve) => {
        const check = () => {
          if (this.received.length < count) return;
          this.wakers.delete(check);
          resolve();
        };
        this.wakers.add(check);
        check();
      }),
      { timeoutMs, message: what },
    );
    return this.received.slice(count - 1);
  }

  close(): void {
    this.socket.close();
  }
}
