/**
 * KeyLimits on a fake clock: which key blocks a task, when a key is released, the latest rate of
 * a rate key applies, and idle buckets are forgotten.
 *
 *   ./node_modules/.bin/bun test test/unit/key-limits.test.ts
 */
import { expect, test } from "bun:test";
import type { TaskPolicy, TaskRecord } from "../../src/store/task-store.ts";
import { KeyLimits } from "../../src/tasks/key-limits.ts";
import { waitFor } from "../helpers/wait.ts";

const POLICY: TaskPolicy = {
  retries: 0,
  retryDelayMs: 0,
  backoff: "fixed",
  retryDelayMaxMs: 0,
  retryOn: [],
  lostRetries: 0,
  resultTtlMs: 1,
};

function task(policy: Partial<TaskPolicy>): TaskRecord {
  return {
    id: "t",
    seq: 1,
    method: "S.m",
    args: new Uint8Array(),
    state: "queued",
    priority: 5,
    createdAt: 0,
    runAt: 0,
    attempts: 0,
    lostAttempts: 0,
    policy: { ...POLICY, ...policy },
  };
}

test("a concurrency key blocks at its limit and is released as each attempt ends", () => {
  const released: string[] = [];
  const keys = new KeyLimits(Date.now, (key) => released.push(key));
  const keyed = task({ concurrencyKey: "tenant-7", concurrencyLimit: 2 });
  expect(keys.blockOf(keyed)).toBeUndefined();
  keys.holds(keyed);
  keys.holds(keyed);
  expect(keys.blockOf(keyed)).toBe("c:tenant-7");
  // A task of the same key with a higher limit of its own still fits.
  expect(keys.blockOf(task({ concurrencyKey: "tenant-7", concurrencyLimit: 3 }))).toBeUndefined();
  keys.ended(keyed);
  expect(released).toEqual(["c:tenant-7"]);
  expect(keys.blockOf(keyed)).toBeUndefined();
  expect(keys.blockOf(task({}))).toBeUndefined();
  keys.stop();
});

test("a rate key blocks when out of tokens and is released when its next one is due", async () => {
  const released: string[] = [];
  const keys = new KeyLimits(Date.now, (key) => released.push(key));
  const keyed = task({ rateKey: "c1", rateKeyLimit: "5/s" });
  expect(keys.blockOf(keyed)).toBeUndefined();
  keys.started(keyed);
  expect(keys.blockOf(keyed)).toBe("r:c1");
  // Another key has its own bucket.
  expect(keys.blockOf(task({ rateKey: "c2", rateKeyLimit: "5/s" }))).toBeUndefined();
  await waitFor(() => released.includes("r:c1"), { timeoutMs: 5_000, message: "c1 to be released when its token is due" });
  expect(keys.blockOf(keyed)).toBeUndefined();
  keys.stop();
});

test("the latest rate submitted for a key applies; a full idle bucket is forgotten", () => {
  let now = 1_000;
  const keys = new KeyLimits(
    () => now,
    () => {},
  );
  keys.started(task({ rateKey: "c1", rateKeyLimit: "1/h" }));
  expect(keys.blockOf(task({ rateKey: "c1", rateKeyLimit: "1/h" }))).toBe("r:c1");
  // Stopped: no timers, only the buckets on the fake clock.
  keys.stop();
  // A faster rate for the same key applies from when it is first seen: a token a second later.
  now += 1_000;
  expect(keys.blockOf(task({ rateKey: "c1", rateKeyLimit: "1/s" }))).toBe("r:c1");
  now += 1_000;
  expect(keys.blockOf(task({ rateKey: "c1", rateKeyLimit: "1/s" }))).toBeUndefined();
  keys.started(task({ rateKey: "c1", rateKeyLimit: "1/s" }));
  keys.sweep();
  expect(keys.rateKeysHeld).toBe(1);
  now += 10_000;
  keys.sweep();
  expect(keys.rateKeysHeld).toBe(0);
  // A fresh bucket, full.
  expect(keys.blockOf(task({ rateKey: "c1", rateKeyLimit: "1/h" }))).toBeUndefined();
});
