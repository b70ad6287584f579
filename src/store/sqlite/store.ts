/**
 * SqliteTaskStore: the task store contract on one SQLite file (bun:sqlite, WAL). Writes of one
 * turn of the event loop share one transaction (group commit): a write's promise resolves after
 * the COMMIT that contains it, so durability costs one commit per batch, not per task. With
 * `synchronous = NORMAL` (the default) a commit survives the process being killed; with
 * `durability: "full"` it also survives a power loss, at a few times the cost per batch.
 */
import { Database, type Statement } from "bun:sqlite";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import { StoreFailure, TaskStoreError } from "../errors.ts";
import type {
  FlowLink,
  NewTask,
  QueuePosition,
  ScheduleFields,
  ScheduleRecord,
  StoredFlowLink,
  TaskError,
  TaskFilter,
  TaskPage,
  TaskPolicy,
  TaskRecord,
  TaskStore,
  TransitionFields,
} from "../task-store.ts";
import { type TaskState, TRANSITIONS, type TransitionName } from "../task-states.ts";
import { StateCounts } from "../state-counts.ts";
import { FlowLinkTable } from "./flow-links.ts";
import { migrate } from "./migrate.ts";
import { ScheduleTable } from "./schedules.ts";
import type { SqlContext, SqlValue } from "./sql.ts";

export interface SqliteTaskStoreOptions {
  /** "normal" (default: survives a process crash) or "full" (also a power loss: fsync per commit). */
  durability?: "normal" | "full";
}

interface TaskRow {
  seq: number;
  id: string;
  method: string;
  args: Uint8Array;
  state: TaskState;
  priority: number;
  created_at: number;
  run_at: number;
  expires_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  purge_at: number | null;
  attempts: number;
  lost_attempts: number;
  idempotency_key: string | null;
  policy: string;
  progress: string | null;
  result: Uint8Array | null;
  error: string | null;
  flow_id: string | null;
  schedule_name: string | null;
  schedule_due_at: number | null;
}

interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

const NOT_STARTED = "('scheduled', 'queued', 'retrying')";
const FINAL = "('succeeded', 'failed', 'revoked', 'expired')";

export class SqliteTaskStore implements TaskStore {
  private readonly db: Database;
  private inTransaction = false;
  private pending: Pending[] = [];
  private readonly statements = new Map<string, Statement>();
  /** Each transition's UPDATE statements, by the bits of the TRANSITION_COLUMNS it sets (also in `statements`). */
  private readonly transitionStatements = new Map<TransitionName, Statement[]>();
  private closed = false;
  /** The per-table SQL gets only this: writes join the batch transaction, reads use the statement cache. */
  private readonly sql: SqlContext = {
    write: (sql, ...params) => this.write(sql, ...params),
    statement: (sql) => this.statement(sql),
  };
  private readonly scheduleTable = new ScheduleTable(this.sql);
  /** Tasks per state, moved by each write below (and counted afresh at open and after a rollback). */
  private readonly stateCounts = new StateCounts();
  private readonly flowLinkTable = new FlowLinkTable(this.sql);

  /** Opens (creating if needed) and migrates the store at `path`; throws TaskStoreError when it cannot. */
  constructor(
    readonly path: string,
    options: SqliteTaskStoreOptions = {},
  ) {
    try {
      this.db = new Database(path, { create: true, strict: true });
      this.db.exec("PRAGMA journal_mode = WAL");
      this.db.exec(`PRAGMA synchronous = ${options.durability === "full" ? "FULL" : "NORMAL"}`);
      this.db.exec("PRAGMA busy_timeout = 1000");
      migrate(this.db, path);
      this.recount();
      // A store file is the router's alone: a second router on it would run every task twice.
      this.db.exec("PRAGMA locking_mode = EXCLUSIVE");
      this.db.exec("BEGIN EXCLUSIVE");
      this.db.exec("COMMIT");
    } catch (error) {
      throw asStoreError(error, path);
    }
  }

