/**
 * Rate limits and concurrency keys through real sockets: one router, several dealers, a client.
 * Rates are checked as counts within windows (at most burst + rate x window, with one to spare
 * for a timer's rounding), never as wall-clock-tight durations.
 *
 *   ./node_modules/.bin/bun test test/integration/task-limits.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type CallContext, ServiceDealer, serviceMethod, type TaskInfo, ValidationError } from "../../src/index.ts";
import { Gate } from "../fixtures/services.ts";
import { Cluster } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

const STEP_MS = 20_000;

/** What the fixtures record, shared by every dealer of a test. */
class Journal {
  readonly starts: { label: string; at: number }[] = [];
  readonly runningByKey = new Map<string, number>();
  readonly maxByKey = new Map<string, number>();
  gate = new Gate();
}
let journal = new Journal();

class Limited extends ServiceDealer {
  /** Declares 20/s; the router may say otherwise. */
  @serviceMethod({ task: { rateLimit: "20/s" } })
  tick(label: string) {
    journal.starts.push({ label, at: Date.now() });
    return label;
  }

  @serviceMethod
  plain(label: string) {
    journal.starts.push({ label, at: Date.now() });
    return label;
  }

  /** Counts how many of `key` run at once, then waits for the gate. */
  @serviceMethod({ context: true })
  async keyed(key: string, label: string, _context: CallContext) {
    journal.starts.push({ label, at: Date.now() });
    const now = (journal.runningByKey.get(key) ?? 0) + 1;
    journal.runningByKey.set(key, now);
    journal.maxByKey.set(key, Math.max(journal.maxByKey.get(key) ?? 0, now));
    await journal.gate.opened;
    journal.runningByKey.set(key, (journal.runningByKey.get(key) ?? 1) - 1);
    return label;
  }
}

/** The most of `times` that fall in any window of `windowMs` starting at one of them. */
function mostInAnyWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j] < sorted[i] + windowMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

const startedAt = (task: TaskInfo) => Date.parse(task.startedAt ?? "");

