/**
 * The pure parts of the task layer: ids, the transition table, retry decisions and delays, and
 * how a submit's options and its method's defaults become the stored task.
 *
 *   ./node_modules/.bin/bun test test/unit/task-policy.test.ts
 */
import { describe, expect, test } from "bun:test";
import { ValidationError } from "../../src/protocol/index.ts";
import { TASK_STATE_NAMES } from "../../src/protocol/messages.ts";
import type { RetryPolicy } from "../../src/store/task-store.ts";
import { canTransition, FINAL_STATES, TASK_STATES, TRANSITIONS } from "../../src/store/task-states.ts";
import { decideRetry, isRetried, retryDelayMs } from "../../src/tasks/retry-policy.ts";
import { newTaskId, TASK_ID_PATTERN, taskIdTime } from "../../src/tasks/task-id.ts";
import { ETA_TOLERANCE_MS, resolveTask, TASK_DEFAULTS } from "../../src/tasks/task-options.ts";

const POLICY: RetryPolicy = {
  retries: 3,
  retryDelayMs: 1_000,
  backoff: "exponential",
  retryDelayMaxMs: 5_000,
  retryOn: [],
  lostRetries: 2,
};
const ARGS = new TextEncoder().encode("[1]");

describe("task ids", () => {
  test("are UUIDv7: time-ordered across milliseconds, carrying their time, and never repeated", () => {
    const ids = Array.from({ length: 1000 }, (_, i) => newTaskId(1_700_000_000_000 + i));
    for (const id of ids) expect(id).toMatch(TASK_ID_PATTERN);
    expect([...ids].sort()).toEqual(ids);
    expect(taskIdTime(ids[10])).toBe(1_700_000_000_010);
    const sameMs = new Set(Array.from({ length: 10_000 }, () => newTaskId(1)));
    expect(sameMs.size).toBe(10_000);
    // Many times the ids one draw of random bytes serves: every one still carries version 7 and the variant.
    for (const id of sameMs) expect(id).toMatch(TASK_ID_PATTERN);
  });
});

describe("task transitions", () => {
  test("the wire's state names are the store's states", () => {
    expect([...TASK_STATE_NAMES].sort()).toEqual([...TASK_STATES].sort());
  });

  test("no transition leaves a final state, and every non-final state can be left", () => {
    for (const state of TASK_STATES) {
      const ways = Object.keys(TRANSITIONS).filter((name) => canTransition(name as keyof typeof TRANSITIONS, state));
      if (FINAL_STATES.has(state)) expect({ state, ways }).toEqual({ state, ways: [] });
      else expect(ways.length).toBeGreaterThan(0);
    }
  });
});

