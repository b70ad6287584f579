/**
 * Background tasks at the API boundary: the options users write (seconds, Dates) and their wire
 * form (milliseconds), checked with valibot so a bad option is a ValidationError naming the
 * field; and the shapes of the router's answers (TaskInfo, TaskEvent, TaskPage) for clients to
 * check what they receive. docs/PROTOCOL.md "Tasks" is the normative description.
 */
import * as v from "valibot";
import { ValidationError, validationErrorFromIssues } from "./errors.ts";
import { TASK_STATE_NAMES, type TaskOptionsWire, TraceparentSchema, TracestateSchema } from "./messages.ts";

/** Per-method task defaults, as `@serviceMethod({ task })` takes them. Times in seconds. */
export interface TaskDefaults {
  /** 0..9, higher first; FIFO among equals. Default 5. */
  priority?: number;
  /** Seconds after submit before it may start. */
  countdown?: number;
  /** Seconds after submit: not started by then, it ends `expired`. */
  expires?: number;
  /** Seconds one attempt may run; then it is cancelled and fails with TimeoutError. */
  timeLimit?: number;
  /** Further attempts after a failure that may be retried. Default 0. */
  retries?: number;
  /** Seconds before the first retry. Default 1. */
  retryDelay?: number;
  /** "fixed" (default) or "exponential" (the delay doubles, with ±20 % jitter). */
  backoff?: "fixed" | "exponential";
  /** Cap on any retry's delay, in seconds. Default 600. */
  retryDelayMax?: number;
  /** Error codes or names that are retried (e.g. "TimeoutError", "ECONNRESET"); default: any failure a retry can fix. */
  retryOn?: string[];
  /** Further attempts after attempts cut off by a lost dealer or a router restart. Default 3. */
  lostRetries?: number;
  /** Seconds a finished task's record is kept. Default 86400 (a day). */
  resultTtl?: number;
}

/** Options of `client.submit`. */
export interface SubmitOptions extends TaskDefaults {
  /** When it may start: a Date or an ISO 8601 string; instead of `countdown`. */
  eta?: Date | string;
  /** The same key within the result TTL gives the same task, not a second run. */
  idempotencyKey?: string;
  /** Store the task even if no dealer offers the method yet. Default false. */
  waitForDealer?: boolean;
  /** W3C `traceparent` of the caller's span: each attempt's method sees it in its CallContext. */
  traceparent?: string;
  /** W3C `tracestate`, with `traceparent`. */
  tracestate?: string;
}

const Seconds = v.pipe(v.number(), v.minValue(0), v.maxValue(10 * 365 * 86_400));
const PositiveSeconds = v.pipe(v.number(), v.gtValue(0), v.maxValue(10 * 365 * 86_400));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1000));

const TaskDefaultsSchema = v.strictObject({
  priority: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(9))),
  countdown: v.optional(Seconds),
  expires: v.optional(PositiveSeconds),
  timeLimit: v.optional(v.pipe(PositiveSeconds, v.maxValue(2_147_483))),
  retries: v.optional(Count),
  retryDelay: v.optional(Seconds),
  backoff: v.optional(v.picklist(["fixed", "exponential"])),
  retryDelayMax: v.optional(Seconds),
  retryOn: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(128))), v.maxLength(64))),
  lostRetries: v.optional(Count),
  resultTtl: v.optional(PositiveSeconds),
});

const SubmitOptionsSchema = v.strictObject({
  ...TaskDefaultsSchema.entries,
  eta: v.optional(
    v.union([
      v.pipe(
        v.date(),
        v.check((date) => !Number.isNaN(date.getTime()), "Invalid eta: not a valid date"),
      ),
      v.pipe(v.string(), v.isoTimestamp("Invalid eta: expected an ISO 8601 timestamp")),
    ]),
  ),
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
  waitForDealer: v.optional(v.boolean()),
  traceparent: v.optional(TraceparentSchema),
  tracestate: v.optional(TracestateSchema),
});

const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : Math.round(seconds * 1000));

