/**
 * A schedule across a router SIGKILL, with real processes and a SQLite store: an every-second
 * schedule fires in the first router, the router is killed, a second one starts on the same file
 * (catch-up "all"), and every due time has exactly one task: none twice, none missing.
 *
 *   ./node_modules/.bin/bun test test/chaos/schedule-restart.test.ts
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientDealer, TaskInfo } from "../../src/index.ts";
import { waitFor } from "../helpers/wait.ts";
import { Stage } from "./lib/stage.ts";

const stage = new Stage();
const dir = mkdtempSync(join(tmpdir(), "voidrail-schedule-chaos-"));
afterEach(() => stage.dispose());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function fired(client: ClientDealer): Promise<TaskInfo[]> {
  const page = await client.listTasks({ limit: 1000 });
  return page.tasks.filter((task) => task.schedule?.name === "tick");
}

test("a schedule fires once per due time across a router SIGKILL: none twice, none missing", async () => {
  const store = join(dir, "tasks.db");
  let router = await stage.router({ taskStore: store });
  const address = router.address;
  const client = await stage.client(address);
  // No dealer offers the method: fired tasks stay queued, which is all this test needs.
  await client.schedules.set({ name: "tick", every: 1, method: "Nobody.tick", args: ["x"], catchUp: "all" });
  await waitFor(async () => (await fired(client)).length >= 2, { timeoutMs: 15_000, message: "two firings before the kill" });

  router.kill("SIGKILL");
  await router.exitedWithin(5_000);
  stage.forget(router);
  router = await stage.router({ address, taskStore: store });
  const client2 = await stage.client(address);
  const before = (await fired(client2)).length;
  await waitFor(async () => (await fired(client2)).length >= before + 2, { timeoutMs: 15_000, message: "two firings after the restart" });

  const tasks = await fired(client2);
  const dueTimes = tasks.map((task) => Date.parse(task.schedule!.dueAt)).sort((a, b) => a - b);
  // Never twice: one task per due time (and one idempotency key each).
  expect(new Set(dueTimes).size).toBe(dueTimes.length);
  expect(new Set(tasks.map((t) => t.idempotencyKey)).size).toBe(tasks.length);
  // None missing: due times one second apart, from the first to the last.
  for (let i = 1; i < dueTimes.length; i++) expect(dueTimes[i] - dueTimes[i - 1]).toBe(1_000);
  const schedule = (await client2.schedules.list())[0];
  expect(schedule).toMatchObject({ name: "tick", every: 1, catchUp: "all", paused: false });
  expect(Date.parse(schedule.lastDueAt!)).toBeGreaterThanOrEqual(dueTimes[dueTimes.length - 1]);
});
