/**
 * TaskClock on a fake ClockStore (due and expiring tasks it holds in arrays), a fake ClockWork
 * that writes what it is asked into one event list, and a `now` the test moves by hand. Its
 * timers are the real ones: the test moves `now` to the due time and then waits (waitFor, with a
 * deadline) for the turn, while TimerSpy (test/helpers/timer-spy.ts) shows the delay each wake
 * timer was armed with and what stop() leaves armed (a turn can also run early, with `now` not
 * moved yet, and find nothing: the assertions allow for that on a loaded machine). Covered: wakeBy re-arms only for an earlier
 * time; a turn expires, queues and pumps each method once; the next timer is for the earliest
 * due or expiry time; batches of 1000 continue in the next turn; far-future times are capped at
 * MAX_TIMER_MS; stop(); the purge (sweepIdle, then store.purge until a short batch, and on its
 * interval); store and work failures are logged and the clock goes on.
 *
 *   ./node_modules/.bin/bun test test/unit/task-clock.test.ts
 */
import { afterEach, expect, test } from "bun:test";
import type { TaskPolicy, TaskRecord } from "../../src/store/task-store.ts";
import { type ClockStore, type ClockWork, MAX_TIMER_MS, TaskClock, TURN_RETRY_MS } from "../../src/tasks/task-clock.ts";
import type { Logger } from "../../src/util/log.ts";
import { TimerSpy } from "../helpers/timer-spy.ts";
import { waitFor, withinLoaded } from "../helpers/wait.ts";

/** What the clock looks at per turn; the store's `limit` (src/tasks/task-clock.ts BATCH). */
const BATCH = 1000;
const T0 = 1_700_000_000_000;

const POLICY: TaskPolicy = {
  retries: 0,
  retryDelayMs: 0,
  backoff: "fixed",
  retryDelayMaxMs: 0,
  retryOn: [],
  lostRetries: 0,
  resultTtlMs: 1,
};

function task(id: string, fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    seq: 1,
    method: "S.m",
    args: new Uint8Array(),
    state: "scheduled",
    priority: 5,
    createdAt: T0,
    runAt: T0,
    attempts: 0,
    lostAttempts: 0,
    policy: POLICY,
    ...fields,
  };
}

/** Scheduled/retrying tasks by runAt and queued tasks by expiresAt; calls are written to `events` ("turn" opens each turn). */
class FakeStore implements ClockStore {
  dueTasks: TaskRecord[] = [];
  expiringTasks: TaskRecord[] = [];
  /** What each purge call returns, in turn (then 0). */
  purgeCounts: number[] = [];
  /** Thrown by the next due() call, once. */
  failNextDue: Error | undefined;
  /** Thrown (as a rejection) by every purge call while set. */
  failPurge: Error | undefined;
  /** `now` of each turn (its expiring() call, the first a turn makes). */
  readonly turns: number[] = [];
  /** `limit` of every due() and expiring() call. */
  readonly limits: number[] = [];
  readonly purges: { now: number; limit: number }[] = [];

  constructor(private readonly events: string[]) {}

  expiring(now: number, limit: number): TaskRecord[] {
    this.events.push("turn");
    this.turns.push(now);
    this.limits.push(limit);
    return this.expiringTasks.filter((t) => (t.expiresAt ?? Number.POSITIVE_INFINITY) <= now).slice(0, limit);
  }

  nextExpiryAt(): number | undefined {
    return this.expiringTasks.length === 0 ? undefined : Math.min(...this.expiringTasks.map((t) => t.expiresAt ?? 0));
  }

  due(now: number, limit: number): TaskRecord[] {
    this.limits.push(limit);
    const error = this.failNextDue;
    this.failNextDue = undefined;
    if (error !== undefined) throw error;
    return this.dueTasks.filter((t) => t.runAt <= now).slice(0, limit);
  }

  nextDueAt(): number | undefined {
    return this.dueTasks.length === 0 ? undefined : Math.min(...this.dueTasks.map((t) => t.runAt));
  }

  async purge(now: number, limit: number): Promise<number> {
    this.events.push("purge");
    this.purges.push({ now, limit });
    if (this.failPurge !== undefined) throw this.failPurge;
    return this.purgeCounts.shift() ?? 0;
  }
}

/** Moves tasks out of the fake store as the task manager's transitions would. */
class FakeWork implements ClockWork {
  /** Task ids whose queueDue finds the store no longer holding them due (returns false). */
  readonly gone = new Set<string>();
  /** queueDue of these ids rejects with the error, once. */
  readonly failQueue = new Map<string, Error>();
  /** When set, queueDue waits for this before it settles. */
  hold: Promise<void> | undefined;

