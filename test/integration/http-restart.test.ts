/**
 * The HTTP server reads task history from the task store, so a router restart loses nothing:
 * tasks that succeeded, failed after a retry, wait for a dealer nobody runs, or wait for a
 * countdown are answered by GET /api/tasks (by state, method and id), GET /api/tasks/:id and
 * /metrics' voidrail_tasks exactly as before, by a new router on the same SQLite file.
 *
 *   ./node_modules/.bin/bun test test/integration/http-restart.test.ts
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CallContext, ServiceDealer, serviceMethod } from "../../src/index.ts";
import { Cluster } from "../helpers/cluster.ts";

const dir = mkdtempSync(join(tmpdir(), "voidrail-http-restart-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let cluster = new Cluster("tcp");
afterEach(async () => {
  await cluster.dispose();
  cluster = new Cluster("tcp");
});

class Ledger extends ServiceDealer {
  @serviceMethod
  double(n: number) {
    return n * 2;
  }

  /** Fails every attempt, so a task with retries ends failed with more than one attempt. */
  @serviceMethod({ context: true })
  refuse(reason: string, context: CallContext) {
    throw new RangeError(`${reason} (attempt ${context.attempt})`);
  }
}

type TaskJson = { id: string; method: string; state: string; attempts: number; result?: unknown; error?: { message: string } };

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  expect({ url, status: response.status }).toEqual({ url, status: 200 });
  return (await response.json()) as T;
}

/** Everything the API and /metrics say about the tasks, in a form two routers' answers can be compared by. */
async function snapshot(base: string, ids: string[]) {
  const search = async (query: string) =>
    (await getJson<{ tasks: TaskJson[] }>(`${base}/api/tasks?${query}`)).tasks.sort((a, b) => a.id.localeCompare(b.id));
  const byId: Record<string, TaskJson[]> = {};
  const one: Record<string, TaskJson> = {};
  for (const id of ids) {
    byId[id] = await search(`id=${id}`);
    one[id] = await getJson<TaskJson>(`${base}/api/tasks/${id}`);
  }
  const metrics = await (await fetch(`${base}/metrics`)).text();
  return {
    byState: {
      succeeded: await search("state=succeeded"),
      failed: await search("state=failed"),
      queued: await search("state=queued"),
      scheduled: await search("state=scheduled"),
    },
    byMethod: {
      double: await search("method=Ledger.double"),
      refuse: await search("method=Ledger.refuse"),
      absent: await search("method=Absent.work"),
    },
    byId,
    one,
    taskGauge: metrics.split("\n").filter((line) => line.startsWith("voidrail_tasks{")),
  };
}

test("after a restart on the same SQLite file, the API and /metrics answer for every task as before", async () => {
  const file = join(dir, "tasks.db");
  const first = await cluster.router({ taskStore: file, http: { port: 0 } });
  await cluster.dealer((options) => new Ledger(options));
  const client = await cluster.client();

  const succeeded = await Promise.all([1, 2, 3].map((n) => client.submit("Ledger.double", [n])));
  const failed = await Promise.all(
    ["no funds", "closed"].map((reason) => client.submit("Ledger.refuse", [reason], { retries: 1, retryDelay: 0 })),
  );
  for (const task of [...succeeded, ...failed]) await client.waitTask(task.id, { timeout: 10 }).catch(() => undefined);
  // Waiting for a dealer that never comes, and for a countdown that ends long after the test.
  const queued = await client.submit("Absent.work", ["nobody"], { waitForDealer: true });
  const scheduled = await client.submit("Ledger.double", [99], { countdown: 3600 });
  const ids = [...succeeded, ...failed, queued, scheduled].map((task) => task.id);

  const before = await snapshot(first.httpUrl!, ids);
  // What the records say, checked once here; after the restart the whole snapshot must be equal.
  expect(before.byState.succeeded.map((t) => [t.id, t.attempts, t.result])).toEqual(
    succeeded.map((t, i) => [t.id, 1, (i + 1) * 2]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );
  expect(before.byState.failed.map((t) => t.id)).toEqual(failed.map((t) => t.id).sort());
  for (const task of before.byState.failed) {
    expect(task.attempts).toBe(2);
    expect(task.error?.message).toMatch(/\(attempt 2\)$/);
  }
  expect(before.byState.queued.map((t) => t.id)).toEqual([queued.id]);
  expect(before.byState.scheduled.map((t) => t.id)).toEqual([scheduled.id]);
  expect(before.byMethod.double.length).toBe(4);
  expect(before.byMethod.absent.map((t) => t.id)).toEqual([queued.id]);
  for (const id of ids) expect(before.byId[id].map((t) => t.id)).toEqual([id]);
  expect(before.one[queued.id]).toMatchObject({ state: "queued", attempts: 0, args: ["nobody"] });
  expect(before.taskGauge).toEqual(
    expect.arrayContaining([
      'voidrail_tasks{state="succeeded"} 3',
      'voidrail_tasks{state="failed"} 2',
      'voidrail_tasks{state="queued"} 1',
      'voidrail_tasks{state="scheduled"} 1',
    ]),
  );

  const firstUrl = first.httpUrl!;
  await first.stop();
  // The first router's server is gone: whatever answers next, answers from the file.
  expect(await fetch(`${firstUrl}/metrics`).catch((error: Error) => error)).toBeInstanceOf(Error);
  const second = await cluster.router({ taskStore: file, http: { port: 0 }, address: first.address });
  expect(await snapshot(second.httpUrl!, ids)).toEqual(before);
}, 30_000);
