/**
 * GroupCommit: the SQLite store's one writer. Writes of one turn of the event loop share one
 * transaction: the first write begins it and schedules its COMMIT for the next turn, and a
 * write's promise (`afterCommit`) settles with that COMMIT, so durability costs one commit per
 * batch, not per write. It also keeps the prepared statements. The per-table modules see it
 * as a SqlContext; a failed COMMIT rolls the batch back, rejects its writes and calls
 * `onRollback` so that what the store keeps in memory can follow.
 */
import type { Database, Statement } from "bun:sqlite";
import { StoreFailure, TaskStoreError } from "../errors.ts";
import type { SqlContext, SqlValue } from "./sql.ts";
import { asStoreError } from "./sqlite-errors.ts";

interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

export class GroupCommit implements SqlContext {
  private inTransaction = false;
  private pending: Pending[] = [];
  private readonly statements = new Map<string, Statement>();
  private closed = false;

  constructor(
    private readonly db: Database,
    private readonly path: string,
    private readonly onRollback: () => void,
  ) {}

  /** Runs one write inside the batch transaction; returns the number of rows changed. */
  write(sql: string, ...params: SqlValue[]): number {
    return this.run(this.statement(sql), params).changes;
  }

  /** A write whose RETURNING gives rows (a DELETE of many), inside the batch transaction. */
  writeRows<Row>(sql: string, ...params: SqlValue[]): Row[] {
    this.inBatch();
    return this.statement(sql).all(...params) as Row[];
  }

  /** Runs a prepared write statement inside the batch transaction. */
  run(statement: Statement, params: SqlValue[]): { changes: number; lastInsertRowid: number | bigint } {
    this.inBatch();
    return statement.run(...params);
  }

  /** Runs SQL that takes no part in batching (rolling back to a savepoint of the open batch). */
  exec(sql: string): void {
    this.db.exec(sql);
  }

  /** A promise of `value` that settles with the COMMIT of the current batch (at once when none is open). */
  afterCommit<T>(value: T): Promise<T> {
    if (!this.inTransaction) return Promise.resolve(value);
    return new Promise<T>((resolve, reject) => this.pending.push({ resolve: () => resolve(value), reject }));
  }

  /** The cached prepared statement for `sql`. */
  statement(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.query(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Commits what is open, then closes the database; later writes throw. */
  close(): void {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    for (const statement of this.statements.values()) statement.finalize();
    this.db.close();
  }

  /** Makes sure the batch transaction is open: begins one (and schedules its COMMIT) when none is. */
  private inBatch(): void {
    if (this.closed) throw new TaskStoreError(`the task store ${this.path} is closed`, StoreFailure.UNWRITABLE);
    if (this.inTransaction) return;
    this.db.exec("BEGIN IMMEDIATE");
    this.inTransaction = true;
    setImmediate(() => this.commit());
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
      try {
        this.onRollback();
      } catch {}
      const failure = asStoreError(error, this.path);
      for (const waiter of pending) waiter.reject(failure);
      return;
    }
    for (const waiter of pending) waiter.resolve();
  }
}
