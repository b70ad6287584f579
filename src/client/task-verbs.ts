/**
 * The client's task verbs (submit, getTask, waitTask, watchTask, revokeTask, listTasks) over a
 * small channel to the router, so ClientDealer keeps its connection and call machinery and this
 * file keeps what tasks mean: options in, checked answers out, a task's error rebuilt as its
 * typed class.
 */
import * as v from "valibot";
import {
  containsBinary,
  decodeJson,
  encodeJson,
  encodeMessage,
  errorFromWire,
  FINAL_TASK_STATES,
  type FlowInfo,
  FlowInfoSchema,
  type FlowNodeWire,
  ProtocolError,
  type SubmitOptions,
  submitOptionsToWire,
  TASK_ID_PATTERN,
  type TaskEvent,
  TaskEventSchema,
  type TaskInfo,
  TaskInfoSchema,
  type TaskPage,
  TaskPageSchema,
  TASK_STATE_NAMES,
  ValidationError,
  type VoidRailError,
} from "../protocol/index.ts";
import { type FlowCallbacks, type FlowSignature, flowToWire, task } from "./flow-builders.ts";

/** What the verbs need of a client connection. */
export interface TaskChannel {
  /** One request, built for its id; resolves with the RESULT's decoded payload. `timeoutSeconds` 0 = none. */
  request(build: (id: number) => Uint8Array[], timeoutSeconds: number, what: string): Promise<unknown>;
  /** A request answered by CHUNKs and an END; `cancel` stops it. */
  subscribe(
    build: (id: number) => Uint8Array[],
    handlers: { onChunk(seq: number, payload: Uint8Array): void; onEnd(count: number): void; onError(error: Error): void },
  ): Promise<{ cancel(): void }>;
}

export interface TaskListFilter {
  /** "blocked", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "revoked" or "expired". */
  state?: (typeof TASK_STATE_NAMES)[number];
  method?: string;
  /** Created at or after. */
  createdFrom?: Date;
  /** Created before. */
  createdTo?: Date;
  /** 1..1000; default 50. */
  limit?: number;
  /** From the previous page. */
  cursor?: string;
}

/** Answers to the task verbs get a deadline of their own: the router answers at once. */
export const ANSWER_TIMEOUT_SECONDS = 30;

/** The router's answer checked against its schema; ProtocolError BAD_ANSWER when it is not that. */
export function checked<T>(schema: v.GenericSchema<unknown, T>, value: unknown, what: string): T {
  const parsed = v.safeParse(schema, value);
  if (!parsed.success) {
    throw new ProtocolError(`the router's answer to ${what} is not what the protocol says: ${parsed.issues[0].message}`, {
      data: { reason: "BAD_ANSWER" },
    });
  }
  return parsed.output;
}

function checkTaskId(taskId: string): void {
  if (typeof taskId !== "string" || !TASK_ID_PATTERN.test(taskId)) {
    throw new ValidationError(`not a task id: ${JSON.stringify(String(taskId)).slice(0, 80)} (task ids are UUIDv7 strings)`, {
      data: { path: "taskId" },
    });
  }
}

/** Options of `client.submit`: a task's, and the callbacks that run after it. */
export interface SubmitWithCallbacks extends SubmitOptions, FlowCallbacks {}

/** Options of `client.submitFlow`. Times in seconds. */
export interface FlowOptions extends FlowCallbacks {
  /** Store the flow even if no dealer offers some of its methods yet. Default false. */
  waitForDealer?: boolean;
  /** While a task with this key exists, submitting again gives that task, not a second flow. */
  idempotencyKey?: string;
  /** Seconds the records of the flow's chains, groups and chords are kept once finished. Default 86400. */
  resultTtl?: number;
}

export async function submit(channel: TaskChannel, method: string, args: unknown[], options: SubmitWithCallbacks): Promise<TaskInfo> {
  const { onSuccess, onFailure, ...plain } = options;
  if (onSuccess !== undefined || onFailure !== undefined) {
    // A task with callbacks is a flow of one task: the router stores it with them, atomically.
    if (!Array.isArray(args)) throw new ValidationError("args must be an array of arguments", { data: { path: "args" } });
    const { idempotencyKey, waitForDealer, ...step } = plain;
    return submitFlow(channel, task(method, args, step), {
      ...(onSuccess ? { onSuccess } : {}),
      ...(onFailure ? { onFailure } : {}),
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      ...(waitForDealer !== undefined ? { waitForDealer } : {}),
    });
  }
  return submitPlain(channel, method, args, plain);
}

