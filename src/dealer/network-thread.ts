/**
 * The dealer's connection on its own thread. A service method that computes for 30 s without
 * yielding blocks its event loop; if the socket lived there, it could not answer the router's
 * PINGs and the router would declare a busy dealer dead and run its work twice (celery#5935).
 * Here a Worker owns the ZMTP Dealer socket, so heartbeats flow whatever the methods do; a frozen
 * process (SIGSTOP) still stops them, as it should.
 */
import { SEND_DONE, SocketEvents } from "../zmtp/socket.ts";
import { packMessages, unpackMessages } from "./message-pack.ts";
import type { DealerOptions } from "../zmtp/dealer.ts";

/** Messages main → worker. */
export type ToNetwork =
  | { type: "open"; options: Omit<DealerOptions, "logger" | "helloMessage" | "mechanism"> & { helloMessage?: Uint8Array[] } }
  | { type: "connect"; endpoint: string }
  | { type: "send"; packed: ArrayBuffer }
  | { type: "close" };

/** Messages worker → main. */
export type FromNetwork =
  | { type: "messages"; packed: ArrayBuffer; sent: number }
  | { type: "sent"; count: number }
  | { type: "event"; name: "disconnect" | "handshake" }
  | { type: "log"; message: string }
  | { type: "closed" };

/**
 * Where the worker's code is. In the compiled binary (built with network-worker.ts as a second
 * entrypoint, see scripts/build.ts) entrypoints live under the bundle root, src/ stripped.
 */
function workerEntry(): string {
  if (import.meta.url.startsWith("file:///$bunfs/")) return "./dealer/network-worker.ts";
  return new URL("./network-worker.ts", import.meta.url).href;
}

/**
 * Messages one hand-off between the threads carries at most before it goes without waiting for
 * the end of the tick: the other thread starts on a large batch early instead of idling until
 * this one has handled all of it (as the connection does with EAGER_FLUSH_MESSAGES).
 */
export const RELAY_BATCH_MESSAGES = 16;

/** Sends in flight to the worker before send() starts to wait: bounds memory behind a slow link. */
const MAX_UNACKNOWLEDGED_SENDS = 1000;

/**
 * A DEALER socket whose I/O runs on a worker thread, with the subset of the Dealer API the
 * ServiceDealer uses: connect, send, async iteration, events, close.
 */
export class ThreadedDealer implements AsyncIterable<Uint8Array[]> {
  readonly events = new SocketEvents();
  private readonly worker: Worker;
  private readonly inbox: Uint8Array[][] = [];
  private inboxHead = 0;
  private readonly receivers: ((value: IteratorResult<Uint8Array[]>) => void)[] = [];
  private unacknowledged = 0;
  private outbox: Uint8Array[][] = [];
  private readonly sendWaiters: (() => void)[] = [];
  private closed = false;
  private closedResolve: (() => void) | undefined;

  constructor(options: Extract<ToNetwork, { type: "open" }>["options"], private readonly onLog: (message: string) => void) {
    this.worker = new Worker(workerEntry());
    this.worker.onmessage = (event: MessageEvent<FromNetwork>) => this.onWorkerMessage(event.data);
    this.worker.onerror = (event) => this.onLog(`the network thread failed: ${event.message}`);
    this.post({ type: "open", options });
  }

  connect(endpoint: string): void {
    this.post({ type: "connect", endpoint });
  }

  send(frames: Uint8Array[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("socket closed"));
    this.unacknowledged++;
    // The replies produced in one turn of the event loop cross to the worker together, in one
    // transferred buffer. Flushing at the end of the turn (setImmediate), not at the next
    // microtask: async methods finish at different microtask depths, and a microtask flush sent
    // nearly every reply alone (bench/rpc.ts, 64 in flight: dealer CPU ~21 → ~13 µs per call).
    const queued = this.outbox.push(frames);
    if (queued >= RELAY_BATCH_MESSAGES) this.flushOutbox();
    else if (queued === 1) setImmediate(() => this.flushOutbox());
    if (this.unacknowledged < MAX_UNACKNOWLEDGED_SENDS) return SEND_DONE;
    return new Promise((resolve) => this.sendWaiters.push(resolve));
  }

  /** Closes the socket (queued messages are flushed first), then ends the thread. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.flushOutbox();
    const done = new Promise<void>((resolve) => {
      this.closedResolve = resolve;
    });
    this.post({ type: "close" });
    const timer = setTimeout(() => this.finishClose(), 2000);
    return done.then(() => clearTimeout(timer));
  }

  /** The next message if one has arrived, else undefined; never waits (as Socket.tryReceive). */
  tryReceive(): Uint8Array[] | undefined {
    if (this.inboxHead >= this.inbox.length) return undefined;
    const value = this.inbox[this.inboxHead++];
    if (this.inboxHead === this.inbox.length) {
      this.inbox.length = 0;
      this.inboxHead = 0;
    }
    return value;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array[]> {
    return {
      next: () => {
        const value = this.tryReceive();
        if (value !== undefined) return Promise.resolve({ value, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.receivers.push(resolve));
      },
    };
  }

  private flushOutbox(): void {
    if (this.outbox.length === 0) return;
    const batch = this.outbox;
    this.outbox = [];
    const packed = packMessages(batch);
    this.worker.postMessage({ type: "send", packed } satisfies ToNetwork, [packed]);
  }

  private post(message: ToNetwork): void {
    this.worker.postMessage(message);
  }

  private onWorkerMessage(message: FromNetwork): void {
    switch (message.type) {
      case "messages":
        for (const frames of unpackMessages(message.packed)) {
          const receiver = this.receivers.shift();
          if (receiver) receiver({ value: frames, done: false });
          else this.inbox.push(frames);
        }
        this.acknowledge(message.sent);
        return;
      case "sent":
        this.acknowledge(message.count);
        return;
      case "event":
        if (message.name === "disconnect") this.events.emit("disconnect", { endpoint: "", routingId: Buffer.alloc(0), remoteAddress: "" });
        else this.events.emit("handshake", { endpoint: "", routingId: Buffer.alloc(0), remoteAddress: "" });
        return;
      case "log":
        this.onLog(message.message);
        return;
      case "closed":
        this.finishClose();
        return;
    }
  }

  private acknowledge(count: number): void {
    this.unacknowledged -= count;
    while (this.unacknowledged < MAX_UNACKNOWLEDGED_SENDS && this.sendWaiters.length > 0) this.sendWaiters.shift()!();
  }

  private finishClose(): void {
    this.worker.terminate();
    for (const receiver of this.receivers.splice(0)) receiver({ value: undefined, done: true });
    for (const waiter of this.sendWaiters.splice(0)) waiter();
    this.closedResolve?.();
    this.closedResolve = undefined;
  }
}
