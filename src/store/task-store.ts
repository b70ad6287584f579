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
  /** Longest one attempt may run; undefined: no limit. */
  timeLimitMs?: number;
  /** How long a finished task's record is kept. */
  resultTtlMs: number;
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
  /** Deletes up to `limit` finished tasks whose `purgeAt` is at or before `now`; returns how many. */
  purge(now: number, limit: number): Promise<number>;
  /** How many tasks are in each state. */
  counts(): Record<TaskState, number>;
  /** Commits what is pending and releases the store. */
  close(): Promise<void>;
}