  insert(task: NewTask): Promise<{ task: TaskRecord; created: boolean }> {
    if (task.idempotencyKey !== undefined) {
      const existing = this.statement("SELECT * FROM tasks WHERE idempotency_key = ?").get(task.idempotencyKey) as TaskRow | null;
      if (existing) {
        if (existing.purge_at === null || existing.purge_at > task.createdAt) {
          return this.afterCommit({ task: fromRow(existing), created: false });
        }
        // Its result TTL is over: the key is free before the purge gets to the record.
        this.write("DELETE FROM tasks WHERE seq = ?", existing.seq);
        this.stateCounts.removed(existing.state);
      }
    }
    // The record is built from what was inserted: RETURNING * cost about 60 % more than the INSERT itself.
    const values = taskValues(task);
    const seq = this.insertTask(values);
    this.stateCounts.added(task.state);
    return this.afterCommit({ task: insertedRecord(task, seq, values[POLICY_VALUE] as string), created: true });
  }

  insertFlow(tasks: NewTask[], links: FlowLink[]): Promise<{ root: TaskRecord; created: boolean }> {
    const [first] = tasks;
    if (!first) throw new Error("insertFlow needs at least the root task");
    if (first.idempotencyKey !== undefined) {
      const existing = this.statement("SELECT * FROM tasks WHERE idempotency_key = ?").get(first.idempotencyKey) as TaskRow | null;
      if (existing && (existing.purge_at === null || existing.purge_at > first.createdAt)) {
        return this.afterCommit({ root: fromRow(existing), created: false });
      }
    }
    // Inside the batch transaction, a savepoint makes the flow all or nothing on its own.
    this.write("SAVEPOINT flow");
    let root: TaskRecord;
    let replaced: { state: TaskState }[] = [];
    try {
      if (first.idempotencyKey !== undefined) {
        replaced = this.writeRows<{ state: TaskState }>(
          "DELETE FROM tasks WHERE idempotency_key = ? RETURNING state",
          first.idempotencyKey,
        );
      }
      const rootValues = taskValues(first);
      root = insertedRecord(first, this.insertTask(rootValues), rootValues[POLICY_VALUE] as string);
      for (const task of tasks.slice(1)) this.write(INSERT_TASK, ...taskValues(task));
      for (const link of links) this.flowLinkTable.insert(link);
      this.write("RELEASE flow");
      // Counted once the flow is in whole: a rolled-back savepoint changed no count.
      for (const { state } of replaced) this.stateCounts.removed(state);
      for (const task of tasks) this.stateCounts.added(task.state);
    } catch (error) {
      this.db.exec("ROLLBACK TO flow");
      this.db.exec("RELEASE flow");
      const message = error instanceof Error ? error.message : String(error);
      return Promise.reject(
        new TaskStoreError(`the flow could not be stored in ${this.path} (nothing of it was): ${message}`, StoreFailure.UNWRITABLE, {
          cause: error,
        }),
      );
    }
    return this.afterCommit({ root, created: true });
  }

  flowLinks(flowId: string): StoredFlowLink[] {
    return this.flowLinkTable.list(flowId);
  }

  openFlows(): string[] {
    const rows = this.statement(`SELECT DISTINCT flow_id FROM tasks WHERE flow_id IS NOT NULL AND state NOT IN ${FINAL}`).all() as {
      flow_id: string;
    }[];
    return rows.map((row) => row.flow_id);
  }

  get(id: string): TaskRecord | undefined {
    const row = this.statement("SELECT * FROM tasks WHERE id = ?").get(id) as TaskRow | null;
    return row ? fromRow(row) : undefined;
  }

