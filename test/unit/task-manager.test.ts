/**
 * TaskManager without sockets: a fake TaskHost stands for the router (methods, free slots,
 * attempts it hands back to the test) and a MemoryTaskStore for the store. Waits are on the
 * manager's own events, with deadlines.
 *
 *   ./node_modules/.bin/bun test test/unit/task-manager.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { NoSuchMethodError, TaskNotFoundError, TimeoutError, type WireError } from "../../src/protocol/index.ts";
import { silentLogger } from "../../src/util/log.ts";
import { MemoryTaskStore } from "../../src/store/memory-store.ts";
import type { TaskState } from "../../src/store/task-states.ts";
import type { AttemptRequest, AttemptSink, TaskHost } from "../../src/tasks/host.ts";
import { TaskManager } from "../../src/tasks/task-manager.ts";
import type { TaskOptions } from "../../src/tasks/task-options.ts";
import { waitFor } from "../helpers/wait.ts";

const STEP_MS = 5_000;
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : JSON.parse(new TextDecoder().decode(bytes)));

interface FakeAttempt {
  request: AttemptRequest;
  sink: AttemptSink;
  cancelled: boolean;
  /** The grace a revoke with terminate gave, if one did. */
  terminatedAfterMs?: number;
}

class FakeHost implements TaskHost {
  readonly methods = new Map<string, TaskOptions>();
  readonly slots = new Map<string, number>();
  readonly attempts: FakeAttempt[] = [];
  private capacity: (method: string) => void = () => {};

  method(method: string) {
    const defaults = this.methods.get(method);
    return defaults === undefined ? undefined : { stream: false, taskDefaults: defaults };
  }

  freeSlots(method: string): number {
    const running = this.attempts.filter((a) => a.request.method === method && !a.cancelled && !(a as { done?: boolean }).done).length;
    return Math.max(0, (this.slots.get(method) ?? 0) - running);
  }

  takeRateToken(): number {
    return 0;
  }

  startAttempt(request: AttemptRequest, sink: AttemptSink) {
    const attempt: FakeAttempt & { done?: boolean } = { request, sink, cancelled: false };
    this.attempts.push(attempt);
    return {
      cancel: () => {
        attempt.cancelled = true;
      },
      terminate: (graceMs: number) => {
        attempt.cancelled = true;
        attempt.terminatedAfterMs = graceMs;
      },
    };
  }

  onCapacity(listener: ((method: string) => void) | undefined): void {
    this.capacity = listener ?? (() => {});
    this.listening = listener !== undefined;
  }

  /** Whether the manager listens for free slots now (only while it has queued tasks). */
  listening = false;

  /** The dealer answers attempt `index`, its slot frees, and the router says so. */
  finish(index: number, outcome: { result: unknown } | { error: WireError; lost?: boolean }): void {
    const attempt = this.attempts[index] as FakeAttempt & { done?: boolean };
    attempt.done = true;
    if ("result" in outcome) attempt.sink.result(encode(outcome.result));
    else attempt.sink.error(outcome.error, outcome.lost ?? false);
    this.capacity(attempt.request.method);
  }

  open(method: string, slots: number): void {
    this.slots.set(method, slots);
    this.capacity(method);
  }
}

const managers: TaskManager[] = [];
afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.stop();
});

function setup(options: { windowSize?: number; slots?: number; defaults?: TaskOptions } = {}) {
  const host = new FakeHost();
  host.methods.set("Img.resize", options.defaults ?? {});
  host.slots.set("Img.resize", options.slots ?? 1);
  const store = new MemoryTaskStore();
  const manager = new TaskManager({ store, host, logger: silentLogger, windowSize: options.windowSize, random: () => 0.5 });
  managers.push(manager);
  return { host, store, manager };
}

async function stateOf(manager: TaskManager, id: string, state: TaskState): Promise<void> {
  await waitFor(() => manager.get(id).state === state, { timeoutMs: STEP_MS, message: `task ${id} to be ${state}` });
}

