/**
 * TaskClock: the time-driven part of the task layer. One wake timer fires by the earliest time
 * something is due (a scheduled or retrying task's runAt, a queued task's expiresAt); each turn
 * expires what waited too long, queues what became due and sets the timer for what comes next.
 * A second, periodic timer purges finished records past their TTL. It changes no task state
 * itself: every move goes through the TaskManager's transitions (ClockWork).
 */
import type { TaskRecord, TaskStore } from "../store/task-store.ts";
import type { Logger } from "../util/log.ts";

/** Largest delay a timer takes. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Tasks looked at per turn of a timer (due, expiring, purge), so one turn stays short. */
const BATCH = 1000;
/** After a turn that failed (the store or a transition threw), the next try comes this much later. */
export const TURN_RETRY_MS = 1000;

/** What the clock asks of the task manager when a time comes; the manager owns every transition. */
export interface ClockWork {
  /** `task` has not started by its expiresAt: move it to expired. */
  expire(task: TaskRecord): Promise<void>;
  /** `task` (scheduled or retrying) is due: queue it; false when the store no longer had it so. */
  queueDue(task: TaskRecord): Promise<boolean>;
  /** Tasks of `method` were queued by this turn: give them free slots. */
  pump(method: string): void;
  /** Once per purge turn, before the store's purge: drop idle per-key state. */
  sweepIdle(): void;
}

/** The store's read side of times, and its purge. */
export type ClockStore = Pick<TaskStore, "due" | "nextDueAt" | "expiring" | "nextExpiryAt" | "purge">;

export interface TaskClockOptions {
  store: ClockStore;
  work: ClockWork;
  logger: Logger;
  /** How often finished records past their TTL are deleted. */
  purgeIntervalMs: number;
  /** The clock (tests). */
  now: () => number;
}

export class TaskClock {
  private readonly store: ClockStore;
  private readonly work: ClockWork;
  private readonly log: Logger;
  private readonly purgeIntervalMs: number;
  private readonly now: () => number;
  private wakeTimer: ReturnType<typeof setTimeout> | undefined;
  private wakeAt = Number.POSITIVE_INFINITY;
  private purgeTimer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  constructor(options: TaskClockOptions) {
    this.store = options.store;
    this.work = options.work;
    this.log = options.logger;
    this.purgeIntervalMs = options.purgeIntervalMs;
    this.now = options.now;
  }

  /** Starts the purge timer, purges once, then runs one turn (which sets the wake timer for what comes next). */
  async start(): Promise<void> {
    this.purgeTimer = setInterval(() => void this.purge(), this.purgeIntervalMs);
    this.purgeTimer.unref?.();
    await this.purge();
    await this.tick();
  }

  /** Clears both timers; later wakeBy calls do nothing. */
  stop(): void {
    this.stopped = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.wakeTimer = undefined;
    this.purgeTimer = undefined;
  }

  /** Makes sure the timer fires by `at` (a runAt or an expiresAt); a later time than the one set is a no-op. */
  wakeBy(at: number): void {
    if (this.stopped || at >= this.wakeAt) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => void this.tick(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
  }

  /**
   * One turn, from the wake timer (or start). A failure (a store read or a transition that
   * throws: a full disk, the store closed under it) is logged and the turn tried again
   * TURN_RETRY_MS later: nothing awaits this promise, so a rejection would go unhandled (fatal
   * under Node) and leave no timer set for what is due next.
   */
  private async tick(): Promise<void> {
    // start() runs a turn itself: a timer a wakeBy set before it would otherwise be left armed, out of stop()'s reach.
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAt = Number.POSITIVE_INFINITY;
    if (this.stopped) return;
    const now = this.now();
    try {
      await this.turn(now);
    } catch (error) {
      // A turn cut off by stop() (the store closing under it) is no failure.
      if (this.stopped) return;
      this.log.error(`tasks: a clock turn failed, trying again in ${TURN_RETRY_MS} ms: ${(error as Error)?.message ?? String(error)}`);
      this.wakeBy(now + TURN_RETRY_MS);
    }
  }

  /** Expires what has waited too long, queues what is due, and sets the timer for what comes next. */
  private async turn(now: number): Promise<void> {
    const methods = new Set<string>();
    try {
      for (const task of this.store.expiring(now, BATCH)) await this.work.expire(task);
      for (const task of this.store.due(now, BATCH)) {
        if (await this.work.queueDue(task)) methods.add(task.method);
      }
    } finally {
      // Tasks queued before a failure are in their windows already: they get their slots now, not at the retry.
      for (const method of methods) this.work.pump(method);
    }
    const next = Math.min(this.store.nextDueAt() ?? Number.POSITIVE_INFINITY, this.store.nextExpiryAt() ?? Number.POSITIVE_INFINITY);
    if (Number.isFinite(next)) this.wakeBy(Math.max(next, now + 1));
  }

  private async purge(): Promise<void> {
    if (this.stopped) return;
    try {
      // Inside the try: nothing awaits this turn either (the purge timer fires it), so a throw must not escape.
      this.work.sweepIdle();
      while ((await this.store.purge(this.now(), BATCH)) === BATCH) {}
    } catch (error) {
      this.log.error(`tasks: purging expired records failed: ${(error as Error).message}`);
    }
  }
}
