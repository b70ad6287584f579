/**
 * SqliteTaskStore: the task store contract on one SQLite file (bun:sqlite, WAL): the task verbs'
 * SQL. Its writes go through GroupCommit (group-commit.ts): writes of one turn of the event loop
 * share one transaction, and a write's promise resolves after the COMMIT that contains it. Rows
 * map to records in task-rows.ts. With
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
  TaskFilter,
  TaskPage,
  TaskRecord,
  TaskStore,
  TransitionFields,
} from "../task-store.ts";
import { type TaskState, TRANSITIONS, type TransitionName } from "../task-states.ts";
import { StateCounts } from "../state-counts.ts";
import { FlowLinkTable } from "./flow-links.ts";
import { migrate } from "./migrate.ts";
import { ScheduleTable } from "./schedules.ts";
import { GroupCommit } from "./group-commit.ts";
import type { SqlValue } from "./sql.ts";
import { asStoreError } from "./sqlite-errors.ts";
import { fromRow, INSERT_TASK, insertedRecord, POLICY_VALUE, TRANSITION_COLUMNS, type TaskRow, taskValues } from "./task-rows.ts";

export interface SqliteTaskStoreOptions {
  /** "normal" (default: survives a process crash) or "full" (also a power loss: fsync per commit). */
  durability?: "normal" | "full";
}

const NOT_STARTED = "('scheduled', 'queued', 'retrying')";
const FINAL = "('succeeded', 'failed', 'revoked', 'expired')";

export class SqliteTaskStore implements TaskStore {
  private readonly batch: GroupCommit;
  /** Each transition's UPDATE statements, by the bits of the TRANSITION_COLUMNS it sets. */
  private readonly transitionStatements = new Map<TransitionName, Statement[]>();
  private readonly scheduleTable: ScheduleTable;
  private readonly flowLinkTable: FlowLinkTable;
  /** Tasks per state, moved by each write below (and counted afresh at open and after a rollback). */
  private readonly stateCounts = new StateCounts();

