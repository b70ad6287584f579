/**
 * The schedule verbs' SQL for SqliteTaskStore: the `schedules` table and its row mapping. Writes
 * run in the store's batch transaction (through `SqlContext`); the store settles their promises
 * with that batch's COMMIT.
 */
import type { CatchUp, ScheduleFields, ScheduleRecord } from "../task-store.ts";
import type { SqlContext } from "./sql.ts";

interface ScheduleRow {
  name: string;
  cron: string | null;
  timezone: string | null;
  every_ms: number | null;
  method: string;
  args: Uint8Array;
  options: string;
  catch_up: CatchUp;
  paused: number;
  created_at: number;
  since: number;
  last_due_at: number | null;
}

export class ScheduleTable {
  constructor(private readonly sql: SqlContext) {}

  /** Inserts `schedule`, or replaces the one with its name. */
  put(schedule: ScheduleRecord): void {
    this.sql.write(
      `INSERT OR REPLACE INTO schedules (name, cron, timezone, every_ms, method, args, options, catch_up, paused, created_at, since, last_due_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      schedule.name,
      schedule.cron ?? null,
      schedule.timezone ?? null,
      schedule.everyMs ?? null,
      schedule.method,
      schedule.args,
      JSON.stringify(schedule.options),
      schedule.catchUp,
      schedule.paused ? 1 : 0,
      schedule.createdAt,
      schedule.since,
      schedule.lastDueAt ?? null,
    );
  }

  get(name: string): ScheduleRecord | undefined {
    const row = this.sql.statement("SELECT * FROM schedules WHERE name = ?").get(name) as ScheduleRow | null;
    return row ? scheduleFromRow(row) : undefined;
  }

  /** Every schedule, by name. */
  list(): ScheduleRecord[] {
    return (this.sql.statement("SELECT * FROM schedules ORDER BY name").all() as ScheduleRow[]).map(scheduleFromRow);
  }

  /** True when a schedule of that name was there. */
  remove(name: string): boolean {
    return this.sql.write("DELETE FROM schedules WHERE name = ?", name) === 1;
  }

  /**
   * Sets the given fields; true when a schedule of that name was there. Undefined when `fields`
   * sets nothing, so nothing was written (the caller answers from `get`, without a commit).
   */
  update(name: string, fields: ScheduleFields): boolean | undefined {
    const sets: string[] = [];
    const params: (string | number)[] = [];
    if (fields.paused !== undefined) {
      sets.push("paused = ?");
      params.push(fields.paused ? 1 : 0);
    }
    if (fields.since !== undefined) {
      sets.push("since = ?");
      params.push(fields.since);
    }
    if (fields.lastDueAt !== undefined) {
      sets.push("last_due_at = ?");
      params.push(fields.lastDueAt);
    }
    if (sets.length === 0) return undefined;
    return this.sql.write(`UPDATE schedules SET ${sets.join(", ")} WHERE name = ?`, ...params, name) === 1;
  }
}

function scheduleFromRow(row: ScheduleRow): ScheduleRecord {
  const schedule: ScheduleRecord = {
    name: row.name,
    method: row.method,
    args: row.args,
    options: JSON.parse(row.options) as Record<string, unknown>,
    catchUp: row.catch_up,
    paused: row.paused === 1,
    createdAt: row.created_at,
    since: row.since,
  };
  if (row.cron !== null) schedule.cron = row.cron;
  if (row.timezone !== null) schedule.timezone = row.timezone;
  if (row.every_ms !== null) schedule.everyMs = row.every_ms;
  if (row.last_due_at !== null) schedule.lastDueAt = row.last_due_at;
  return schedule;
}