  constructor(
    private readonly store: FakeStore,
    private readonly events: string[],
  ) {}

  async expire(record: TaskRecord): Promise<void> {
    this.events.push(`expire ${record.id}`);
    this.store.expiringTasks = this.store.expiringTasks.filter((t) => t.id !== record.id);
  }

  async queueDue(record: TaskRecord): Promise<boolean> {
    this.events.push(`queue ${record.id}`);
    if (this.hold !== undefined) await this.hold;
    const error = this.failQueue.get(record.id);
    this.failQueue.delete(record.id);
    if (error !== undefined) throw error;
    this.store.dueTasks = this.store.dueTasks.filter((t) => t.id !== record.id);
    return !this.gone.has(record.id);
  }

  pump(method: string): void {
    this.events.push(`pump ${method}`);
  }

  sweepIdle(): void {
    this.events.push("sweep");
  }
}

class RecordingLogger implements Logger {
  readonly errors: string[] = [];
  error(message: string): void {
    this.errors.push(message);
  }
  warn(): void {}
  info(): void {}
}

interface Rig {
  clock: TaskClock;
  store: FakeStore;
  work: FakeWork;
  log: RecordingLogger;
  events: string[];
  /** Sets the clock's `now`. */
  at(ms: number): void;
}

const CLOCK_FILE = "src/tasks/task-clock.ts";
const clocks: TaskClock[] = [];
let spy: TimerSpy | undefined;

function rig(purgeIntervalMs = 60_000): Rig {
  const events: string[] = [];
  const store = new FakeStore(events);
  const work = new FakeWork(store, events);
  const log = new RecordingLogger();
  let nowMs = T0;
  const clock = new TaskClock({ store, work, logger: log, purgeIntervalMs, now: () => nowMs });
  clocks.push(clock);
  return { clock, store, work, log, events, at: (ms) => (nowMs = ms) };
}

/** Starts recording timers (restored after each test). */
function spyOnTimers(): TimerSpy {
  spy = TimerSpy.install();
  return spy;
}

/** The delays of the wake timers the clock armed while `spy` watched. */
const wakeDelays = (timers: TimerSpy) =>
  timers
    .from(CLOCK_FILE)
    .filter((timer) => timer.kind === "timeout")
    .map((timer) => timer.delayMs);

const queuedIn = (events: string[]) => events.filter((event) => event.startsWith("queue"));

afterEach(() => {
  spy?.restore();
  spy = undefined;
  for (const clock of clocks.splice(0)) clock.stop();
});

test("a turn expires what expired, queues what is due, then pumps each method that got a queued task, once", async () => {
  const r = rig();
  r.store.expiringTasks = [task("e1", { state: "queued", expiresAt: T0 - 5 }), task("e2", { state: "queued", expiresAt: T0 + 60_000 })];
  r.store.dueTasks = [
    task("a1", { method: "S.a" }),
    task("b1", { method: "S.b", state: "retrying", runAt: T0 - 100 }),
    task("a2", { method: "S.a" }),
    task("c1", { method: "S.c" }),
    task("later", { method: "S.d", runAt: T0 + 60_000 }),
  ];
  r.work.gone.add("c1");
  await r.clock.start();
  expect(r.events).toEqual(["sweep", "purge", "turn", "expire e1", "queue a1", "queue b1", "queue a2", "queue c1", "pump S.a", "pump S.b"]);
  expect(r.store.turns).toEqual([T0]);
  expect(r.log.errors).toEqual([]);
});

test("after a turn the timer is set for the earliest due or expiry time, and its turn runs then", async () => {
  const r = rig();
  r.store.dueTasks = [task("d", { runAt: T0 + 40 })];
  r.store.expiringTasks = [task("e", { state: "queued", expiresAt: T0 + 25 })];
  const timers = spyOnTimers();
  await r.clock.start();
  expect(wakeDelays(timers)).toEqual([25]);

  r.at(T0 + 25);
  await waitFor(() => r.events.includes("expire e"), { timeoutMs: withinLoaded(25), message: "the turn at the expiry time" });
  await waitFor(() => wakeDelays(timers).length >= 2, { timeoutMs: withinLoaded(0), message: "the timer for the due time" });
  expect(wakeDelays(timers)[1]).toBe(15);

  r.at(T0 + 40);
  await waitFor(() => r.events.includes("pump S.m"), { timeoutMs: withinLoaded(15), message: "the turn at the due time" });
  expect(r.events.filter((event) => event !== "turn")).toEqual(["sweep", "purge", "expire e", "queue d", "pump S.m"]);
  expect(r.store.turns.at(-1)).toBe(T0 + 40);
  // Every later timer was armed from T0 + 25 for T0 + 40: a turn that ran before the test moved `now` re-armed the same.
  expect(new Set(wakeDelays(timers).slice(1))).toEqual(new Set([15]));
});

