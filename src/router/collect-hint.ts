/**
 * Owns the router's nudge to the garbage collector after large binary frames. The router holds a
 * large frame only while it forwards it (and while its call may be dispatched again), but the
 * pieces it arrived in are returned only by the next collection, and JavaScriptCore counts that
 * memory late. Measured with bench/payload.ts (same run, 2 rounds each, twice): peak router RSS
 * on 16 MiB echoes 212–214 MiB without a nudge, 161 with a full collection after every 64 MiB of
 * large frames (168–179 with an asynchronous one); on 128 MiB echoes 419–531 without, 435 with.
 *
 * A full collection stops the router for as long as it takes: a few milliseconds for a router
 * that only relays, tens of milliseconds with a large heap (a task window, many calls). So the
 * bound grows with that cost: after a collection that took T ms, the next waits for
 * `everyBytes` × max(1, T / QUICK_MS) of large frames, which keeps collections to a few per cent
 * of the time even at a gigabyte per second of binary traffic.
 */
const QUICK_MS = 4;

export class CollectHint {
  private sinceLast = 0;
  private threshold: number;

  constructor(
    private readonly everyBytes: number,
    private readonly collect: () => void = collectNow,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.threshold = everyBytes;
  }

  /** `bytes` of large frames came in. */
  note(bytes: number): void {
    this.sinceLast += bytes;
    if (this.sinceLast < this.threshold) return;
    this.sinceLast = 0;
    const started = this.now();
    this.collect();
    this.threshold = this.everyBytes * Math.max(1, (this.now() - started) / QUICK_MS);
  }
}

/** Bun's synchronous full collection; nothing under Node, whose collector is not driven from here. */
function collectNow(): void {
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
}
