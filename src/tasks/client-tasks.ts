/**
 * Serves clients' SUBMIT, FLOW and TASK requests (the router hands them over as its ClientExtension):
 * each op is a TaskManager verb, answered on the client's connection; waits and watches are
 * subscriptions that end at the task's final state, at the client's CANCEL, or when its
 * connection goes.
 */
import { encodeJsonOrThrow, errorToWire, ShuttingDownError, TimeoutError, type VoidRailError } from "../protocol/index.ts";
import type { ClientAnswers, ClientExtension, ExtensionMessage } from "../router/extension.ts";
import { isFinal } from "../store/task-states.ts";
import type { TaskRecord } from "../store/task-store.ts";
import type { Logger } from "../util/log.ts";
import type { FlowEngine } from "./flows/flow-engine.ts";
import { isScheduleOp, serveScheduleOp } from "./schedules/schedule-ops.ts";
import type { Scheduler } from "./schedules/scheduler.ts";
import type { TaskManager } from "./task-manager.ts";
import { encodeTaskInfo, encodeTaskInfos } from "./task-view.ts";
import type { TaskEvent } from "./watchers.ts";

const MAX_TIMER_MS = 2_147_483_647;

export class ClientTasks implements ClientExtension {
  /** Open waits and watches per client, by request id: each entry ends its subscription. */
  private readonly open = new Map<ClientAnswers, Map<number, () => void>>();

  constructor(
    private readonly tasks: TaskManager,
    private readonly flows: FlowEngine,
    private readonly log: Logger,
    /** Serves the schedule ops; set once the scheduler runs. */
    public scheduler?: Scheduler,
  ) {}

  message(client: ClientAnswers, message: ExtensionMessage): void {
    const id = message.header.id;
    void this.serve(client, message).catch((error: unknown) => client.answerError(id, errorToWire(error)));
  }

  cancel(client: ClientAnswers, id: number): void {
    this.end(client, id);
  }

  gone(client: ClientAnswers): void {
    const open = this.open.get(client);
    if (!open) return;
    this.open.delete(client);
    for (const stop of open.values()) stop();
  }

  /** Open subscriptions (monitoring, tests). */
  get subscriptions(): number {
    let n = 0;
    for (const open of this.open.values()) n += open.size;
    return n;
  }

  private async serve(client: ClientAnswers, message: ExtensionMessage): Promise<void> {
    const id = message.header.id;
    if (message.kind === "SUBMIT") {
      const { method, options, waitForDealer, require } = message.header;
      const task = await this.tasks.submit(method, message.payload, options ?? {}, waitForDealer ?? false, require);
      client.answer(id, encodeTaskInfo(task));
      return;
    }
    if (message.kind === "FLOW") {
      client.answer(id, encodeTaskInfo(await this.flows.submit(message.header, message.payload)));
      return;
    }
    const header = message.header;
    if (isScheduleOp(header)) {
      if (!this.scheduler) throw new ShuttingDownError("schedules are not served right now: the router is starting or stopping");
      client.answer(id, await serveScheduleOp(this.scheduler, header));
      return;
    }
    switch (header.op) {
      case "get":
        client.answer(id, encodeTaskInfo(this.tasks.get(header.taskId)));
        return;
      case "revoke":
        client.answer(id, encodeTaskInfo(await this.tasks.revoke(header.taskId, { terminate: header.terminate === true })));
        return;
      case "retry":
        client.answer(id, encodeTaskInfo(await this.tasks.retry(header.taskId)));
        return;
      case "list": {
        const page = this.tasks.list({
          limit: header.limit ?? 50,
          ...(header.state !== undefined ? { state: header.state } : {}),
          ...(header.method !== undefined ? { method: header.method } : {}),
          ...(header.createdFrom !== undefined ? { createdFrom: header.createdFrom } : {}),
          ...(header.createdTo !== undefined ? { createdTo: header.createdTo } : {}),
          ...(header.cursor !== undefined ? { cursor: header.cursor } : {}),
        });
        client.answer(id, encodeTaskInfos(page.tasks, page.cursor));
        return;
      }
      case "wait":
        return this.wait(client, id, header.taskId, header.timeoutMs);
      case "watch":
        return this.watch(client, id, header.taskId);
      case "flow":
        client.answer(id, encodeJsonOrThrow(this.flows.describe(header.taskId)));
        return;
    }
  }

  /** Answers once the task is final, or TIMEOUT after `timeoutMs`; nothing is held after either. */
  private wait(client: ClientAnswers, id: number, taskId: string, timeoutMs: number | undefined): void {
    const final = this.tasks.finalRecord(taskId);
    if (final !== undefined) {
      client.answer(id, encodeTaskInfo(final));
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    // The task exists (finalRecord said so): subscribe without reading it again.
    const unsubscribe = this.tasks.watchers.add(taskId, (event) => {
      if (!isFinal(event.state)) return;
      this.end(client, id);
      this.answerFinal(client, id, taskId);
    });
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () => {
          this.end(client, id);
          const error: VoidRailError = new TimeoutError(`task ${taskId} did not finish within ${timeoutMs} ms; it goes on`, {
            data: { timeoutMs, taskId },
          });
          client.answerError(id, errorToWire(error));
        },
        Math.min(timeoutMs, MAX_TIMER_MS),
      );
    }
    this.hold(client, id, () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    });
  }

  /** Streams the task's events, starting with where it stands now, and ends after a final state. */
  private watch(client: ClientAnswers, id: number, taskId: string): void {
    const now = this.tasks.get(taskId);
    let seq = 0;
    const send = (event: TaskEvent) => client.answerChunk(id, seq++, encodeJsonOrThrow(event));
    send(eventOf(now));
    if (isFinal(now.state)) {
      client.answerEnd(id, seq);
      return;
    }
    const unsubscribe = this.tasks.watch(taskId, (event) => {
      send(event);
      if (!isFinal(event.state)) return;
      this.end(client, id);
      client.answerEnd(id, seq);
    });
    this.hold(client, id, unsubscribe);
  }

  private answerFinal(client: ClientAnswers, id: number, taskId: string): void {
    try {
      client.answer(id, encodeTaskInfo(this.tasks.get(taskId)));
    } catch (error) {
      client.answerError(id, errorToWire(error));
    }
  }

  private hold(client: ClientAnswers, id: number, stop: () => void): void {
    let open = this.open.get(client);
    if (!open) this.open.set(client, (open = new Map()));
    const previous = open.get(id);
    if (previous) {
      this.log.warn(`a client reused request id ${id} for a second wait or watch; the first one ends`);
      previous();
    }
    open.set(id, stop);
  }

  private end(client: ClientAnswers, id: number): void {
    const open = this.open.get(client);
    const stop = open?.get(id);
    if (!stop) return;
    open!.delete(id);
    if (open!.size === 0) this.open.delete(client);
    stop();
  }
}

function eventOf(task: TaskRecord): TaskEvent {
  const event: TaskEvent = { state: task.state, at: new Date().toISOString() };
  if (task.progress !== undefined) event.progress = task.progress;
  return event;
}