/** Sends a flow (FLOW); resolves with its root task once the whole flow is stored. */
export async function submitFlow(channel: TaskChannel, flow: FlowSignature, options: FlowOptions): Promise<TaskInfo> {
  const { onSuccess, onFailure, waitForDealer, idempotencyKey, resultTtl, ...unknown } = options ?? {};
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) throw new ValidationError(`unknown flow option ${extra}`, { data: { path: `options.${extra}` } });
  if (waitForDealer !== undefined && typeof waitForDealer !== "boolean") {
    throw new ValidationError("waitForDealer must be true or false", { data: { path: "options.waitForDealer" } });
  }
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== "string" || idempotencyKey.length < 1 || idempotencyKey.length > 256)) {
    throw new ValidationError("idempotencyKey must be a string of 1 to 256 characters", { data: { path: "options.idempotencyKey" } });
  }
  if (resultTtl !== undefined && !(typeof resultTtl === "number" && resultTtl > 0 && resultTtl <= 10 * 365 * 86_400)) {
    throw new ValidationError("resultTtl must be a positive number of seconds (at most ten years)", {
      data: { path: "options.resultTtl" },
    });
  }
  const tree: FlowNodeWire = flowToWire(flow, { ...(onSuccess ? { onSuccess } : {}), ...(onFailure ? { onFailure } : {}) });
  const encoded = encodeJson(tree, "flow");
  if (!encoded.ok) throw encoded.error;
  const header = {
    ...(waitForDealer ? { waitForDealer: true } : {}),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    ...(resultTtl !== undefined ? { resultTtlMs: Math.round(resultTtl * 1000) } : {}),
  };
  const answer = await channel.request(
    (id) => encodeMessage("FLOW", { id, ...header }, encoded.value),
    ANSWER_TIMEOUT_SECONDS,
    "submitFlow",
  );
  return checked(TaskInfoSchema, answer, "submitFlow");
}

export async function getFlow(channel: TaskChannel, taskId: string): Promise<FlowInfo> {
  checkTaskId(taskId);
  const answer = await channel.request((id) => encodeMessage("TASK", { id, op: "flow", taskId }), ANSWER_TIMEOUT_SECONDS, "getFlow");
  return checked(FlowInfoSchema, answer, "getFlow");
}

async function submitPlain(channel: TaskChannel, method: string, args: unknown[], options: SubmitOptions): Promise<TaskInfo> {
  if (!Array.isArray(args)) throw new ValidationError("args must be an array of arguments", { data: { path: "args" } });
  if (containsBinary(args)) {
    throw new ValidationError(
      "task arguments cannot hold binary values yet (Uint8Array, Buffer, typed arrays): pass them to a plain call",
      {
        data: { path: "args" },
      },
    );
  }
  const encoded = encodeJson(args, "args");
  if (!encoded.ok) throw encoded.error;
  const wire = submitOptionsToWire(options);
  const answer = await channel.request(
    (id) =>
      encodeMessage(
        "SUBMIT",
        {
          id,
          method,
          ...(Object.keys(wire.options).length > 0 ? { options: wire.options } : {}),
          ...(wire.waitForDealer ? { waitForDealer: true } : {}),
          ...(wire.require ? { require: wire.require } : {}),
        },
        encoded.value,
      ),
    ANSWER_TIMEOUT_SECONDS,
    `submit ${method}`,
  );
  return checked(TaskInfoSchema, answer, "submit");
}

export async function getTask(channel: TaskChannel, taskId: string): Promise<TaskInfo> {
  checkTaskId(taskId);
  const answer = await channel.request((id) => encodeMessage("TASK", { id, op: "get", taskId }), ANSWER_TIMEOUT_SECONDS, "getTask");
  return checked(TaskInfoSchema, answer, "getTask");
}

export async function waitTask<T>(channel: TaskChannel, taskId: string, timeoutSeconds: number): Promise<T> {
  checkTaskId(taskId);
  const timeoutMs = timeoutSeconds > 0 ? Math.max(1, Math.round(Math.min(timeoutSeconds, 2_147_483) * 1000)) : undefined;
  // The router answers TIMEOUT at `timeoutMs`; the local deadline, a little later, covers a silent router.
  const answer = await channel.request(
    (id) => encodeMessage("TASK", { id, op: "wait", taskId, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }),
    timeoutSeconds > 0 ? timeoutSeconds + 5 : 0,
    `waitTask ${taskId}`,
  );
  const info = checked(TaskInfoSchema, answer, "waitTask");
  if (info.state === "succeeded") return info.result as T;
  throw taskFailure(info);
}

