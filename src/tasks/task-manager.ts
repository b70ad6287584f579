/**
 * TaskManager: durable background work on top of the router. A task is a record in the store;
 * each attempt is one router call that the manager owns (TaskHost). It moves tasks through
 * their states (one store transition per move), feeds each method's free dealer slots from an
 * in-memory window in priority order, retries, revokes and tells watchers what happened. What
 * time drives (waking scheduled and retrying tasks when due, expiry, purge) is its TaskClock's.
 */
import {
  errorToWire,
  NoSuchMethodError,
  type Tags,
  TaskNotFoundError,
  TimeoutError,
  ValidationError,
  type WireError,
} from "../protocol/index.ts";
import { isFinal, type TaskState, type TransitionName } from "../store/task-states.ts";
import type { ScheduleOrigin, TaskError, TaskFilter, TaskPage, TaskRecord, TaskStore, TransitionFields } from "../store/task-store.ts";
import type { Logger } from "../util/log.ts";
import type { AttemptHandle, AttemptSink, TaskHost } from "./host.ts";
import { KeyLimits } from "./key-limits.ts";
import { MethodWindow, ranksBefore } from "./method-window.ts";
import { ParkedTasks } from "./parked-tasks.ts";
import { decideRetry } from "./retry-policy.ts";
import { MAX_TIMER_MS, TaskClock } from "./task-clock.ts";
import { newTaskId } from "./task-id.ts";
import { resolveTask, type TaskOptions } from "./task-options.ts";
import { type TaskEvent, type TaskListener, TaskWatchers } from "./watchers.ts";

export interface TaskManagerOptions {
  store: TaskStore;
  host: TaskHost;
  logger: Logger;
  /** Queued tasks held in memory per method. Default 1000. */
  windowSize?: number;
  /** How often finished records past their TTL are deleted. Default 60 s. */
  purgeIntervalMs?: number;
  /** The clock (tests). Default Date.now. */
  now?: () => number;
  /** Randomness for retry jitter (tests). Default Math.random. */
  random?: () => number;
}

/** An attempt between its markRunning and its outcome. */
interface Attempt {
  task: TaskRecord;
  /** 1 for the first attempt. */
  number: number;
  handle: AttemptHandle | undefined;
  /** Revoked while it ran (or while it was being started): its outcome is ignored. */
  revoked: boolean;
  /** Its hold on its concurrency key was given back. */
  ended: boolean;
}

/** How long a revoke with terminate lets the method stop by its signal before its process is ended. */
const TERMINATE_GRACE_MS = 1000;
/**
 * Most tasks of one method parked behind their keys. Past it the method's queue waits at its head
 * (head-of-line blocking comes back) rather than hold an unbounded backlog in memory.
 */
const MAX_PARKED_PER_METHOD = 100_000;

export class TaskManager {
  readonly watchers = new TaskWatchers();
  /** Told when an attempt starts, with its start time (metrics: how long the task waited since its runAt). */
  attemptStarted: ((task: TaskRecord, startedAt: number) => void) | undefined = undefined;
  private readonly store: TaskStore;
  private readonly host: TaskHost;
  private readonly log: Logger;
  private readonly windowSize: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly windows = new Map<string, MethodWindow>();
  private readonly attempts = new Map<string, Attempt>();
  /**
   * Methods that may have queued tasks. Capacity news for any other method (every reply of a
   * plain call brings some) costs one set lookup.
   */
  private readonly withQueued = new Set<string>();
  /** Attempts per method whose markRunning is not committed yet: they hold a slot already. */
  private readonly starting = new Map<string, number>();
  /** Per-method parked tasks (waiting for a concurrency or rate key). */
  private readonly parked = new Map<string, ParkedTasks>();
  /** For each block key ("c:" + concurrency key, "r:" + rate key): methods with tasks parked behind it. */
  private readonly parkedMethods = new Map<string, Set<string>>();
  private readonly keys: KeyLimits;
  /** One timer per method over its rate limit: it pumps the method when its next token is due. */
  private readonly rateTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly clock: TaskClock;
  private stopped = false;
  /** Hears every task that reaches a final state (the flow engine: src/tasks/flows/). */
  private finishedListener: ((taskId: string, state: TaskState) => void) | undefined;

