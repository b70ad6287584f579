/**
 * The scheduler on a fake clock over a MemoryTaskStore: cron in a time zone across a DST change,
 * intervals, once per due time across restarts (also when a restart comes between a firing and
 * its record), each catch-up mode, pause and resume, and bad definitions refused whole.
 *
 *   ./node_modules/.bin/bun test test/unit/scheduler.test.ts
 */
import { describe, expect, test } from "bun:test";
import { ScheduleNotFoundError, type ScheduleWire, ValidationError } from "../../src/protocol/index.ts";
import { MemoryTaskStore } from "../../src/store/memory-store.ts";
import type { TaskRecord, TaskStore } from "../../src/store/task-store.ts";
import { type Firing, firingKey, Scheduler, type SchedulerClock } from "../../src/tasks/schedules/scheduler.ts";
import { silentLogger } from "../../src/util/log.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

class FakeClock implements SchedulerClock {
  private readonly timers = new Set<{ at: number; fire: () => void }>();
  constructor(public t: number) {}
  now = () => this.t;
  setTimer(fire: () => void, ms: number): () => void {
    const timer = { at: this.t + ms, fire };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }
  /** Moves time forward by `ms`, running each timer at its time and letting the scheduler finish its turn. */
  async advance(ms: number, scheduler: Scheduler): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: { at: number; fire: () => void } | undefined;
      for (const timer of this.timers) if (timer.at <= end && (!next || timer.at < next.at)) next = timer;
      if (!next) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.at);
      next.fire();
      await scheduler.idle();
    }
    this.t = end;
    await scheduler.idle();
  }
  /** Time passes with nothing running (the router is down). */
  skip(ms: number): void {
    this.t += ms;
    this.timers.clear();
  }
}

/** What the task layer does with a firing: insert with its idempotency key and origin. */
function firingInto(store: TaskStore, fired: Firing[]) {
  let n = 0;
  return async (firing: Firing): Promise<TaskRecord> => {
    fired.push(firing);
    const { task } = await store.insert({
      id: `fired-${++n}-${firing.origin.dueAt}`,
      method: firing.method,
      args: firing.args,
      state: "queued",
      priority: firing.options.priority ?? 5,
      createdAt: firing.origin.dueAt,
      runAt: firing.origin.dueAt,
      policy: {
        retries: 0,
        retryDelayMs: 0,
        backoff: "fixed",
        retryDelayMaxMs: 0,
        retryOn: [],
        lostRetries: 0,
        resultTtlMs: 7 * 86_400_000,
      },
      idempotencyKey: firing.options.idempotencyKey,
      schedule: firing.origin,
    });
    return task;
  };
}

function setup(start: string | number, store: TaskStore = new MemoryTaskStore()) {
  const clock = new FakeClock(typeof start === "number" ? start : Date.parse(start));
  const fired: Firing[] = [];
  const make = (maxCatchUp?: number) =>
    new Scheduler({ store, fire: firingInto(store, fired), logger: silentLogger, clock, ...(maxCatchUp ? { maxCatchUp } : {}) });
  return { clock, fired, store, make };
}

/** Tasks in the store, by due time. */
function storedDueTimes(store: TaskStore): string[] {
  return store
    .list({ limit: 1000 })
    .tasks.map((t) => new Date(t.schedule!.dueAt).toISOString())
    .sort();
}

const every = (name: string, seconds: number, extra: Partial<ScheduleWire> = {}): ScheduleWire => ({
  name,
  everyMs: seconds * 1000,
  method: "Svc.tick",
  args: [name],
  ...extra,
});

