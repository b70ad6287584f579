/**
 * FlowEngine: runs workflows (chain, group, chord, callbacks) over the task manager and the
 * store. A submit is checked, planned and stored in one transaction (every node a blocked task
 * record), then the first steps are released. From then on the engine reacts to each task of a
 * flow reaching a final state (the manager's `onFinished`): it releases the next step with the
 * result as its input, finishes a chain, group or chord, runs or skips callbacks, and revokes
 * what a failure or a revoke left unfinished. Each move is a guarded store transition (a step is
 * released only from `blocked`), so the same moves replayed after a restart change nothing
 * that was done: `carryOn` re-derives them from the stored states.
 */
import { decodeJson, type FlowHeader, type FlowInfo, type FlowNodeWire, TaskNotFoundError, ValidationError } from "../../protocol/index.ts";
import { isFinal, type TaskState } from "../../store/task-states.ts";
import type { StoredFlowLink, TaskError, TaskRecord, TaskStore } from "../../store/task-store.ts";
import type { Logger } from "../../util/log.ts";
import type { TaskHost } from "../host.ts";
import type { TaskManager } from "../task-manager.ts";
import { newTaskId } from "../task-id.ts";
import { failureJson, JSON_NULL, joinArray, prependArgument, settledEntry } from "./flow-bytes.ts";
import { checkFlowTree } from "./flow-check.ts";
import { callbackMoves, FlowGraph, type FlowNode, nextMove, unfinishedBelow } from "./flow-graph.ts";
import { planFlow } from "./flow-plan.ts";
import { describeFlow } from "./flow-view.ts";

export interface FlowEngineOptions {
  store: TaskStore;
  host: TaskHost;
  tasks: TaskManager;
  logger: Logger;
  /** The clock (tests). Default Date.now. */
  now?: () => number;
}

export class FlowEngine {
  private readonly store: TaskStore;
  private readonly host: TaskHost;
  private readonly tasks: TaskManager;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Open flows by flow id, and the graph of every node of them by task id. */
  private readonly graphs = new Map<string, FlowGraph>();
  private readonly graphOf = new Map<string, FlowGraph>();
  private stopped = false;

  constructor(options: FlowEngineOptions) {
    this.store = options.store;
    this.host = options.host;
    this.tasks = options.tasks;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
  }

  /** Rebuilds the open flows from the store (before the manager takes over its tasks). */
  load(): number {
    for (const flowId of this.store.openFlows()) {
      try {
        this.remember(FlowGraph.fromLinks(this.store.flowLinks(flowId)));
      } catch (error) {
        this.log.error(`flows: cannot carry on flow ${flowId}: ${(error as Error).message}`);
      }
    }
    return this.graphs.size;
  }

  /**
   * Makes every open flow catch up with its stored states (after a restart): moves that were
   * due when the router stopped are made now; moves already made change nothing.
   */
  async carryOn(): Promise<void> {
    for (const graph of [...this.graphs.values()]) {
      try {
        await this.catchUp(graph, graph.root);
        if (!isFinal(graph.root.state ?? "succeeded")) await this.release(graph, graph.root, undefined);
      } catch (error) {
        this.log.error(`flows: carrying on flow ${graph.root.id} failed: ${(error as Error).message}`);
      }
    }
  }

  stop(): void {
    this.stopped = true;
  }

  // ---- the client's verbs ----

  /** Checks, stores (all or nothing) and starts a flow; resolves with its root task. */
  async submit(header: FlowHeader, payload: Uint8Array): Promise<TaskRecord> {
    const decoded = decodeJson(payload);
    if (!decoded.ok) {
      throw new ValidationError(`the flow is not JSON: ${decoded.error.message}`, { data: { path: "flow" } });
    }
    const waitForDealer = header.waitForDealer === true;
    const tree: FlowNodeWire = checkFlowTree(decoded.value, { method: (method) => this.host.method(method), waitForDealer });
    const plan = planFlow(tree, header, {
      now: this.now(),
      newId: newTaskId,
      defaultsOf: (method) => this.host.method(method)?.taskDefaults ?? {},
    });
    const { root, created } = await this.store.insertFlow(plan.tasks, plan.links);
    if (!created) return root;
    const graph = FlowGraph.fromLinks(plan.links.map((link) => ({ ...link, state: "blocked" as const })));
    this.remember(graph);
    await this.release(graph, graph.root, undefined);
    return this.store.get(root.id) ?? root;
  }

  /** The flow `taskId` is the root (or a node) of, as a tree; a task alone is a one-node tree. */
  describe(taskId: string): FlowInfo {
    const record = this.store.get(taskId);
    if (!record) throw new TaskNotFoundError(`no task has the id ${taskId}`, { data: { taskId } });
    if (record.flowId === undefined) return { id: record.id, kind: "task", state: record.state, method: record.method };
    const links: StoredFlowLink[] = this.store.flowLinks(record.flowId);
    return describeFlow(links, taskId);
  }

  // ---- reacting to tasks ----

  /** The manager's `onFinished`: a task reached a final state. */
  readonly finished = (taskId: string, state: TaskState): void => {
    const graph = this.graphOf.get(taskId);
    if (!graph || this.stopped) return;
    const node = graph.nodes.get(taskId)!;
    if (!graph.record(node, state)) return;
    this.react(graph, node).catch((error: unknown) =>
      this.log.error(`flows: flow ${graph.root.id} after ${taskId} ended ${state}: ${(error as Error).message}`),
    );
  };