describe("retries", () => {
  test("a failure is retried while `retries` allows, then not", () => {
    const error = { code: "REMOTE_ERROR", message: "boom", data: { name: "Error" } };
    const decisions = [1, 2, 3, 4].map((attempts) => decideRetry(POLICY, { attempts, lostAttempts: 0 }, error, false, () => 0.5).retry);
    expect(decisions).toEqual([true, true, true, false]);
  });

  test("a lost attempt is retried at once up to `lostRetries`, whatever `retries` says, and does not use up a retry", () => {
    const lostError = { code: "DEALER_LOST", message: "gone" };
    const none = { ...POLICY, retries: 0 };
    expect(decideRetry(none, { attempts: 1, lostAttempts: 0 }, lostError, true)).toEqual({ retry: true, delayMs: 0, lost: true });
    expect(decideRetry(none, { attempts: 2, lostAttempts: 1 }, lostError, true)).toEqual({ retry: true, delayMs: 0, lost: true });
    expect(decideRetry(none, { attempts: 3, lostAttempts: 2 }, lostError, true)).toEqual({ retry: false });
    // Two lost attempts then a real failure: that is the first failure, retried once with retries 1.
    const failure = { code: "TIMEOUT", message: "slow" };
    expect(decideRetry({ ...POLICY, retries: 1 }, { attempts: 3, lostAttempts: 2 }, failure, false).retry).toBe(true);
  });

  test("retryOn matches codes, error names and errno codes; without it, errors a retry cannot fix are not retried", () => {
    const timeout = { code: "TIMEOUT", message: "t" };
    const reset = { code: "REMOTE_ERROR", message: "r", data: { name: "Error", code: "ECONNRESET" } };
    const range = { code: "REMOTE_ERROR", message: "x", data: { name: "RangeError" } };
    expect(isRetried(["TimeoutError"], timeout)).toBe(true);
    expect(isRetried(["TIMEOUT"], timeout)).toBe(true);
    expect(isRetried(["ECONNRESET"], reset)).toBe(true);
    expect(isRetried(["RangeError"], range)).toBe(true);
    expect(isRetried(["ECONNRESET"], range)).toBe(false);
    expect(isRetried([], range)).toBe(true);
    for (const code of ["VALIDATION_ERROR", "NO_SUCH_METHOD", "CANCELLED"]) expect(isRetried([], { code, message: "" })).toBe(false);
    expect(isRetried(["VALIDATION_ERROR"], { code: "VALIDATION_ERROR", message: "" })).toBe(true);
  });

  test("exponential delays double within ±20 % jitter and stop at the cap; fixed delays do not move", () => {
    expect([1, 2, 3].map((n) => retryDelayMs(POLICY, n, () => 0.5))).toEqual([1_000, 2_000, 4_000]);
    expect(retryDelayMs(POLICY, 1, () => 0)).toBe(800);
    expect(retryDelayMs(POLICY, 1, () => 0.999999)).toBe(1_200);
    expect(retryDelayMs(POLICY, 10, () => 0.5)).toBe(5_000);
    expect(retryDelayMs(POLICY, 2_000, () => 0.5)).toBe(5_000);
    const fixed = { ...POLICY, backoff: "fixed" as const };
    expect([1, 2, 5].map((n) => retryDelayMs(fixed, n, () => 0))).toEqual([1_000, 1_000, 1_000]);
  });
});

describe("submit options", () => {
  const now = 1_800_000_000_000;

  test("defaults: priority 5, queued now, no retries, a day of result TTL", () => {
    const task = resolveTask("id-1", "Svc.m", ARGS, {}, {}, now);
    expect(task).toMatchObject({ state: "queued", priority: 5, createdAt: now, runAt: now });
    expect(task.policy).toEqual({
      retries: 0,
      retryDelayMs: TASK_DEFAULTS.retryDelayMs,
      backoff: "fixed",
      retryDelayMaxMs: TASK_DEFAULTS.retryDelayMaxMs,
      retryOn: [],
      lostRetries: 3,
      resultTtlMs: 86_400_000,
    });
    expect(task.expiresAt).toBeUndefined();
  });

  test("the method's defaults apply where the submit is silent, and the submit wins field by field", () => {
    const task = resolveTask(
      "id-2",
      "Svc.m",
      ARGS,
      { retries: 1, priority: 9 },
      { retries: 4, timeLimitMs: 300_000, retryOn: ["TIMEOUT"] },
      now,
    );
    expect(task.priority).toBe(9);
    expect(task.policy).toMatchObject({ retries: 1, timeLimitMs: 300_000, retryOn: ["TIMEOUT"] });
  });

  test("countdown and eta schedule the task; expires is counted from the submit", () => {
    expect(resolveTask("a", "S.m", ARGS, { countdownMs: 5_000, expiresMs: 600_000 }, {}, now)).toMatchObject({
      state: "scheduled",
      runAt: now + 5_000,
      expiresAt: now + 600_000,
    });
    expect(resolveTask("b", "S.m", ARGS, { etaMs: now + 10_000 }, {}, now)).toMatchObject({ state: "scheduled", runAt: now + 10_000 });
    // Slightly in the past (clock skew): runs now.
    expect(resolveTask("c", "S.m", ARGS, { etaMs: now - 1_000 }, {}, now)).toMatchObject({ state: "queued", runAt: now });
  });

  test("contradictions are ValidationErrors naming the field", () => {
    const field = (options: Parameters<typeof resolveTask>[3]) => {
      try {
        resolveTask("x", "S.m", ARGS, options, {}, now);
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return (error as ValidationError).data;
      }
      throw new Error("expected a ValidationError");
    };
    expect(field({ countdownMs: 1, etaMs: now })).toEqual({ path: "eta" });
    expect(field({ etaMs: now - ETA_TOLERANCE_MS - 1 })).toEqual({ path: "eta" });
    expect(field({ countdownMs: 10_000, expiresMs: 5_000 })).toEqual({ path: "expires" });
  });
});
