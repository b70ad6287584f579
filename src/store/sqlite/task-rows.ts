/**
 * The tasks table's rows: the row type, the INSERT and its values, the columns a transition
 * sets, and the mapping of a row (or of a task just inserted) to a TaskRecord. Pure; no I/O.
 */
import type { NewTask, TaskError, TaskPolicy, TaskRecord, TransitionFields } from "../task-store.ts";
import type { TaskState } from "../task-states.ts";
import type { SqlValue } from "./sql.ts";

export interface TaskRow {
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

/**
 * The columns a transition may set besides its state, in the order of their parameters: the
 * field of TransitionFields, the SET clause, and how the field's value binds (none for a count).
 */
export const TRANSITION_COLUMNS: readonly {
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

export const INSERT_TASK = `INSERT INTO tasks (id, method, args, state, priority, created_at, run_at, expires_at, idempotency_key, policy, flow_id,
    schedule_name, schedule_due_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export function taskValues(task: NewTask): SqlValue[] {
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
export const POLICY_VALUE = 9;

/**
 * The record `fromRow` would read back for `task` just inserted as `seq`: the same fields, the
 * columns the insert leaves to their defaults (attempts, lost attempts) as those defaults, and its
 * own copies of the arguments and the policy, as a row read gives.
 */
export function insertedRecord(task: NewTask, seq: number, policy: string): TaskRecord {
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

export function fromRow(row: TaskRow): TaskRecord {
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
