/**
 * From a submit's options and its method's defaults to the task to store: priorities, times
 * and the retry policy, with every default in one place. Pure: the caller passes the clock.
 */
import { checkLimitKeys, type TaskOptionsWire, ValidationError } from "../protocol/index.ts";
import type { NewTask, TaskPolicy } from "../store/task-store.ts";

/** Options of one task as they travel (milliseconds); the same shape holds a method's defaults. */
export type TaskOptions = TaskOptionsWire;

export const TASK_DEFAULTS = {
  priority: 5,
  retries: 0,
  retryDelayMs: 1_000,
  backoff: "fixed",
  retryDelayMaxMs: 600_000,
  lostRetries: 3,
  resultTtlMs: 86_400_000,
} as const;

/** How far in the past an eta may be (clocks differ between machines) before it is refused. */
export const ETA_TOLERANCE_MS = 60_000;

/**
 * The task to insert for a submit. `defaults` come from the method's `@serviceMethod({ task })`;
 * the submit's own options win field by field. Throws ValidationError naming the field.
 */
export function resolveTask(
  id: string,
  method: string,
  args: Uint8Array,
  submit: TaskOptions,
  defaults: TaskOptions,
  now: number,
): NewTask {
  const pick = <K extends keyof TaskOptions>(key: K): TaskOptions[K] => (submit[key] !== undefined ? submit[key] : defaults[key]);
  if (submit.countdownMs !== undefined && submit.etaMs !== undefined) {
    throw new ValidationError("give countdown or eta, not both", { data: { path: "eta" } });
  }
  if (submit.etaMs !== undefined && submit.etaMs < now - ETA_TOLERANCE_MS) {
    throw new ValidationError(`eta ${new Date(submit.etaMs).toISOString()} is in the past`, { data: { path: "eta" } });
  }
  const runAt = submit.etaMs !== undefined ? Math.max(now, submit.etaMs) : now + (pick("countdownMs") ?? 0);
  const expiresMs = pick("expiresMs");
  const expiresAt = expiresMs === undefined ? undefined : now + expiresMs;
  if (expiresAt !== undefined && expiresAt <= runAt && runAt > now) {
    throw new ValidationError("the task would expire before its countdown or eta lets it start", { data: { path: "expires" } });
  }
  const retryDelayMs = pick("retryDelayMs") ?? TASK_DEFAULTS.retryDelayMs;
  const policy: TaskPolicy = {
    retries: pick("retries") ?? TASK_DEFAULTS.retries,
    retryDelayMs,
    backoff: pick("backoff") ?? TASK_DEFAULTS.backoff,
    retryDelayMaxMs: Math.max(retryDelayMs, pick("retryDelayMaxMs") ?? TASK_DEFAULTS.retryDelayMaxMs),
    retryOn: pick("retryOn") ?? [],
    lostRetries: pick("lostRetries") ?? TASK_DEFAULTS.lostRetries,
    resultTtlMs: pick("resultTtlMs") ?? TASK_DEFAULTS.resultTtlMs,
  };
  const timeLimitMs = pick("timeLimitMs");
  if (timeLimitMs !== undefined) policy.timeLimitMs = timeLimitMs;
  // Keys belong to the submit alone (a method's defaults cannot carry them).
  checkLimitKeys(submit, "options");
  if (submit.rateKey !== undefined && submit.rateKeyLimit !== undefined) {
    policy.rateKey = submit.rateKey;
    policy.rateKeyLimit = submit.rateKeyLimit;
  }
  if (submit.concurrencyKey !== undefined) {
    policy.concurrencyKey = submit.concurrencyKey;
    policy.concurrencyLimit = submit.concurrencyLimit ?? 1;
  }
  // Per submit only: a method's defaults never carry a trace.
  if (submit.trace !== undefined) policy.trace = submit.trace;
  const task: NewTask = {
    id,
    method,
    args,
    state: runAt > now ? "scheduled" : "queued",
    priority: pick("priority") ?? TASK_DEFAULTS.priority,
    createdAt: now,
    runAt,
    policy,
  };
  if (expiresAt !== undefined) task.expiresAt = expiresAt;
  if (submit.idempotencyKey !== undefined) task.idempotencyKey = submit.idempotencyKey;
  return task;
}
