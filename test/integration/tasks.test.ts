/**
 * Background tasks through real sockets: a router with the memory store and with a SQLite file,
 * real dealers, a real client. Submit and wait, progress seen by watchTask, priorities under a
 * single busy dealer, retries, revoke of queued and running tasks, countdown, expiry, time limits,
 * idempotency keys, typed errors, and tasks that survive a router restart on the same file.
 *
 *   ./node_modules/.bin/bun test test/integration/tasks.test.ts
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CallContext,
  CancelledError,
  ClientDealer,
  RemoteError,
  ServiceDealer,
  ServiceRouter,
  serviceMethod,
  silentLogger,
  TaskNotFoundError,
  TimeoutError,
  ValidationError,
  NoSuchMethodError,
} from "../../src/index.ts";
import { CrashService, Gate } from "../fixtures/services.ts";
import { Cluster } from "../helpers/cluster.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const STEP_MS = 10_000;
const dir = mkdtempSync(join(tmpdir(), "voidrail-tasks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** What the task fixtures record, shared by every instance of a test. */
class Journal {
  readonly started: string[] = [];
  readonly aborted: string[] = [];
  failuresLeft = 0;
  readonly attemptTimes: number[] = [];
  gate = new Gate();
}
let journal = new Journal();

class Jobs extends ServiceDealer {
  @serviceMethod
  add(a: number, b: number) {
    return a + b;
  }

  /** Records its label, then waits for the journal's gate. */
  @serviceMethod({ context: true })
  async hold(label: string, context: CallContext) {
    journal.started.push(label);
    context.signal.addEventListener("abort", () => journal.aborted.push(label), { once: true });
    await Promise.race([journal.gate.opened, new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }))]);
    if (context.signal.aborted) throw context.signal.reason;
    return label;
  }

  @serviceMethod({ context: true })
  async steps(n: number, context: CallContext) {
    for (let i = 1; i <= n; i++) {
      context.progress({ current: i, total: n });
      await journal.gate.opened;
    }
    return { done: n, taskId: context.taskId, attempt: context.attempt };
  }

  /** Fails with a RangeError while the journal says so, then succeeds. */
  @serviceMethod({ context: true })
  flaky(context: CallContext) {
    if (journal.failuresLeft > 0) {
      journal.failuresLeft--;
      throw new RangeError(`attempt ${context.attempt} failed`);
    }
    return `ok on attempt ${context.attempt}`;
  }

  @serviceMethod({ task: { retries: 2, retryDelay: 0.01 }, context: true })
  withDefaults(context: CallContext) {
    if (journal.failuresLeft > 0) {
      journal.failuresLeft--;
      throw new Error("not yet");
    }
    return context.attempt;
  }

  /** Fails while the journal says so, noting when each attempt started. */
  @serviceMethod({ context: true })
  timed(context: CallContext) {
    journal.attemptTimes.push(Date.now());
    if (journal.failuresLeft > 0) {
      journal.failuresLeft--;
      throw new Error(`attempt ${context.attempt} failed`);
    }
    return context.attempt;
  }

  @serviceMethod
  async *numbers() {
    yield 1;
  }
}

