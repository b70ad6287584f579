/**
 * TaskManager's keys without sockets: a fake TaskHost (slots, a method rate it controls, attempts
 * the test ends) and a MemoryTaskStore. Parked tasks keep their order, leave when revoked or
 * expired, and a method over its rate holds its queue at the head.
 *
 *   ./node_modules/.bin/bun test test/unit/task-limits.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { MemoryTaskStore } from "../../src/store/memory-store.ts";
import type { AttemptRequest, AttemptSink, TaskHost } from "../../src/tasks/host.ts";
import { TaskManager } from "../../src/tasks/task-manager.ts";
import type { TaskOptions } from "../../src/tasks/task-options.ts";
import { silentLogger } from "../../src/util/log.ts";
import { waitFor } from "../helpers/wait.ts";

const STEP_MS = 5_000;
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const labelOf = (request: AttemptRequest) => JSON.parse(new TextDecoder().decode(request.args))[0] as string;

class Host implements TaskHost {
  slots = 10;
  /** ms the method must wait for its next rate token; 0: a token is there. */
  rateWaitMs = 0;
  tokensTaken = 0;
  readonly attempts: { request: AttemptRequest; sink: AttemptSink; done: boolean }[] = [];
  private capacity: (method: string) => void = () => {};

  method() {
    return { stream: false, taskDefaults: {} };
  }
  freeSlots(): number {
    return this.slots - this.attempts.filter((a) => !a.done).length;
  }
  takeRateToken(): number {
    if (this.rateWaitMs > 0) return this.rateWaitMs;
    this.tokensTaken++;
    return 0;
  }
  startAttempt(request: AttemptRequest, sink: AttemptSink) {
    this.attempts.push({ request, sink, done: false });
    return { cancel() {}, terminate() {} };
  }
  onCapacity(listener: ((method: string) => void) | undefined): void {
    this.capacity = listener ?? (() => {});
  }
  finish(label: string): void {
    const attempt = this.attempts.find((a) => labelOf(a.request) === label && !a.done);
    if (!attempt) throw new Error(`no running attempt ${label}`);
    attempt.done = true;
    attempt.sink.result(encode(label));
    this.capacity(attempt.request.method);
  }
  started(): string[] {
    return this.attempts.map((a) => labelOf(a.request));
  }
}

const managers: TaskManager[] = [];
afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.stop();
});

async function setup() {
  const host = new Host();
  const manager = new TaskManager({ store: new MemoryTaskStore(), host, logger: silentLogger });
  managers.push(manager);
  await manager.start();
  const submit = (label: string, options: TaskOptions = {}, method = "Svc.work") => manager.submit(method, encode([label]), options);
  return { host, manager, submit };
}

describe("TaskManager keys", () => {
  test("a full concurrency key parks its tasks in order; they start as the key frees", async () => {
    const { host, submit } = await setup();
    const key = { concurrencyKey: "t1", concurrencyLimit: 1 };
    await submit("a1", key);
    await submit("a2", { ...key, priority: 5 });
    await submit("a3", { ...key, priority: 9 });
    await submit("b1", { concurrencyKey: "t2" });
    await waitFor(() => host.started().length === 2, { timeoutMs: STEP_MS, message: "a1 and b1 to start" });
    expect(host.started()).toEqual(["a1", "b1"]);
    host.finish("a1");
    await waitFor(() => host.started().length === 3, { timeoutMs: STEP_MS, message: "the next of t1 to start" });
    // Priority still orders the parked tasks of one key.
    expect(host.started()[2]).toBe("a3");
    host.finish("a3");
    await waitFor(() => host.started().length === 4, { timeoutMs: STEP_MS, message: "a2 to start" });
    expect(host.started()[3]).toBe("a2");
  });

  test("a parked task that is revoked or expires leaves the line; the next one starts", async () => {
    const { host, manager, submit } = await setup();
    const key = { concurrencyKey: "t1" };
    await submit("first", key);
    const revoked = await submit("revoked", key);
    const expiring = await submit("expiring", { ...key, expiresMs: 50 });
    await submit("last", key);
    await waitFor(() => host.started().length === 1, { timeoutMs: STEP_MS, message: "the first to start" });
    await manager.revoke(revoked.id);
    await waitFor(() => manager.get(expiring.id).state === "expired", { timeoutMs: STEP_MS, message: "the parked task to expire" });
    expect(manager.stats().parked).toBe(1);
    host.finish("first");
    await waitFor(() => host.started().length === 2, { timeoutMs: STEP_MS, message: "the last to start" });
    expect(host.started()).toEqual(["first", "last"]);
    expect(manager.stats().parked).toBe(0);
  });

  test("a method over its rate holds the queue at its head and starts it when a token is due", async () => {
    const { host, manager, submit } = await setup();
    host.rateWaitMs = 30;
    const first = await submit("first");
    await submit("second", { priority: 0 });
    expect(manager.get(first.id).state).toBe("queued");
    expect(host.started()).toEqual([]);
    host.rateWaitMs = 0;
    await waitFor(() => host.started().length === 2, { timeoutMs: STEP_MS, message: "both to start once tokens come" });
    expect(host.started()).toEqual(["first", "second"]);
    expect(host.tokensTaken).toBe(2);
  });

  test("a rate key out of tokens parks its tasks and lets other keys go", async () => {
    const { host, submit } = await setup();
    await submit("x1", { rateKey: "x", rateKeyLimit: "1/h" });
    await submit("x2", { rateKey: "x", rateKeyLimit: "1/h" });
    await submit("y1", { rateKey: "y", rateKeyLimit: "1/h" });
    await waitFor(() => host.started().length === 2, { timeoutMs: STEP_MS, message: "x1 and y1 to start" });
    expect(host.started()).toEqual(["x1", "y1"]);
  });

  test("a concurrency key holds across methods: a task of another method waits for it too, and starts when it frees", async () => {
    const { host, submit } = await setup();
    await submit("report", { concurrencyKey: "tenant-7" }, "Svc.report");
    await submit("export", { concurrencyKey: "tenant-7" }, "Svc.export");
    await submit("other", {}, "Svc.export");
    await waitFor(() => host.started().length === 2, { timeoutMs: STEP_MS, message: "report and the unkeyed task to start" });
    expect(host.started()).toEqual(["report", "other"]);
    host.finish("report");
    await waitFor(() => host.started().length === 3, { timeoutMs: STEP_MS, message: "the other method's task of the key to start" });
    expect(host.started()[2]).toBe("export");
  });
});
