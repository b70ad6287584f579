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
    version: 2,
    name: "flows",
    sql: `
      ALTER TABLE tasks ADD COLUMN flow_id TEXT;
      CREATE TABLE flow_links (
        task_id TEXT PRIMARY KEY,
        flow_id TEXT NOT NULL,
        parent_id TEXT,
        position INTEGER NOT NULL,
        role TEXT NOT NULL,
        kind TEXT NOT NULL,
        join_mode TEXT,
        immutable INTEGER NOT NULL DEFAULT 0,
        release TEXT
      );
      CREATE INDEX flow_links_by_flow ON flow_links (flow_id);
      CREATE INDEX tasks_in_open_flows ON tasks (flow_id)
        WHERE flow_id IS NOT NULL AND state NOT IN ('succeeded', 'failed', 'revoked', 'expired');
      CREATE TRIGGER flow_links_follow_tasks AFTER DELETE ON tasks WHEN old.flow_id IS NOT NULL
      BEGIN
        DELETE FROM flow_links WHERE task_id = old.id;
      END;
    `,
  },
  {
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
