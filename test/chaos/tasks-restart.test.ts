/**
 * Tasks across a router SIGKILL: 1,000 tasks in every state (scheduled, queued, running,
 * retrying, succeeded, failed, revoked, expired) when the router process is killed, then a new
 * router on the same store file and address. Nothing is lost: every task is still known and
 * reaches a final state; nothing that had finished runs again or changes; tasks that waited run
 * once; tasks that were running count one lost attempt and run again.
 *
 *   ./node_modules/.bin/bun test test/chaos/tasks-restart.test.ts
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientDealer, TaskInfo } from "../../src/index.ts";
import { waitFor } from "../helpers/wait.ts";
import type { DealerChild } from "./lib/processes.ts";
import { Stage } from "./lib/stage.ts";

const DEALERS = 2;
const SLOTS = 4;
const FINAL = new Set(["succeeded", "failed", "revoked", "expired"]);
/** Scheduled tasks and retries wait this long: well past the kill, even on a loaded machine. */
const LATER_S = 12;
/** Long enough that the attempts running when the router dies are still running then. */
const RUNNING_MS = 60_000;

const stage = new Stage();
const dir = mkdtempSync(join(tmpdir(), "voidrail-tasks-chaos-"));
afterEach(() => stage.dispose());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function allTasks(client: ClientDealer): Promise<Map<string, TaskInfo>> {
  const tasks = new Map<string, TaskInfo>();
  let cursor: string | undefined;
  do {
    const page = await client.listTasks({ limit: 1000, cursor });
    for (const task of page.tasks) tasks.set(task.id, task);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return tasks;
}

function startsOf(dealers: DealerChild[], tag: string): number {
  return dealers.reduce((n, dealer) => n + dealer.named("started").filter((event) => event.tag === tag).length, 0);
}

test("1,000 tasks in every state survive a router SIGKILL: none lost, none finished twice, the waiting ones run once", async () => {
  const store = join(dir, "tasks.db");
  let router = await stage.router({ heartbeatTimeout: 2, taskStore: store });
  const address = router.address;
  const dealers = await Promise.all(
    Array.from({ length: DEALERS }, () => stage.dealer(address, "TaskService", { dealer: { maxConcurrent: SLOTS } })),
  );
  const client = await stage.client(address, { timeout: 30 });
  const tagOf = new Map<string, string>();
  const submit = async (tag: string, method: string, args: unknown[], options = {}) => {
    const task = await client.submit(method, args, options);
    tagOf.set(task.id, tag);
    return task;
  };
  const settle = (ids: string[], what: string) =>
    waitFor(
      async () => {
        for (const id of ids) if (!FINAL.has((await client.getTask(id)).state)) return false;
        return true;
      },
      { timeoutMs: 30_000, message: what },
    );

  // Final before the kill: succeeded, failed, revoked.
  const done = await Promise.all(Array.from({ length: 100 }, (_, i) => submit(`done-${i}`, "TaskService.job", [`done-${i}`, 0])));
  const failed = await Promise.all(Array.from({ length: 100 }, (_, i) => submit(`failed-${i}`, "TaskService.fail", [`failed-${i}`])));
  const revoked = await Promise.all(
    Array.from({ length: 50 }, (_, i) => submit(`revoked-${i}`, "TaskService.job", [`revoked-${i}`, 0], { countdown: 600 })),
  );
  for (const task of revoked) await client.revokeTask(task.id);
  await settle(
    [...done, ...failed, ...revoked].map((t) => t.id),
    "the first 250 tasks to finish",
  );
  // Retrying: each fails once now and waits out a long backoff.
  const retrying = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      submit(`retry-${i}`, "TaskService.fail", [`retry-${i}`], { retries: 1, retryDelay: LATER_S, backoff: "fixed" }),
    ),
  );
  await waitFor(async () => (await client.listTasks({ state: "retrying", limit: 1000 })).tasks.length === 100, {
    timeoutMs: 30_000,
    message: "100 tasks to be retrying",
  });
  // Running: every slot taken by a long job.
  const running = await Promise.all(
    Array.from({ length: DEALERS * SLOTS }, (_, i) =>
      submit(`running-${i}`, "TaskService.job", [`running-${i}`, RUNNING_MS], { priority: 9 }),
    ),
  );
  await waitFor(() => running.every((t) => startsOf(dealers, tagOf.get(t.id)!) === 1), {
    timeoutMs: 30_000,
    message: `${running.length} long tasks to be running`,
  });
  // Expired: queued behind the busy dealers past their deadline.
  const expired = await Promise.all(
    Array.from({ length: 50 }, (_, i) => submit(`expired-${i}`, "TaskService.job", [`expired-${i}`, 0], { expires: 0.2, priority: 0 })),
  );
  await waitFor(async () => (await client.listTasks({ state: "expired", limit: 1000 })).tasks.length === 50, {
    timeoutMs: 30_000,
    message: "50 tasks to expire",
  });
  // Scheduled and queued: the rest of the thousand.
  const scheduled = await Promise.all(
    Array.from({ length: 292 }, (_, i) => submit(`scheduled-${i}`, "TaskService.job", [`scheduled-${i}`, 0], { countdown: LATER_S })),
  );
  const queued = await Promise.all(Array.from({ length: 300 }, (_, i) => submit(`queued-${i}`, "TaskService.job", [`queued-${i}`, 0])));

  const before = await allTasks(client);
  expect(before.size).toBe(1000);
  const countsBefore: Record<string, number> = {};
  for (const task of before.values()) countsBefore[task.state] = (countsBefore[task.state] ?? 0) + 1;
  // Every state is there when the router dies.
  expect(Object.keys(countsBefore).sort()).toEqual([
    "expired",
    "failed",
    "queued",
    "retrying",
    "revoked",
    "running",
    "scheduled",
    "succeeded",
  ]);

  router.kill("SIGKILL");
  await router.exitedWithin(5_000);
  stage.forget(router);
  const killedAt = Date.now();
  const startsAtKill = new Map([...tagOf].map(([id, tag]) => [id, startsOf(dealers, tag)]));
  router = await stage.router({ address, heartbeatTimeout: 2, taskStore: store });
  const client2 = await stage.client(address, { timeout: 30 });
  const restartedAt = Date.now();

  // The attempts cut off count as lost; the new ones still take a minute: revoke them, as a user would.
  await waitFor(
    async () => {
      const tasks = await allTasks(client2);
      return running.every((t) => tasks.get(t.id)?.attempts === 2);
    },
    { timeoutMs: 30_000, message: "the cut-off tasks to get their second attempt" },
  );
  for (const task of running) await client2.revokeTask(task.id);

  await waitFor(async () => [...(await allTasks(client2)).values()].every((task) => FINAL.has(task.state)), {
    timeoutMs: (LATER_S + 30) * 1000,
    message: "every task to reach a final state after the restart",
  });
  const after = await allTasks(client2);
  const countsAfter: Record<string, number> = {};
  for (const task of after.values()) countsAfter[task.state] = (countsAfter[task.state] ?? 0) + 1;
  console.log(
    `[chaos] tasks across a router SIGKILL: ${JSON.stringify({ before: countsBefore, after: countsAfter, restartMs: restartedAt - killedAt, settledMs: Date.now() - restartedAt })}`,
  );

  // None lost.
  expect(after.size).toBe(1000);
  for (const id of before.keys()) expect(after.has(id)).toBe(true);
  // Nothing that had finished ran again or changed.
  for (const [id, task] of before) {
    if (!FINAL.has(task.state)) continue;
    expect({ id, state: after.get(id)!.state, attempts: after.get(id)!.attempts, result: after.get(id)!.result }).toEqual({
      id,
      state: task.state,
      attempts: task.attempts,
      result: task.result,
    });
    expect({ id, starts: startsOf(dealers, tagOf.get(id)!) }).toEqual({ id, starts: startsAtKill.get(id)! });
  }
  // What waited ran once, and succeeded.
  for (const task of [...scheduled, ...queued]) {
    const now = after.get(task.id)!;
    expect({ tag: tagOf.get(task.id), state: now.state, attempts: now.attempts, starts: startsOf(dealers, tagOf.get(task.id)!) }).toEqual({
      tag: tagOf.get(task.id),
      state: "succeeded",
      attempts: 1,
      starts: 1,
    });
  }
  // Retries kept their count: the second (last) attempt ran after the restart and failed.
  for (const task of retrying) expect(after.get(task.id)).toMatchObject({ state: "failed", attempts: 2, lostAttempts: 0 });
  // The cut-off tasks counted one lost attempt.
  for (const task of running) expect(after.get(task.id)).toMatchObject({ state: "revoked", attempts: 2, lostAttempts: 1 });
  for (const task of expired) expect(after.get(task.id)).toMatchObject({ state: "expired", attempts: 0 });
}, 180_000);