  constructor(options: TaskManagerOptions) {
    this.store = options.store;
    this.host = options.host;
    this.log = options.logger;
    this.windowSize = options.windowSize ?? 1000;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.keys = new KeyLimits(this.now, (key) => this.released(key));
    this.clock = new TaskClock({
      store: this.store,
      logger: this.log,
      purgeIntervalMs: options.purgeIntervalMs ?? 60_000,
      now: this.now,
      work: {
        expire: (task) => this.finish(task, "markExpired", expiredError(task)),
        queueDue: (task) => this.queueDue(task),
        pump: (method) => this.pump(method),
        sweepIdle: () => this.keys.sweep(),
      },
    });
  }

  /**
   * Takes over the store: attempts that were running when the router last stopped were cut off
   * (they count as lost and are retried, or fail), then due work starts. Returns what the store
   * holds, in words ("3 queued, 10 succeeded").
   */
  async start(): Promise<string> {
    for (const task of this.store.running()) {
      const error: WireError = { code: "DEALER_LOST", message: "the router restarted while the attempt ran" };
      await this.afterFailure(task, task.attempts, error, true);
    }
    await this.clock.start();
    for (const method of this.store.queuedMethods()) {
      this.queuedIn(method);
      this.pump(method);
    }
    return describeCounts(this.store.counts());
  }

  /** Stops timers; running attempts stay `running` in the store and are retried after a restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.host.onCapacity(undefined);
    this.clock.stop();
    for (const timer of this.rateTimers.values()) clearTimeout(timer);
    this.rateTimers.clear();
    this.keys.stop();
    await this.store.close();
  }

  // ---- the client's verbs ----

  /**
   * Stores a new task (resolves once committed) and starts it when due and a slot is free.
   * `require`: tags every attempt's dealer must have. `origin`: the schedule and due time that fired it.
   */
  async submit(
    method: string,
    args: Uint8Array,
    options: TaskOptions,
    waitForDealer = false,
    require?: Tags,
    origin?: ScheduleOrigin,
  ): Promise<TaskRecord> {
    const requirement = require !== undefined && Object.keys(require).length > 0 ? require : undefined;
    const offered = this.host.method(method, requirement);
    if (!offered && !waitForDealer) {
      if (requirement === undefined || !this.host.method(method))
        throw new NoSuchMethodError(`no service offers ${method}`, { data: { method } });
      const named = Object.entries(requirement)
        .map(([name, value]) => `${name}=${value}`)
        .join(", ");
      throw new NoSuchMethodError(`no service offers ${method} with ${named}`, { data: { method, require: requirement } });
    }
    if (offered?.stream) {
      throw new ValidationError(`${method} is a streaming method: call it with stream(); a task runs a unary method`, {
        data: { path: "method" },
      });
    }
    const now = this.now();
    const task = resolveTask(newTaskId(now), method, args, options, offered?.taskDefaults ?? {}, now);
    if (requirement !== undefined) task.policy.require = requirement;
    if (origin !== undefined) task.schedule = origin;
    const { task: record, created } = await this.store.insert(task);
    if (created) this.admit(record);
    return record;
  }

  // ---- the seam for flows (src/tasks/flows/) ----

  /** From now on `listener` hears every task that reaches a final state, after it is committed. */
  onFinished(listener: ((taskId: string, state: TaskState) => void) | undefined): void {
    this.finishedListener = listener;
  }

  /** A task the store holds as queued or scheduled now (a new one, or a flow step released): run it when due. */
  admit(record: TaskRecord): void {
    if (record.state === "queued") {
      this.window(record.method).offer(record);
      this.queuedIn(record.method);
      this.pump(record.method);
    } else if (record.state === "scheduled") {
      this.clock.wakeBy(record.runAt);
    }
    if (record.expiresAt !== undefined) this.clock.wakeBy(record.expiresAt);
    this.emit(record.id, record.state);
  }

