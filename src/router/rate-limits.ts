/**
 * Owns the per-method rate limits: one token bucket per limited method, shared by every dealer
 * of the method and by plain calls and task attempts alike (the limit protects what the method
 * uses, say a third-party API's quota, whoever asks). The router's `rateLimits` option wins over
 * a dealer's `@serviceMethod({ task: { rateLimit } })`; among dealers the latest registration's
 * rate applies. A call over the rate waits in its method's queue, in order; a timer serves the
 * queue when the next token is due.
 */
import { burstOf, parseRate, type Rate } from "../protocol/index.ts";
import { TokenBucket } from "../util/token-bucket.ts";

/** One limited method as the metrics see it. */
export interface RateLimitStat {
  method: string;
  /** The rate in force, in calls per second. */
  perSecond: number;
  /** Whether calls or task attempts of the method wait for its next token now. */
  waiting: boolean;
  /** Times the method's queue has had to wait for a token since the router started. */
  holds: number;
}

export class MethodRateLimits {
  private readonly configured = new Map<string, Rate>();
  private readonly declaredRates = new Map<string, Rate>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Per method: how many times its queue had to wait for a token (metrics). */
  private readonly holds = new Map<string, number>();
  /** What serves a method's queue when its next token is due (set once the dispatcher exists). */
  onAvailable: (method: string) => void = () => {};

  constructor(
    configured: Readonly<Record<string, string>>,
    private readonly now: () => number = Date.now,
  ) {
    for (const [method, text] of Object.entries(configured)) {
      const rate = parseRate(text);
      // The options check refused bad rates already; this keeps the type honest.
      if (rate === undefined) continue;
      this.configured.set(method, rate);
      this.buckets.set(method, this.bucketOf(rate));
      this.active = true;
    }
  }

  /** Whether any method is limited: when none is, dispatch checks this one field and nothing else. */
  active = false;

  /** Whether `method` has a rate limit. */
  limits(method: string): boolean {
    return this.buckets.has(method);
  }

  /** The rate in force for `method`. */
  rateOf(method: string): Rate | undefined {
    return this.configured.get(method) ?? this.declaredRates.get(method);
  }

  /** A dealer registered `method` declaring `rateLimit` (or none: an earlier dealer's stays). */
  declared(method: string, rateLimit: string | undefined): void {
    if (rateLimit === undefined || this.configured.has(method)) return;
    const rate = parseRate(rateLimit);
    if (rate === undefined) return;
    const known = this.declaredRates.get(method);
    if (known && known.count === rate.count && known.periodMs === rate.periodMs) return;
    this.declaredRates.set(method, rate);
    const bucket = this.buckets.get(method);
    if (bucket) bucket.setRate({ ...rate, capacity: burstOf(rate) });
    else this.buckets.set(method, this.bucketOf(rate));
    this.active = true;
  }

  /**
   * Takes a token of `method` (a method without a limit always has one): 0 when taken, else the
   * ms until the next one; then the method's queue is served again when it is due.
   */
  take(method: string): number {
    const bucket = this.buckets.get(method);
    if (bucket === undefined || bucket.tryTake()) return 0;
    const waitMs = bucket.msUntilNext();
    this.wakeIn(method, waitMs);
    return Math.max(1, waitMs);
  }

  /** Whether a token of `method` is there now, without taking it; when none is, wakes the queue when one is. */
  available(method: string): boolean {
    const bucket = this.buckets.get(method);
    if (bucket === undefined) return true;
    const waitMs = bucket.msUntilNext();
    if (waitMs === 0) return true;
    this.wakeIn(method, waitMs);
    return false;
  }

  /**
   * Every limited method: its rate per second, whether its calls wait for the next token now,
   * and how many times they have had to (the metrics read this at scrape time).
   */
  stats(): RateLimitStat[] {
    const stats: RateLimitStat[] = [];
    for (const method of this.buckets.keys()) {
      const rate = this.rateOf(method);
      if (rate === undefined) continue;
      stats.push({
        method,
        perSecond: (rate.count * 1000) / rate.periodMs,
        waiting: this.timers.has(method),
        holds: this.holds.get(method) ?? 0,
      });
    }
    return stats;
  }

  /** Stops the timers (router stop). */
  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private wakeIn(method: string, waitMs: number): void {
    if (this.timers.has(method)) return;
    this.holds.set(method, (this.holds.get(method) ?? 0) + 1);
    const timer = setTimeout(
      () => {
        this.timers.delete(method);
        this.onAvailable(method);
      },
      Math.max(1, waitMs),
    );
    timer.unref?.();
    this.timers.set(method, timer);
  }

  private bucketOf(rate: Rate): TokenBucket {
    return new TokenBucket({ ...rate, capacity: burstOf(rate), now: this.now });
  }
}
