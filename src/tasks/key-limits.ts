/**
 * The per-key limits of tasks: how many attempts hold each concurrency key, and one token bucket
 * per rate key (the latest rate submitted for a key applies). It says which key keeps a task from
 * starting ("c:<key>" or "r:<key>") and calls `released` when a key has room again (an attempt of
 * it ended, or its next token is due), so the task layer can start what waited behind it.
 */
import { burstOf, parseRate } from "../protocol/index.ts";
import type { TaskRecord } from "../store/task-store.ts";
import { TokenBucket } from "../util/token-bucket.ts";

/** Largest delay a timer takes. */
const MAX_TIMER_MS = 2_147_483_647;

export class KeyLimits {
  /** Attempts holding each concurrency key (started, not ended). */
  private readonly running = new Map<string, number>();
  private readonly buckets = new Map<string, TokenBucket>();
  /** One timer per rate key out of tokens: it releases the key when its next token is due. */
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private stopped = false;

  constructor(
    private readonly now: () => number,
    /** A key ("c:…" or "r:…") has room again. */
    private readonly released: (key: string) => void,
  ) {}

  /** The key that keeps `task` from starting now, if any; takes nothing. */
  blockOf(task: TaskRecord): string | undefined {
    const { concurrencyKey, concurrencyLimit, rateKey } = task.policy;
    if (concurrencyKey !== undefined && (this.running.get(concurrencyKey) ?? 0) >= (concurrencyLimit ?? 1)) return `c:${concurrencyKey}`;
    if (rateKey === undefined) return undefined;
    const waitMs = this.bucketOf(task)?.msUntilNext() ?? 0;
    if (waitMs === 0) return undefined;
    const key = `r:${rateKey}`;
    this.releaseIn(key, waitMs);
    return key;
  }

  /** `task` starts (blockOf said nothing): it takes its rate key's token. */
  started(task: TaskRecord): void {
    if (task.policy.rateKey !== undefined) this.bucketOf(task)?.tryTake();
  }

  /** An attempt of `task` holds its concurrency key from now on (until `ended`). */
  holds(task: TaskRecord): void {
    const key = task.policy.concurrencyKey;
    if (key !== undefined) this.running.set(key, (this.running.get(key) ?? 0) + 1);
  }

  /** An attempt of `task` ended: its concurrency key has one more place. */
  ended(task: TaskRecord): void {
    const key = task.policy.concurrencyKey;
    if (key === undefined) return;
    const held = (this.running.get(key) ?? 1) - 1;
    if (held <= 0) this.running.delete(key);
    else this.running.set(key, held);
    this.released(`c:${key}`);
  }

  /** Rate keys with a bucket in memory now (monitoring, tests). */
  get rateKeysHeld(): number {
    return this.buckets.size;
  }

  /** Forgets full, idle buckets: a key seen once costs no memory for ever. */
  sweep(): void {
    for (const [key, bucket] of this.buckets) if (bucket.isFull && !this.timers.has(`r:${key}`)) this.buckets.delete(key);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private bucketOf(task: TaskRecord): TokenBucket | undefined {
    const { rateKey, rateKeyLimit } = task.policy;
    if (rateKey === undefined || rateKeyLimit === undefined) return undefined;
    const rate = parseRate(rateKeyLimit);
    if (rate === undefined) return undefined;
    let bucket = this.buckets.get(rateKey);
    if (!bucket) this.buckets.set(rateKey, (bucket = new TokenBucket({ ...rate, capacity: burstOf(rate), now: this.now })));
    else bucket.setRate({ ...rate, capacity: burstOf(rate) });
    return bucket;
  }

  private releaseIn(key: string, waitMs: number): void {
    if (this.stopped || this.timers.has(key)) return;
    const timer = setTimeout(
      () => {
        this.timers.delete(key);
        this.released(key);
      },
      Math.min(MAX_TIMER_MS, Math.max(1, waitMs)),
    );
    this.timers.set(key, timer);
  }
}