  /** Opens (creating if needed) and migrates the store at `path`; throws TaskStoreError when it cannot. */
  constructor(
    readonly path: string,
    options: SqliteTaskStoreOptions = {},
  ) {
    let db: Database;
    try {
      db = new Database(path, { create: true, strict: true });
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${options.durability === "full" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA busy_timeout = 1000");
      migrate(db, path);
      // A store file is the router's alone: a second router on it would run every task twice.
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("BEGIN EXCLUSIVE");
      db.exec("COMMIT");
    } catch (error) {
      throw asStoreError(error, path);
    }
    // A rolled-back batch undid writes already counted: count again.
    this.batch = new GroupCommit(db, path, () => this.recount());
    this.scheduleTable = new ScheduleTable(this.batch);
    this.flowLinkTable = new FlowLinkTable(this.batch);
    this.recount();
  }

  insert(task: NewTask): Promise<{ task: TaskRecord; created: boolean }> {
    if (task.idempotencyKey !== undefined) {
      const existing = this.batch.statement("SELECT * FROM tasks WHERE idempotency_key = ?").get(task.idempotencyKey) as TaskRow | null;
      if (existing) {
        if (existing.purge_at === null || existing.purge_at > task.createdAt) {
          return this.batch.afterCommit({ task: fromRow(existing), created: false });
        }
        // Its result TTL is over: the key is free before the purge gets to the record.
        this.batch.write("DELETE FROM tasks WHERE seq = ?", existing.seq);
        this.stateCounts.removed(existing.state);
      }
    }
    // The record is built from what was inserted: RETURNING * cost about 60 % more than the INSERT itself.
    const values = taskValues(task);
    const seq = this.insertTask(values);
    this.stateCounts.added(task.state);
    return this.batch.afterCommit({ task: insertedRecord(task, seq, values[POLICY_VALUE] as string), created: true });
  }

  insertFlow(tasks: NewTask[], links: FlowLink[]): Promise<{ root: TaskRecord; created: boolean }> {
    const [first] = tasks;
    if (!first) throw new Error("insertFlow needs at least the root task");
    if (first.idempotencyKey !== undefined) {
      const existing = this.batch.statement("SELECT * FROM tasks WHERE idempotency_key = ?").get(first.idempotencyKey) as TaskRow | null;
      if (existing && (existing.purge_at === null || existing.purge_at > first.createdAt)) {
        return this.batch.afterCommit({ root: fromRow(existing), created: false });
      }
    }
    // Inside the batch transaction, a savepoint makes the flow all or nothing on its own.
    this.batch.write("SAVEPOINT flow");
    let root: TaskRecord;
    let replaced: { state: TaskState }[] = [];
    try {
      if (first.idempotencyKey !== undefined) {
        replaced = this.batch.writeRows<{ state: TaskState }>(
          "DELETE FROM tasks WHERE idempotency_key = ? RETURNING state",
          first.idempotencyKey,
        );
      }
      const rootValues = taskValues(first);
      root = insertedRecord(first, this.insertTask(rootValues), rootValues[POLICY_VALUE] as string);
      for (const task of tasks.slice(1)) this.batch.write(INSERT_TASK, ...taskValues(task));
      for (const link of links) this.flowLinkTable.insert(link);
      this.batch.write("RELEASE flow");
      // Counted once the flow is in whole: a rolled-back savepoint changed no count.
      for (const { state } of replaced) this.stateCounts.removed(state);
      for (const task of tasks) this.stateCounts.added(task.state);
    } catch (error) {
      this.batch.exec("ROLLBACK TO flow");
      this.batch.exec("RELEASE flow");
      const message = error instanceof Error ? error.message : String(error);
      return Promise.reject(
        new TaskStoreError(`the flow could not be stored in ${this.path} (nothing of it was): ${message}`, StoreFailure.UNWRITABLE, {
          cause: error,
        }),
      );
    }
    return this.batch.afterCommit({ root, created: true });
  }

  flowLinks(flowId: string): StoredFlowLink[] {
    return this.flowLinkTable.list(flowId);
  }

  openFlows(): string[] {
    const rows = this.batch.statement(`SELECT DISTINCT flow_id FROM tasks WHERE flow_id IS NOT NULL AND state NOT IN ${FINAL}`).all() as {
      flow_id: string;
    }[];
    return rows.map((row) => row.flow_id);
  }

  get(id: string): TaskRecord | undefined {
    const row = this.batch.statement("SELECT * FROM tasks WHERE id = ?").get(id) as TaskRow | null;
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
    const rows = this.batch.statement(sql).all(...params, filter.limit + 1) as TaskRow[];
    const tasks = rows.slice(0, filter.limit).map(fromRow);
    return rows.length > filter.limit ? { tasks, cursor: encodeCursor(tasks[tasks.length - 1].seq) } : { tasks };
  }

  queued(method: string, limit: number, after?: QueuePosition): TaskRecord[] {
    const rows = after
      ? this.batch
          .statement(
            `SELECT * FROM tasks WHERE state = 'queued' AND method = ? AND (priority < ? OR (priority = ? AND seq > ?))
           ORDER BY priority DESC, seq LIMIT ?`,
          )
          .all(method, after.priority, after.priority, after.seq, limit)
      : this.batch
          .statement("SELECT * FROM tasks WHERE state = 'queued' AND method = ? ORDER BY priority DESC, seq LIMIT ?")
          .all(method, limit);
    return (rows as TaskRow[]).map(fromRow);
  }

  queuedMethods(): string[] {
    return (
      this.batch.statement("SELECT DISTINCT method FROM tasks WHERE state = 'queued' ORDER BY method").all() as { method: string }[]
    ).map((row) => row.method);
  }

  due(now: number, limit: number): TaskRecord[] {
    const rows = this.batch
      .statement("SELECT * FROM tasks WHERE state IN ('scheduled', 'retrying') AND run_at <= ? ORDER BY run_at, seq LIMIT ?")
      .all(now, limit) as TaskRow[];
    return rows.map(fromRow);
  }

  nextDueAt(): number | undefined {
    const row = this.batch.statement("SELECT min(run_at) AS at FROM tasks WHERE state IN ('scheduled', 'retrying')").get() as {
      at: number | null;
    };
    return row.at ?? undefined;
  }

  expiring(now: number, limit: number): TaskRecord[] {
    const rows = this.batch
      .statement(
        `SELECT * FROM tasks WHERE expires_at IS NOT NULL AND state IN ${NOT_STARTED} AND expires_at <= ? ORDER BY expires_at, seq LIMIT ?`,
      )
      .all(now, limit) as TaskRow[];
    return rows.map(fromRow);
  }

  nextExpiryAt(): number | undefined {
    const row = this.batch
      .statement(`SELECT min(expires_at) AS at FROM tasks WHERE expires_at IS NOT NULL AND state IN ${NOT_STARTED}`)
      .get() as { at: number | null };
    return row.at ?? undefined;
  }

  running(): TaskRecord[] {
    return (this.batch.statement("SELECT * FROM tasks WHERE state = 'running' ORDER BY seq").all() as TaskRow[]).map(fromRow);
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
      from.length === 1
        ? from[0]
        : (this.batch.statement("SELECT state FROM tasks WHERE id = ?").get(id) as { state: TaskState } | null)?.state;
    const changes = this.batch.run(this.transitionStatement(name, columns), params).changes;
    if (changes === 1 && before !== undefined) this.stateCounts.moved(before, to);
    return this.batch.afterCommit(changes === 1);
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
      statement = this.batch.statement(`UPDATE tasks SET ${sets.join(", ")} WHERE id = ? AND state IN (${states})`);
      byColumns[columns] = statement;
    }
    return statement;
  }

