/**
 * When a schedule is due: cron expressions (with their time zone) through croner, intervals by
 * arithmetic from the time the schedule was set. Pure: every function takes the times it needs.
 *
 * croner, not a parser of our own: cron has many corners (day-of-month OR day-of-week, `L`, `#`,
 * steps, ranges, nicknames like `@daily`, and above all local times across daylight-saving
 * changes), and croner handles them with IANA zones through Intl, with no dependencies, under
 * Bun and in the compiled binary.
 */
import { Cron } from "croner";

/** What the due times depend on. Times are ms since the epoch. */
export interface DueRule {
  cron?: string;
  timezone?: string;
  everyMs?: number;
  /** Due times at or before it never count (when the schedule was set or resumed); intervals count from it. */
  since: number;
}

/** Parsed cron rules by zone and expression: building one parses the expression. */
const cache = new Map<string, Cron>();
const CACHE_SIZE = 1000;

function cronOf(rule: DueRule & { cron: string }): Cron {
  const key = `${rule.timezone ?? ""}\n${rule.cron}`;
  let cron = cache.get(key);
  if (!cron) {
    if (cache.size >= CACHE_SIZE) cache.clear();
    cron = new Cron(rule.cron, { paused: true, ...(rule.timezone !== undefined ? { timezone: rule.timezone } : {}) });
    cache.set(key, cron);
  }
  return cron;
}

/** The first due time strictly after `t` (and after `since`), or undefined when there is none. */
export function nextDueAfter(rule: DueRule, t: number): number | undefined {
  const from = Math.max(t, rule.since);
  if (rule.everyMs !== undefined) return rule.since + (Math.floor((from - rule.since) / rule.everyMs) + 1) * rule.everyMs;
  if (rule.cron === undefined) return undefined;
  return cronOf(rule as DueRule & { cron: string })
    .nextRun(new Date(from))
    ?.getTime();
}

/** The last due time at or before `t` and after `since`, or undefined. */
export function lastDueAtOrBefore(rule: DueRule, t: number): number | undefined {
  if (t <= rule.since) return undefined;
  if (rule.everyMs !== undefined) {
    const steps = Math.floor((t - rule.since) / rule.everyMs);
    return steps >= 1 ? rule.since + steps * rule.everyMs : undefined;
  }
  if (rule.cron === undefined) return undefined;
  // previousRuns is strictly before its reference: ask from one ms later to include `t` itself.
  const previous = cronOf(rule as DueRule & { cron: string })
    .previousRuns(1, new Date(t + 1))[0]
    ?.getTime();
  return previous !== undefined && previous > rule.since ? previous : undefined;
}

/** Due times in (`after`, `upTo`], oldest first, at most `limit`. */
export function dueTimesBetween(rule: DueRule, after: number, upTo: number, limit: number): number[] {
  const times: number[] = [];
  for (let next = nextDueAfter(rule, after); next !== undefined && next <= upTo && times.length < limit; next = nextDueAfter(rule, next)) {
    times.push(next);
  }
  return times;
}

/**
 * Why `cron` with `timezone` cannot be a schedule (a bad expression, an unknown zone, a rule that
 * never fires), or undefined when it can.
 */
export function cronProblem(cron: string, timezone: string | undefined, now: number): string | undefined {
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: timezone });
    } catch {
      return `unknown time zone "${timezone}" (use an IANA name such as "Europe/Berlin" or "UTC")`;
    }
  }
  let parsed: Cron;
  try {
    parsed = new Cron(cron, { paused: true, ...(timezone !== undefined ? { timezone } : {}) });
  } catch (error) {
    return `bad cron expression "${cron}": ${(error as Error).message.replace(/^CronPattern: /, "")}`;
  }
  if (parsed.nextRun(new Date(now)) === null) return `the cron expression "${cron}" never fires`;
  return undefined;
}
