/**
 * The SQLite task store's schema, as numbered migrations. A migration is never edited once
 * released: a change of schema is a new entry at the end. `PRAGMA user_version` records the
 * last one applied.
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "tasks",
    sql: `
      CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        method TEXT NOT NULL,
        args BLOB NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        expires_at INTEGER,
        started_at INTEGER,
        finished_at INTEGER,
        purge_at INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        lost_attempts INTEGER NOT NULL DEFAULT 0,
        idempotency_key TEXT,
        policy TEXT NOT NULL,
        progress TEXT,
        result BLOB,
        error TEXT
      );
      CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE INDEX tasks_queued_in_order ON tasks (method, priority DESC, seq) WHERE state = 'queued';
      CREATE INDEX tasks_due ON tasks (run_at) WHERE state IN ('scheduled', 'retrying');
      CREATE INDEX tasks_expiring ON tasks (expires_at) WHERE expires_at IS NOT NULL AND state IN ('scheduled', 'queued', 'retrying');
      CREATE INDEX tasks_purgeable ON tasks (purge_at) WHERE purge_at IS NOT NULL;
      CREATE INDEX tasks_by_state ON tasks (state, seq);
      CREATE INDEX tasks_by_method ON tasks (method, seq);
      CREATE INDEX tasks_running ON tasks (seq) WHERE state = 'running';
    `,
  },
  {
    // Schedules (issue 14). Version 3 follows the workflows' version 2, built on another branch.
    version: 3,
    name: "schedules",
    sql: `
      CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT,
        timezone TEXT,
        every_ms INTEGER,
        method TEXT NOT NULL,
        args BLOB NOT NULL,
        options TEXT NOT NULL,
        catch_up TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        since INTEGER NOT NULL,
        last_due_at INTEGER,
        CHECK ((cron IS NULL) <> (every_ms IS NULL))
      );
      ALTER TABLE tasks ADD COLUMN schedule_name TEXT;
      ALTER TABLE tasks ADD COLUMN schedule_due_at INTEGER;
    `,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
