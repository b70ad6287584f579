/**
 * A task as clients see it (getTask, listTasks, submit's answer): the stored record without
 * its internals, times as ISO strings. The result stays the bytes the dealer sent: they are
 * spliced into the JSON text unparsed, as the router forwards every payload.
 */
import type { TaskError, TaskRecord } from "../store/task-store.ts";
import type { TaskState } from "../store/task-states.ts";

/** The JSON shape of a task for clients (docs/PROTOCOL.md "Tasks"). */
export interface TaskInfo {
  id: string;
  method: string;
  state: TaskState;
  priority: number;
  /** Attempts started so far. */
  attempts: number;
  /** Of those, attempts cut off by a lost dealer or a router restart. */
  lostAttempts: number;
  createdAt: string;
  /** When it may (next) start: countdown, eta or a retry's backoff. */
  runAt: string;
  expiresAt?: string;
  startedAt?: string;
  finishedAt?: string;
  /** When the record will be deleted. */
  purgeAt?: string;
  idempotencyKey?: string;
  /** The W3C trace context it was submitted with. */
  traceparent?: string;
  tracestate?: string;
  progress?: unknown;
  /** The method's return value, once succeeded. */
  result?: unknown;
  /** Why it failed, was revoked or expired; while retrying, why the last attempt failed. */
  error?: TaskError;
  /** The schedule that fired it, and the due time it fired for. */
  schedule?: { name: string; dueAt: string };
  /** The submit's keys, when it had them. */
  concurrencyKey?: string;
  concurrencyLimit?: number;
  rateKey?: string;
  rateKeyLimit?: string;
}

/** The last time written, and its text: a record's times often repeat (created = runAt, started = finished). */
let lastMs = Number.NaN;
let lastIso = "";
const iso = (ms: number): string => {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
};

/** The record as a TaskInfo, without `result`. */
export function taskInfoWithoutResult(record: TaskRecord): Omit<TaskInfo, "result"> {
  const info: Omit<TaskInfo, "result"> = {
    id: record.id,
    method: record.method,
    state: record.state,
    priority: record.priority,
    attempts: record.attempts,
    lostAttempts: record.lostAttempts,
    createdAt: iso(record.createdAt),
    runAt: iso(record.runAt),
  };
  if (record.expiresAt !== undefined) info.expiresAt = iso(record.expiresAt);
  if (record.startedAt !== undefined) info.startedAt = iso(record.startedAt);
  if (record.finishedAt !== undefined) info.finishedAt = iso(record.finishedAt);
  if (record.purgeAt !== undefined) info.purgeAt = iso(record.purgeAt);
  if (record.idempotencyKey !== undefined) info.idempotencyKey = record.idempotencyKey;
  const trace = record.policy.trace;
  if (trace !== undefined) {
    info.traceparent = trace.traceparent;
    if (trace.tracestate !== undefined) info.tracestate = trace.tracestate;
  }
  if (record.progress !== undefined) info.progress = record.progress;
  if (record.error !== undefined) info.error = record.error;
  const { concurrencyKey, concurrencyLimit, rateKey, rateKeyLimit } = record.policy;
  if (concurrencyKey !== undefined) {
    info.concurrencyKey = concurrencyKey;
    info.concurrencyLimit = concurrencyLimit ?? 1;
  }
  if (rateKey !== undefined && rateKeyLimit !== undefined) {
    info.rateKey = rateKey;
    info.rateKeyLimit = rateKeyLimit;
  }
  if (record.schedule !== undefined) info.schedule = { name: record.schedule.name, dueAt: iso(record.schedule.dueAt) };
  return info;
}

const encoder = new TextEncoder();
const RESULT_KEY = encoder.encode(',"result":');

/** The record's TaskInfo as JSON bytes, its result spliced in as the dealer encoded it. */
export function encodeTaskInfo(record: TaskRecord): Uint8Array {
  const head = encoder.encode(JSON.stringify(taskInfoWithoutResult(record)));
  const result = record.result;
  if (result === undefined) return head;
  // `{...}` + `,"result":` + bytes + `}`: the head's closing brace moves to the end.
  const out = new Uint8Array(head.length - 1 + RESULT_KEY.length + result.length + 1);
  out.set(head, 0);
  out.set(RESULT_KEY, head.length - 1); // over the head's closing brace
  out.set(result, head.length - 1 + RESULT_KEY.length);
  out[out.length - 1] = 0x7d;
  return out;
}

/** A list of records as one JSON array of TaskInfo. */
export function encodeTaskInfos(records: readonly TaskRecord[], cursor: string | undefined): Uint8Array {
  const parts = records.map(encodeTaskInfo);
  const prefix = encoder.encode('{"tasks":[');
  const suffix = encoder.encode(cursor === undefined ? "]}" : `],"cursor":${JSON.stringify(cursor)}}`);
  let size = prefix.length + suffix.length + Math.max(0, parts.length - 1);
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  out.set(prefix, at);
  at += prefix.length;
  parts.forEach((part, i) => {
    if (i > 0) out[at++] = 0x2c;
    out.set(part, at);
    at += part.length;
  });
  out.set(suffix, at);
  return out;
}
