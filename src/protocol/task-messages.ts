/**
 * Header schemas of the background-task kinds: SUBMIT, TASK (its ops, schedules included) and
 * FLOW, with the task options and the schedule as they travel on the wire (docs/PROTOCOL.md §15-16).
 * `messages.ts` puts them in its per-kind table; the user-facing forms are in `tasks.ts`,
 * `flows.ts` and `schedules.ts`.
 */
import * as v from "valibot";
import {
  isWithinJsonDepth,
  Limits,
  MethodNameSchema,
  PositiveDurationMsSchema,
  RequestIdSchema,
  TagsSchema,
  TraceContextSchema,
} from "./fields.ts";
import { RateSchema } from "./rates.ts";

/** Task states, as `TASK {op: "list"}` filters them (the store's `TaskState`). */
export const TASK_STATE_NAMES = [
  "blocked",
  "scheduled",
  "queued",
  "running",
  "retrying",
  "succeeded",
  "failed",
  "revoked",
  "expired",
] as const;

/** Task ids: UUIDv7 in lower-case hex. */
export const TASK_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const TaskIdSchema = v.pipe(v.string(), v.regex(TASK_ID_PATTERN, "Invalid task id: expected a UUIDv7"));
export const EpochMsSchema = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
export const LongDurationMsSchema = v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(10 * 365 * 86_400_000));

const LimitKeySchema = v.pipe(v.string(), v.minLength(1), v.maxLength(256));

/** A task's options on the wire (milliseconds); also a method's task defaults in its registration. */

export const TaskOptionsSchema = v.object({
  priority: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(9))),
  countdownMs: v.optional(LongDurationMsSchema),
  etaMs: v.optional(EpochMsSchema),
  expiresMs: v.optional(v.pipe(LongDurationMsSchema, v.minValue(1))),
  timeLimitMs: v.optional(PositiveDurationMsSchema),
  retries: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1000))),
  retryDelayMs: v.optional(LongDurationMsSchema),
  backoff: v.optional(v.picklist(["fixed", "exponential"])),
  retryDelayMaxMs: v.optional(LongDurationMsSchema),
  retryOn: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(128))), v.maxLength(64))),
  lostRetries: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1000))),
  resultTtlMs: v.optional(v.pipe(LongDurationMsSchema, v.minValue(1))),
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
  /** Tasks with the same rate key share one token bucket of `rateKeyLimit` ("5/s"), across methods. */
  rateKey: v.optional(LimitKeySchema),
  rateKeyLimit: v.optional(RateSchema),
  /** At most `concurrencyLimit` (default 1) tasks with the same concurrency key run at once, across methods. */
  concurrencyKey: v.optional(LimitKeySchema),
  concurrencyLimit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65_535))),
  /** The caller's trace context: every attempt's REQUEST carries it to the dealer. */
  trace: v.optional(TraceContextSchema),
});
export type TaskOptionsWire = v.InferOutput<typeof TaskOptionsSchema>;

/** SUBMIT: store a task that runs `method` with the payload's arguments. */
export const SubmitHeaderSchema = v.object({
  id: RequestIdSchema,
  method: MethodNameSchema,
  options: v.optional(TaskOptionsSchema),
  /** If no dealer offers the method yet, store the task anyway instead of failing NO_SUCH_METHOD. */
  waitForDealer: v.optional(v.boolean()),
  /** Every attempt runs only on a dealer whose tags include all of these. */
  require: v.optional(TagsSchema),
});
export type SubmitHeader = v.InferOutput<typeof SubmitHeaderSchema>;

