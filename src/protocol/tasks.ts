/**
 * Background tasks at the API boundary: the options users write (seconds, Dates) and their wire
 * form (milliseconds), checked with valibot so a bad option is a ValidationError naming the
 * field; and the shapes of the router's answers (TaskInfo, TaskEvent, TaskPage) for clients to
 * check what they receive. docs/PROTOCOL.md "Tasks" is the normative description.
 */
import * as v from "valibot";
import { ValidationError, validationErrorFromIssues } from "./errors.ts";
import { type MethodInfo, TagsSchema, TASK_STATE_NAMES, type TaskOptionsWire, TraceparentSchema, TracestateSchema } from "./messages.ts";
import { RateSchema } from "./rates.ts";

/** A method's task defaults on the wire (HELLO `methods[m].task`). */
export type MethodTaskDefaultsWire = NonNullable<MethodInfo["task"]>;

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

/** What `@serviceMethod({ task })` takes: the task defaults, plus the method's rate limit. */
export interface MethodTaskDefaults extends TaskDefaults {
  /**
   * At most this many of the method's executions start per second, minute or hour, across all
   * dealers: `"10/m"`, `"100/s"`, `"5/h"`. Tasks over the rate wait in the queue, in order; plain
   * calls too. The router's `rateLimits` option wins over it.
   */
  rateLimit?: string;
}

/** Options of `client.submit`. */
export interface SubmitOptions extends TaskDefaults {
  /**
   * A key (a customer id, say) whose tasks share one rate, `rateKeyLimit`, across methods: tasks
   * over it wait, and tasks of other keys go ahead.
   */
  rateKey?: string;
  /** The rate of `rateKey`: `"5/s"`, `"100/m"`, `"10/h"`. Required with `rateKey`. */
  rateKeyLimit?: string;
  /**
   * A key (a tenant id, say) of which at most `concurrencyLimit` tasks run at once, across
   * methods; the others wait while tasks of other keys go ahead.
   */
  concurrencyKey?: string;
  /** Most tasks with `concurrencyKey` running at once. Default 1. */
  concurrencyLimit?: number;
  /** When it may start: a Date or an ISO 8601 string; instead of `countdown`. */
  eta?: Date | string;
  /** The same key within the result TTL gives the same task, not a second run. */
  idempotencyKey?: string;
  /** Store the task even if no dealer offers the method yet. Default false. */
  waitForDealer?: boolean;
  /** Tags the dealer of every attempt must have (`{ gpu: "h200" }`); see CallOptions.require. */
  require?: Record<string, string>;
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

const LimitKey = v.pipe(v.string(), v.minLength(1), v.maxLength(256));

const MethodTaskDefaultsSchema = v.strictObject({ ...TaskDefaultsSchema.entries, rateLimit: v.optional(RateSchema) });

const SubmitOptionsSchema = v.strictObject({
  ...TaskDefaultsSchema.entries,
  rateKey: v.optional(LimitKey),
  rateKeyLimit: v.optional(RateSchema),
  concurrencyKey: v.optional(LimitKey),
  concurrencyLimit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65_535))),
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
  require: v.optional(TagsSchema),
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
export function taskDefaultsToWire(options: MethodTaskDefaults, path = "task"): MethodTaskDefaultsWire {
  const parsed = v.safeParse(MethodTaskDefaultsSchema, options);
  if (!parsed.success) throw validationErrorFromIssues(parsed.issues, path);
  const { rateLimit, ...defaults } = parsed.output;
  const wire: MethodTaskDefaultsWire = defaultsToWire(defaults);
  if (rateLimit !== undefined) wire.rateLimit = rateLimit;
  return wire;
}

/** Checks submit options and gives their wire form plus `waitForDealer`; ValidationError names a bad field. */
export function submitOptionsToWire(options: SubmitOptions): {
  options: TaskOptionsWire;
  waitForDealer: boolean;
  require?: Record<string, string>;
} {
  const parsed = v.safeParse(SubmitOptionsSchema, options);
  if (!parsed.success) throw validationErrorFromIssues(parsed.issues, "options");
  const {
    eta,
    idempotencyKey,
    waitForDealer,
    require,
    rateKey,
    rateKeyLimit,
    concurrencyKey,
    concurrencyLimit,
    traceparent,
    tracestate,
    ...defaults
  } = parsed.output;
  if (tracestate !== undefined && traceparent === undefined)
    throw new ValidationError("tracestate needs a traceparent", { data: { path: "options.tracestate" } });
  const wire = defaultsToWire(defaults);
  checkLimitKeys({ rateKey, rateKeyLimit, concurrencyKey, concurrencyLimit }, "options");
  if (rateKey !== undefined) wire.rateKey = rateKey;
  if (rateKeyLimit !== undefined) wire.rateKeyLimit = rateKeyLimit;
  if (concurrencyKey !== undefined) wire.concurrencyKey = concurrencyKey;
  if (concurrencyLimit !== undefined) wire.concurrencyLimit = concurrencyLimit;
  if (traceparent !== undefined) wire.trace = { traceparent, ...(tracestate !== undefined ? { tracestate } : {}) };
  if (eta !== undefined) wire.etaMs = (typeof eta === "string" ? new Date(eta) : eta).getTime();
  if (idempotencyKey !== undefined) wire.idempotencyKey = idempotencyKey;
  const hasRequire = require !== undefined && Object.keys(require).length > 0;
  return { options: wire, waitForDealer: waitForDealer ?? false, ...(hasRequire ? { require } : {}) };
}

/**
 * The rules between the key options that a schema per field cannot say: a rate key needs its
 * rate, a rate or limit needs its key. Throws ValidationError naming the field.
 */
export function checkLimitKeys(
  options: Pick<TaskOptionsWire, "rateKey" | "rateKeyLimit" | "concurrencyKey" | "concurrencyLimit">,
  path: string,
): void {
  const fail = (field: string, message: string) => {
    throw new ValidationError(`${path}.${field}: ${message}`, { data: { path: `${path}.${field}` } });
  };
  if (options.rateKey !== undefined && options.rateKeyLimit === undefined) fail("rateKeyLimit", 'a rateKey needs its rate, e.g. "5/s"');
  if (options.rateKeyLimit !== undefined && options.rateKey === undefined) fail("rateKey", "rateKeyLimit needs a rateKey");
  if (options.concurrencyLimit !== undefined && options.concurrencyKey === undefined)
    fail("concurrencyKey", "concurrencyLimit needs a concurrencyKey");
}

const TaskErrorSchema = v.object({ code: v.string(), message: v.string(), data: v.optional(v.unknown()) });

/** A task as the router describes it (getTask, submit, waitTask, revokeTask, listTasks). */
export const TaskInfoSchema = v.object({
  id: v.string(),
  method: v.string(),
  /** "blocked", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "revoked" or "expired". */
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
  /** The schedule that fired it and the due time (ISO 8601) it fired for. */
  schedule: v.optional(v.object({ name: v.string(), dueAt: v.string() })),
  /** The submit's concurrency key and its limit, when it had one. */
  concurrencyKey: v.optional(v.string()),
  concurrencyLimit: v.optional(v.number()),
  /** The submit's rate key and its rate, when it had one. */
  rateKey: v.optional(v.string()),
  rateKeyLimit: v.optional(v.string()),
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
