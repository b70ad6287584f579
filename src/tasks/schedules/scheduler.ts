/**
 * The scheduler: fires each stored schedule's task at its due times, once per due time even
 * across router restarts, never twice. A firing is a task submitted with the idempotency key
 * `schedule:<name>:<due time ISO>` and its origin (schedule, due time); then the schedule's
 * `lastDueAt` is written. A router killed between the two fires the same due time again after
 * its restart, and the key gives back the task already stored: no second run.
 *
 * Due times missed while the router was down (before this scheduler started) follow the
 * schedule's `catchUp`: "none" skips them, "last" fires only the latest, "all" fires each (at
 * most `maxCatchUp`). A paused schedule fires nothing; resuming counts from the resume.
 * One scheduler per store: the SQLite store's exclusive lock keeps a second router out, so two
 * "beats" cannot both fire.
 */
import { ScheduleNotFoundError, type ScheduleWire, type TaskOptionsWire, ValidationError } from "../../protocol/index.ts";
import type { ScheduleOrigin, ScheduleRecord, TaskRecord, TaskStore } from "../../store/task-store.ts";
import type { Logger } from "../../util/log.ts";
import { cronProblem, type DueRule, dueTimesBetween, lastDueAtOrBefore, nextDueAfter } from "./due-times.ts";

/** The scheduler's clock: the time, and a timer (tests pass a fake one). */
export interface SchedulerClock {
  now(): number;
  /** Calls `fire` after `ms`; the function returned cancels it. */
  setTimer(fire: () => void, ms: number): () => void;
}

/** Date.now and setTimeout. */
export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimer(fire, ms) {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  },
};

/** One firing: what the task layer stores. */
export interface Firing {
  method: string;
  args: Uint8Array;
  options: TaskOptionsWire;
  origin: ScheduleOrigin;
}

export interface SchedulerOptions {
  store: Pick<TaskStore, "putSchedule" | "getSchedule" | "listSchedules" | "removeSchedule" | "updateSchedule">;
  /** Stores the fired task (with `origin` and an idempotency key); rejects when it cannot. */
  fire(firing: Firing): Promise<TaskRecord>;
  /** Throws ValidationError when `options` cannot make a task of `method` (checked at set). */
  checkOptions?(method: string, options: TaskOptionsWire): void;
  logger: Logger;
  clock?: SchedulerClock;
  /** Most missed due times `catchUp: "all"` fires per schedule at a start. Default 1000. */
  maxCatchUp?: number;
}

/** Due times fired per schedule per turn while running: a clock jump fires at most this many. */
const MAX_LIVE_PER_TURN = 1000;
const MAX_TIMER_MS = 2_147_483_647;
/** After a turn failed, the next one comes this much later. */
const RETRY_TURN_MS = 1_000;

/** The idempotency key of a schedule's firing for `dueAt`. */
export function firingKey(name: string, dueAt: number): string {
  return `schedule:${name}:${new Date(dueAt).toISOString()}`;
}

export class Scheduler {
  private readonly store: SchedulerOptions["store"];
  private readonly log: Logger;
  private readonly clock: SchedulerClock;
  private readonly maxCatchUp: number;
  private startedAt = 0;
  private cancelTimer: (() => void) | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  /** Turns run one after another: a set() during a turn waits for it. */
  private turns: Promise<void> = Promise.resolve();
  private running = false;
  /** The latest due time fired per schedule by this scheduler (set and remove forget it). */
  private readonly lastFired = new Map<string, number>();

  constructor(private readonly options: SchedulerOptions) {
    this.store = options.store;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.maxCatchUp = options.maxCatchUp ?? 1000;
  }

  /** Fires what was missed (by each schedule's catch-up mode) and what is due, then waits for the next due time. */
  start(): Promise<void> {
    this.running = true;
    this.startedAt = this.clock.now();
    return this.turn();
  }