describe("TaskManager", () => {
  test("runs queued tasks by priority, FIFO among equals, one per free slot", async () => {
    const { host, manager } = setup({ slots: 1 });
    await manager.start();
    const first = await manager.submit("Img.resize", encode(["busy"]), {});
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the first task to start" });
    const ids: Record<string, string> = {};
    for (const [label, priority] of [
      ["low", 1],
      ["mid-a", 5],
      ["high", 9],
      ["mid-b", 5],
    ] as const) {
      ids[label] = (await manager.submit("Img.resize", encode([label]), { priority })).id;
    }
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      host.finish(i, { result: i });
      await waitFor(() => host.attempts.length === i + 2, { timeoutMs: STEP_MS, message: `attempt ${i + 2} to start` });
      order.push(decode(host.attempts[i + 1].request.args)[0]);
    }
    expect(order).toEqual(["high", "mid-a", "mid-b", "low"]);
    expect(manager.get(first.id)).toMatchObject({ state: "succeeded", attempts: 1 });
    expect(decode(manager.get(first.id).result)).toBe(0);
  });

  test("an unknown method is refused at submit, unless the caller waits for a dealer", async () => {
    const { host, manager } = setup();
    await manager.start();
    await expect(manager.submit("Nope.x", encode([]), {})).rejects.toBeInstanceOf(NoSuchMethodError);
    const waiting = await manager.submit("Later.x", encode([]), {}, true);
    expect(waiting.state).toBe("queued");
    host.methods.set("Later.x", {});
    host.open("Later.x", 1);
    await waitFor(() => host.attempts.some((a) => a.request.taskId === waiting.id), { timeoutMs: STEP_MS, message: "it to start" });
    expect(() => manager.get("no-such-id")).toThrow(TaskNotFoundError);
  });

  test("a failure is retried after its backoff while retries last, then the task fails with the last error", async () => {
    const { host, manager } = setup({ defaults: { retries: 2, retryDelayMs: 20, backoff: "exponential" } });
    await manager.start();
    const task = await manager.submit("Img.resize", encode([]), {});
    const seen: TaskState[] = [];
    manager.watch(task.id, (event) => seen.push(event.state));
    const boom: WireError = { code: "REMOTE_ERROR", message: "boom", data: { name: "Error", message: "boom" } };
    for (let attempt = 1; attempt <= 3; attempt++) {
      await waitFor(() => host.attempts.length === attempt, { timeoutMs: STEP_MS, message: `attempt ${attempt}` });
      expect(host.attempts[attempt - 1].request.attempt).toBe(attempt);
      host.finish(attempt - 1, { error: boom });
    }
    await stateOf(manager, task.id, "failed");
    expect(manager.get(task.id)).toMatchObject({ attempts: 3, error: { code: "REMOTE_ERROR", message: "boom" } });
    // The first "running" may come before the watcher subscribed: compare from the first retry on.
    expect(seen.slice(seen.indexOf("retrying"))).toEqual(["retrying", "queued", "running", "retrying", "queued", "running", "failed"]);
  });

  test("retryOn: a failure it does not name fails the task at once", async () => {
    const { host, manager } = setup({ defaults: { retries: 5, retryOn: ["TimeoutError"] } });
    await manager.start();
    const task = await manager.submit("Img.resize", encode([]), {});
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the attempt" });
    host.finish(0, { error: { code: "REMOTE_ERROR", message: "x", data: { name: "RangeError" } } });
    await stateOf(manager, task.id, "failed");
    expect(manager.get(task.id).attempts).toBe(1);
  });

  test("a lost dealer gets a new attempt at once, up to lostRetries, whatever retries says", async () => {
    const { host, manager } = setup({ defaults: { retries: 0, lostRetries: 2 } });
    await manager.start();
    const task = await manager.submit("Img.resize", encode([]), {});
    const lost: WireError = { code: "DEALER_LOST", message: "gone" };
    for (let attempt = 1; attempt <= 3; attempt++) {
      await waitFor(() => host.attempts.length === attempt, { timeoutMs: STEP_MS, message: `attempt ${attempt}` });
      host.finish(attempt - 1, { error: lost, lost: true });
    }
    await stateOf(manager, task.id, "failed");
    expect(manager.get(task.id)).toMatchObject({ attempts: 3, lostAttempts: 2, error: { code: "DEALER_LOST" } });
  });

  test("revoke: a queued task never runs; a running one is cancelled and its late result ignored", async () => {
    const { host, manager } = setup({ slots: 1 });
    await manager.start();
    const running = await manager.submit("Img.resize", encode(["a"]), {});
    const queued = await manager.submit("Img.resize", encode(["b"]), {});
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the first to start" });
    expect((await manager.revoke(queued.id)).state).toBe("revoked");
    expect((await manager.revoke(running.id)).state).toBe("revoked");
    expect(host.attempts[0].cancelled).toBe(true);
    expect(host.attempts[0].terminatedAfterMs).toBeUndefined();
    host.finish(0, { result: "too late" });
    expect(manager.get(running.id)).toMatchObject({ state: "revoked", error: { code: "CANCELLED" } });
    expect(manager.get(running.id).result).toBeUndefined();
    const third = await manager.submit("Img.resize", encode(["c"]), {});
    await waitFor(() => host.attempts.length === 2, { timeoutMs: STEP_MS, message: "the next task to start" });
    expect(host.attempts[1].request.taskId).toBe(third.id);
  });

  test("countdown schedules; expires ends a task that could not start in time", async () => {
    const { host, manager } = setup({ slots: 0 });
    await manager.start();
    const later = await manager.submit("Img.resize", encode([]), { countdownMs: 30 });
    expect(later.state).toBe("scheduled");
    const doomed = await manager.submit("Img.resize", encode([]), { expiresMs: 30 });
    await stateOf(manager, later.id, "queued");
    await stateOf(manager, doomed.id, "expired");
    expect(manager.get(doomed.id).error?.code).toBe("TIMEOUT");
    host.open("Img.resize", 1);
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the scheduled task to start" });
    expect(host.attempts[0].request.taskId).toBe(later.id);
  });

  test("wait resolves at the final state, or rejects with TimeoutError while the task goes on", async () => {
    const { host, manager } = setup();
    await manager.start();
    const task = await manager.submit("Img.resize", encode([]), {});
    await expect(manager.wait(task.id, 20)).rejects.toBeInstanceOf(TimeoutError);
    const waited = manager.wait(task.id, STEP_MS);
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the attempt" });
    host.finish(0, { result: { ok: true } });
    expect((await waited).state).toBe("succeeded");
  });

  test("progress is stored and seen by watchers", async () => {
    const { host, manager } = setup();
    await manager.start();
    const task = await manager.submit("Img.resize", encode([]), {});
    const progress: unknown[] = [];
    manager.watch(task.id, (event) => event.progress !== undefined && progress.push(event.progress));
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the attempt" });
    host.attempts[0].sink.progress({ current: 1, total: 2 });
    host.attempts[0].sink.progress({ current: 2, total: 2 });
    await waitFor(() => progress.length === 2, { timeoutMs: STEP_MS, message: "two progress events" });
    expect(manager.get(task.id).progress).toEqual({ current: 2, total: 2 });
  });

  test("a backlog larger than the window is held partly in memory and still runs in order", async () => {
    const { host, manager } = setup({ slots: 0, windowSize: 4 });
    await manager.start();
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push((await manager.submit("Img.resize", encode([i]), { priority: i % 3 })).id);
    host.open("Img.resize", 30);
    await waitFor(() => host.attempts.length === 30, { timeoutMs: STEP_MS, message: "all 30 to start" });
    const priorities = host.attempts.map((a) => decode(a.request.args)[0] % 3);
    expect(priorities).toEqual([...priorities].sort((a, b) => b - a));
    expect(manager.stats().windowed).toBeLessThanOrEqual(8);
  });

  test("after a restart, attempts that were running count as lost and run again", async () => {
    const { host, store, manager } = setup();
    await manager.start();
    const task = await manager.submit("Img.resize", encode([]), {});
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the attempt" });
    // The router dies here: a new manager takes over the same store.
    const host2 = new FakeHost();
    host2.methods.set("Img.resize", {});
    host2.slots.set("Img.resize", 1);
    const again = new TaskManager({ store, host: host2, logger: silentLogger });
    await again.start();
    await waitFor(() => host2.attempts.length === 1, { timeoutMs: STEP_MS, message: "the new attempt" });
    expect(host2.attempts[0].request.attempt).toBe(2);
    host2.finish(0, { result: "done" });
    await stateOf(again, task.id, "succeeded");
    expect(again.get(task.id)).toMatchObject({ attempts: 2, lostAttempts: 1 });
  });

  test("revoke with terminate asks the host to end the attempt's process after a grace period", async () => {
    const { host, manager } = setup();
    await manager.start();
    const task = await manager.submit("Img.resize", encode([]), {});
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the attempt" });
    expect((await manager.revoke(task.id, { terminate: true })).state).toBe("revoked");
    expect(host.attempts[0].terminatedAfterMs).toBeGreaterThan(0);
  });

  test("concurrent submits: each task gets exactly one attempt, even when a load brought it in before its own offer", async () => {
    const { host, manager } = setup({ slots: 4, windowSize: 8 });
    await manager.start();
    const tasks = await Promise.all(Array.from({ length: 100 }, (_, i) => manager.submit("Img.resize", encode([i]), {})));
    for (let finished = 0; finished < 100; finished++) {
      await waitFor(() => host.attempts.length > finished, { timeoutMs: STEP_MS, message: `attempt ${finished + 1} to start` });
      host.finish(finished, { result: finished });
    }
    for (const task of tasks) await stateOf(manager, task.id, "succeeded");
    const started = host.attempts.map((a) => a.request.taskId);
    expect(new Set(started).size).toBe(100);
    expect(started.length).toBe(100);
  });

  test("it listens for free slots only while tasks are queued, so plain calls pay nothing for it", async () => {
    const { host, manager } = setup({ slots: 0 });
    await manager.start();
    expect(host.listening).toBe(false);
    const task = await manager.submit("Img.resize", encode([]), {});
    expect(host.listening).toBe(true);
    host.open("Img.resize", 1);
    await waitFor(() => host.attempts.length === 1, { timeoutMs: STEP_MS, message: "the task to start" });
    host.finish(0, { result: 1 });
    await stateOf(manager, task.id, "succeeded");
    expect(host.listening).toBe(false);
  });
});