describe("rate limits and concurrency keys", () => {
  const cluster = new Cluster("tcp");
  afterEach(async () => {
    journal.gate.open();
    await cluster.dispose();
    journal = new Journal();
  });

  async function waitAll(client: Awaited<ReturnType<Cluster["client"]>>, ids: string[]): Promise<TaskInfo[]> {
    for (const id of ids) await client.waitTask(id, { timeout: STEP_MS / 1000 });
    return Promise.all(ids.map((id) => client.getTask(id)));
  }

  test("a method's rateLimit holds across two dealers: tasks wait in order, none refused", async () => {
    await cluster.router({ routerMode: "load_balance" });
    await cluster.dealer((options) => new Limited(options));
    await cluster.dealer((options) => new Limited(options));
    const client = await cluster.client();
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push((await client.submit("Limited.tick", [`t${i}`])).id);
    const tasks = await waitAll(client, ids);
    expect(tasks.every((t) => t.state === "succeeded")).toBe(true);
    const times = tasks.map(startedAt);
    // 20/s with a burst of 2: at most 2 + 20 x 0.5 in any half second, one spare for rounding.
    expect(mostInAnyWindow(times, 500)).toBeLessThanOrEqual(13);
    // 30 starts at 20/s after a burst of 2 cannot all fit in under 1.4 s.
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(1_300);
    // Order kept: started in the order submitted.
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]);
  });

  test("the router's rateLimits option wins over the dealer's declaration", async () => {
    await cluster.router({ routerMode: "load_balance", rateLimits: { "Limited.tick": "5/s" } });
    await cluster.dealer((options) => new Limited(options));
    const client = await cluster.client();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await client.submit("Limited.tick", [`t${i}`])).id);
    const times = (await waitAll(client, ids)).map(startedAt);
    // 5/s, burst 1: at most 1 + 5 x 0.6 in any 600 ms (one spare); 8 starts span at least 1.4 s.
    expect(mostInAnyWindow(times, 600)).toBeLessThanOrEqual(5);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(1_300);
  });

  test("plain calls share the method's bucket: over the rate they wait in the queue, none refused", async () => {
    const router = await cluster.router({ routerMode: "load_balance", rateLimits: { "Limited.plain": "10/s" } });
    // When the router sends each call to a dealer: the rate is the router's, not the dealers' clocks.
    const dispatchedAt: number[] = [];
    const dispatchOrder: number[] = [];
    router.events.on("call.dispatched", (call) => {
      dispatchedAt.push(Date.now());
      dispatchOrder.push(call.seq);
    });
    await cluster.dealer((options) => new Limited(options));
    await cluster.dealer((options) => new Limited(options));
    const client = await cluster.client();
    const results = await Promise.all(Array.from({ length: 15 }, (_, i) => client.invoke("Limited.plain", `c${i}`)));
    expect(results).toEqual(Array.from({ length: 15 }, (_, i) => `c${i}`));
    expect(dispatchedAt).toHaveLength(15);
    // 10/s, burst 1: at most 1 + 10 x 0.5 in any half second, one spare for rounding.
    expect(mostInAnyWindow(dispatchedAt, 500)).toBeLessThanOrEqual(7);
    expect(Math.max(...dispatchedAt) - Math.min(...dispatchedAt)).toBeGreaterThanOrEqual(1_300);
    // In arrival order.
    expect(dispatchOrder).toEqual([...dispatchOrder].sort((a, b) => a - b));
  });

  test("a method without a limit is not slowed by another method's limit", async () => {
    await cluster.router({ routerMode: "load_balance", rateLimits: { "Limited.tick": "1/h" } });
    await cluster.dealer((options) => new Limited(options));
    const client = await cluster.client();
    const first = await client.submit("Limited.tick", ["only-one"]);
    const blocked = await client.submit("Limited.tick", ["waits-an-hour"]);
    await client.waitTask(first.id, { timeout: STEP_MS / 1000 });
    const calls = await Promise.all(Array.from({ length: 20 }, (_, i) => client.invoke("Limited.plain", `p${i}`)));
    expect(calls).toHaveLength(20);
    expect((await client.getTask(blocked.id)).state).toBe("queued");
  });

  test("concurrency keys under contention: at most N per key run, other keys go ahead", async () => {
    await cluster.router({ routerMode: "load_balance" });
    await cluster.dealer((options) => new Limited({ ...options, maxConcurrent: 10 }));
    const client = await cluster.client();
    const busy: string[] = [];
    // Six of tenant-7 first (limit 2): in one FIFO queue they would hold up everyone behind them.
    for (let i = 0; i < 6; i++) {
      busy.push((await client.submit("Limited.keyed", ["tenant-7", `a${i}`], { concurrencyKey: "tenant-7", concurrencyLimit: 2 })).id);
    }
    for (let i = 0; i < 3; i++) {
      busy.push((await client.submit("Limited.keyed", ["tenant-8", `b${i}`], { concurrencyKey: "tenant-8", concurrencyLimit: 3 })).id);
    }
    // tenant-8's three start while four of tenant-7 still wait.
    await waitFor(() => journal.starts.length === 5, { timeoutMs: STEP_MS, message: "2 of tenant-7 and 3 of tenant-8 to start" });
    expect(journal.starts.map((s) => s.label).sort()).toEqual(["a0", "a1", "b0", "b1", "b2"]);
    const waiting = await Promise.all(busy.slice(2, 6).map((id) => client.getTask(id)));
    expect(waiting.every((t) => t.state === "queued")).toBe(true);
    expect(waiting[0]).toMatchObject({ concurrencyKey: "tenant-7", concurrencyLimit: 2 });
    journal.gate.open();
    const tasks = await waitAll(client, busy);
    expect(tasks.every((t) => t.state === "succeeded")).toBe(true);
    expect(journal.maxByKey.get("tenant-7")).toBeLessThanOrEqual(2);
    expect(journal.maxByKey.get("tenant-8")).toBeLessThanOrEqual(3);
  });

  test(
    "a task parked behind its key runs when the key frees, with slots free and nothing else queued",
    async () => {
      await cluster.router();
      await cluster.dealer((options) => new Limited({ ...options, maxConcurrent: 3 }));
      const client = await cluster.client();
      const first = await client.submit("Limited.keyed", ["tenant-9", "c0"], { concurrencyKey: "tenant-9" });
      const second = await client.submit("Limited.keyed", ["tenant-9", "c1"], { concurrencyKey: "tenant-9" });
      await waitFor(() => journal.starts.length === 1, { timeoutMs: STEP_MS, message: "the first of tenant-9 to start" });
      expect((await client.getTask(second.id)).state).toBe("queued");
      journal.gate.open();
      const tasks = await waitAll(client, [first.id, second.id]);
      expect(tasks.map((t) => t.state)).toEqual(["succeeded", "succeeded"]);
      expect(journal.maxByKey.get("tenant-9")).toBe(1);
    },
    2 * STEP_MS,
  );

  test("concurrency keys hold while dealers churn through many tasks", async () => {
    await cluster.router({ routerMode: "load_balance" });
    await cluster.dealer((options) => new Limited({ ...options, maxConcurrent: 8 }));
    await cluster.dealer((options) => new Limited({ ...options, maxConcurrent: 8 }));
    const client = await cluster.client();
    journal.gate.open();
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const key = `k${i % 3}`;
      ids.push((await client.submit("Limited.keyed", [key, `x${i}`], { concurrencyKey: key, concurrencyLimit: 2 })).id);
    }
    const tasks = await waitAll(client, ids);
    expect(tasks.every((t) => t.state === "succeeded")).toBe(true);
    for (const key of ["k0", "k1", "k2"]) expect(journal.maxByKey.get(key)).toBeLessThanOrEqual(2);
  });

  test("a rate key limits its own tasks; another key's go ahead", async () => {
    await cluster.router({ routerMode: "load_balance" });
    await cluster.dealer((options) => new Limited({ ...options, maxConcurrent: 10 }));
    const client = await cluster.client();
    const slow: string[] = [];
    for (let i = 0; i < 8; i++) slow.push((await client.submit("Limited.plain", [`s${i}`], { rateKey: "cust-1", rateKeyLimit: "5/s" })).id);
    const fast: string[] = [];
    for (let i = 0; i < 8; i++)
      fast.push((await client.submit("Limited.plain", [`f${i}`], { rateKey: "cust-2", rateKeyLimit: "1000/s" })).id);
    const fastTasks = await waitAll(client, fast);
    const slowTasks = await waitAll(client, slow);
    const slowTimes = slowTasks.map(startedAt);
    expect(mostInAnyWindow(slowTimes, 600)).toBeLessThanOrEqual(5);
    expect(Math.max(...slowTimes) - Math.min(...slowTimes)).toBeGreaterThanOrEqual(1_300);
    // cust-2's tasks did not queue behind cust-1's: all of them started before cust-1's last.
    expect(Math.max(...fastTasks.map(startedAt))).toBeLessThan(Math.max(...slowTimes));
  });

  test("bad limits are refused at submit with the field named, nothing stored", async () => {
    await cluster.router();
    await cluster.dealer((options) => new Limited(options));
    const client = await cluster.client();
    const bad = [
      { rateKey: "c1" },
      { rateKeyLimit: "5/s" },
      { rateKey: "c1", rateKeyLimit: "5 per second" },
      { concurrencyLimit: 2 },
      { concurrencyKey: "t", concurrencyLimit: 0 },
      { concurrencyKey: "" },
    ];
    for (const options of bad) {
      await expect(client.submit("Limited.plain", ["x"], options as never)).rejects.toBeInstanceOf(ValidationError);
    }
    expect((await client.listTasks()).tasks).toHaveLength(0);
  });

  test("a bad rate in the router's options or a method's declaration is refused with the reason", async () => {
    await expect(cluster.router({ rateLimits: { "Limited.tick": "10 per minute" } })).rejects.toThrow(/rate/i);
    await cluster.router();
    class BadRate extends ServiceDealer {
      @serviceMethod({ task: { rateLimit: "10/d" } })
      work() {}
    }
    const dealer = cluster.dealerStopped((options) => new BadRate(options));
    await expect(dealer.start()).rejects.toThrow(/rate/i);
  });
});
