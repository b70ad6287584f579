/**
 * Bookkeeping of a chaos run: how every call ended (its correct result, a typed error by class,
 * a wrong result, or never), how many terminal replies each call got on the wire, and memory over
 * time. A run passes only with zero lost, zero hung, zero duplicate replies.
 */
import { type ClientDealer, VoidRailError } from "../../../src/index.ts";
import { decodeMessage } from "../../../src/protocol/index.ts";

/**
 * How each call ended. Lost: the system dropped the call without saying why — a wrong result, an
 * error that is not a VoidRailError, or a TimeoutError in a run whose calls all finish far inside
 * their timeout (the reply went missing and only the deadline noticed). Hung: not settled at all
 * by the end of the run, past every call's own deadline.
 */
export class CallLedger {
  started = 0;
  completed = 0;
  /** Typed failures by error class name (DealerLostError, ConnectionError, …). */
  readonly failed = new Map<string, number>();
  /** Descriptions of calls that ended wrongly (wrong value, untyped error, unexpected timeout). */
  readonly lost: string[] = [];
  private pending = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    /** Error classes that count as lost rather than failed (TimeoutError where no call may time out). */
    private readonly lostErrors: readonly string[] = ["TimeoutError"],
  ) {}

  /**
   * Follows one call. `check` returns true for the correct value, or a description of what is
   * wrong with it. Returns the settled outcome, for callers that want it.
   */
  track<T>(call: Promise<T>, check: (value: T) => true | string, what: string): Promise<"completed" | "failed" | "lost"> {
    this.started++;
    this.pending++;
    return call.then(
      (value) => {
        const verdict = check(value);
        if (verdict === true) {
          this.completed++;
          return this.settle("completed");
        }
        this.lost.push(`${what}: wrong result: ${verdict}`);
        return this.settle("lost");
      },
      (error: unknown) => {
        if (error instanceof VoidRailError && !this.lostErrors.includes(error.name)) {
          this.failed.set(error.name, (this.failed.get(error.name) ?? 0) + 1);
          return this.settle("failed");
        }
        const description = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        this.lost.push(`${what}: ${description}`);
        return this.settle("lost");
      },
    );
  }

  /** Calls not settled yet. */
  get unsettled(): number {
    return this.pending;
  }

  /** Failures of one class. */
  failedWith(name: string): number {
    return this.failed.get(name) ?? 0;
  }

  get failedTotal(): number {
    let total = 0;
    for (const count of this.failed.values()) total += count;
    return total;
  }

  /**
   * Waits until every tracked call has settled, or `timeoutMs` passes; returns how many are
   * still unsettled then (the hung calls). The deadline must lie past every call's own timeout.
   */
  async settled(timeoutMs: number): Promise<number> {
    if (this.pending === 0) return 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.pending;
  }

  /** `{ DealerLostError: 3, … }` */
  failedByClass(): Record<string, number> {
    return Object.fromEntries([...this.failed].sort());
  }

  private settle<T>(outcome: T): T {
    this.pending--;
    if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    return outcome;
  }
}

/**
 * Counts terminal replies (RESULT, END, ERROR with an id) per request id as they reach a
 * ClientDealer, before it matches them to calls: ClientDealer settles a call once and drops later
 * replies for its id, so a duplicate reply would be invisible from outside. Test-only: it wraps
 * the client's private message handler. A client never reuses an id, so two terminal replies for
 * one id are a duplicate.
 *
 * `exact` remembers every id answered (memory grows with the calls: fine for tests). Otherwise
 * only the client's own table of calls in flight is consulted, in constant memory (the soak): a
 * terminal reply for an id the client no longer waits on counts as a duplicate, which is exact as
 * long as no call is cancelled or times out on the client's side.
 */
export class ReplyTap {
  /** Request ids that received more than one terminal reply. */
  readonly duplicates: number[] = [];
  /** Terminal replies seen. */
  terminals = 0;
  private readonly seen = new Set<number>();

  private constructor(
    private readonly exact: boolean,
    private readonly pending: Map<number, unknown>,
  ) {}

  static attach(client: ClientDealer, options: { exact?: boolean } = {}): ReplyTap {
    const target = client as unknown as { onMessage(frames: Uint8Array[]): void; pending: Map<number, unknown> };
    const tap = new ReplyTap(options.exact ?? true, target.pending);
    const handle = target.onMessage.bind(client);
    target.onMessage = (frames: Uint8Array[]) => {
      tap.observe(frames);
      handle(frames);
    };
    return tap;
  }

  private observe(frames: Uint8Array[]): void {
    const message = decodeMessage(frames, "client");
    if (!message.ok) return;
    if (message.kind !== "RESULT" && message.kind !== "END" && message.kind !== "ERROR") return;
    const id = (message.header as { id?: number }).id;
    if (id === undefined) return;
    this.terminals++;
    if (!this.exact) {
      if (!this.pending.has(id)) this.duplicates.push(id);
      return;
    }
    if (this.seen.has(id)) this.duplicates.push(id);
    else this.seen.add(id);
  }
}

/** Samples the resident memory of named processes at a fixed period. */
export class MemorySampler {
  readonly samples: { atMs: number; bytes: Record<string, number> }[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly startedAt = Date.now();

  constructor(
    /** Name → current RSS in bytes (0 when the process is gone: such samples are skipped). */
    private readonly sources: Record<string, () => number>,
    private readonly periodMs: number,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.periodMs);
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  sample(): void {
    const bytes: Record<string, number> = {};
    for (const [name, read] of Object.entries(this.sources)) bytes[name] = read();
    this.samples.push({ atMs: Date.now() - this.startedAt, bytes });
  }

  /** The values of one process over time, without the samples where it was gone. */
  series(name: string, fromMs = 0): number[] {
    return this.samples.filter((s) => s.atMs >= fromMs && (s.bytes[name] ?? 0) > 0).map((s) => s.bytes[name]);
  }

  peak(name: string, fromMs = 0): number {
    return Math.max(0, ...this.series(name, fromMs));
  }

  /**
   * Growth of one process after warm-up: the median of the last `windowFraction` of the samples
   * after `warmupMs`, against the median of the first such window. 0.05 is 5 %.
   */
  growth(name: string, warmupMs: number, windowFraction = 0.1): { atWarmup: number; atEnd: number; growth: number } {
    const values = this.series(name, warmupMs);
    if (values.length === 0) return { atWarmup: 0, atEnd: 0, growth: 0 };
    const window = Math.max(1, Math.floor(values.length * windowFraction));
    const atWarmup = median(values.slice(0, window));
    const atEnd = median(values.slice(-window));
    return { atWarmup, atEnd, growth: (atEnd - atWarmup) / atWarmup };
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? 0;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

export const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
