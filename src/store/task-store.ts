/**
 * The task store contract: what the task layer needs from durable storage, as verbs (never
 * tables). Two implementations share one behaviour suite (test/conformance/task-store.cases.ts):
 * MemoryTaskStore and SqliteTaskStore. A server database can be added behind the same contract.
 *
 * Writes resolve once they are committed (a store may group the writes of one turn of the event
 * loop into one transaction); a write's boolean says whether it applied (a transition from a
 * state TRANSITIONS does not allow returns false and changes nothing). Reads see every write
 * made before them, committed or not yet.
 */
import type { TaskState, TransitionName } from "./task-states.ts";

/** How an attempt's failure leads to the next attempt. Times in milliseconds. */
export interface RetryPolicy {
  /** Further attempts after a failure that may be retried. */
  retries: number;
  /** Delay before the first retry. */
  retryDelayMs: number;
  backoff: "fixed" | "exponential";
  /** Cap on the delay of any retry. */
  retryDelayMaxMs: number;
  /** Error codes or names that are retried; empty: every failure of the method is. */
  retryOn: string[];
  /** Further attempts after attempts cut off by a lost dealer or a router restart. */
  lostRetries: number;
}

/** Per-task settings fixed at submit. Times in milliseconds. */
export interface TaskPolicy extends RetryPolicy {
  /** Tags the dealer of every attempt must have (a submit's `require`); undefined: any dealer. */
  require?: Record<string, string>;
  /** Longest one attempt may run; undefined: no limit. */
  timeLimitMs?: number;
  /** How long a finished task's record is kept. */
  resultTtlMs: number;
  /** Tasks with this key share one rate, `rateKeyLimit` ("5/s"), across methods. */
  rateKey?: string;
  rateKeyLimit?: string;
  /** At most `concurrencyLimit` tasks with this key run at once, across methods. */
  concurrencyKey?: string;
  concurrencyLimit?: number;
  /** The W3C trace context given at submit; every attempt carries it to its dealer. */
  trace?: { traceparent: string; tracestate?: string };
}

/** An error as stored and sent: the wire's `{ code, message, data? }`. */
export interface TaskError {
  code: string;
  message: string;
  data?: unknown;
}

/** One task. Times are milliseconds since the epoch. */
export interface TaskRecord {
  /** Time-ordered and unguessable (UUIDv7). */
  id: string;
  /** Insertion order, assigned by the store: FIFO among equal priorities. */
  seq: number;
  /** `Service.method`. */
  method: string;
  /** The call's JSON argument array, as the encoded payload frame. */
  args: Uint8Array;
  state: TaskState;
  /** 0..9, higher first. */
  priority: number;
  createdAt: number;
  /** When it may (next) start: submit time, countdown/eta, or the end of a retry's backoff. */
  runAt: number;
  /** Not started by then: expired. */
  expiresAt?: number;
  /** When the latest attempt started. */
  startedAt?: number;
  finishedAt?: number;
  /** When a finished record is deleted. */
  purgeAt?: number;
  /** Attempts started so far. */
  attempts: number;
  /** Attempts of those cut off by a lost dealer or a router restart. */
  lostAttempts: number;
  idempotencyKey?: string;
  policy: TaskPolicy;
  /** The latest progress value the method reported (any JSON). */
  progress?: unknown;
  /** The result payload (encoded JSON) of a succeeded task. */
  result?: Uint8Array;
  /** Why it failed, was revoked or expired; for a retrying task, why the last attempt failed. */
  error?: TaskError;
  /** The id of the flow (its root task) this task is a node of; absent for a task alone. */
  flowId?: string;
  /** The schedule that fired it, and the due time it fired for. */
  schedule?: ScheduleOrigin;
}

/** Where a fired task came from. */
export interface ScheduleOrigin {
  name: string;
  /** The due time (ms since the epoch) it was fired for. */
  dueAt: number;
}

/** How a schedule treats due times missed while the router was down. */
export type CatchUp = "none" | "last" | "all";

/** A schedule (`client.schedules.set`): fires a task of `method` at each due time. Times in ms since the epoch. */
export interface ScheduleRecord {
  /** Unique; the key of every verb. */
  name: string;
  /** A cron expression; exactly one of `cron` and `everyMs` is set. */
  cron?: string;
  /** IANA time zone of `cron`; absent: UTC. */
  timezone?: string;
  /** An interval, counted from `since`. */
  everyMs?: number;
  method: string;
  /** Each fired task's arguments: the encoded JSON array. */
  args: Uint8Array;
  /** Each fired task's options, in their wire form (JSON). */
  options: Record<string, unknown>;
  catchUp: CatchUp;
  paused: boolean;
  createdAt: number;
  /** When it was last set or resumed: due times at or before it never fire. */
  since: number;
  /** The latest due time fired, or passed over by its catch-up mode. */
  lastDueAt?: number;
}

/** What `updateSchedule` may change. */
export interface ScheduleFields {
  paused?: boolean;
  since?: number;
  lastDueAt?: number;
}

/** What `insert` needs: the store assigns `seq`. */
export type NewTask = Omit<
  TaskRecord,
  "seq" | "attempts" | "lostAttempts" | "startedAt" | "finishedAt" | "purgeAt" | "progress" | "result" | "error"
>;