/** FLOW: store a workflow; the payload is its tree (protocol/flows.ts, docs/PROTOCOL.md §16). */
export const FlowHeaderSchema = v.object({
  id: RequestIdSchema,
  /** Store the flow even if no dealer offers some of its methods yet. */
  waitForDealer: v.optional(v.boolean()),
  /** While a task with this key exists, a FLOW with it stores nothing and answers that task. */
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
  /** How long the records of the flow's chains, groups and chords are kept once finished. */
  resultTtlMs: v.optional(v.pipe(LongDurationMsSchema, v.minValue(1))),
});
export type FlowHeader = v.InferOutput<typeof FlowHeaderSchema>;
/** Schedule names: what `client.schedules.set` takes as `name`. */
export const SCHEDULE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const ScheduleNameSchema = v.pipe(
  v.string(),
  v.regex(SCHEDULE_NAME_PATTERN, "Invalid schedule name: 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"),
);
/** Shortest interval of an `every` schedule. */
export const MIN_SCHEDULE_EVERY_MS = 1_000;

/** A schedule as `TASK {op: "schedule.set"}` carries it: exactly one of `cron` and `everyMs`. */
export const ScheduleWireSchema = v.pipe(
  v.object({
    name: ScheduleNameSchema,
    cron: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
    timezone: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
    everyMs: v.optional(v.pipe(LongDurationMsSchema, v.minValue(MIN_SCHEDULE_EVERY_MS))),
    method: MethodNameSchema,
    /** Each fired task's arguments (JSON, in the header: it counts toward the header limit). */
    args: v.optional(
      v.pipe(
        v.array(v.unknown()),
        v.check((args) => isWithinJsonDepth(args, Limits.MAX_JSON_DEPTH), "Invalid args: nested too deep"),
      ),
    ),
    options: v.optional(TaskOptionsSchema),
    catchUp: v.optional(v.picklist(["none", "last", "all"])),
    paused: v.optional(v.boolean()),
  }),
  v.check((s) => (s.cron === undefined) !== (s.everyMs === undefined), "Invalid schedule: give cron or every, exactly one"),
  v.check((s) => s.timezone === undefined || s.cron !== undefined, "Invalid schedule: timezone goes with cron"),
);
export type ScheduleWire = v.InferOutput<typeof ScheduleWireSchema>;

/** TASK: one operation on stored tasks; `op` says which. */
export const TaskHeaderSchema = v.variant("op", [
  v.object({ id: RequestIdSchema, op: v.literal("get"), taskId: TaskIdSchema }),
  v.object({ id: RequestIdSchema, op: v.literal("wait"), taskId: TaskIdSchema, timeoutMs: v.optional(PositiveDurationMsSchema) }),
  v.object({ id: RequestIdSchema, op: v.literal("watch"), taskId: TaskIdSchema }),
  v.object({ id: RequestIdSchema, op: v.literal("flow"), taskId: TaskIdSchema }),
  v.object({ id: RequestIdSchema, op: v.literal("revoke"), taskId: TaskIdSchema, terminate: v.optional(v.boolean()) }),
  /** A failed, revoked or expired task runs again as a new task (answered with the new task). */
  v.object({ id: RequestIdSchema, op: v.literal("retry"), taskId: TaskIdSchema }),
  v.object({
    id: RequestIdSchema,
    op: v.literal("list"),
    state: v.optional(v.picklist(TASK_STATE_NAMES)),
    method: v.optional(MethodNameSchema),
    createdFrom: v.optional(EpochMsSchema),
    createdTo: v.optional(EpochMsSchema),
    limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000))),
    cursor: v.optional(v.pipe(v.string(), v.maxLength(64))),
  }),
  v.object({ id: RequestIdSchema, op: v.literal("schedule.set"), schedule: ScheduleWireSchema }),
  v.object({ id: RequestIdSchema, op: v.literal("schedule.list") }),
  v.object({ id: RequestIdSchema, op: v.literal("schedule.remove"), name: ScheduleNameSchema }),
  v.object({ id: RequestIdSchema, op: v.literal("schedule.pause"), name: ScheduleNameSchema }),
  v.object({ id: RequestIdSchema, op: v.literal("schedule.resume"), name: ScheduleNameSchema }),
]);
export type TaskHeader = v.InferOutput<typeof TaskHeaderSchema>;