/** The error a finished, unsuccessful task ends with, as its own class. */
export function taskFailure(info: TaskInfo): VoidRailError {
  const wire = info.error ?? { code: "UNKNOWN_ERROR", message: `task ${info.id} ended ${info.state}` };
  const error = errorFromWire({ code: wire.code, message: wire.message, data: wire.data });
  return error;
}

export function watchTask(channel: TaskChannel, taskId: string): AsyncIterable<TaskEvent> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<TaskEvent> {
      checkTaskId(taskId);
      const buffered: TaskEvent[] = [];
      let finished: { error?: Error } | undefined;
      let wake: (() => void) | undefined;
      const notify = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const subscription = channel.subscribe((id) => encodeMessage("TASK", { id, op: "watch", taskId }), {
        onChunk: (_seq, payload) => {
          const decoded = decodeJson(payload);
          try {
            if (!decoded.ok) throw decoded.error;
            buffered.push(checked(TaskEventSchema, decoded.value, "watchTask"));
          } catch (error) {
            finished = { error: error as Error };
          }
          notify();
        },
        onEnd: () => {
          finished = {};
          notify();
        },
        onError: (error) => {
          finished = { error };
          notify();
        },
      });
      return {
        next: async () => {
          await subscription;
          for (;;) {
            const event = buffered.shift();
            if (event) return { value: event, done: false };
            if (finished) {
              if (finished.error) throw finished.error;
              return { value: undefined, done: true };
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        },
        return: async () => {
          if (!finished) {
            finished = {};
            (await subscription.catch(() => undefined))?.cancel();
          }
          return { value: undefined, done: true };
        },
      };
    },
  };
}

export async function revokeTask(channel: TaskChannel, taskId: string, options: { terminate?: boolean }): Promise<TaskInfo> {
  checkTaskId(taskId);
  const answer = await channel.request(
    (id) => encodeMessage("TASK", { id, op: "revoke", taskId, ...(options.terminate ? { terminate: true } : {}) }),
    ANSWER_TIMEOUT_SECONDS,
    "revokeTask",
  );
  return checked(TaskInfoSchema, answer, "revokeTask");
}

/** A failed, revoked or expired task again, as a new task (TaskManager.retry); resolves with the new task. */
export async function retryTask(channel: TaskChannel, taskId: string): Promise<TaskInfo> {
  checkTaskId(taskId);
  const answer = await channel.request((id) => encodeMessage("TASK", { id, op: "retry", taskId }), ANSWER_TIMEOUT_SECONDS, "retryTask");
  return checked(TaskInfoSchema, answer, "retryTask");
}

export async function listTasks(channel: TaskChannel, filter: TaskListFilter): Promise<TaskPage> {
  if (filter.state !== undefined && !(TASK_STATE_NAMES as readonly string[]).includes(filter.state)) {
    throw new ValidationError(`state must be one of ${TASK_STATE_NAMES.join(", ")}`, { data: { path: "state" } });
  }
  const time = (date: Date | undefined, path: string) => {
    if (date === undefined) return undefined;
    if (!(date instanceof Date) || Number.isNaN(date.getTime()))
      throw new ValidationError(`${path} must be a valid Date`, { data: { path } });
    return date.getTime();
  };
  const header = {
    op: "list" as const,
    ...(filter.state !== undefined ? { state: filter.state } : {}),
    ...(filter.method !== undefined ? { method: filter.method } : {}),
    ...(filter.createdFrom !== undefined ? { createdFrom: time(filter.createdFrom, "createdFrom") } : {}),
    ...(filter.createdTo !== undefined ? { createdTo: time(filter.createdTo, "createdTo") } : {}),
    limit: filter.limit ?? 50,
    ...(filter.cursor !== undefined ? { cursor: filter.cursor } : {}),
  };
  const answer = await channel.request((id) => encodeMessage("TASK", { id, ...header }), ANSWER_TIMEOUT_SECONDS, "listTasks");
  return checked(TaskPageSchema, answer, "listTasks");
}

/** Whether a task in `state` will change no more. */
export function isFinalTaskState(state: string): boolean {
  return FINAL_TASK_STATES.has(state);
}
