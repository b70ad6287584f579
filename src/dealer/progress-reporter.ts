/**
 * Throttles a task attempt's progress reports: at most one PROGRESS per interval, the latest
 * value winning, and the last one sent before the attempt's outcome, so a hot loop calling
 * `context.progress()` cannot flood the router and the stored progress is the final one.
 */
import { isWithinJsonDepth, Limits, ValidationError } from "../protocol/index.ts";

/** Most nesting a progress value may have (the PROGRESS header's bound). */
const MAX_PROGRESS_DEPTH = 16;
/** Largest encoded progress value: it travels in a header, with room left for the rest of it. */
const MAX_PROGRESS_BYTES = Limits.MAX_HEADER_BYTES - 1024;

export class ProgressReporter {
  private latest: unknown;
  private pending = false;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly send: (value: unknown) => void,
    private readonly intervalMs: number,
  ) {}

  /** Records `value` (any JSON); sends it now or at the end of the current interval. */
  report(value: unknown): void {
    const encoded = JSON.stringify(value ?? null);
    if (encoded === undefined || encoded.length > MAX_PROGRESS_BYTES || !isWithinJsonDepth(value, MAX_PROGRESS_DEPTH)) {
      throw new ValidationError(`progress must be JSON of at most ${MAX_PROGRESS_BYTES} bytes, nested at most ${MAX_PROGRESS_DEPTH} deep`, {
        data: { path: "progress" },
      });
    }
    this.latest = JSON.parse(encoded);
    this.pending = true;
    const wait = this.lastSentAt + this.intervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait);
  }

  /** Sends the value not yet sent, if any (before the attempt's outcome). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.pending) return;
    this.pending = false;
    this.lastSentAt = Date.now();
    this.send(this.latest);
  }

  /** Drops what is pending (the attempt was cancelled). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
  }
}