  stop(): void {
    this.running = false;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Resolves once the turns asked for so far are done (tests). */
  idle(): Promise<void> {
    return this.turns;
  }

  // ---- the client's verbs ----

  /**
   * Stores a schedule (replacing the one of that name); the bad expression, zone or options are
   * refused with the reason before anything is stored.
   */
  async set(wire: ScheduleWire): Promise<ScheduleRecord> {
    const now = this.clock.now();
    if (wire.cron !== undefined) {
      const problem = cronProblem(wire.cron, wire.timezone, now);
      if (problem !== undefined) throw new ValidationError(`schedule ${wire.name}: ${problem}`, { data: { path: "schedule.cron" } });
    }
    const options = wire.options ?? {};
    if (options.etaMs !== undefined || options.idempotencyKey !== undefined) {
      throw new ValidationError(`schedule ${wire.name}: its tasks cannot have an eta or an idempotencyKey (each firing sets its own)`, {
        data: { path: "schedule.options" },
      });
    }
    try {
      this.options.checkOptions?.(wire.method, options);
    } catch (error) {
      if (error instanceof ValidationError) {
        throw new ValidationError(`schedule ${wire.name}: ${error.message}`, { data: error.data, cause: error });
      }
      throw error;
    }
    const known = this.store.getSchedule(wire.name);
    const record: ScheduleRecord = {
      name: wire.name,
      method: wire.method,
      args: new TextEncoder().encode(JSON.stringify(wire.args ?? [])),
      options: options as Record<string, unknown>,
      catchUp: wire.catchUp ?? "last",
      paused: wire.paused ?? false,
      createdAt: known?.createdAt ?? now,
      since: now,
    };
    if (wire.cron !== undefined) record.cron = wire.cron;
    if (wire.timezone !== undefined) record.timezone = wire.timezone;
    if (wire.everyMs !== undefined) record.everyMs = wire.everyMs;
    await this.store.putSchedule(record);
    this.lastFired.delete(record.name);
    void this.turn();
    return record;
  }

  list(): ScheduleRecord[] {
    return this.store.listSchedules();
  }

  /** Deletes the schedule; false when none has that name. Tasks it fired stay. */
  async remove(name: string): Promise<boolean> {
    const removed = await this.store.removeSchedule(name);
    this.lastFired.delete(name);
    if (removed) void this.turn();
    return removed;
  }

  /** Stops firing it (until resume). */
  async pause(name: string): Promise<ScheduleRecord> {
    if (!(await this.store.updateSchedule(name, { paused: true }))) throw notFound(name);
    return this.store.getSchedule(name)!;
  }

  /** Fires it again from now on; due times that passed while paused are not fired. */
  async resume(name: string): Promise<ScheduleRecord> {
    const known = this.store.getSchedule(name);
    if (!known) throw notFound(name);
    if (known.paused) await this.store.updateSchedule(name, { paused: false, since: this.clock.now() });
    void this.turn();
    return this.store.getSchedule(name)!;
  }

  /** The next due time of `schedule`, unless it is paused or never fires again. */
  nextDueAt(schedule: ScheduleRecord): number | undefined {
    if (schedule.paused) return undefined;
    return nextDueAfter(ruleOf(schedule), Math.max(this.clock.now(), schedule.lastDueAt ?? Number.NEGATIVE_INFINITY));
  }

  // ---- firing ----

  private turn(): Promise<void> {
    this.turns = this.turns
      .then(() => this.fireDue())
      .catch((error: unknown) => {
        // A store that failed (disk full, say) is tried again in a second, not given up on.
        this.log.error(`schedules: a turn failed (again in 1 s): ${(error as Error).message}`);
        this.armFor(this.clock.now() + RETRY_TURN_MS);
      });
    return this.turns;
  }

  private async fireDue(): Promise<void> {
    if (!this.running) return;
    const now = this.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const schedule of this.store.listSchedules()) {
      if (schedule.paused) continue;
      const rule = ruleOf(schedule);
      // What this scheduler fired counts even if its record did not reach the store.
      let last = Math.max(schedule.lastDueAt ?? Number.NEGATIVE_INFINITY, this.lastFired.get(schedule.name) ?? Number.NEGATIVE_INFINITY);
      const missed = this.missed(schedule, rule, last);
      for (const dueAt of missed.fire) {
        await this.fire(schedule, dueAt);
        last = dueAt;
      }
      if (missed.passOver !== undefined) {
        await this.store.updateSchedule(schedule.name, { lastDueAt: missed.passOver });
        this.lastFired.set(schedule.name, missed.passOver);
        last = missed.passOver;
      }
      // Due times while this scheduler runs: each one fires, late or not.
      const from = Math.max(last, this.startedAt - 1);
      const live = dueTimesBetween(rule, from, now, MAX_LIVE_PER_TURN);
      for (const dueAt of live) {
        await this.fire(schedule, dueAt);
        last = dueAt;
      }
      if (live.length === MAX_LIVE_PER_TURN) {
        // The clock jumped far ahead: skip the rest of the jump rather than fire without end.
        const skipTo = lastDueAtOrBefore(rule, now);
        if (skipTo !== undefined && skipTo > last) {
          this.log.warn(`schedules: ${schedule.name} was due more than ${MAX_LIVE_PER_TURN} times at once; the rest are skipped`);
          await this.store.updateSchedule(schedule.name, { lastDueAt: skipTo });
          this.lastFired.set(schedule.name, skipTo);
          last = skipTo;
        }
      }
      const upcoming = nextDueAfter(rule, Math.max(now, last));
      if (upcoming !== undefined) next = Math.min(next, upcoming);
    }
    this.armFor(next);
  }