  /** Ends a flow's chain, group or chord (blocked → succeeded with `result`, or failed with `error`). */
  async completeFlowStep(id: string, outcome: { result: Uint8Array } | { error: TaskError }): Promise<boolean> {
    const record = this.store.get(id);
    if (!record) return false;
    const now = this.now();
    const fields: TransitionFields = { finishedAt: now, purgeAt: now + record.policy.resultTtlMs, ...outcome };
    const succeeded = "result" in outcome;
    const applied = await this.store.transition(id, succeeded ? "markJoined" : "markFailed", fields);
    if (applied) this.ended(id, succeeded ? "succeeded" : "failed");
    return applied;
  }

  /** Throws ValidationError when `options` cannot make a task of `method` (a schedule's, at set). */
  checkOptions(method: string, options: TaskOptions): void {
    const offered = this.host.method(method);
    if (offered?.stream) {
      throw new ValidationError(`${method} is a streaming method; a task runs a unary method`, { data: { path: "method" } });
    }
    const now = this.now();
    resolveTask("check", method, new Uint8Array(), options, offered?.taskDefaults ?? {}, now);
  }

  /** The task, or TaskNotFoundError. */
  get(id: string): TaskRecord {
    const record = this.store.get(id);
    if (!record) throw new TaskNotFoundError(`no task has the id ${id}`, { data: { taskId: id } });
    return record;
  }

  list(filter: TaskFilter): TaskPage {
    return this.store.list(filter);
  }

  /**
   * Revokes a task that has not finished: one that has not started never will; a running one has
   * its attempt cancelled (the method's AbortSignal fires), and with `terminate`, the dealer's
   * process is ended if the method has not stopped a second later. A finished task is left as it is.
   */
  async revoke(id: string, options: { terminate?: boolean } = {}): Promise<TaskRecord> {
    const record = this.get(id);
    if (isFinal(record.state)) return record;
    const attempt = this.attempts.get(id);
    if (attempt) {
      attempt.revoked = true;
      if (options.terminate) attempt.handle?.terminate(TERMINATE_GRACE_MS);
      else attempt.handle?.cancel();
      this.endAttempt(attempt);
    }
    const error: TaskError = { code: "CANCELLED", message: "the task was revoked" };
    await this.finish(record, "markRevoked", error);
    return this.get(id);
  }

  /**
   * Runs a failed, revoked or expired task again, as a new task: a new id, the same method,
   * arguments, priority and policy, queued now (no countdown, no expiry, no idempotency key).
   * The old record stays as it was, so its history is not rewritten. Refuses (ValidationError)
   * a task that has not finished or that succeeded.
   */
  async retry(id: string): Promise<TaskRecord> {
    const old = this.get(id);
    if (!isFinal(old.state) || old.state === "succeeded") {
      throw new ValidationError(`task ${id} is ${old.state}: only a failed, revoked or expired task can be retried`, {
        data: { path: "taskId", taskId: id },
      });
    }
    // A workflow's chain, group or chord record is no method a dealer runs: a copy would wait for ever.
    if (old.flowId !== undefined && (old.method === "chain" || old.method === "group" || old.method === "chord")) {
      throw new ValidationError(`task ${id} is the ${old.method} of a workflow, not a method: submit the flow again to rerun it`, {
        data: { path: "taskId", taskId: id },
      });
    }
    const now = this.now();
    const { task: record } = await this.store.insert({
      id: newTaskId(now),
      method: old.method,
      args: old.args,
      state: "queued",
      priority: old.priority,
      createdAt: now,
      runAt: now,
      policy: old.policy,
    });
    this.window(record.method).offer(record);
    this.queuedIn(record.method);
    this.pump(record.method);
    return record;
  }

