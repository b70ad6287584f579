/**
 * Rates as users write them: `"N/s"`, `"N/m"` or `"N/h"` (Celery's `rate_limit` form), for
 * per-method rate limits and per-key rates. Pure: the string is the wire form too.
 */
import * as v from "valibot";

/** `count` per `periodMs`. */
export interface Rate {
  count: number;
  periodMs: number;
}

const RATE_PATTERN = /^([1-9]\d{0,8})\/([smh])$/;
const PERIOD_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** The rate `text` says, or undefined when it is not of the form `N/s`, `N/m`, `N/h` (N from 1 to 999999999). */
export function parseRate(text: string): Rate | undefined {
  const match = RATE_PATTERN.exec(text);
  if (!match) return undefined;
  return { count: Number(match[1]), periodMs: PERIOD_MS[match[2] as keyof typeof PERIOD_MS] };
}

/**
 * The burst a rate allows: what 100 ms of the rate adds, at least 1. "10/m" takes one at a time,
 * evenly spaced; "1000/s" lets 100 go at once, so a late timer does not lower the rate.
 */
export function burstOf(rate: Rate): number {
  return Math.max(1, Math.floor((rate.count * 100) / rate.periodMs));
}

/** A rate string, checked: "10/m", "100/s", "5/h". */
export const RateSchema = v.pipe(
  v.string(),
  v.check((text) => parseRate(text) !== undefined, 'Invalid rate: expected "N/s", "N/m" or "N/h" with N a whole number from 1'),
);