describe("Scheduler", () => {
  test("a cron schedule in a time zone fires at each local due time, across a DST change, once each", async () => {
    const { clock, fired, store, make } = setup("2026-03-27T12:00:00Z");
    const scheduler = make();
    await scheduler.start();
    const record = await scheduler.set({
      name: "daily-report",
      cron: "0 3 * * *",
      timezone: "Europe/Berlin",
      method: "Report.generate",
      args: ["daily"],
    });
    expect(new Date(scheduler.nextDueAt(record)!).toISOString()).toBe("2026-03-28T02:00:00.000Z");
    await clock.advance(3 * 24 * HOUR, scheduler);
    expect(fired.map((f) => new Date(f.origin.dueAt).toISOString())).toEqual([
      "2026-03-28T02:00:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-30T01:00:00.000Z",
    ]);
    expect(fired[0]).toMatchObject({ method: "Report.generate", origin: { name: "daily-report" } });
    expect(fired[0].options.idempotencyKey).toBe("schedule:daily-report:2026-03-28T02:00:00.000Z");
    expect(JSON.parse(new TextDecoder().decode(fired[0].args))).toEqual(["daily"]);
    expect(storedDueTimes(store)).toHaveLength(3);
    expect(store.getSchedule("daily-report")?.lastDueAt).toBe(Date.parse("2026-03-30T01:00:00Z"));
    scheduler.stop();
  });

  test("an interval fires every N seconds from when it was set, with the schedule's task options", async () => {
    const { clock, fired, make } = setup("2026-01-01T00:00:00Z");
    const scheduler = make();
    await scheduler.start();
    await scheduler.set(every("heartbeat", 60, { options: { priority: 8, retries: 2 } }));
    await clock.advance(5 * MINUTE + 30_000, scheduler);
    expect(fired.map((f) => f.origin.dueAt - Date.parse("2026-01-01T00:00:00Z"))).toEqual([1, 2, 3, 4, 5].map((n) => n * MINUTE));
    expect(fired[0].options).toMatchObject({ priority: 8, retries: 2 });
    scheduler.stop();
  });

  for (const [catchUp, expectedMissed] of [
    ["none", 0],
    ["last", 1],
    ["all", 10],
  ] as const) {
    test(`after a restart, catchUp "${catchUp}" fires ${expectedMissed} of 10 missed due times, then each new one once`, async () => {
      const { clock, fired, store, make } = setup("2026-01-01T00:00:00Z");
      const first = make();
      await first.start();
      await first.set(every("job", 60, { catchUp }));
      await clock.advance(2 * MINUTE, first);
      expect(fired).toHaveLength(2);
      first.stop();
      // Down for ten due times (minutes 3..12), back up at 12:30.
      clock.skip(10 * MINUTE + 30_000);
      const second = make();
      await second.start();
      const missed = fired.slice(2);
      expect(missed).toHaveLength(expectedMissed);
      if (catchUp === "last") expect(missed[0].origin.dueAt).toBe(Date.parse("2026-01-01T00:12:00Z"));
      await clock.advance(2 * MINUTE, second);
      const dueTimes = fired.map((f) => f.origin.dueAt);
      expect(new Set(dueTimes).size).toBe(dueTimes.length);
      expect(fired.length).toBe(2 + expectedMissed + 2);
      expect(storedDueTimes(store)).toHaveLength(fired.length);
      second.stop();
    });
  }

  test("a restart between a firing and its record fires that due time again, and the idempotency key stores nothing new", async () => {
    const store = new MemoryTaskStore();
    const { clock, fired, make } = setup("2026-01-01T00:00:00Z", store);
    // The first router records nothing after its firings, as if killed right after each insert.
    const forgetful: TaskStore = Object.create(store, {
      updateSchedule: { value: async () => true },
    });
    const first = new Scheduler({ store: forgetful, fire: firingInto(store, fired), logger: silentLogger, clock });
    await first.start();
    await first.set(every("job", 60, { catchUp: "all" }));
    await clock.advance(3 * MINUTE, first);
    first.stop();
    expect(fired).toHaveLength(3);
    clock.skip(10_000);
    const second = make();
    await second.start();
    // It fired the three again (catch-up "all" from the last recorded due time, none), but they are the same tasks.
    expect(fired.length).toBe(6);
    expect(storedDueTimes(store)).toEqual(["00:01", "00:02", "00:03"].map((hm) => `2026-01-01T${hm}:00.000Z`));
    expect(
      store
        .list({ limit: 10 })
        .tasks.map((t) => t.idempotencyKey)
        .sort(),
    ).toEqual([1, 2, 3].map((n) => firingKey("job", Date.parse("2026-01-01T00:00:00Z") + n * MINUTE)));
    second.stop();
  });

  test("catchUp all fires at most maxCatchUp missed due times", async () => {
    const { clock, fired, make } = setup("2026-01-01T00:00:00Z");
    const first = make(5);
    await first.start();
    await first.set(every("job", 1, { catchUp: "all" }));
    first.stop();
    clock.skip(HOUR + 500);
    const second = make(5);
    await second.start();
    expect(fired).toHaveLength(5);
    await clock.advance(3_000, second);
    expect(fired).toHaveLength(8);
    second.stop();
  });

  test("a paused schedule fires nothing; resumed, it fires from then on, not what passed while paused", async () => {
    const { clock, fired, make } = setup("2026-01-01T00:00:00Z");
    const scheduler = make();
    await scheduler.start();
    await scheduler.set(every("job", 60));
    await clock.advance(MINUTE, scheduler);
    expect((await scheduler.pause("job")).paused).toBe(true);
    await clock.advance(10 * MINUTE + 1_000, scheduler);
    expect(fired).toHaveLength(1);
    const resumed = await scheduler.resume("job");
    expect(resumed.paused).toBe(false);
    await clock.advance(MINUTE, scheduler);
    expect(fired).toHaveLength(2);
    expect(fired[1].origin.dueAt).toBe(clock.now() - 0);
    await expect(scheduler.pause("nope")).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await expect(scheduler.resume("nope")).rejects.toBeInstanceOf(ScheduleNotFoundError);
    scheduler.stop();
  });

  test("a paused schedule set paused stays paused across a restart", async () => {
    const { clock, fired, make } = setup("2026-01-01T00:00:00Z");
    const first = make();
    await first.start();
    await first.set(every("job", 60, { paused: true }));
    first.stop();
    clock.skip(HOUR);
    const second = make();
    await second.start();
    await clock.advance(5 * MINUTE, second);
    expect(fired).toHaveLength(0);
    second.stop();
  });

  test("a removed schedule fires no more; the tasks it fired stay", async () => {
    const { clock, fired, store, make } = setup("2026-01-01T00:00:00Z");
    const scheduler = make();
    await scheduler.start();
    await scheduler.set(every("job", 60));
    await clock.advance(2 * MINUTE, scheduler);
    expect(await scheduler.remove("job")).toBe(true);
    expect(await scheduler.remove("job")).toBe(false);
    await clock.advance(5 * MINUTE, scheduler);
    expect(fired).toHaveLength(2);
    expect(storedDueTimes(store)).toHaveLength(2);
    expect(scheduler.list()).toEqual([]);
    scheduler.stop();
  });

  test("setting a known name replaces the schedule and counts from then", async () => {
    const { clock, fired, make } = setup("2026-01-01T00:00:00Z");
    const scheduler = make();
    await scheduler.start();
    const first = await scheduler.set(every("job", 60));
    await clock.advance(90_000, scheduler);
    const replaced = await scheduler.set(every("job", 600));
    expect(replaced.createdAt).toBe(first.createdAt);
    await clock.advance(10 * MINUTE, scheduler);
    expect(fired.map((f) => (f.origin.dueAt - Date.parse("2026-01-01T00:00:00Z")) / 1000)).toEqual([60, 90 + 600]);
    scheduler.stop();
  });

  test("a bad cron expression, time zone or never-firing rule is refused with the reason, nothing stored", async () => {
    const { store, make } = setup("2026-01-01T00:00:00Z");
    const scheduler = make();
    await scheduler.start();
    const cases: [Partial<ScheduleWire>, RegExp][] = [
      [{ cron: "61 * * * *" }, /bad cron expression.*minute/i],
      [{ cron: "every day" }, /bad cron expression/i],
      [{ cron: "0 3 * * *", timezone: "Mars/Olympus_Mons" }, /unknown time zone "Mars\/Olympus_Mons"/],
      [{ cron: "0 0 30 2 *" }, /never fires/],
    ];
    for (const [fields, reason] of cases) {
      const error = await scheduler.set({ name: "bad", method: "Svc.x", ...fields }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(reason);
    }
    const withEta = await scheduler.set({ name: "bad", method: "Svc.x", everyMs: 60_000, options: { etaMs: 1 } }).catch((e: unknown) => e);
    expect(withEta).toBeInstanceOf(ValidationError);
    expect(store.listSchedules()).toEqual([]);
    scheduler.stop();
  });

  test("a turn that fails on the store is tried again a second later, and the due time still fires once", async () => {
    const store = new MemoryTaskStore();
    const { clock, fired } = setup("2026-01-01T00:00:00Z", store);
    let failures = 0;
    const flaky: TaskStore = Object.create(store, {
      listSchedules: {
        value: () => {
          if (failures-- > 0) throw new Error("disk I/O error");
          return store.listSchedules();
        },
      },
    });
    const scheduler = new Scheduler({ store: flaky, fire: firingInto(store, fired), logger: silentLogger, clock });
    await scheduler.start();
    await scheduler.set(every("job", 60));
    failures = 1;
    await clock.advance(MINUTE, scheduler);
    expect(fired).toHaveLength(0);
    await clock.advance(1_000, scheduler);
    expect(fired.map((f) => f.origin.dueAt)).toEqual([Date.parse("2026-01-01T00:01:00Z")]);
    scheduler.stop();
  });
});