  list(filter: TaskFilter): TaskPage {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.cursor !== undefined) {
      where.push("seq < ?");
      params.push(decodeCursor(filter.cursor));
    }
    if (filter.state !== undefined) {
      where.push("state = ?");
      params.push(filter.state);
    }
    if (filter.method !== undefined) {
      where.push("method = ?");
      params.push(filter.method);
    }
    if (filter.createdFrom !== undefined) {
      where.push("created_at >= ?");
      params.push(filter.createdFrom);
    }
    if (filter.createdTo !== undefined) {
      where.push("created_at < ?");
      params.push(filter.createdTo);
    }
    const sql = `SELECT * FROM tasks ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    const rows = this.statement(sql).all(...params, filter.limit + 1) as TaskRow[];
    const tasks = rows.slice(0, filter.limit).map(fromRow);
    return rows.length > filter.limit ? { tasks, cursor: encodeCursor(tasks[tasks.length - 1].seq) } : { tasks };
  }

  queued(method: string, limit: number, after?: QueuePosition): TaskRecord[] {
    const rows = after
      ? this.statement(
          `SELECT * FROM tasks WHERE state = 'queued' AND method = ? AND (priority < ? OR (priority = ? AND seq > ?))
           ORDER BY priority DESC, seq LIMIT ?`,
        ).all(method, after.priority, after.priority, after.seq, limit)
      : this.statement("SELECT * FROM tasks WHERE state = 'queued' AND method = ? ORDER BY priority DESC, seq LIMIT ?").all(method, limit);
    return (rows as TaskRow[]).map(fromRow);
  }

  queuedMethods(): string[] {
    return (this.statement("SELECT DISTINCT method FROM tasks WHERE state = 'queued' ORDER BY method").all() as { method: string }[]).map(
      (row) => row.method,
    );
  }

  due(now: number, limit: number): TaskRecord[] {
    const rows = this.statement(
      "SELECT * FROM tasks WHERE state IN ('scheduled', 'retrying') AND run_at <= ? ORDER BY run_at, seq LIMIT ?",
    ).all(now, limit) as TaskRow[];
    return rows.map(fromRow);
  }

  nextDueAt(): number | undefined {
    const row = this.statement("SELECT min(run_at) AS at FROM tasks WHERE state IN ('scheduled', 'retrying')").get() as {
      at: number | null;
    };
    return row.at ?? undefined;
  }

  expiring(now: number, limit: number): TaskRecord[] {
    const rows = this.statement(
      `SELECT * FROM tasks WHERE expires_at IS NOT NULL AND state IN ${NOT_STARTED} AND expires_at <= ? ORDER BY expires_at, seq LIMIT ?`,
    ).all(now, limit) as TaskRow[];
    return rows.map(fromRow);
  }

  nextExpiryAt(): number | undefined {
    const row = this.statement(
      `SELECT min(expires_at) AS at FROM tasks WHERE expires_at IS NOT NULL AND state IN ${NOT_STARTED}`,
    ).get() as { at: number | null };
    return row.at ?? undefined;
  }

  running(): TaskRecord[] {
    return (this.statement("SELECT * FROM tasks WHERE state = 'running' ORDER BY seq").all() as TaskRow[]).map(fromRow);
  }

  transition(id: string, name: TransitionName, fields: TransitionFields = {}): Promise<boolean> {
    const { from, to } = TRANSITIONS[name];
    // Which fields are set picks the UPDATE (one prepared statement per transition and set of fields).
    const params: SqlValue[] = [to];
    let columns = 0;
    for (let i = 0; i < TRANSITION_COLUMNS.length; i++) {
      const column = TRANSITION_COLUMNS[i];
      const value = fields[column.field];
      if (value === undefined || value === false) continue;
      columns |= 1 << i;
      if (column.param !== undefined) params.push(column.param(value));
    }
    params.push(id);
    // The state it leaves, for the counts: the only one allowed, or (several allowed) read first.
    const before: TaskState | undefined =
      from.length === 1 ? from[0] : (this.statement("SELECT state FROM tasks WHERE id = ?").get(id) as { state: TaskState } | null)?.state;
    this.inBatch();
    const changes = this.transitionStatement(name, columns).run(...params).changes;
    if (changes === 1 && before !== undefined) this.stateCounts.moved(before, to);
    return this.afterCommit(changes === 1);
  }

  /** The UPDATE of transition `name` that sets the TRANSITION_COLUMNS whose bits are in `columns`. */
  private transitionStatement(name: TransitionName, columns: number): Statement {
    let byColumns = this.transitionStatements.get(name);
    if (!byColumns) this.transitionStatements.set(name, (byColumns = []));
    let statement = byColumns[columns];
    if (!statement) {
      const sets = ["state = ?"];
      TRANSITION_COLUMNS.forEach((column, i) => {
        if (columns & (1 << i)) sets.push(column.set);
      });
      const states = TRANSITIONS[name].from.map((state) => `'${state}'`).join(", ");
      statement = this.statement(`UPDATE tasks SET ${sets.join(", ")} WHERE id = ? AND state IN (${states})`);
      byColumns[columns] = statement;
    }
    return statement;
  }

  setProgress(id: string, progress: unknown): Promise<boolean> {
    const changes = this.write("UPDATE tasks SET progress = ? WHERE id = ? AND state = 'running'", JSON.stringify(progress ?? null), id);
    return this.afterCommit(changes === 1);
  }

  purge(now: number, limit: number): Promise<number> {
    const purged = this.writeRows<{ state: TaskState }>(
      `DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks t WHERE purge_at IS NOT NULL AND purge_at <= ?
         AND state IN ${FINAL}
         AND (t.flow_id IS NULL OR t.flow_id = t.id
              OR NOT EXISTS (SELECT 1 FROM tasks r WHERE r.id = t.flow_id AND r.state NOT IN ${FINAL}))
         LIMIT ?) RETURNING state`,
      now,
      limit,
    );
    for (const { state } of purged) this.stateCounts.removed(state);
    return this.afterCommit(purged.length);
  }

  counts(): Record<TaskState, number> {
    return this.stateCounts.snapshot();
  }

  /** Counts the tasks by state afresh: once at open, and after a rollback undid writes already counted. */
  private recount(): void {
    this.stateCounts.reset(this.statement("SELECT state, count(*) AS n FROM tasks GROUP BY state").all() as { state: string; n: number }[]);
  }

  // ---- schedules (SQL in schedules.ts) ----

  putSchedule(schedule: ScheduleRecord): Promise<void> {
    this.scheduleTable.put(schedule);
    return this.afterCommit(undefined);
  }

  getSchedule(name: string): ScheduleRecord | undefined {
    return this.scheduleTable.get(name);
  }

  listSchedules(): ScheduleRecord[] {
    return this.scheduleTable.list();
  }

  removeSchedule(name: string): Promise<boolean> {
    return this.afterCommit(this.scheduleTable.remove(name));
  }

  updateSchedule(name: string, fields: ScheduleFields): Promise<boolean> {
    const changed = this.scheduleTable.update(name, fields);
    if (changed === undefined) return Promise.resolve(this.scheduleTable.get(name) !== undefined);
    return this.afterCommit(changed);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    for (const statement of this.statements.values()) statement.finalize();
    this.db.close();
  }

  // ---- group commit ----

  /**
   * Runs one write inside the open batch transaction, starting one (and scheduling its COMMIT)
   * when none is open. Returns the number of rows changed.
   */
  private write(sql: string, ...params: SqlValue[]): number {
    this.inBatch();
    return this.statement(sql).run(...params).changes;
  }

  /** Inserts one task (`taskValues`) inside the batch transaction; returns its seq. */
  private insertTask(values: SqlValue[]): number {
    this.inBatch();
    return Number(this.statement(INSERT_TASK).run(...values).lastInsertRowid);
  }

  /** A write whose RETURNING gives several rows (a DELETE of many), inside the batch transaction as `write`. */
  private writeRows<Row>(sql: string, ...params: SqlValue[]): Row[] {
    this.inBatch();
    return this.statement(sql).all(...params) as Row[];
  }

  /** Makes sure the batch transaction is open: begins one (and schedules its COMMIT) when none is. */
  private inBatch(): void {
    if (this.closed) throw new TaskStoreError(`the task store ${this.path} is closed`, StoreFailure.UNWRITABLE);
    if (this.inTransaction) return;
    this.db.exec("BEGIN IMMEDIATE");
    this.inTransaction = true;
    setImmediate(() => this.commit());
  }

  /** A promise of `value` that settles with the COMMIT of the current batch. */
  private afterCommit<T>(value: T): Promise<T> {
    if (!this.inTransaction) return Promise.resolve(value);
    return new Promise<T>((resolve, reject) => this.pending.push({ resolve: () => resolve(value), reject }));
  }

  private commit(): void {
    if (!this.inTransaction) return;
    const pending = this.pending;
    this.pending = [];
    this.inTransaction = false;
    try {
      this.db.exec("COMMIT");
    } catch (error) {
      try {
        this.db.exec("ROLLBACK");
      } catch {}
      // The batch's writes are undone: so must their counts be.
      try {
        this.recount();
      } catch {}
      const failure = asStoreError(error, this.path);
      for (const waiter of pending) waiter.reject(failure);
      return;
    }
    for (const waiter of pending) waiter.resolve();
  }

  private statement(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.query(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/**
 * The columns a transition may set besides its state, in the order of their parameters: the
 * field of TransitionFields, the SET clause, and how the field's value binds (none for a count).
 */
const TRANSITION_COLUMNS: readonly {
  field: keyof TransitionFields;
  set: string;
  param?: (value: NonNullable<TransitionFields[keyof TransitionFields]>) => SqlValue;
}[] = [
  { field: "startedAt", set: "started_at = ?", param: (value) => value as number },
  { field: "finishedAt", set: "finished_at = ?", param: (value) => value as number },
  { field: "purgeAt", set: "purge_at = ?", param: (value) => value as number },
  { field: "runAt", set: "run_at = ?", param: (value) => value as number },
  { field: "result", set: "result = ?", param: (value) => value as Uint8Array },
  { field: "error", set: "error = ?", param: (value) => JSON.stringify(value) },
  { field: "countAttempt", set: "attempts = attempts + 1" },
  { field: "countLost", set: "lost_attempts = lost_attempts + 1" },
  { field: "args", set: "args = ?", param: (value) => value as Uint8Array },
  { field: "expiresAt", set: "expires_at = ?", param: (value) => value as number },
];

const INSERT_TASK = `INSERT INTO tasks (id, method, args, state, priority, created_at, run_at, expires_at, idempotency_key, policy, flow_id,
    schedule_name, schedule_due_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

function taskValues(task: NewTask): (string | number | Uint8Array | null)[] {
  return [
    task.id,
    task.method,
    task.args,
    task.state,
    task.priority,
    task.createdAt,
    task.runAt,
    task.expiresAt ?? null,
    task.idempotencyKey ?? null,
    JSON.stringify(task.policy),
    task.flowId ?? null,
    task.schedule?.name ?? null,
    task.schedule?.dueAt ?? null,
  ];
}

/** Where `taskValues` puts the policy JSON. */
const POLICY_VALUE = 9;

/**
 * The record `fromRow` would read back for `task` just inserted as `seq`: the same fields, the
 * columns the insert leaves to their defaults (attempts, lost attempts) as those defaults, and its
 * own copies of the arguments and the policy, as a row read gives.
 */
function insertedRecord(task: NewTask, seq: number, policy: string): TaskRecord {
  const record: TaskRecord = {
    id: task.id,
    seq,
    method: task.method,
    args: task.args.slice(),
    state: task.state,
    priority: task.priority,
    createdAt: task.createdAt,
    runAt: task.runAt,
    attempts: 0,
    lostAttempts: 0,
    policy: JSON.parse(policy) as TaskPolicy,
  };
  if (task.expiresAt !== undefined) record.expiresAt = task.expiresAt;
  if (task.idempotencyKey !== undefined) record.idempotencyKey = task.idempotencyKey;
  if (task.flowId !== undefined) record.flowId = task.flowId;
  if (task.schedule !== undefined) record.schedule = { name: task.schedule.name, dueAt: task.schedule.dueAt };
  return record;
}

function fromRow(row: TaskRow): TaskRecord {
  const record: TaskRecord = {
    id: row.id,
    seq: row.seq,
    method: row.method,
    args: row.args,
    state: row.state,
    priority: row.priority,
    createdAt: row.created_at,
    runAt: row.run_at,
    attempts: row.attempts,
    lostAttempts: row.lost_attempts,
    policy: JSON.parse(row.policy) as TaskPolicy,
  };
  if (row.expires_at !== null) record.expiresAt = row.expires_at;
  if (row.started_at !== null) record.startedAt = row.started_at;
  if (row.finished_at !== null) record.finishedAt = row.finished_at;
  if (row.purge_at !== null) record.purgeAt = row.purge_at;
  if (row.idempotency_key !== null) record.idempotencyKey = row.idempotency_key;
  if (row.progress !== null) record.progress = JSON.parse(row.progress);
  if (row.result !== null) record.result = row.result;
  if (row.error !== null) record.error = JSON.parse(row.error) as TaskError;
  if (row.flow_id !== null) record.flowId = row.flow_id;
  if (row.schedule_name !== null && row.schedule_due_at !== null) record.schedule = { name: row.schedule_name, dueAt: row.schedule_due_at };
  return record;
}

/** SQLite's failures, as one line that says what is wrong with the file. */
function asStoreError(error: unknown, path: string): TaskStoreError {
  if (error instanceof TaskStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code ?? "";
  if (/BUSY|LOCKED/.test(code) || /database is locked/i.test(message)) {
    return new TaskStoreError(`the task store ${path} is in use by another process (another router?)`, StoreFailure.LOCKED, {
      cause: error,
    });
  }
  if (/NOTADB|CORRUPT/.test(code) || /not a database|malformed/i.test(message)) {
    return new TaskStoreError(`${path} is not a usable task store: ${message}`, StoreFailure.CORRUPT, { cause: error });
  }
  return new TaskStoreError(`cannot open the task store ${path}: ${message}`, StoreFailure.UNWRITABLE, { cause: error });
}
