/**
 * The task store contract as one behaviour suite, run on every store (MemoryTaskStore,
 * SqliteTaskStore) by test/conformance/task-store.test.ts.
 */
import { expect, test } from "bun:test";
import { ValidationError } from "../../src/protocol/index.ts";
import type { FlowLink, NewTask, ScheduleRecord, TaskPolicy, TaskStore } from "../../src/store/task-store.ts";
import { canTransition, TASK_STATES, type TaskState, TRANSITIONS, type TransitionName } from "../../src/store/task-states.ts";

const POLICY: TaskPolicy = {
  retries: 0,
  retryDelayMs: 1000,
  backoff: "fixed",
  retryDelayMaxMs: 60_000,
  retryOn: [],
  lostRetries: 3,
  resultTtlMs: 86_400_000,
};

let counter = 0;

/** A new task with a unique id; `overrides` set what a case cares about. */
export function newTask(overrides: Partial<NewTask> = {}): NewTask {
  counter++;
  return {
    id: `task-${process.pid}-${counter}`,
    method: "Svc.work",
    args: new TextEncoder().encode(`[${counter}]`),
    state: "queued",
    priority: 5,
    createdAt: 1_000_000 + counter,
    runAt: 1_000_000 + counter,
    policy: POLICY,
    ...overrides,
  };
}

/** Puts a fresh task into `state` through the store's own transitions. */
async function taskIn(store: TaskStore, state: TaskState): Promise<string> {
  const initial: TaskState = state === "scheduled" || state === "blocked" ? state : "queued";
  const { task } = await store.insert(newTask({ state: initial }));
  const path: Record<TaskState, TransitionName[]> = {
    blocked: [],
    scheduled: [],
    queued: [],
    running: ["markRunning"],
    retrying: ["markRunning", "markRetrying"],
    succeeded: ["markRunning", "markSucceeded"],
    failed: ["markRunning", "markFailed"],
    revoked: ["markRevoked"],
    expired: ["markExpired"],
  };
  for (const step of path[state]) expect(await store.transition(task.id, step)).toBe(true);
  expect(store.get(task.id)?.state).toBe(state);
  return task.id;
}

