/**
 * What happens after an attempt ends badly: another attempt (when, and why) or the end. Pure:
 * the caller passes the clock and the randomness.
 */
import { errorFromWire } from "../protocol/index.ts";
import type { RetryPolicy, TaskError } from "../store/task-store.ts";

/** Failures that another attempt cannot fix; retried only when `retryOn` names them. */
const NEVER_RETRIED_BY_DEFAULT = new Set(["VALIDATION_ERROR", "NO_SUCH_METHOD", "CANCELLED", "PROTOCOL_ERROR", "AUTH_FAILED"]);

export type RetryDecision = { retry: true; delayMs: number; lost: boolean } | { retry: false };

export interface AttemptCounts {
  /** Attempts started so far, the one that just ended included. */
  attempts: number;
  /** Of those, attempts cut off by a lost dealer or a restart before this one. */
  lostAttempts: number;
}

/**
 * Decides the next attempt. An attempt cut off by a lost dealer (`lost`) gets another one at once
 * while `lostRetries` allows, whatever `retries` says; a failure of the method is retried while
 * `retries` allows and `retryOn` matches, after a fixed or exponential delay.
 */
export function decideRetry(
  policy: RetryPolicy,
  counts: AttemptCounts,
  error: TaskError,
  lost: boolean,
  random = Math.random,
): RetryDecision {
  if (lost) return counts.lostAttempts < policy.lostRetries ? { retry: true, delayMs: 0, lost: true } : { retry: false };
  const failures = counts.attempts - counts.lostAttempts;
  if (failures > policy.retries || !isRetried(policy.retryOn, error)) return { retry: false };
  return { retry: true, delayMs: retryDelayMs(policy, failures, random), lost: false };
}

/**
 * Whether `retryOn` (error codes, VoidRail error class names, a remote error's name or errno
 * code; empty: any failure a retry can fix) covers `error`.
 */
export function isRetried(retryOn: readonly string[], error: TaskError): boolean {
  if (retryOn.length === 0) return !NEVER_RETRIED_BY_DEFAULT.has(error.code);
  const data = (typeof error.data === "object" && error.data !== null ? error.data : {}) as { name?: unknown; code?: unknown };
  // "TimeoutError" names the class of TIMEOUT: users write either.
  const className = errorFromWire(error).name;
  return retryOn.some((entry) => entry === error.code || entry === className || entry === data.name || entry === data.code);
}

/**
 * The delay before retry number `n` (1 for the first): `retryDelayMs` each time (fixed), or
 * doubling from it with ±20 % jitter so that many failed tasks do not come back at once
 * (exponential); never above `retryDelayMaxMs`.
 */
export function retryDelayMs(policy: RetryPolicy, n: number, random = Math.random): number {
  if (policy.backoff === "fixed") return Math.min(policy.retryDelayMs, policy.retryDelayMaxMs);
  const base = policy.retryDelayMs * 2 ** Math.min(n - 1, 52);
  const jittered = base * (0.8 + 0.4 * random());
  return Math.round(Math.min(jittered, policy.retryDelayMaxMs));
}