for (const store of ["memory", "sqlite"] as const) {
  describe(`tasks with the ${store} store`, () => {
    const cluster = new Cluster("tcp");
    afterEach(async () => {
      journal.gate.open();
      await cluster.dispose();
      journal = new Journal();
    });

    const taskStore = () => (store === "memory" ? "memory" : join(dir, `tasks-${++files}.db`));

    async function setup(maxConcurrent = 1) {
      await cluster.router({ taskStore: taskStore() });
      const jobs = await cluster.dealer((options) => new Jobs({ ...options, maxConcurrent }));
      const client = await cluster.client();
      return { jobs, client };
    }

    test("submit answers a task id at once; waitTask gives the result and getTask the record", async () => {
      const { client } = await setup();
      const task = await client.submit("Jobs.add", [2, 3]);
      expect(task.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
      expect(["queued", "running", "succeeded"]).toContain(task.state);
      expect(await client.waitTask(task.id, { timeout: 10 })).toBe(5);
      const record = await client.getTask(task.id);
      expect(record).toMatchObject({ id: task.id, method: "Jobs.add", state: "succeeded", result: 5, attempts: 1, priority: 5 });
      expect(Date.parse(record.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(record.createdAt));
      expect(await client.getTaskStatus(task.id)).toMatchObject({ state: "succeeded" });
    });

    test("progress is stored and watchTask streams it, ending at the final state", async () => {
      const { client } = await setup();
      const task = await client.submit("Jobs.steps", [3]);
      const events: { state: string; progress?: unknown }[] = [];
      const watching = (async () => {
        for await (const event of client.watchTask(task.id)) {
          events.push(event);
          if (event.progress !== undefined) journal.gate.open();
        }
      })();
      await waitFor(watching, { timeoutMs: STEP_MS, message: "the watch to end" });
      expect(events.at(-1)?.state).toBe("succeeded");
      expect(events.some((e) => (e.progress as { current?: number } | undefined)?.current !== undefined)).toBe(true);
      const record = await client.getTask(task.id);
      expect(record.progress).toEqual({ current: 3, total: 3 });
      expect(record.result).toEqual({ done: 3, taskId: task.id, attempt: 1 });
    });

    test("a single busy dealer runs waiting tasks by priority, FIFO among equals", async () => {
      const { client } = await setup(1);
      const first = await client.submit("Jobs.hold", ["first"]);
      await waitFor(() => journal.started.length === 1, { timeoutMs: STEP_MS, message: "the first task to start" });
      const ids: string[] = [];
      for (const [label, priority] of [
        ["low", 1],
        ["mid-a", 5],
        ["high", 9],
        ["mid-b", 5],
      ] as const) {
        ids.push((await client.submit("Jobs.hold", [label], { priority })).id);
      }
      journal.gate.open();
      for (const id of [first.id, ...ids]) await client.waitTask(id, { timeout: 10 });
      expect(journal.started).toEqual(["first", "high", "mid-a", "mid-b", "low"]);
    });

    test("retries: a failure named by retryOn is retried until it succeeds; attempts are counted", async () => {
      const { client } = await setup();
      journal.failuresLeft = 2;
      const task = await client.submit("Jobs.flaky", [], { retries: 3, retryDelay: 0.01, retryOn: ["RangeError"] });
      expect(await client.waitTask(task.id, { timeout: 10 })).toBe("ok on attempt 3");
      expect(await client.getTask(task.id)).toMatchObject({ state: "succeeded", attempts: 3 });
    });

    test("exponential backoff: each retry waits its doubled delay, within the ±20 % jitter", async () => {
      const { client } = await setup();
      journal.failuresLeft = 2;
      const task = await client.submit("Jobs.timed", [], { retries: 2, retryDelay: 0.2, backoff: "exponential" });
      expect(await client.waitTask(task.id, { timeout: 10 })).toBe(3);
      const [first, second, third] = journal.attemptTimes;
      // Never earlier than the jitter allows (a timer may fire 1 ms early); later only by the machine's load.
      expect(second - first).toBeGreaterThanOrEqual(0.8 * 200 - 2);
      expect(third - second).toBeGreaterThanOrEqual(0.8 * 400 - 2);
    });

    test("a failure retryOn does not name fails the task at once with the method's error", async () => {
      const { client } = await setup();
      journal.failuresLeft = 5;
      const task = await client.submit("Jobs.flaky", [], { retries: 3, retryOn: ["TimeoutError"] });
      const error = await client.waitTask(task.id, { timeout: 10 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as RemoteError).remote?.name).toBe("RangeError");
      expect(await client.getTask(task.id)).toMatchObject({ state: "failed", attempts: 1, error: { code: "REMOTE_ERROR" } });
    });

    test("per-method task defaults apply: @serviceMethod({ task: { retries } })", async () => {
      const { client } = await setup();
      journal.failuresLeft = 2;
      const task = await client.submit("Jobs.withDefaults", []);
      expect(await client.waitTask(task.id, { timeout: 10 })).toBe(3);
    });

    test("revoke: a queued task never runs; a running one sees its AbortSignal and ends revoked", async () => {
      const { client } = await setup(1);
      const running = await client.submit("Jobs.hold", ["running"]);
      await waitFor(() => journal.started.length === 1, { timeoutMs: STEP_MS, message: "the task to start" });
      const queued = await client.submit("Jobs.hold", ["queued"]);
      expect((await client.revokeTask(queued.id)).state).toBe("revoked");
      expect((await client.revokeTask(running.id)).state).toBe("revoked");
      await waitFor(() => journal.aborted.includes("running"), { timeoutMs: STEP_MS, message: "the running method's signal" });
      const error = await client.waitTask(running.id, { timeout: 10 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CancelledError);
      // The dealer is free again, and the revoked queued task never started.
      expect(await client.waitTask((await client.submit("Jobs.add", [1, 1])).id, { timeout: 10 })).toBe(2);
      expect(journal.started).toEqual(["running"]);
    });

    test("countdown holds a task as scheduled until it is due", async () => {
      const { client } = await setup();
      const task = await client.submit("Jobs.add", [1, 2], { countdown: 0.3 });
      expect(task.state).toBe("scheduled");
      expect(Date.parse(task.runAt) - Date.parse(task.createdAt)).toBe(300);
      expect(await client.waitTask(task.id, { timeout: 10 })).toBe(3);
      const record = await client.getTask(task.id);
      expect(Date.parse(record.startedAt!)).toBeGreaterThanOrEqual(Date.parse(task.runAt));
    });

    test("eta (a Date or an ISO string) holds a task until then", async () => {
      const { client } = await setup();
      const at = new Date(Date.now() + 300);
      const byDate = await client.submit("Jobs.add", [2, 2], { eta: at });
      const byText = await client.submit("Jobs.add", [3, 3], { eta: at.toISOString() });
      expect([byDate.state, byText.state]).toEqual(["scheduled", "scheduled"]);
      expect(Date.parse(byDate.runAt)).toBe(at.getTime());
      expect(await client.waitTask(byDate.id, { timeout: 10 })).toBe(4);
      expect(await client.waitTask(byText.id, { timeout: 10 })).toBe(6);
      expect(Date.parse((await client.getTask(byText.id)).startedAt!)).toBeGreaterThanOrEqual(at.getTime());
    });

    test("expires ends a task that could not start in time; timeLimit cancels a slow attempt with TimeoutError", async () => {
      const { client } = await setup(1);
      await client.submit("Jobs.hold", ["blocker"]);
      await waitFor(() => journal.started.length === 1, { timeoutMs: STEP_MS, message: "the blocker to start" });
      const doomed = await client.submit("Jobs.add", [1, 1], { expires: 0.2 });
      const expired = await client.waitTask(doomed.id, { timeout: 10 }).catch((e: unknown) => e);
      expect(expired).toBeInstanceOf(TimeoutError);
      expect((await client.getTask(doomed.id)).state).toBe("expired");
      journal.gate.open();
      journal = Object.assign(new Journal(), { started: journal.started });
      const slow = await client.submit("Jobs.hold", ["slow"], { timeLimit: 0.2 });
      const timedOut = await client.waitTask(slow.id, { timeout: 10 }).catch((e: unknown) => e);
      expect(timedOut).toBeInstanceOf(TimeoutError);
      expect(await client.getTask(slow.id)).toMatchObject({ state: "failed", error: { code: "TIMEOUT" } });
    });

    test("an idempotency key gives the same task, not a second run", async () => {
      const { client } = await setup();
      const a = await client.submit("Jobs.add", [4, 4], { idempotencyKey: "order-42" });
      const b = await client.submit("Jobs.add", [4, 4], { idempotencyKey: "order-42" });
      expect(b.id).toBe(a.id);
      expect(await client.waitTask(a.id, { timeout: 10 })).toBe(8);
      const page = await client.listTasks({ method: "Jobs.add" });
      expect(page.tasks.map((t) => t.id)).toEqual([a.id]);
    });

    test("bad input: unknown ids, methods, streaming methods and options are typed errors; nothing is stored", async () => {
      const { client } = await setup();
      await expect(client.getTask("0190a5f0-0000-7000-8000-000000000000")).rejects.toBeInstanceOf(TaskNotFoundError);
      await expect(client.getTask("not-an-id")).rejects.toBeInstanceOf(ValidationError);
      await expect(client.submit("Nope.x", [])).rejects.toBeInstanceOf(NoSuchMethodError);
      await expect(client.submit("Jobs.numbers", [])).rejects.toBeInstanceOf(ValidationError);
      for (const options of [
        { priority: 12 },
        { countdown: -1 },
        { backoff: "sometimes" },
        { eta: "2001-01-01T00:00:00Z" },
        { colour: "red" },
      ]) {
        const error = await client.submit("Jobs.add", [1, 2], options as never).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
      }
      expect((await client.listTasks()).tasks).toEqual([]);
      const waited = await client.submit("Later.job", [], { waitForDealer: true });
      expect(waited.state).toBe("queued");
    });

    test("listTasks pages newest first and filters by state", async () => {
      const { client } = await setup();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await client.submit("Jobs.add", [i, i])).id);
      for (const id of ids) await client.waitTask(id, { timeout: 10 });
      const first = await client.listTasks({ limit: 2 });
      expect(first.tasks.map((t) => t.id)).toEqual([ids[4], ids[3]]);
      const second = await client.listTasks({ limit: 10, cursor: first.cursor });
      expect(second.tasks.map((t) => t.id)).toEqual([ids[2], ids[1], ids[0]]);
      expect((await client.listTasks({ state: "succeeded" })).tasks.length).toBe(5);
      expect((await client.listTasks({ state: "failed" })).tasks.length).toBe(0);
    });

    test("waitTask gives up with TimeoutError after its timeout and the task goes on", async () => {
      const { client } = await setup();
      const task = await client.submit("Jobs.hold", ["long"]);
      await expect(client.waitTask(task.id, { timeout: 0.2 })).rejects.toBeInstanceOf(TimeoutError);
      journal.gate.open();
      expect(await client.waitTask(task.id, { timeout: 10 })).toBe("long");
    });
  });
}

describe("tasks on a SQLite file across a router restart", () => {
  test("tasks queued before a stop run after a start on the same file; finished ones keep their results", async () => {
    const path = join(dir, `restart-${++files}.db`);
    const address = uniqueEndpoint("ipc");
    const first = new ServiceRouter({ address, taskStore: path, logger: silentLogger });
    await first.start();
    const client = new ClientDealer({ routerAddress: address, logger: silentLogger, timeout: 10 });
    const dealer = new Jobs({ routerAddress: address, logger: silentLogger });
    await dealer.start();
    const done = await client.submit("Jobs.add", [20, 22]);
    expect(await client.waitTask(done.id)).toBe(42);
    await dealer.stop();
    const waiting = [];
    for (let i = 0; i < 20; i++) waiting.push((await client.submit("Jobs.add", [i, 1], { waitForDealer: true })).id);
    await client.close();
    await first.stop();

    const second = new ServiceRouter({ address, taskStore: path, logger: silentLogger });
    await second.start();
    const again = new Jobs({ routerAddress: address, logger: silentLogger });
    await again.start();
    const client2 = new ClientDealer({ routerAddress: address, logger: silentLogger, timeout: 10 });
    try {
      expect(await client2.getTask(done.id)).toMatchObject({ state: "succeeded", result: 42, attempts: 1 });
      const results = await Promise.all(waiting.map((id) => client2.waitTask(id)));
      expect(results).toEqual(waiting.map((_, i) => i + 1));
      for (const id of waiting) expect((await client2.getTask(id)).attempts).toBe(1);
    } finally {
      await client2.close();
      await again.stop();
      await second.stop();
    }
  });
});

describe("tasks and failures around them", () => {
  const cluster = new Cluster("ipc");
  afterEach(() => cluster.dispose());

  test("a dealer killed with SIGKILL mid-task: the next attempt runs on another dealer; attempts are counted", async () => {
    await cluster.router({ taskStore: join(dir, `lost-${++files}.db`) });
    const child = await cluster.spawnDealer("CrashService");
    const client = await cluster.client();
    const task = await client.submit("CrashService.slow", ["t1"]);
    await child.event((event) => event.event === "started" && event.tag === "t1", STEP_MS, "the attempt to start in the child");
    expect((await client.getTask(task.id)).state).toBe("running");
    child.kill("SIGKILL");
    await cluster.dealer((options) => new CrashService(options));
    expect(await client.waitTask(task.id, { timeout: 10 })).toEqual({ tag: "t1", pid: process.pid });
    expect(await client.getTask(task.id)).toMatchObject({ state: "succeeded", attempts: 2, lostAttempts: 1 });
  });

  test("finished tasks are purged after their result TTL, continuously, and their id is then unknown", async () => {
    await cluster.router({ taskStore: "memory", taskPurgeInterval: 0.05 });
    await cluster.dealer((options) => new Jobs(options));
    const client = await cluster.client();
    const short = await client.submit("Jobs.add", [1, 2], { resultTtl: 0.2 });
    const long = await client.submit("Jobs.add", [3, 4]);
    expect(await client.waitTask(short.id)).toBe(3);
    expect(await client.waitTask(long.id)).toBe(7);
    await waitFor(
      async () =>
        (await client.getTask(short.id).then(
          () => false,
          (error) => error instanceof TaskNotFoundError,
        )) === true,
      { timeoutMs: STEP_MS, message: "the short-lived task to be purged" },
    );
    expect(await client.getTask(long.id)).toMatchObject({ state: "succeeded", result: 7 });
  });
});

describe("revoke with terminate", () => {
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());

  test("a method that never yields: its process is ended, the task ends revoked, the router serves on", { timeout: 30_000 }, async () => {
    await cluster.router({ taskStore: "memory" });
    const spinner = await cluster.spawnDealer("SpinService");
    const client = await cluster.client();
    const task = await client.submit("SpinService.spin", ["forever"]);
    await spinner.event((event) => event.event === "started" && event.tag === "forever", STEP_MS, "the spin to start");
    expect((await client.revokeTask(task.id, { terminate: true })).state).toBe("revoked");
    // The grace (1 s) for its signal, then TERMINATE through its heartbeat thread: killed by a signal.
    expect(await waitFor(spinner.exited, { timeoutMs: STEP_MS, message: "the spinning dealer's process to end" })).toBeNull();
    expect(await client.getTask(task.id)).toMatchObject({ state: "revoked", error: { code: "CANCELLED" } });
    await cluster.dealer((options) => new Jobs(options));
    expect(await client.waitTask((await client.submit("Jobs.add", [2, 2])).id, { timeout: 10 })).toBe(4);
  });
});

describe("results too big for the router", () => {
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());

  class Big extends ServiceDealer {
    @serviceMethod
    blob(bytes: number) {
      return "x".repeat(bytes);
    }
  }

  test("a result over the router's maxMessageSize fails that call and task with a clear error; the dealer stays", async () => {
    await cluster.router({ taskStore: "memory", maxMessageSize: 256 * 1024 });
    const big = await cluster.dealer((options) => new Big(options));
    const client = await cluster.client();
    const error = await client.call("Big.blob", [512 * 1024]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain("more than the router accepts in one message (262144 bytes)");
    const task = await client.submit("Big.blob", [512 * 1024], { retries: 2 });
    const failed = await client.waitTask(task.id, { timeout: 10 }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ValidationError);
    expect(await client.getTask(task.id)).toMatchObject({
      state: "failed",
      attempts: 1,
      error: { code: "VALIDATION_ERROR", data: { path: "result" } },
    });
    // The same dealer, still registered, answers what fits.
    expect((await client.invoke<string>("Big.blob", 10)).length).toBe(10);
    expect((await client.discoverClusters()).map((d) => d.id)).toEqual([big.dealerId!]);
  });
});