  /**
   * The task if it is final, undefined while it is not; TaskNotFoundError for an unknown id. A
   * task with an attempt in hand is running (or starting) in the store: known without a read.
   */
  finalRecord(id: string): TaskRecord | undefined {
    if (this.attempts.has(id)) return undefined;
    const record = this.get(id);
    return isFinal(record.state) ? record : undefined;
  }

  /** Hears every event of `id` from now on; throws TaskNotFoundError for an unknown id. */
  watch(id: string, listener: TaskListener): () => void {
    this.get(id);
    return this.watchers.add(id, listener);
  }

  /** Resolves with the task once it is final; rejects with TimeoutError after `timeoutMs` (the task goes on). */
  wait(id: string, timeoutMs: number | undefined): Promise<TaskRecord> {
    const record = this.finalRecord(id);
    if (record !== undefined) return Promise.resolve(record);
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const unsubscribe = this.watchers.add(id, (event) => {
        if (!isFinal(event.state)) return;
        unsubscribe();
        if (timer) clearTimeout(timer);
        const final = this.store.get(id);
        if (final) resolve(final);
        else reject(new TaskNotFoundError(`task ${id} was purged`, { data: { taskId: id } }));
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => {
            unsubscribe();
            reject(new TimeoutError(`task ${id} did not finish within ${timeoutMs} ms; it goes on`, { data: { timeoutMs, taskId: id } }));
          },
          Math.min(timeoutMs, MAX_TIMER_MS),
        );
      }
    });
  }

  /** Tasks by state, and what the manager holds in memory. */
  stats(): { counts: Record<TaskState, number>; running: number; windowed: number; parked: number; watchers: number } {
    let windowed = 0;
    for (const window of this.windows.values()) windowed += window.held;
    let parked = 0;
    for (const line of this.parked.values()) parked += line.size;
    return { counts: this.store.counts(), running: this.attempts.size, windowed, parked, watchers: this.watchers.size };
  }

  // ---- dispatch ----

  /**
   * Gives free slots of `method` the next queued tasks, in dispatch order: a task whose
   * concurrency key is full or whose rate key is out of tokens parks and the next one goes; the
   * method's own rate limit holds the whole queue at its head.
   */
  private pump(method: string): void {
    if (this.stopped || !this.withQueued.has(method)) return;
    let free = this.host.freeSlots(method) - (this.starting.get(method) ?? 0);
    if (free <= 0) return;
    const window = this.window(method);
    const now = this.now();
    while (free > 0) {
      // Read each turn: the first task this pump parks creates the method's ParkedTasks.
      const parked = this.parked.get(method);
      const head = window.peek();
      const ready = parked?.peekReady();
      const fromParked = ready !== undefined && (head === undefined || ranksBefore(ready.task, head));
      const task = fromParked ? ready!.task : head;
      if (!task) {
        // Nothing queued in memory or in the store: forget the method until a task is queued.
        if (parked === undefined || parked.size === 0) this.noneQueuedIn(method);
        return;
      }
      const takeIt = () => (fromParked ? parked!.takeHead(ready!.key) : window.take());
      if (task.expiresAt !== undefined && task.expiresAt <= now) {
        takeIt();
        void this.finish(task, "markExpired", expiredError(task));
        continue;
      }
      const blockedBy = this.keys.blockOf(task);
      if (blockedBy !== undefined) {
        if (!fromParked && (parked?.size ?? 0) >= MAX_PARKED_PER_METHOD) return;
        takeIt();
        this.park(method, blockedBy, task);
        continue;
      }
      const waitMs = this.host.takeRateToken(method);
      if (waitMs > 0) {
        this.pumpIn(method, waitMs);
        return;
      }
      takeIt();
      this.keys.started(task);
      free--;
      void this.startAttempt(task);
    }
  }

  private park(method: string, key: string, task: TaskRecord): void {
    let parked = this.parked.get(method);
    if (!parked) this.parked.set(method, (parked = new ParkedTasks()));
    parked.park(key, task);
    let methods = this.parkedMethods.get(key);
    if (!methods) this.parkedMethods.set(key, (methods = new Set()));
    methods.add(method);
  }

  /** `key` has room again: the methods with tasks parked behind it try them. */
  private released(key: string): void {
    const methods = this.parkedMethods.get(key);
    if (!methods) return;
    for (const method of [...methods]) {
      if (!this.parked.get(method)?.release(key)) {
        methods.delete(method);
        continue;
      }
      this.pump(method);
    }
    if (methods.size === 0) this.parkedMethods.delete(key);
  }

  /** Pumps `method` after `waitMs`, when its next rate token is due; one timer per method. */
  private pumpIn(method: string, waitMs: number): void {
    if (this.stopped || this.rateTimers.has(method)) return;
    const timer = setTimeout(
      () => {
        this.rateTimers.delete(method);
        this.pump(method);
      },
      Math.min(MAX_TIMER_MS, Math.max(1, waitMs)),
    );
    this.rateTimers.set(method, timer);
  }

  /** An attempt stops holding its task's concurrency key (once, however it ended). */
  private endAttempt(attempt: Attempt): void {
    if (this.attempts.get(attempt.task.id) === attempt) this.attempts.delete(attempt.task.id);
    if (attempt.ended) return;
    attempt.ended = true;
    this.keys.ended(attempt.task);
  }

  private async startAttempt(task: TaskRecord): Promise<void> {
    if (this.attempts.has(task.id)) {
      // Offered again after a load had already brought it in, and started: not a second attempt.
      this.pump(task.method);
      return;
    }
    const attempt: Attempt = { task, number: task.attempts + 1, handle: undefined, revoked: false, ended: false };
    this.attempts.set(task.id, attempt);
    this.keys.holds(task);
    this.starting.set(task.method, (this.starting.get(task.method) ?? 0) + 1);
    let started: boolean;
    const startedAt = this.now();
    try {
      started = await this.store.transition(task.id, "markRunning", { startedAt, countAttempt: true });
    } catch (error) {
      this.log.error(`tasks: could not start ${task.id}: ${(error as Error).message}`);
      started = false;
    } finally {
      this.starting.set(task.method, (this.starting.get(task.method) ?? 1) - 1);
    }
    if (!started || attempt.revoked || this.stopped) {
      this.endAttempt(attempt);
      this.pump(task.method);
      return;
    }
    this.emit(task.id, "running");
    this.attemptStarted?.(task, startedAt);
    const sink: AttemptSink = {
      result: (payload) => void this.onResult(attempt, payload),
      error: (error, lost) => void this.onError(attempt, error, lost),
      progress: (value) => void this.onProgress(attempt, value),
    };
    attempt.handle = this.host.startAttempt(
      {
        taskId: task.id,
        attempt: attempt.number,
        method: task.method,
        args: task.args,
        ...(task.policy.timeLimitMs !== undefined ? { timeoutMs: task.policy.timeLimitMs } : {}),
        ...(task.policy.require !== undefined ? { require: task.policy.require } : {}),
        ...(task.policy.trace !== undefined ? { trace: task.policy.trace } : {}),
      },
      sink,
    );
  }

  private async onResult(attempt: Attempt, payload: Uint8Array): Promise<void> {
    if (!this.settle(attempt)) return;
    const now = this.now();
    const fields: TransitionFields = { result: payload, finishedAt: now, purgeAt: now + attempt.task.policy.resultTtlMs };
    if (await this.store.transition(attempt.task.id, "markSucceeded", fields)) this.ended(attempt.task.id, "succeeded");
  }

  private async onError(attempt: Attempt, error: WireError, lost: boolean): Promise<void> {
    if (!this.settle(attempt)) return;
    // A router that stops cuts the attempt off like a lost dealer: it runs again after the restart.
    // QUEUE_FULL: the router's own call queue was full when the attempt arrived; it never ran.
    const cutOff = lost || error.code === "SHUTTING_DOWN" || error.code === "QUEUE_FULL";
    await this.afterFailure(attempt.task, attempt.number, error, cutOff);
  }

  private async onProgress(attempt: Attempt, value: unknown): Promise<void> {
    if (this.attempts.get(attempt.task.id) !== attempt) return;
    if (await this.store.setProgress(attempt.task.id, value)) {
      if (this.watchers.has(attempt.task.id)) {
        this.watchers.notify(attempt.task.id, { state: "running", progress: value, at: new Date(this.now()).toISOString() });
      }
    }
  }

  /** Ends `attempt`'s hold on its task; false when the outcome no longer matters (revoked). */
  private settle(attempt: Attempt): boolean {
    if (this.attempts.get(attempt.task.id) !== attempt) return false;
    this.endAttempt(attempt);
    return !attempt.revoked;
  }

  /** After attempt number `attempts` failed: retry (now or after a backoff) or fail for good. */
  private async afterFailure(task: TaskRecord, attempts: number, error: WireError, lost: boolean): Promise<void> {
    const decision = decideRetry(task.policy, { attempts, lostAttempts: task.lostAttempts }, error, lost, this.random);
    if (!decision.retry) {
      await this.finish(task, "markFailed", error);
      return;
    }
    const runAt = this.now() + decision.delayMs;
    const applied = await this.store.transition(task.id, "markRetrying", { runAt, error, countLost: decision.lost });
    if (!applied) return;
    this.emit(task.id, "retrying");
    this.clock.wakeBy(runAt);
  }

  /** Moves a task to a final state (failed, revoked, expired), keeping it for its result TTL. */
  private async finish(task: TaskRecord, name: TransitionName, error: TaskError): Promise<void> {
    const now = this.now();
    const applied = await this.store.transition(task.id, name, { error, finishedAt: now, purgeAt: now + task.policy.resultTtlMs });
    this.windows.get(task.method)?.remove(task.id);
    this.parked.get(task.method)?.remove(task.id);
    if (applied) this.ended(task.id, this.store.get(task.id)?.state ?? "failed");
  }

  /** A scheduled or retrying task the clock found due: queued, into its method's window (the clock pumps). */
  private async queueDue(task: TaskRecord): Promise<boolean> {
    if (!(await this.store.transition(task.id, "markQueued"))) return false;
    const queued = { ...task, state: "queued" as const };
    this.window(task.method).offer(queued);
    this.queuedIn(task.method);
    this.emit(task.id, "queued");
    return true;
  }

  /** `method` may have queued tasks: listen for free slots (the first such method starts it). */
  private queuedIn(method: string): void {
    if (this.withQueued.has(method)) return;
    this.withQueued.add(method);
    if (this.withQueued.size === 1) this.host.onCapacity(this.pumpOnCapacity);
  }

  /** No task of `method` is queued any more; with none queued anywhere, stop listening. */
  private noneQueuedIn(method: string): void {
    if (!this.withQueued.delete(method)) return;
    if (this.withQueued.size === 0) this.host.onCapacity(undefined);
  }

  private readonly pumpOnCapacity = (method: string) => this.pump(method);

  private window(method: string): MethodWindow {
    let window = this.windows.get(method);
    if (!window) this.windows.set(method, (window = new MethodWindow(method, this.store, this.windowSize)));
    return window;
  }

  /** A task reached a final state: its watchers hear it, then the flow engine. */
  private ended(taskId: string, state: TaskState): void {
    this.emit(taskId, state);
    this.finishedListener?.(taskId, state);
  }

  private emit(taskId: string, state: TaskState): void {
    if (!this.watchers.has(taskId)) return;
    const event: TaskEvent = { state, at: new Date(this.now()).toISOString() };
    this.watchers.notify(taskId, event);
  }
}

function expiredError(task: TaskRecord): TaskError {
  return errorToWire(
    new TimeoutError(`the task expired: it had not started by ${new Date(task.expiresAt ?? 0).toISOString()}`, { data: { expired: true } }),
  );
}

function describeCounts(counts: Record<TaskState, number>): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`);
  return parts.length > 0 ? parts.join(", ") : "none stored";
}