  setProgress(id: string, progress: unknown): Promise<boolean> {
    const changes = this.batch.write(
      "UPDATE tasks SET progress = ? WHERE id = ? AND state = 'running'",
      JSON.stringify(progress ?? null),
      id,
    );
    return this.batch.afterCommit(changes === 1);
  }

  purge(now: number, limit: number): Promise<number> {
    const purged = this.batch.writeRows<{ state: TaskState }>(
      `DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks t WHERE purge_at IS NOT NULL AND purge_at <= ?
         AND state IN ${FINAL}
         AND (t.flow_id IS NULL OR t.flow_id = t.id
              OR NOT EXISTS (SELECT 1 FROM tasks r WHERE r.id = t.flow_id AND r.state NOT IN ${FINAL}))
         LIMIT ?) RETURNING state`,
      now,
      limit,
    );
    for (const { state } of purged) this.stateCounts.removed(state);
    return this.batch.afterCommit(purged.length);
  }

  counts(): Record<TaskState, number> {
    return this.stateCounts.snapshot();
  }

  /** Counts the tasks by state afresh: once at open, and after a rollback undid writes already counted. */
  private recount(): void {
    this.stateCounts.reset(
      this.batch.statement("SELECT state, count(*) AS n FROM tasks GROUP BY state").all() as { state: string; n: number }[],
    );
  }

  // ---- schedules (SQL in schedules.ts) ----

  putSchedule(schedule: ScheduleRecord): Promise<void> {
    this.scheduleTable.put(schedule);
    return this.batch.afterCommit(undefined);
  }

  getSchedule(name: string): ScheduleRecord | undefined {
    return this.scheduleTable.get(name);
  }

  listSchedules(): ScheduleRecord[] {
    return this.scheduleTable.list();
  }

  removeSchedule(name: string): Promise<boolean> {
    return this.batch.afterCommit(this.scheduleTable.remove(name));
  }

  updateSchedule(name: string, fields: ScheduleFields): Promise<boolean> {
    const changed = this.scheduleTable.update(name, fields);
    if (changed === undefined) return Promise.resolve(this.scheduleTable.get(name) !== undefined);
    return this.batch.afterCommit(changed);
  }

  async close(): Promise<void> {
    this.batch.close();
  }

  /** Inserts one task (`taskValues`) inside the batch transaction; returns its seq. */
  private insertTask(values: SqlValue[]): number {
    return Number(this.batch.run(this.batch.statement(INSERT_TASK), values).lastInsertRowid);
  }
}
