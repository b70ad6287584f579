/**
 * Owns the JSON API under /api: the INFO topics, task search, flows and the actions (revoke,
 * retry, drain); schedules are in api-schedules.ts. Every query parameter and body is checked
 * with valibot; a bad one is a 400 naming it.
 */
import * as v from "valibot";
import { MethodNameSchema, TASK_STATE_NAMES, ValidationError } from "../protocol/index.ts";
import type { FlowEngine } from "../tasks/flows/flow-engine.ts";
import type { Scheduler } from "../tasks/schedules/scheduler.ts";
import type { TaskManager } from "../tasks/task-manager.ts";
import { encodeTaskInfo, encodeTaskInfos } from "../tasks/task-view.ts";
import { errorResponse, httpError, json, jsonBytes } from "./responses.ts";

/** What the API reads and acts on (the router with its task layer). */
export interface ApiSource {
  info(topic: string): unknown;
  drainDealer(dealerId: string): boolean;
  readonly tasks: TaskManager | undefined;
  readonly flows?: Pick<FlowEngine, "describe"> | undefined;
  readonly schedules?: Pick<Scheduler, "list" | "pause" | "resume" | "nextDueAt"> | undefined;
}

export const INFO_TOPICS = ["router", "services", "clusters", "queues"] as const;

type TaskFilter = Parameters<TaskManager["list"]>[0];

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DEALER_ID = /^[\x21-\x7e]{1,200}$/;

/** A time as ISO 8601 or milliseconds since the epoch. */
const TimeSchema = v.pipe(
  v.string(),
  v.maxLength(40),
  v.transform((text) => (/^\d{1,15}$/.test(text) ? Number(text) : Date.parse(text))),
  v.number("must be ISO 8601 or milliseconds since the epoch"),
  v.check((n) => Number.isFinite(n) && n >= 0, "must be ISO 8601 or milliseconds since the epoch"),
);

const TaskQuerySchema = v.strictObject({
  id: v.optional(v.pipe(v.string(), v.regex(TASK_ID, "must be a task id (UUIDv7)"))),
  state: v.optional(v.picklist(TASK_STATE_NAMES, "must be a task state")),
  method: v.optional(MethodNameSchema),
  from: v.optional(TimeSchema),
  to: v.optional(TimeSchema),
  limit: v.optional(
    v.pipe(v.string(), v.regex(/^\d{1,4}$/, "must be 1-1000"), v.transform(Number), v.number(), v.minValue(1), v.maxValue(1000)),
  ),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(64))),
  // The auth link's parameter, already used.
  token: v.optional(v.string()),
});

const RevokeBodySchema = v.strictObject({ terminate: v.optional(v.boolean()) });

export function firstIssue(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  const path = v.getDotPath(issue);
  return path ? `${path}: ${issue.message}` : issue.message;
}

function tasksOf(source: ApiSource): TaskManager {
  if (!source.tasks) throw new ValidationError("the task layer is not running");
  return source.tasks;
}

/** GET /api/tasks?id=&state=&method=&from=&to=&limit=&cursor= */
export function searchTasks(source: ApiSource, url: URL): Response {
  const query = v.safeParse(TaskQuerySchema, Object.fromEntries(url.searchParams));
  if (!query.success) return httpError(400, "VALIDATION_ERROR", firstIssue(query.issues));
  const q = query.output;
  try {
    const tasks = tasksOf(source);
    if (q.id !== undefined) {
      const record = safeGet(tasks, q.id);
      return jsonBytes(encodeTaskInfos(record ? [record] : [], undefined));
    }
    const filter: TaskFilter = { limit: q.limit ?? 50 };
    if (q.state !== undefined) filter.state = q.state;
    if (q.method !== undefined) filter.method = q.method;
    if (q.from !== undefined) filter.createdFrom = q.from;
    if (q.to !== undefined) filter.createdTo = q.to;
    if (q.cursor !== undefined) filter.cursor = q.cursor;
    const page = tasks.list(filter);
    return jsonBytes(encodeTaskInfos(page.tasks, page.cursor));
  } catch (error) {
    return errorResponse(error);
  }
}

function safeGet(tasks: TaskManager, id: string) {
  try {
    return tasks.get(id);
  } catch {
    return undefined;
  }
}

const encoder = new TextEncoder();

