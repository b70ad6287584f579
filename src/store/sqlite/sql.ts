/**
 * The narrow view of the SQLite store's writer (GroupCommit, group-commit.ts) that its per-table
 * modules (schedules.ts, flow-links.ts) get: writes go through the one batch transaction (group
 * commit), reads through its statement cache. They never open a transaction or a connection of their own.
 */
import type { Statement } from "bun:sqlite";

/** A value SQLite binds to a `?`. */
export type SqlValue = string | number | Uint8Array | null;

export interface SqlContext {
  /** Runs one write inside the store's open batch transaction (starting one if none is open); returns the rows changed. */
  write(sql: string, ...params: SqlValue[]): number;
  /** The store's cached prepared statement for `sql`, for reads. */
  statement(sql: string): Statement;
}
