/**
 * Schedules at the API boundary: what `client.schedules.set` takes (seconds, the task options of
 * `submit`), its wire form, and the shape of the router's answers. docs/PROTOCOL.md §17 is the
 * normative description.
 */
import * as v from "valibot";
import { ValidationError } from "./errors.ts";
import { validationErrorFromIssues } from "./errors.ts";
import { MIN_SCHEDULE_EVERY_MS, SCHEDULE_NAME_PATTERN, type ScheduleWire, ScheduleWireSchema } from "./task-messages.ts";
import { type SubmitOptions, submitOptionsToWire } from "./tasks.ts";

/** What a schedule fires missed due times with after the router was down. */
export type CatchUpMode = "none" | "last" | "all";

/** A schedule, as `client.schedules.set` takes it: `cron` or `every`, exactly one. */
export interface ScheduleDefinition {
  /** Unique name; setting a known name replaces that schedule. 1..128 of A-Z a-z 0-9 . _ : - */
  name: string;
  /** A cron expression: 5 fields (minute hour day month weekday), or 6 with seconds first; nicknames like "@daily". */
  cron?: string;
  /** IANA time zone of `cron` ("Europe/Berlin"). Default UTC. */
  timezone?: string;
  /** Instead of `cron`: every this many seconds (≥ 1), counted from when the schedule is set. */
  every?: number;
  /** The method each firing submits as a task. */
  method: string;
  /** Its arguments (JSON). Default []. */
  args?: unknown[];
  /** Options of each fired task, as for `submit` (priority, expires, retries, keys...), but no eta and no idempotencyKey. */
  options?: Omit<SubmitOptions, "eta" | "idempotencyKey" | "waitForDealer">;
  /** Due times missed while the router was down: "none" (skip them), "last" (fire the latest one: the default) or "all". */
  catchUp?: CatchUpMode;
  /** Store it paused. Default false. */
  paused?: boolean;
}

/** Checks a definition and gives its wire form; ValidationError names a bad field. */
export function scheduleToWire(definition: ScheduleDefinition): ScheduleWire {
  const fail = (path: string, message: string): never => {
    throw new ValidationError(`schedule.${path}: ${message}`, { data: { path: `schedule.${path}` } });
  };
  if (definition === null || typeof definition !== "object") fail("name", "expected a schedule object");
  const { name, cron, timezone, every, method, args, options, catchUp, paused } = definition;
  const known = new Set(["name", "cron", "timezone", "every", "method", "args", "options", "catchUp", "paused"]);
  for (const key of Object.keys(definition)) if (!known.has(key)) fail(key, "unknown field");
  if (typeof name !== "string" || !SCHEDULE_NAME_PATTERN.test(name)) {
    fail("name", "1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit");
  }
  if ((cron === undefined) === (every === undefined)) fail("cron", "give cron or every, exactly one");
  if (cron !== undefined && (typeof cron !== "string" || cron.trim() === "")) fail("cron", "expected a cron expression");
  if (timezone !== undefined && (typeof timezone !== "string" || cron === undefined)) fail("timezone", "a time zone name goes with cron");
  if (every !== undefined && (typeof every !== "number" || !Number.isFinite(every) || every * 1000 < MIN_SCHEDULE_EVERY_MS)) {
    fail("every", "expected seconds, at least 1");
  }
  if (typeof method !== "string") fail("method", "expected Service.method");
  if (args !== undefined && !Array.isArray(args)) fail("args", "expected an array of arguments");
  if (catchUp !== undefined && catchUp !== "none" && catchUp !== "last" && catchUp !== "all")
    fail("catchUp", 'expected "none", "last" or "all"');
  if (paused !== undefined && typeof paused !== "boolean") fail("paused", "expected true or false");
  const raw = (options ?? {}) as Record<string, unknown>;
  for (const key of ["eta", "idempotencyKey", "waitForDealer"]) {
    if (raw[key] !== undefined) fail(`options.${key}`, "a schedule sets it for each firing itself");
  }
  const wire: ScheduleWire = { name, method, args: args ?? [] };
  if (cron !== undefined) wire.cron = cron.trim();
  if (timezone !== undefined) wire.timezone = timezone;
  if (every !== undefined) wire.everyMs = Math.round(every * 1000);
  if (options !== undefined) {
    const converted = submitOptionsToWire(options);
    if (Object.keys(converted.options).length > 0) wire.options = converted.options;
  }
  if (catchUp !== undefined) wire.catchUp = catchUp;
  if (paused !== undefined) wire.paused = paused;
  // What the router checks (lengths, nesting, ranges), checked here too: a bad header would be refused whole.
  const parsed = v.safeParse(ScheduleWireSchema, wire);
  if (!parsed.success) throw validationErrorFromIssues(parsed.issues, "schedule");
  return wire;
}

/** A schedule as the router describes it (set, list, pause, resume). */
export const ScheduleInfoSchema = v.object({
  name: v.string(),
  cron: v.optional(v.string()),
  timezone: v.optional(v.string()),
  /** Seconds, for an interval schedule. */
  every: v.optional(v.number()),
  method: v.string(),
  args: v.array(v.unknown()),
  /** The fired tasks' options in their wire form (milliseconds). */
  options: v.record(v.string(), v.unknown()),
  catchUp: v.picklist(["none", "last", "all"]),
  paused: v.boolean(),
  /** ISO 8601, UTC. */
  createdAt: v.string(),
  /** The latest due time it fired for (or passed over by its catch-up mode). */
  lastDueAt: v.optional(v.string()),
  /** The next due time, unless paused (or a cron rule that never fires again). */
  nextDueAt: v.optional(v.string()),
});
export type ScheduleInfo = v.InferOutput<typeof ScheduleInfoSchema>;

export const ScheduleListSchema = v.object({ schedules: v.array(ScheduleInfoSchema) });