test("wakeBy an earlier time re-arms the timer for it", async () => {
  const r = rig();
  await r.clock.start();
  const timers = spyOnTimers();
  r.clock.wakeBy(T0 + 60_000);
  r.clock.wakeBy(T0 + 20);
  const [first, second] = timers.from(CLOCK_FILE);
  expect(wakeDelays(timers)).toEqual([60_000, 20]);
  expect(first?.cleared).toBe(true);
  expect(second?.cleared).toBe(false);

  r.at(T0 + 20);
  await waitFor(() => r.store.turns.length >= 2, { timeoutMs: withinLoaded(20), message: "the turn wakeBy(T0 + 20) asked for" });
  expect(r.store.turns).toEqual([T0, T0 + 20]);
});

test("wakeBy a later time than the one set, or the same, is a no-op", async () => {
  const r = rig();
  await r.clock.start();
  const timers = spyOnTimers();
  r.clock.wakeBy(T0 + 20);
  r.clock.wakeBy(T0 + 60_000);
  r.clock.wakeBy(T0 + 20);
  expect(timers.from(CLOCK_FILE).map((timer) => [timer.delayMs, timer.cleared])).toEqual([[20, false]]);

  r.at(T0 + 20);
  await waitFor(() => r.store.turns.length >= 2, { timeoutMs: withinLoaded(20), message: "the turn of the first wakeBy" });
});

test("wakeBy a time already past runs a turn at once", async () => {
  const r = rig();
  await r.clock.start();
  r.store.dueTasks = [task("late", { runAt: T0 - 1000 })];
  const timers = spyOnTimers();
  r.clock.wakeBy(T0 - 1000);
  expect(wakeDelays(timers)).toEqual([0]);
  await waitFor(() => r.events.includes("queue late"), { timeoutMs: withinLoaded(0), message: "the turn for a past time" });
});

test("a turn looks at 1000 tasks at most; the rest follow in the next turns, 1 ms apart", async () => {
  const r = rig();
  r.store.dueTasks = Array.from({ length: 2 * BATCH + 500 }, (_, i) => task(`t${i}`, { method: `S.m${i % 3}` }));
  const timers = spyOnTimers();
  await r.clock.start();
  // Still due after the first turn: the next turn comes 1 ms later rather than now, so other work gets the loop.
  expect(wakeDelays(timers)).toEqual([1]);
  expect(queuedIn(r.events)).toHaveLength(BATCH);

  await waitFor(() => r.store.turns.length >= 3 && r.events.at(-1)?.startsWith("pump") === true, {
    timeoutMs: withinLoaded(10),
    message: "the third turn's end",
  });
  const turns = r.events.join("\n").split("turn\n").slice(1);
  expect(turns.map((turn) => queuedIn(turn.split("\n")).length)).toEqual([BATCH, BATCH, 500]);
  expect(turns.map((turn) => turn.split("\n").filter((event) => event.startsWith("pump")).length)).toEqual([3, 3, 3]);
  expect(r.store.dueTasks).toEqual([]);
  expect(wakeDelays(timers)).toEqual([1, 1]);
  expect(new Set(r.store.limits)).toEqual(new Set([BATCH]));
  expect(r.store.purges.map((purge) => purge.limit)).toEqual([BATCH]);
});

test("a time past the largest timer delay is capped at MAX_TIMER_MS (a longer one would fire at once)", async () => {
  const viaWakeBy = rig();
  await viaWakeBy.clock.start();
  const afterTurn = rig();
  afterTurn.store.dueTasks = [task("far", { runAt: T0 + 3 * MAX_TIMER_MS })];
  const timers = spyOnTimers();
  viaWakeBy.clock.wakeBy(T0 + 10 * MAX_TIMER_MS);
  await afterTurn.clock.start();
  expect(wakeDelays(timers)).toEqual([MAX_TIMER_MS, MAX_TIMER_MS]);
});

test("stop() clears the wake and purge timers, and wakeBy after it arms nothing", async () => {
  const r = rig(10);
  r.store.dueTasks = [task("d", { runAt: T0 + 30_000 })];
  const timers = spyOnTimers();
  await r.clock.start();
  expect(timers.live({ from: CLOCK_FILE }).map((timer) => [timer.kind, timer.delayMs])).toEqual([
    ["interval", 10],
    ["timeout", 30_000],
  ]);
  r.clock.stop();
  expect(timers.live({ from: CLOCK_FILE })).toEqual([]);
  r.clock.wakeBy(T0 - 1);
  r.clock.wakeBy(T0);
  expect(timers.from(CLOCK_FILE)).toHaveLength(2);
});

