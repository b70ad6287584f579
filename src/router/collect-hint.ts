/**
 * Owns the router's nudge to the garbage collector after large binary frames. The router holds a
 * large frame only while it forwards it (and while its call may be dispatched again), but the
 * pieces it arrived in are returned only by the next collection, and JavaScriptCore counts that
 * memory late. Measured with bench/payload.ts (same run, 2 rounds each, twice): peak router RSS
 * on 16 MiB echoes 212–214 MiB without a nudge, 161 with a full collection after every 64 MiB of
 * large frames (168–179 with an asynchronous one); on 128 MiB echoes 419–531 without, 435 with.
 *
 * A full collection stops the router while it runs: a few milliseconds for a router that only
 * relays, tens with a large heap (a task window, many calls). So collections are also spaced by
 * time, at least MIN_INTERVAL_MS apart and ten times as long as the last one took, which keeps
 * them under a tenth of the router's time whatever its heap.
 */
const MIN_INTERVAL_MS = 100;

export class CollectHint {
  private sinceLast = 0;
  private notBefore = 0;

  constructor(
    private readonly everyBytes: number,
    private readonly collect: () => void = collectNow,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** `bytes` of large frames came in. */
  note(bytes: number): void {
    this.sinceLast += bytes;
    if (this.sinceLast < this.everyBytes) return;
    const started = this.now();
    if (started < this.notBefore) return;
    this.sinceLast = 0;
    this.collect();
    const ended = this.now();
    this.notBefore = ended + Math.max(MIN_INTERVAL_MS, 10 * (ended - started));
  }
}

/** Bun's synchronous full collection; nothing under Node, whose collector is not driven from here. */
function collectNow(): void {
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
}