  /**
   * Due times before this scheduler started that were not fired (the router was down), as the
   * schedule's catch-up mode picks them; passed-over ones are recorded so they are not looked at again.
   */
  private missed(schedule: ScheduleRecord, rule: DueRule, last: number): { fire: number[]; passOver?: number } {
    const before = this.startedAt - 1;
    if (last >= before) return { fire: [] };
    const latest = lastDueAtOrBefore(rule, before);
    if (latest === undefined || latest <= last) return { fire: [] };
    switch (schedule.catchUp) {
      case "none":
        return { fire: [], passOver: latest };
      case "last":
        return { fire: [latest] };
      case "all": {
        const all = dueTimesBetween(rule, last, before, this.maxCatchUp);
        if (all.length === this.maxCatchUp && all[all.length - 1] < latest) {
          this.log.warn(`schedules: ${schedule.name} missed more than ${this.maxCatchUp} due times; the oldest ${this.maxCatchUp} fire`);
          return { fire: all, passOver: latest };
        }
        return { fire: all };
      }
    }
  }

  private async fire(schedule: ScheduleRecord, dueAt: number): Promise<void> {
    const origin = { name: schedule.name, dueAt };
    try {
      await this.options.fire({
        method: schedule.method,
        args: schedule.args,
        options: { ...(schedule.options as TaskOptionsWire), idempotencyKey: firingKey(schedule.name, dueAt) },
        origin,
      });
    } catch (error) {
      // Logged, not retried: a due time fires at most once, and the next one comes.
      this.log.error(`schedules: ${schedule.name} could not fire for ${new Date(dueAt).toISOString()}: ${(error as Error).message}`);
    }
    this.lastFired.set(schedule.name, dueAt);
    await this.store.updateSchedule(schedule.name, { lastDueAt: dueAt });
  }

  private armFor(at: number): void {
    if (!this.running) return;
    if (at === this.timerAt && this.cancelTimer) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = at;
    if (!Number.isFinite(at)) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.clock.now()));
    this.cancelTimer = this.clock.setTimer(() => {
      this.cancelTimer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      void this.turn();
    }, delay);
  }
}

function ruleOf(schedule: ScheduleRecord): DueRule {
  const rule: DueRule = { since: schedule.since };
  if (schedule.cron !== undefined) rule.cron = schedule.cron;
  if (schedule.timezone !== undefined) rule.timezone = schedule.timezone;
  if (schedule.everyMs !== undefined) rule.everyMs = schedule.everyMs;
  return rule;
}

function notFound(name: string): ScheduleNotFoundError {
  return new ScheduleNotFoundError(`no schedule is named ${name}`, { data: { name } });
}