  private async react(graph: FlowGraph, node: FlowNode): Promise<void> {
    await this.settleCallbacks(graph, node);
    if (node.kind !== "task" && node.state !== "succeeded") await this.revokeAll(unfinishedBelow(node));
    const parent = node.role === "step" ? node.parent : undefined;
    if (parent && !isFinal(parent.state ?? "succeeded")) await this.advance(graph, parent);
    this.forgetIfDone(graph);
  }

  /** Re-derives every move of a flow from its states, children first (after a restart). */
  private async catchUp(graph: FlowGraph, node: FlowNode): Promise<void> {
    for (const step of node.steps) await this.catchUp(graph, step);
    if (node.state === undefined || isFinal(node.state)) {
      await this.settleCallbacks(graph, node);
      if (node.kind !== "task" && node.state !== "succeeded") await this.revokeAll(unfinishedBelow(node));
    } else if (node.kind !== "task") {
      await this.advance(graph, node);
    }
    this.forgetIfDone(graph);
  }

  private async advance(graph: FlowGraph, container: FlowNode): Promise<void> {
    if (container.settling || this.stopped) return;
    const move = nextMove(container);
    switch (move.type) {
      case "wait":
        return;
      case "release":
        await this.release(graph, move.step, this.resultOf(move.inputFrom));
        return;
      case "succeed":
        container.settling = true;
        await this.tasks.completeFlowStep(container.id, { result: this.joinedResult(container) });
        return;
      case "fail":
        container.settling = true;
        await this.tasks.completeFlowStep(container.id, { error: this.errorOf(move.cause) });
        return;
    }
  }

  /**
   * Lets `node` start, with `input` (the previous step's result, or the callback's argument) as
   * the first argument of each task that starts it. A no-op for what was released before.
   */
  private async release(graph: FlowGraph, node: FlowNode, input: Uint8Array | undefined): Promise<void> {
    if (this.stopped || node.state !== "blocked") return;
    if (node.kind === "chain" || node.kind === "chord") {
      if (node.steps[0]) await this.release(graph, node.steps[0], input);
      return;
    }
    if (node.kind === "group") {
      await Promise.all(node.steps.map((member) => this.release(graph, member, input)));
      return;
    }
    const record = this.store.get(node.id);
    if (record?.state !== "blocked") return;
    const args = input !== undefined && !node.immutable ? prependArgument(input, record.args) : record.args;
    const now = this.now();
    const timing = node.release ?? {};
    const runAt = timing.etaMs !== undefined ? Math.max(now, timing.etaMs) : now + (timing.countdownMs ?? 0);
    const fields = { args, runAt, ...(timing.expiresMs !== undefined ? { expiresAt: now + timing.expiresMs } : {}) };
    const later = runAt > now;
    if (!(await this.store.transition(node.id, later ? "markReleasedLater" : "markReleased", fields))) return;
    if (this.stopped) return;
    // What the transition wrote, without reading the record back.
    const released: TaskRecord = { ...record, ...fields, state: later ? "scheduled" : "queued" };
    // Revoked while the release was being committed: the store holds the revoke.
    if (graph.record(node, released.state)) this.tasks.admit(released);
  }

  private async settleCallbacks(graph: FlowGraph, node: FlowNode): Promise<void> {
    if (!node.onSuccess && !node.onFailure) return;
    const { run, skip } = callbackMoves(node);
    await this.revokeAll(skip);
    if (!run) return;
    const error = node.state === "succeeded" ? undefined : this.errorOf(node);
    await this.release(graph, run, error === undefined ? this.resultOf(node) : failureJson(error));
  }

  private async revokeAll(nodes: readonly FlowNode[]): Promise<void> {
    await Promise.all(
      nodes.map(async (node) => {
        try {
          await this.tasks.revoke(node.id);
        } catch (error) {
          if (!(error instanceof TaskNotFoundError)) throw error;
        }
      }),
    );
  }

  // ---- results ----

  private resultOf(node: FlowNode): Uint8Array {
    return this.store.get(node.id)?.result ?? JSON_NULL;
  }

  private errorOf(node: FlowNode): TaskError {
    return this.store.get(node.id)?.error ?? { code: "UNKNOWN_ERROR", message: `flow step ${node.id} ended ${node.state ?? "purged"}` };
  }

  /** The result of a chain or chord (its last step's) or a group (its members', in order). */
  private joinedResult(container: FlowNode): Uint8Array {
    if (container.kind !== "group") return this.resultOf(container.steps[container.steps.length - 1]);
    if (container.join === "all") return joinArray(container.steps.map((member) => this.resultOf(member)));
    return joinArray(
      container.steps.map((member) => {
        if (member.state === "succeeded") return settledEntry(true, this.resultOf(member));
        return settledEntry(false, failureJson(this.errorOf(member)));
      }),
    );
  }

  // ---- memory ----

  private remember(graph: FlowGraph): void {
    this.graphs.set(graph.root.id, graph);
    for (const id of graph.nodes.keys()) this.graphOf.set(id, graph);
  }

  private forgetIfDone(graph: FlowGraph): void {
    if (graph.open > 0 || !this.graphs.has(graph.root.id)) return;
    this.graphs.delete(graph.root.id);
    for (const id of graph.nodes.keys()) this.graphOf.delete(id);
  }

  /** Open flows held in memory (monitoring, tests). */
  get openFlows(): number {
    return this.graphs.size;
  }
}