function defaultsToWire(options: v.InferOutput<typeof TaskDefaultsSchema>): TaskOptionsWire {
  const wire: TaskOptionsWire = {
    priority: options.priority,
    countdownMs: ms(options.countdown),
    expiresMs: ms(options.expires),
    timeLimitMs: ms(options.timeLimit),
    retries: options.retries,
    retryDelayMs: ms(options.retryDelay),
    backoff: options.backoff,
    retryDelayMaxMs: ms(options.retryDelayMax),
    retryOn: options.retryOn,
    lostRetries: options.lostRetries,
    resultTtlMs: ms(options.resultTtl),
  };
  for (const key of Object.keys(wire) as (keyof TaskOptionsWire)[]) if (wire[key] === undefined) delete wire[key];
  return wire;
}

/** Checks a method's task defaults and gives their wire form; ValidationError names a bad field. */
export function taskDefaultsToWire(options: TaskDefaults, path = "task"): TaskOptionsWire {
  const parsed = v.safeParse(TaskDefaultsSchema, options);
  if (!parsed.success) throw validationErrorFromIssues(parsed.issues, path);
  return defaultsToWire(parsed.output);
}

/** Checks submit options and gives their wire form plus `waitForDealer`; ValidationError names a bad field. */
export function submitOptionsToWire(options: SubmitOptions): { options: TaskOptionsWire; waitForDealer: boolean } {
  const parsed = v.safeParse(SubmitOptionsSchema, options);
  if (!parsed.success) throw validationErrorFromIssues(parsed.issues, "options");
  const { eta, idempotencyKey, waitForDealer, traceparent, tracestate, ...defaults } = parsed.output;
  if (tracestate !== undefined && traceparent === undefined)
    throw new ValidationError("tracestate needs a traceparent", { data: { path: "options.tracestate" } });
  const wire = defaultsToWire(defaults);
  if (traceparent !== undefined) wire.trace = { traceparent, ...(tracestate !== undefined ? { tracestate } : {}) };
  if (eta !== undefined) wire.etaMs = (typeof eta === "string" ? new Date(eta) : eta).getTime();
  if (idempotencyKey !== undefined) wire.idempotencyKey = idempotencyKey;
  return { options: wire, waitForDealer: waitForDealer ?? false };
}

const TaskErrorSchema = v.object({ code: v.string(), message: v.string(), data: v.optional(v.unknown()) });

/** A task as the router describes it (getTask, submit, waitTask, revokeTask, listTasks). */
export const TaskInfoSchema = v.object({
  id: v.string(),
  method: v.string(),
  /** "scheduled", "queued", "running", "retrying", "succeeded", "failed", "revoked" or "expired". */
  state: v.picklist(TASK_STATE_NAMES),
  priority: v.number(),
  /** Attempts started so far. */
  attempts: v.number(),
  /** Of those, attempts cut off by a lost dealer or a router restart. */
  lostAttempts: v.number(),
  createdAt: v.string(),
  /** When it may (next) start. */
  runAt: v.string(),
  expiresAt: v.optional(v.string()),
  startedAt: v.optional(v.string()),
  finishedAt: v.optional(v.string()),
  /** When the record will be deleted (finished tasks). */
  purgeAt: v.optional(v.string()),
  idempotencyKey: v.optional(v.string()),
  /** The trace context it was submitted with. */
  traceparent: v.optional(v.string()),
  tracestate: v.optional(v.string()),
  /** The latest progress value the method reported. */
  progress: v.optional(v.unknown()),
  /** The method's return value (succeeded). */
  result: v.optional(v.unknown()),
  /** Why it failed, was revoked or expired; while retrying, the last attempt's error. */
  error: v.optional(TaskErrorSchema),
});
export type TaskInfo = v.InferOutput<typeof TaskInfoSchema>;

/** One event of `watchTask`: a state change, or progress while running. */
export const TaskEventSchema = v.object({
  state: v.picklist(TASK_STATE_NAMES),
  progress: v.optional(v.unknown()),
  /** ISO 8601, UTC. */
  at: v.string(),
});
export type TaskEvent = v.InferOutput<typeof TaskEventSchema>;

/** One page of `listTasks`, newest first. */
export const TaskPageSchema = v.object({ tasks: v.array(TaskInfoSchema), cursor: v.optional(v.string()) });
export type TaskPage = v.InferOutput<typeof TaskPageSchema>;

/** The final states: a task in one of them never changes again. */
export const FINAL_TASK_STATES: ReadonlySet<string> = new Set(["succeeded", "failed", "revoked", "expired"]);