test("a wake timer armed before start() is not left behind: one timer after start, none after stop", async () => {
  // TaskManager.start() retries the attempts a restart cut off (wakeBy their runAt) before it starts the clock.
  const r = rig();
  r.store.dueTasks = [task("retry", { state: "retrying", runAt: T0 + 30_000 })];
  const timers = spyOnTimers();
  r.clock.wakeBy(T0 + 30_000);
  await r.clock.start();
  expect(timers.live({ from: CLOCK_FILE, kind: "timeout" }).map((timer) => timer.delayMs)).toEqual([30_000]);
  r.clock.stop();
  expect(timers.live({ from: CLOCK_FILE })).toEqual([]);
});

test("the purge sweeps idle state, then purges in batches until one comes back short, and runs again on its interval", async () => {
  const r = rig(20);
  r.store.purgeCounts = [BATCH, BATCH, 7];
  await r.clock.start();
  expect(r.events).toEqual(["sweep", "purge", "purge", "purge", "turn"]);
  expect(r.store.purges).toEqual([
    { now: T0, limit: BATCH },
    { now: T0, limit: BATCH },
    { now: T0, limit: BATCH },
  ]);
  await waitFor(() => r.store.purges.length >= 4, { timeoutMs: withinLoaded(20), message: "the purge on its 20 ms interval" });
  expect(r.events.slice(5, 7)).toEqual(["sweep", "purge"]);
});

test("a purge that fails is logged; start() goes on to its turn, and the next purge still runs", async () => {
  const r = rig(20);
  r.store.failPurge = new Error("disk I/O error");
  r.store.dueTasks = [task("d")];
  await r.clock.start();
  expect(r.log.errors).toEqual(["tasks: purging expired records failed: disk I/O error"]);
  expect(r.events).toContain("queue d");
  r.store.failPurge = undefined;
  await waitFor(() => r.store.purges.length >= 2, { timeoutMs: withinLoaded(20), message: "the next purge" });
  expect(r.log.errors).toHaveLength(1);
});

test("a store read that throws in a turn is logged, and the turn is tried again TURN_RETRY_MS later", async () => {
  const r = rig();
  r.store.dueTasks = [task("d")];
  r.store.failNextDue = new Error("database is locked");
  const timers = spyOnTimers();
  await r.clock.start();
  expect(r.log.errors).toHaveLength(1);
  expect(r.log.errors[0]).toContain("database is locked");
  expect(queuedIn(r.events)).toEqual([]);
  expect(wakeDelays(timers)).toEqual([TURN_RETRY_MS]);

  r.at(T0 + TURN_RETRY_MS);
  await waitFor(() => r.events.includes("pump S.m"), { timeoutMs: withinLoaded(TURN_RETRY_MS), message: "the retried turn" });
  expect(queuedIn(r.events)).toEqual(["queue d"]);
  expect(r.log.errors).toHaveLength(1);
});

test("work that rejects in a turn is logged; what it queued before is pumped, and the rest follows in the retry", async () => {
  const r = rig();
  r.store.dueTasks = [task("a", { method: "S.a" }), task("b", { method: "S.b" })];
  r.work.failQueue.set("b", new Error("the task store is closed"));
  await r.clock.start();
  expect(r.log.errors).toHaveLength(1);
  expect(r.log.errors[0]).toContain("the task store is closed");
  expect(r.events).toEqual(["sweep", "purge", "turn", "queue a", "queue b", "pump S.a"]);

  r.at(T0 + TURN_RETRY_MS);
  await waitFor(() => r.events.includes("pump S.b"), { timeoutMs: withinLoaded(TURN_RETRY_MS), message: "the retried turn" });
  expect(r.events.slice(6)).toEqual(["turn", "queue b", "pump S.b"]);
});

test("a turn cut off by stop() (the store closing under it) ends quietly: nothing logged, no retry", async () => {
  const r = rig();
  r.store.dueTasks = [task("d")];
  let release: () => void = () => {};
  r.work.hold = new Promise<void>((resolve) => {
    release = resolve;
  });
  r.work.failQueue.set("d", new Error("the task store is closed"));
  const timers = spyOnTimers();
  const started = r.clock.start();
  await waitFor(() => r.events.includes("queue d"), { timeoutMs: withinLoaded(0), message: "the turn's queueDue" });
  r.clock.stop();
  release();
  await started;
  expect(r.log.errors).toEqual([]);
  expect(timers.live({ from: CLOCK_FILE })).toEqual([]);
});
