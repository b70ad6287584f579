/**
 * One open flow in memory: its nodes with their states and, per chain, group and chord, the
 * counts that say when it is done, plus the pure rules that decide what happens next (release
 * the next step, finish the container, run or skip a callback). The engine (flow-engine.ts)
 * applies those moves to the store. Built from the stored links, so a restart rebuilds it.
 */
import type { GroupJoin } from "../../protocol/index.ts";
import { isFinal, type TaskState } from "../../store/task-states.ts";
import type { FlowKind, FlowLink, FlowRole, StoredFlowLink } from "../../store/task-store.ts";

export interface FlowNode {
  id: string;
  kind: FlowKind;
  role: FlowRole;
  parent: FlowNode | undefined;
  /** Absent when the record was purged (treated as final). */
  state: TaskState | undefined;
  join: GroupJoin;
  immutable: boolean;
  release: FlowLink["release"];
  /** A chain's steps, a group's members, a chord's [group, callback]. */
  steps: FlowNode[];
  onSuccess: FlowNode | undefined;
  onFailure: FlowNode | undefined;
  /** Steps in a final state / of those, succeeded. */
  finishedSteps: number;
  succeededSteps: number;
  /** The first step that ended without success (groups with join "all"). */
  firstFailed: FlowNode | undefined;
  /** Chains and chords: the first step not known to have succeeded. */
  nextStep: number;
  /** Its own final transition has been asked for: decide nothing more for it. */
  settling: boolean;
}

const done = (state: TaskState | undefined) => state === undefined || isFinal(state);

export class FlowGraph {
  readonly nodes = new Map<string, FlowNode>();
  /** Nodes not yet final; the flow is forgotten (from memory) at 0. */
  open = 0;

  private constructor(readonly root: FlowNode) {}

  /** From the flow's links, parents before children (as the store returns them). */
  static fromLinks(links: readonly StoredFlowLink[]): FlowGraph {
    let root: FlowNode | undefined;
    const nodes = new Map<string, FlowNode>();
    for (const link of links) {
      const parent = link.parentId === undefined ? undefined : nodes.get(link.parentId);
      if (link.parentId !== undefined && !parent) continue; // its parent was purged: nothing to carry on
      const node: FlowNode = {
        id: link.taskId,
        kind: link.kind,
        role: link.role,
        parent,
        state: link.state,
        join: link.join ?? "all",
        immutable: link.immutable === true,
        release: link.release,
        steps: [],
        onSuccess: undefined,
        onFailure: undefined,
        finishedSteps: 0,
        succeededSteps: 0,
        firstFailed: undefined,
        nextStep: 0,
        settling: false,
      };
      nodes.set(node.id, node);
      if (!parent) root ??= node;
      else if (link.role === "step") parent.steps[link.position] = node;
      else parent[link.role] = node;
    }
    if (!root) throw new Error("a flow without its root");
    const graph = new FlowGraph(root);
    for (const node of nodes.values()) {
      graph.nodes.set(node.id, node);
      if (!done(node.state)) graph.open++;
      else if (node.role === "step" && node.parent) graph.count(node.parent, node);
    }
    return graph;
  }

  /**
   * A node reached `state`. Returns false when nothing changed for the flow (it was final
   * already): a repeated event must not count twice.
   */
  record(node: FlowNode, state: TaskState): boolean {
    if (done(node.state)) return false;
    node.state = state;
    if (!isFinal(state)) return true;
    this.open--;
    if (node.role === "step" && node.parent) this.count(node.parent, node);
    return true;
  }

  private count(parent: FlowNode, step: FlowNode): void {
    parent.finishedSteps++;
    if (step.state === "succeeded") parent.succeededSteps++;
    else parent.firstFailed ??= step;
  }
}

/** What a chain, group or chord that is not final does next. */
export type ContainerMove =
  | { type: "wait" }
  | { type: "release"; step: FlowNode; inputFrom: FlowNode }
  | { type: "succeed" }
  | { type: "fail"; cause: FlowNode };

export function nextMove(container: FlowNode): ContainerMove {
  const steps = container.steps;
  if (container.kind === "group") {
    if (container.join === "all" && container.firstFailed) return { type: "fail", cause: container.firstFailed };
    return container.finishedSteps === steps.length ? { type: "succeed" } : { type: "wait" };
  }
  // A chain, or a chord (its group, then its callback): one step at a time.
  while (container.nextStep < steps.length && steps[container.nextStep]?.state === "succeeded") container.nextStep++;
  if (container.nextStep === steps.length) return { type: "succeed" };
  const step = steps[container.nextStep];
  if (!step || done(step.state)) return { type: "fail", cause: step ?? container };
  if (container.nextStep === 0) return { type: "wait" }; // released with the container itself
  return { type: "release", step, inputFrom: steps[container.nextStep - 1] };
}

/** What a final node's callbacks do: one may run (with the node's result or error), the rest are skipped. */
export function callbackMoves(node: FlowNode): { run?: FlowNode; skip: FlowNode[] } {
  const pending = (callback: FlowNode | undefined) => (callback && !done(callback.state) ? [callback] : []);
  if (node.state === "succeeded") return { ...(node.onSuccess ? { run: node.onSuccess } : {}), skip: pending(node.onFailure) };
  if (node.state === "failed" || node.state === "expired") {
    return { ...(node.onFailure ? { run: node.onFailure } : {}), skip: pending(node.onSuccess) };
  }
  // Revoked (or purged): nothing more of it runs.
  return { skip: [...pending(node.onSuccess), ...pending(node.onFailure)] };
}

/**
 * What to revoke once `container` ended without success: its unfinished steps, all the way
 * down, with their callbacks; when it was itself revoked, also callbacks of steps that finished.
 */
export function unfinishedBelow(container: FlowNode): FlowNode[] {
  const everything = container.state === "revoked";
  const found: FlowNode[] = [];
  const stack = [...container.steps];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const finished = done(node.state);
    if (!finished) found.push(node);
    if (!finished || everything) {
      for (const callback of [node.onSuccess, node.onFailure]) if (callback && !done(callback.state)) found.push(callback);
    }
    stack.push(...node.steps);
  }
  return found;
}
