/**
 * A token bucket on an injectable clock: `capacity` tokens at most, refilled continuously at
 * `count` tokens per `periodMs`. Pure (no timers): the caller asks how long until the next token
 * and sets its own timer, so one bucket can be shared by every consumer of a limit and tested on
 * a fake clock.
 *
 * Guarantee: over any window of W ms, at most `capacity + count * W / periodMs` tokens are taken.
 *
 * @example
 * const bucket = new TokenBucket({ count: 10, periodMs: 60_000, capacity: 1 });
 * if (!bucket.tryTake()) setTimeout(retry, bucket.msUntilNext());
 */

/** Float sums of fractional refills land a hair below a whole token at the time it is due. */
const EPSILON = 1e-9;

export interface TokenBucketOptions {
  /** Tokens added per `periodMs` (> 0). */
  count: number;
  periodMs: number;
  /** Most tokens held at once (the burst), ≥ 1. Default 1: takes are spaced evenly. */
  capacity?: number;
  /** The clock, in ms. Default Date.now. */
  now?: () => number;
}

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private count: number;
  private periodMs: number;
  private capacity: number;
  private readonly now: () => number;

  constructor(options: TokenBucketOptions) {
    this.now = options.now ?? Date.now;
    this.count = options.count;
    this.periodMs = options.periodMs;
    this.capacity = Math.max(1, options.capacity ?? 1);
    // A new bucket starts full: the first takes need not wait.
    this.tokens = this.capacity;
    this.updatedAt = this.now();
  }

  /** Changes the rate (a new limit for the same key); tokens held stay, capped by the new capacity. */
  setRate(options: Pick<TokenBucketOptions, "count" | "periodMs" | "capacity">): void {
    this.refill();
    this.count = options.count;
    this.periodMs = options.periodMs;
    this.capacity = Math.max(1, options.capacity ?? 1);
    this.tokens = Math.min(this.tokens, this.capacity);
  }

  /** Takes one token if one is there; false leaves the bucket as it was. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1 - EPSILON) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is there; 0 when one is now. */
  msUntilNext(): number {
    this.refill();
    if (this.tokens >= 1 - EPSILON) return 0;
    return Math.ceil(((1 - this.tokens) * this.periodMs) / this.count);
  }

  /** Whether the bucket is full (holds no state worth keeping: a new bucket would be the same). */
  get isFull(): boolean {
    this.refill();
    return this.tokens >= this.capacity;
  }

  private refill(): void {
    const now = this.now();
    const elapsed = now - this.updatedAt;
    // A clock that steps back adds nothing (and takes nothing away).
    if (elapsed > 0) this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.count) / this.periodMs);
    this.updatedAt = Math.max(this.updatedAt, now);
  }
}