export interface TaskFilter {
  state?: TaskState;
  method?: string;
  /** Created at or after (ms since the epoch). */
  createdFrom?: number;
  /** Created before (ms since the epoch). */
  createdTo?: number;
  /** At most this many; 1..1000. */
  limit: number;
  /** From a previous page's `cursor`: continue after it. */
  cursor?: string;
}

export interface TaskPage {
  /** Newest first. */
  tasks: TaskRecord[];
  /** Pass it back for the next page; absent on the last page. */
  cursor?: string;
}

/** Position in the dispatch order (priority descending, then seq ascending), for paging queued tasks. */
export interface QueuePosition {
  priority: number;
  seq: number;
}

/** Fields a transition may set besides the state. */
export interface TransitionFields {
  startedAt?: number;
  finishedAt?: number;
  purgeAt?: number;
  runAt?: number;
  result?: Uint8Array;
  error?: TaskError;
  /** markRunning: count one more attempt. */
  countAttempt?: boolean;
  /** markRetrying: the attempt was cut off by a lost dealer or restart. */
  countLost?: boolean;
  /** markReleased/markReleasedLater: the flow step's arguments, with the input it was given. */
  args?: Uint8Array;
  /** markReleased/markReleasedLater: the step's `expires`, counted from its release. */
  expiresAt?: number;
}

/** What a node of a flow is. */
export type FlowKind = "task" | "chain" | "group" | "chord";
/** How a node hangs from its parent: one of its steps, or one of its callbacks. */
export type FlowRole = "step" | "onSuccess" | "onFailure";

/**
 * Where one task sits in its flow. The shape is fixed at submit; what changes (state, result,
 * arguments on release) lives in the task record.
 */
export interface FlowLink {
  taskId: string;
  /** The flow's root task id (the root's own link carries its own id). */
  flowId: string;
  /** Absent for the root. */
  parentId?: string;
  /** Order among the parent's steps (a chord's group is 0, its callback 1); 0 for a callback. */
  position: number;
  role: FlowRole;
  kind: FlowKind;
  /** Groups: "all" (one failure fails the group) or "settled" (every member's outcome). */
  join?: "all" | "settled";
  /** Task steps: ignore the input (the previous step's result) instead of taking it as the first argument. */
  immutable?: boolean;
  /** Task steps: timing options counted from the step's release (milliseconds). */
  release?: { countdownMs?: number; etaMs?: number; expiresMs?: number };
}

/** A flow link with its task's state and method now; both are absent when the task was purged. */
export interface StoredFlowLink extends FlowLink {
  state?: TaskState;
  method?: string;
}

export interface TaskStore {
  /**
   * Stores a new task. With an idempotency key already held by a task that is not purged, stores
   * nothing and returns that task with `created: false`.
   */
  insert(task: NewTask): Promise<{ task: TaskRecord; created: boolean }>;
  get(id: string): TaskRecord | undefined;
  list(filter: TaskFilter): TaskPage;
  /** Queued tasks of `method` in dispatch order, after `after` when given. */
  queued(method: string, limit: number, after?: QueuePosition): TaskRecord[];
  /** Methods with at least one queued task. */
  queuedMethods(): string[];
  /** Scheduled and retrying tasks whose `runAt` is at or before `now`, earliest first. */
  due(now: number, limit: number): TaskRecord[];
  /** The earliest `runAt` of any scheduled or retrying task. */
  nextDueAt(): number | undefined;
  /** Queued, scheduled and retrying tasks whose `expiresAt` is at or before `now`. */
  expiring(now: number, limit: number): TaskRecord[];
  /** The earliest `expiresAt` of a task not started yet. */
  nextExpiryAt(): number | undefined;
  /** Every task in `running` (after a restart: attempts cut off). */
  running(): TaskRecord[];
  /** Applies a named transition if the task's state allows it (TRANSITIONS). */
  transition(id: string, name: TransitionName, fields?: TransitionFields): Promise<boolean>;
  /** Stores the latest progress value of a running task. */
  setProgress(id: string, progress: unknown): Promise<boolean>;
  /**
   * Deletes up to `limit` finished tasks whose `purgeAt` is at or before `now`, with their flow
   * links; returns how many. A step of a flow whose root has not finished is kept (its result
   * may still be needed).
   */
  purge(now: number, limit: number): Promise<number>;
  /** How many tasks are in each state. */
  counts(): Record<TaskState, number>;
  /**
   * Stores a whole flow in one transaction: every task (the root first) and every link, or
   * nothing. With the root's idempotency key already held, stores nothing and returns that task.
   */
  insertFlow(tasks: NewTask[], links: FlowLink[]): Promise<{ root: TaskRecord; created: boolean }>;
  /** Every link of a flow, parents before their children, steps in order. */
  flowLinks(flowId: string): StoredFlowLink[];
  /** Ids of flows that have a task not yet final (after a restart: flows to carry on). */
  openFlows(): string[];
  // ---- schedules ----
  /** Stores a schedule, replacing the one of the same name, in one write. */
  putSchedule(schedule: ScheduleRecord): Promise<void>;
  getSchedule(name: string): ScheduleRecord | undefined;
  /** Every schedule, by name. */
  listSchedules(): ScheduleRecord[];
  /** Deletes the schedule; false when there was none of that name. */
  removeSchedule(name: string): Promise<boolean>;
  /** Changes a stored schedule; false when there is none of that name. */
  updateSchedule(name: string, fields: ScheduleFields): Promise<boolean>;
  /** Commits what is pending and releases the store. */
  close(): Promise<void>;
}