/** A task's JSON with `,"key":value` bytes added before its closing brace. */
function withField(info: Uint8Array, key: string, value: Uint8Array): Uint8Array {
  const head = encoder.encode(`,${JSON.stringify(key)}:`);
  const out = new Uint8Array(info.length - 1 + head.length + value.length + 1);
  out.set(info.subarray(0, info.length - 1), 0);
  out.set(head, info.length - 1);
  out.set(value, info.length - 1 + head.length);
  out[out.length - 1] = 0x7d;
  return out;
}

/**
 * GET /api/tasks/:id: the task with its arguments (as stored) and, for a node of a workflow,
 * its `flowId` (the root's id), so the page can show the flow's tree.
 */
export function getTask(source: ApiSource, id: string): Response {
  if (!TASK_ID.test(id)) return httpError(400, "VALIDATION_ERROR", "id: must be a task id (UUIDv7)");
  try {
    const record = tasksOf(source).get(id);
    let body = withField(encodeTaskInfo(record), "args", record.args);
    if (record.flowId !== undefined) body = withField(body, "flowId", encoder.encode(JSON.stringify(record.flowId)));
    return jsonBytes(body);
  } catch (error) {
    return errorResponse(error);
  }
}

/** GET /api/flows/:id: the flow tree rooted at task `id` with each node's state (the engine's describe, as getFlow). */
export function getFlow(source: ApiSource, id: string): Response {
  if (!TASK_ID.test(id)) return httpError(400, "VALIDATION_ERROR", "id: must be a task id (UUIDv7)");
  try {
    if (!source.flows) throw new ValidationError("the task layer is not running");
    return json(source.flows.describe(id));
  } catch (error) {
    return errorResponse(error);
  }
}

/** Reads a JSON object body of at most 16 KiB; an empty body is `{}`. */
export async function jsonBody(request: Request): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const type = request.headers.get("content-type") ?? "";
  const text = await request.text();
  if (text.length > 16 * 1024) return { ok: false, response: httpError(413, "VALIDATION_ERROR", "the body is larger than 16 KiB") };
  if (text.trim() === "") return { ok: true, value: {} };
  // A form cannot send JSON across sites without a preflight: with a cookie, this blocks CSRF.
  if (!type.toLowerCase().startsWith("application/json"))
    return { ok: false, response: httpError(415, "VALIDATION_ERROR", "send the body as application/json") };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, response: httpError(400, "VALIDATION_ERROR", "the body is not valid JSON") };
  }
}

/** POST /api/tasks/:id/revoke {terminate?} */
export async function revokeTask(source: ApiSource, id: string, request: Request): Promise<Response> {
  if (!TASK_ID.test(id)) return httpError(400, "VALIDATION_ERROR", "id: must be a task id (UUIDv7)");
  const body = await jsonBody(request);
  if (!body.ok) return body.response;
  const parsed = v.safeParse(RevokeBodySchema, body.value);
  if (!parsed.success) return httpError(400, "VALIDATION_ERROR", firstIssue(parsed.issues));
  try {
    const record = await tasksOf(source).revoke(id, parsed.output.terminate ? { terminate: true } : {});
    return jsonBytes(encodeTaskInfo(record));
  } catch (error) {
    return errorResponse(error);
  }
}

/** POST /api/tasks/:id/retry: a new task with the same method and arguments (TaskManager.retry). */
export async function retryTask(source: ApiSource, id: string, request: Request): Promise<Response> {
  if (!TASK_ID.test(id)) return httpError(400, "VALIDATION_ERROR", "id: must be a task id (UUIDv7)");
  const body = await jsonBody(request);
  if (!body.ok) return body.response;
  try {
    const record = await tasksOf(source).retry(id);
    return jsonBytes(encodeTaskInfo(record), 201);
  } catch (error) {
    return errorResponse(error);
  }
}

/** POST /api/dealers/:id/drain */
export async function drainDealer(source: ApiSource, id: string, request: Request): Promise<Response> {
  if (!DEALER_ID.test(id)) return httpError(400, "VALIDATION_ERROR", "id: must be a dealer id");
  const body = await jsonBody(request);
  if (!body.ok) return body.response;
  if (!source.drainDealer(id)) return httpError(404, "DEALER_NOT_FOUND", `no registered dealer has the id ${id}`);
  return json({ dealerId: id, draining: true }, 202);
}
