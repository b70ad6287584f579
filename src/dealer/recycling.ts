/**
 * Instance recycling: counts a dealer's finished calls, checks its RSS every so often, and asks
 * once for a recycle when `maxCalls` or `maxMemory` is passed. It knows the dealer only through
 * RecyclingHost, and reads RSS through `readRssBytes`, so it can be driven by fakes.
 */

/** Why an instance asks to be recycled (ServiceDealerOptions.onRecycle). */
export interface RecycleReason {
  /** Which limit it passed. */
  limit: "maxCalls" | "maxMemory";
  /** Calls it has finished so far. */
  calls: number;
  /** Its RSS now, in MiB. */
  rssMiB: number;
  /** The reason in words: "served 100 calls (maxCalls 100)". */
  message: string;
}

/** The recycling limits, as ServiceDealerOptions names them. */
export interface RecyclingOptions {
  /** Recycle after this many calls (any outcome). Default: never. */
  maxCalls?: number;
  /** Recycle once the process's RSS passes this many MiB. Default: never. */
  maxMemory?: number;
  /** Seconds between RSS checks for `maxMemory`. Default 1. */
  memoryCheckInterval?: number;
  /** Called once when a limit is passed. Default: RecyclingHost.recycle. */
  onRecycle?: (reason: RecycleReason) => void;
}

/** What Recycling needs of its dealer. */
export interface RecyclingHost {
  /** False while the dealer drains or is stopped: it is leaving anyway, so nothing is asked. */
  serving(): boolean;
  /** The recycle without onRecycle (the dealer drains and stops). */
  recycle(reason: RecycleReason): void;
  warn(message: string): void;
}

const MiB = 1024 * 1024;

export class Recycling {
  readonly #maxCalls: number | undefined;
  readonly #maxMemoryMiB: number | undefined;
  readonly #checkMs: number;
  readonly #onRecycle: ((reason: RecycleReason) => void) | undefined;
  readonly #host: RecyclingHost;
  readonly #readRssBytes: () => number;
  #callsFinished = 0;
  #asked = false;
  #memoryTimer: ReturnType<typeof setInterval> | undefined;

  /** `readRssBytes`: the process's RSS in bytes now (tests give a fake). */
  constructor(options: RecyclingOptions, host: RecyclingHost, readRssBytes: () => number = () => process.memoryUsage.rss()) {
    this.#maxCalls = options.maxCalls;
    this.#maxMemoryMiB = options.maxMemory;
    this.#checkMs = Math.round((options.memoryCheckInterval ?? 1) * 1000);
    this.#onRecycle = options.onRecycle;
    this.#host = host;
    this.#readRssBytes = readRssBytes;
  }

  /** Counts a finished call toward maxCalls. */
  countCall(): void {
    // Counted even without maxCalls: a maxMemory recycle says how many calls the instance served.
    this.#callsFinished++;
    const max = this.#maxCalls;
    if (max === undefined) return;
    if (this.#callsFinished >= max) this.#ask("maxCalls", `served ${this.#callsFinished} calls (maxCalls ${max})`);
  }

  /** Starts the periodic RSS check for maxMemory (checks once at once); no-op without it or when started. */
  startMemoryChecks(): void {
    const max = this.#maxMemoryMiB;
    if (max === undefined || this.#memoryTimer !== undefined) return;
    const check = () => {
      const rssMiB = this.#readRssBytes() / MiB;
      if (rssMiB > max) this.#ask("maxMemory", `RSS ${Math.round(rssMiB)} MiB passed maxMemory ${max} MiB`);
    };
    this.#memoryTimer = setInterval(check, this.#checkMs);
    this.#memoryTimer.unref?.();
    check();
  }

  stopMemoryChecks(): void {
    if (this.#memoryTimer !== undefined) clearInterval(this.#memoryTimer);
    this.#memoryTimer = undefined;
  }

  /** A limit was passed: asks once for a recycle (onRecycle, or the host's recycle). */
  #ask(limit: RecycleReason["limit"], message: string): void {
    if (this.#asked || !this.#host.serving()) return;
    this.#asked = true;
    this.stopMemoryChecks();
    const reason: RecycleReason = {
      limit,
      calls: this.#callsFinished,
      rssMiB: Math.round(this.#readRssBytes() / MiB),
      message,
    };
    if (this.#onRecycle === undefined) return this.#host.recycle(reason);
    try {
      this.#onRecycle(reason);
    } catch (error) {
      this.#host.warn(`onRecycle threw: ${(error as Error)?.message ?? String(error)}`);
    }
  }
}