/** Registers the suite's tests; `open` gives a fresh, empty store per test. */
export function taskStoreCases(name: string, open: () => Promise<TaskStore> | TaskStore): void {
  const withStore = (title: string, body: (store: TaskStore) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const store = await open();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });

  withStore("insert gives increasing seqs and get returns the stored task; an unknown id is undefined", async (store) => {
    const a = await store.insert(newTask());
    const b = await store.insert(newTask({ priority: 9, expiresAt: 5_000_000 }));
    expect(a.created && b.created).toBe(true);
    expect(b.task.seq).toBeGreaterThan(a.task.seq);
    const got = store.get(b.task.id)!;
    expect(got).toMatchObject({ id: b.task.id, priority: 9, expiresAt: 5_000_000, attempts: 0, lostAttempts: 0, state: "queued" });
    expect(new TextDecoder().decode(got.args)).toBe(new TextDecoder().decode(b.task.args));
    expect(got.policy).toEqual(POLICY);
    expect(store.get("no-such-task")).toBeUndefined();
  });

  withStore("an idempotency key returns the same task until its result TTL has passed", async (store) => {
    const first = await store.insert(newTask({ idempotencyKey: "order-42" }));
    const again = await store.insert(newTask({ idempotencyKey: "order-42" }));
    expect(again).toMatchObject({ created: false, task: { id: first.task.id } });
    await store.transition(first.task.id, "markRunning");
    await store.transition(first.task.id, "markSucceeded", { finishedAt: 2_000_000, purgeAt: 3_000_000 });
    const before = await store.insert(newTask({ idempotencyKey: "order-42", createdAt: 2_999_999 }));
    expect(before).toMatchObject({ created: false, task: { id: first.task.id, state: "succeeded" } });
    const after = await store.insert(newTask({ idempotencyKey: "order-42", createdAt: 3_000_000 }));
    expect(after.created).toBe(true);
    expect(after.task.id).not.toBe(first.task.id);
  });

  withStore("queued() is in dispatch order: priority first, then arrival; it pages with `after`", async (store) => {
    const ids: Record<string, string> = {};
    for (const [label, priority] of [
      ["a5", 5],
      ["b9", 9],
      ["c5", 5],
      ["d0", 0],
      ["e9", 9],
    ] as const) {
      ids[label] = (await store.insert(newTask({ priority }))).task.id;
    }
    await store.insert(newTask({ state: "scheduled", priority: 9 }));
    await store.insert(newTask({ method: "Other.work", priority: 9 }));
    const order = store.queued("Svc.work", 10).map((task) => task.id);
    expect(order).toEqual([ids.b9, ids.e9, ids.a5, ids.c5, ids.d0]);
    const firstPage = store.queued("Svc.work", 2);
    const rest = store.queued("Svc.work", 10, { priority: firstPage[1].priority, seq: firstPage[1].seq }).map((task) => task.id);
    expect(rest).toEqual([ids.a5, ids.c5, ids.d0]);
    expect(store.queuedMethods()).toEqual(["Other.work", "Svc.work"]);
  });

  withStore("due() and nextDueAt() see scheduled and retrying tasks by runAt", async (store) => {
    expect(store.nextDueAt()).toBeUndefined();
    const late = (await store.insert(newTask({ state: "scheduled", runAt: 3_000 }))).task.id;
    const early = (await store.insert(newTask({ state: "scheduled", runAt: 1_000 }))).task.id;
    const retrying = await taskIn(store, "retrying");
    await store.transition(retrying, "markQueued");
    await store.transition(retrying, "markRunning");
    await store.transition(retrying, "markRetrying", { runAt: 2_000 });
    expect(store.nextDueAt()).toBe(1_000);
    expect(store.due(2_500, 10).map((task) => task.id)).toEqual([early, retrying]);
    expect(store.due(5_000, 1).map((task) => task.id)).toEqual([early]);
    await store.transition(early, "markQueued");
    expect(store.nextDueAt()).toBe(2_000);
    expect(store.due(10_000, 10).map((task) => task.id)).toEqual([retrying, late]);
  });

  withStore("expiring() and nextExpiryAt() see only tasks that have not started", async (store) => {
    const queued = (await store.insert(newTask({ expiresAt: 2_000 }))).task.id;
    const scheduled = (await store.insert(newTask({ state: "scheduled", runAt: 9_000, expiresAt: 1_000 }))).task.id;
    const started = (await store.insert(newTask({ expiresAt: 500 }))).task.id;
    await store.transition(started, "markRunning");
    expect(store.nextExpiryAt()).toBe(1_000);
    expect(store.expiring(1_500, 10).map((task) => task.id)).toEqual([scheduled]);
    expect(store.expiring(5_000, 10).map((task) => task.id)).toEqual([scheduled, queued]);
  });

  withStore("every transition applies from exactly the states TRANSITIONS allows, and a refused one changes nothing", async (store) => {
    for (const name of Object.keys(TRANSITIONS) as TransitionName[]) {
      for (const state of TASK_STATES) {
        const id = await taskIn(store, state);
        const before = store.get(id)!;
        const applied = await store.transition(id, name, { finishedAt: 42, error: { code: "X", message: "x" } });
        expect({ name, state, applied }).toEqual({ name, state, applied: canTransition(name, state) });
        const after = store.get(id)!;
        if (applied) expect(after.state).toBe(TRANSITIONS[name].to);
        else expect(after).toEqual(before);
      }
    }
    expect(await store.transition("no-such-task", "markRunning")).toBe(false);
  });

  withStore("transition fields: attempts and lost attempts count, result bytes and errors round-trip", async (store) => {
    const { task } = await store.insert(newTask());
    await store.transition(task.id, "markRunning", { countAttempt: true, startedAt: 10 });
    await store.transition(task.id, "markRetrying", {
      countLost: true,
      runAt: 20,
      error: { code: "DEALER_LOST", message: "lost", data: { d: 1 } },
    });
    expect(store.get(task.id)).toMatchObject({
      attempts: 1,
      lostAttempts: 1,
      runAt: 20,
      startedAt: 10,
      error: { code: "DEALER_LOST", data: { d: 1 } },
    });
    await store.transition(task.id, "markQueued");
    await store.transition(task.id, "markRunning", { countAttempt: true, startedAt: 30 });
    const result = new Uint8Array([123, 34, 107, 34, 58, 49, 125, 0, 255]);
    await store.transition(task.id, "markSucceeded", { result, finishedAt: 40, purgeAt: 50 });
    const done = store.get(task.id)!;
    expect(done).toMatchObject({ state: "succeeded", attempts: 2, lostAttempts: 1, finishedAt: 40, purgeAt: 50 });
    expect([...done.result!]).toEqual([...result]);
  });

  withStore("progress is stored only while the task runs", async (store) => {
    const { task } = await store.insert(newTask());
    expect(await store.setProgress(task.id, { current: 1 })).toBe(false);
    await store.transition(task.id, "markRunning");
    expect(await store.setProgress(task.id, { current: 3, total: 10 })).toBe(true);
    expect(store.get(task.id)?.progress).toEqual({ current: 3, total: 10 });
    await store.transition(task.id, "markSucceeded");
    expect(await store.setProgress(task.id, { current: 4 })).toBe(false);
    expect(store.get(task.id)?.progress).toEqual({ current: 3, total: 10 });
  });

  withStore("list() is newest first, filters by state, method and time, and pages with a cursor", async (store) => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await store.insert(newTask({ method: i % 2 === 0 ? "Svc.even" : "Svc.odd", createdAt: 100 + i }))).task.id);
    }
    await store.transition(ids[6], "markRevoked");
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = store.list({ limit: 3, cursor });
      expect(page.tasks.length).toBeLessThanOrEqual(3);
      seen.push(...page.tasks.map((task) => task.id));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(seen).toEqual([...ids].reverse());
    expect(store.list({ limit: 10, method: "Svc.odd" }).tasks.map((task) => task.id)).toEqual([ids[5], ids[3], ids[1]]);
    expect(store.list({ limit: 10, state: "revoked" }).tasks.map((task) => task.id)).toEqual([ids[6]]);
    expect(store.list({ limit: 10, createdFrom: 102, createdTo: 104 }).tasks.map((task) => task.id)).toEqual([ids[3], ids[2]]);
    expect(() => store.list({ limit: 10, cursor: "not-a-cursor" })).toThrow(ValidationError);
  });

  withStore("purge() deletes only finished tasks past their purgeAt, at most `limit`, and frees their keys", async (store) => {
    const kept = await taskIn(store, "running");
    const young = await taskIn(store, "failed");
    await store.transition(kept, "markSucceeded", { purgeAt: 9_000 });
    const old: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { task } = await store.insert(newTask({ idempotencyKey: `k${i}` }));
      await store.transition(task.id, "markRevoked", { purgeAt: 1_000 });
      old.push(task.id);
    }
    expect(await store.purge(5_000, 2)).toBe(2);
    expect(await store.purge(5_000, 10)).toBe(1);
    for (const id of old) expect(store.get(id)).toBeUndefined();
    expect(store.get(kept)?.state).toBe("succeeded");
    expect(store.get(young)?.state).toBe("failed");
    expect((await store.insert(newTask({ idempotencyKey: "k0", createdAt: 2_000 }))).created).toBe(true);
  });

  withStore("running() lists what was running, and counts() every state", async (store) => {
    for (const state of TASK_STATES) await taskIn(store, state);
    await taskIn(store, "running");
    expect(store.running().length).toBe(2);
    const counts = store.counts();
    expect(Object.keys(counts).sort()).toEqual([...TASK_STATES].sort());
    for (const state of TASK_STATES) expect(counts[state]).toBe(state === "running" ? 2 : 1);
  });

  withStore("counts() follows every write: random inserts, transitions, purges, key reuse and a refused flow", async (store) => {
    // A fixed seed: a failure replays. The brute-force count pages through list() state by state.
    let seed = 20261202;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
    const counted = () => {
      const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
      for (const state of TASK_STATES) {
        let cursor: string | undefined;
        do {
          const page = store.list({ limit: 100, state, cursor });
          counts[state] += page.tasks.length;
          cursor = page.cursor;
        } while (cursor !== undefined);
      }
      return counts;
    };
    const ids: string[] = [];
    const names = Object.keys(TRANSITIONS) as TransitionName[];
    for (let step = 0; step < 400; step++) {
      const roll = random();
      if (roll < 0.3 || ids.length === 0) {
        const key = random() < 0.2 ? `key-${Math.floor(random() * 5)}` : undefined;
        const state = pick(["queued", "queued", "scheduled", "blocked"] as const);
        ids.push((await store.insert(newTask({ state, idempotencyKey: key, createdAt: 1_000 + step }))).task.id);
      } else if (roll < 0.9) {
        const finishing = { purgeAt: random() < 0.5 ? 500 + step : undefined, finishedAt: step };
        await store.transition(pick(ids), pick(names), finishing);
      } else if (roll < 0.97) {
        await store.purge(500 + step, 1 + Math.floor(random() * 5));
      } else {
        // Its last task takes an id that exists: the whole flow is refused, its other writes rolled back.
        const flow = flowOf();
        const present = ids.filter((id) => store.get(id) !== undefined);
        if (present.length === 0) continue;
        const taken = pick(present);
        flow.tasks[2] = { ...flow.tasks[2], id: taken };
        flow.links[2] = { ...flow.links[2], taskId: taken };
        await expect(store.insertFlow(flow.tasks, flow.links)).rejects.toThrow();
      }
      if (step % 50 === 49) expect(store.counts()).toEqual(counted());
    }
    expect(store.counts()).toEqual(counted());
    // A flow whose root takes over an idempotency key past its result TTL (the SQLite store deletes the old holder).
    const holder = (await store.insert(newTask({ idempotencyKey: "flow-key", createdAt: 10 }))).task;
    await store.transition(holder.id, "markRunning");
    await store.transition(holder.id, "markSucceeded", { purgeAt: 20 });
    const flow = flowOf({ idempotencyKey: "flow-key", createdAt: 30 });
    expect((await store.insertFlow(flow.tasks, flow.links)).created).toBe(true);
    expect(store.counts()).toEqual(counted());
    expect(Object.values(store.counts()).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  withStore("writes made in one turn are all readable at once and all committed together", async (store) => {
    const inserts = Array.from({ length: 500 }, () => store.insert(newTask()));
    // Before any commit resolves, reads already see every insert.
    expect(store.counts().queued).toBe(500);
    const results = await Promise.all(inserts);
    expect(new Set(results.map((r) => r.task.seq)).size).toBe(500);
  });

  // ---- schedules ----

  const schedule = (overrides: Partial<ScheduleRecord> = {}): ScheduleRecord => ({
    name: "nightly",
    cron: "0 3 * * *",
    timezone: "Europe/Berlin",
    method: "Report.generate",
    args: new TextEncoder().encode('["daily"]'),
    options: { priority: 7, retries: 2 },
    catchUp: "last",
    paused: false,
    createdAt: 1_000,
    since: 1_000,
    ...overrides,
  });

  withStore("a schedule is stored, read back field by field, and listed by name", async (store) => {
    await store.putSchedule(schedule({ name: "b-interval", cron: undefined, timezone: undefined, everyMs: 60_000, catchUp: "all" }));
    await store.putSchedule(schedule({ name: "a-cron", lastDueAt: 5_000 }));
    const cron = store.getSchedule("a-cron")!;
    expect(cron).toMatchObject({ name: "a-cron", cron: "0 3 * * *", timezone: "Europe/Berlin", method: "Report.generate" });
    expect(cron).toMatchObject({
      options: { priority: 7, retries: 2 },
      catchUp: "last",
      paused: false,
      createdAt: 1_000,
      since: 1_000,
      lastDueAt: 5_000,
    });
    expect(cron.everyMs).toBeUndefined();
    expect(new TextDecoder().decode(cron.args)).toBe('["daily"]');
    const interval = store.getSchedule("b-interval")!;
    expect(interval).toMatchObject({ everyMs: 60_000, catchUp: "all" });
    expect(interval.cron).toBeUndefined();
    expect(interval.timezone).toBeUndefined();
    expect(interval.lastDueAt).toBeUndefined();
    expect(store.listSchedules().map((s) => s.name)).toEqual(["a-cron", "b-interval"]);
    expect(store.getSchedule("missing")).toBeUndefined();
  });

  withStore("putting a schedule of a known name replaces it whole", async (store) => {
    await store.putSchedule(schedule({ lastDueAt: 9_000, paused: true }));
    await store.putSchedule(schedule({ cron: undefined, timezone: undefined, everyMs: 5_000, since: 20_000 }));
    const replaced = store.getSchedule("nightly")!;
    expect(replaced).toMatchObject({ everyMs: 5_000, since: 20_000, paused: false });
    expect(replaced.cron).toBeUndefined();
    expect(replaced.lastDueAt).toBeUndefined();
    expect(store.listSchedules()).toHaveLength(1);
  });

  withStore("updateSchedule changes only the fields given; remove deletes; both say whether the name existed", async (store) => {
    await store.putSchedule(schedule());
    expect(await store.updateSchedule("nightly", { paused: true })).toBe(true);
    expect(store.getSchedule("nightly")).toMatchObject({ paused: true, since: 1_000 });
    expect(await store.updateSchedule("nightly", { paused: false, since: 7_000, lastDueAt: 6_000 })).toBe(true);
    expect(store.getSchedule("nightly")).toMatchObject({ paused: false, since: 7_000, lastDueAt: 6_000, cron: "0 3 * * *" });
    expect(await store.updateSchedule("missing", { paused: true })).toBe(false);
    expect(await store.removeSchedule("nightly")).toBe(true);
    expect(await store.removeSchedule("nightly")).toBe(false);
    expect(store.getSchedule("nightly")).toBeUndefined();
  });

  withStore("a fired task keeps its schedule and due time; its idempotency key gives it back instead of a second one", async (store) => {
    const origin = { name: "nightly", dueAt: 1_700_000_000_000 };
    const first = await store.insert(newTask({ schedule: origin, idempotencyKey: "schedule:nightly:1700000000000" }));
    expect(first.created).toBe(true);
    expect(store.get(first.task.id)?.schedule).toEqual(origin);
    const again = await store.insert(newTask({ schedule: origin, idempotencyKey: "schedule:nightly:1700000000000" }));
    expect(again.created).toBe(false);
    expect(again.task.id).toBe(first.task.id);
    expect(store.get((await store.insert(newTask())).task.id)?.schedule).toBeUndefined();
  });

  // ---- flows ----

  /** A chain of two task steps under a root, all blocked, as the flow planner stores them. */
  const flowOf = (rootOverrides: Partial<NewTask> = {}) => {
    const root = newTask({ method: "chain", state: "blocked", ...rootOverrides });
    const a = newTask({ state: "blocked", flowId: root.id });
    const b = newTask({ state: "blocked", flowId: root.id });
    root.flowId = root.id;
    const links: FlowLink[] = [
      { taskId: root.id, flowId: root.id, position: 0, role: "step", kind: "chain" },
      { taskId: a.id, flowId: root.id, parentId: root.id, position: 0, role: "step", kind: "task", release: { expiresMs: 500 } },
      { taskId: b.id, flowId: root.id, parentId: root.id, position: 1, role: "step", kind: "task", immutable: true },
    ];
    return { tasks: [root, a, b], links, ids: [root.id, a.id, b.id] };
  };

  withStore(
    "insertFlow stores every task and link at once; flowLinks gives them parents first with states; openFlows lists the flow",
    async (store) => {
      const flow = flowOf();
      const { root, created } = await store.insertFlow(flow.tasks, flow.links);
      expect(created).toBe(true);
      expect(root).toMatchObject({ id: flow.ids[0], state: "blocked", flowId: flow.ids[0], method: "chain" });
      for (const id of flow.ids) expect(store.get(id)).toMatchObject({ state: "blocked", flowId: flow.ids[0] });
      const links = store.flowLinks(flow.ids[0]);
      expect(links.map((link) => link.taskId)).toEqual(flow.ids);
      expect(links[1]).toMatchObject({
        parentId: flow.ids[0],
        position: 0,
        kind: "task",
        state: "blocked",
        method: "Svc.work",
        release: { expiresMs: 500 },
      });
      expect(links[2]).toMatchObject({ position: 1, immutable: true });
      expect(links[0].parentId).toBeUndefined();
      expect(store.openFlows()).toEqual([flow.ids[0]]);
      // Blocked tasks are neither queued, due, expiring nor running.
      expect(store.queued("Svc.work", 10)).toEqual([]);
      expect(store.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
      expect(store.expiring(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
      expect(store.counts().blocked).toBe(3);
    },
  );

  withStore("a flow whose root's idempotency key is held stores nothing and returns that task", async (store) => {
    const first = flowOf({ idempotencyKey: "flow-key" });
    await store.insertFlow(first.tasks, first.links);
    const second = flowOf({ idempotencyKey: "flow-key" });
    const again = await store.insertFlow(second.tasks, second.links);
    expect(again).toMatchObject({ created: false, root: { id: first.ids[0] } });
    for (const id of second.ids) expect(store.get(id)).toBeUndefined();
    expect(store.flowLinks(second.ids[0])).toEqual([]);
  });

  withStore("a flow that cannot be stored whole leaves nothing behind", async (store) => {
    const taken = await store.insert(newTask());
    const flow = flowOf();
    // The last task reuses an id that exists: the whole flow is refused.
    flow.tasks[2] = { ...flow.tasks[2], id: taken.task.id };
    flow.links[2] = { ...flow.links[2], taskId: taken.task.id };
    await expect(store.insertFlow(flow.tasks, flow.links)).rejects.toThrow();
    expect(store.get(flow.ids[0])).toBeUndefined();
    expect(store.get(flow.ids[1])).toBeUndefined();
    expect(store.flowLinks(flow.ids[0])).toEqual([]);
    expect(store.get(taken.task.id)?.flowId).toBeUndefined();
  });

  withStore("a step is released once (blocked → queued with its arguments and expiry), and a container joins once", async (store) => {
    const flow = flowOf();
    await store.insertFlow(flow.tasks, flow.links);
    const args = new TextEncoder().encode('[7,"x"]');
    expect(await store.transition(flow.ids[1], "markReleased", { args, runAt: 5, expiresAt: 505 })).toBe(true);
    expect(await store.transition(flow.ids[1], "markReleased", { args: new Uint8Array([91, 93]) })).toBe(false);
    const released = store.get(flow.ids[1])!;
    expect(released).toMatchObject({ state: "queued", runAt: 5, expiresAt: 505 });
    expect(new TextDecoder().decode(released.args)).toBe('[7,"x"]');
    expect(store.queued("Svc.work", 10).map((task) => task.id)).toEqual([flow.ids[1]]);
    expect(await store.transition(flow.ids[2], "markReleasedLater", { runAt: 9_000 })).toBe(true);
    expect(store.due(9_000, 10).map((task) => task.id)).toEqual([flow.ids[2]]);
    const result = new TextEncoder().encode("[1,2]");
    expect(await store.transition(flow.ids[0], "markJoined", { result, finishedAt: 10 })).toBe(true);
    expect(await store.transition(flow.ids[0], "markJoined", { result })).toBe(false);
    expect(store.get(flow.ids[0])?.state).toBe("succeeded");
    expect(store.flowLinks(flow.ids[0])[0].state).toBe("succeeded");
  });

  withStore("purge keeps a finished step while its flow's root is open, and drops it with its link after", async (store) => {
    const flow = flowOf();
    await store.insertFlow(flow.tasks, flow.links);
    await store.transition(flow.ids[1], "markRevoked", { purgeAt: 1_000 });
    expect(await store.purge(5_000, 10)).toBe(0);
    expect(store.get(flow.ids[1])?.state).toBe("revoked");
    await store.transition(flow.ids[2], "markRevoked", { purgeAt: 1_000 });
    await store.transition(flow.ids[0], "markRevoked", { purgeAt: 1_000 });
    expect(store.openFlows()).toEqual([]);
    expect(await store.purge(5_000, 10)).toBe(3);
    expect(store.flowLinks(flow.ids[0])).toEqual([]);
  });
}
