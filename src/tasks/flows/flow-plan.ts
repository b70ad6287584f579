/**
 * From a checked workflow tree to what the store keeps: one task record per node (chains,
 * groups and chords are records too, so a flow has an id, a state and a result like any task)
 * and one link per node saying where it hangs. Every record starts `blocked`; the engine then
 * releases the steps whose turn it is. Pure: the caller passes the clock and the id maker.
 */
import { encodeJsonOrThrow, type FlowHeader, type FlowNodeWire, ValidationError } from "../../protocol/index.ts";
import type { FlowLink, FlowRole, NewTask } from "../../store/task-store.ts";
import { resolveTask, type TaskOptions } from "../task-options.ts";

export interface PlannedFlow {
  /** The root first, then every node in tree order (a parent before its children). */
  tasks: NewTask[];
  links: FlowLink[];
}

export interface PlanContext {
  now: number;
  newId: (now: number) => string;
  /** The method's task defaults (`@serviceMethod({ task })`). */
  defaultsOf: (method: string) => TaskOptions;
}

const EMPTY_ARGS = new TextEncoder().encode("[]");

interface Visit {
  node: FlowNodeWire;
  path: string;
  parentId: string | undefined;
  position: number;
  role: FlowRole;
}

export function planFlow(tree: FlowNodeWire, header: Omit<FlowHeader, "id">, context: PlanContext): PlannedFlow {
  const { now } = context;
  const tasks: NewTask[] = [];
  const links: FlowLink[] = [];
  let flowId = "";
  // Depth first, children in order: parents are stored before their children.
  const stack: Visit[] = [{ node: tree, path: "flow", parentId: undefined, position: 0, role: "step" }];
  while (stack.length > 0) {
    const { node, path, parentId, position, role } = stack.pop()!;
    const id = context.newId(now);
    if (parentId === undefined) flowId = id;
    const link: FlowLink = { taskId: id, flowId, position, role, kind: node.kind };
    if (parentId !== undefined) link.parentId = parentId;
    let task: NewTask;
    if (node.kind === "task") {
      task = planTask(id, node, path, context);
      const submit = node.options ?? {};
      const defaults = context.defaultsOf(node.method);
      const countdownMs = submit.etaMs !== undefined ? undefined : (submit.countdownMs ?? defaults.countdownMs);
      const expiresMs = submit.expiresMs ?? defaults.expiresMs;
      const release: NonNullable<FlowLink["release"]> = {};
      if (countdownMs !== undefined && countdownMs > 0) release.countdownMs = countdownMs;
      if (submit.etaMs !== undefined) release.etaMs = submit.etaMs;
      if (expiresMs !== undefined) release.expiresMs = expiresMs;
      if (Object.keys(release).length > 0) link.release = release;
      if (node.immutable) link.immutable = true;
    } else {
      const options: TaskOptions = header.resultTtlMs !== undefined ? { resultTtlMs: header.resultTtlMs } : {};
      task = resolveTask(id, node.kind, EMPTY_ARGS, options, {}, now);
      if (node.kind === "group") link.join = node.join ?? "all";
    }
    // Its turn comes when the engine releases it: until then it neither runs nor expires.
    task.state = "blocked";
    task.runAt = now;
    delete task.expiresAt;
    task.flowId = flowId;
    if (parentId === undefined && header.idempotencyKey !== undefined) task.idempotencyKey = header.idempotencyKey;
    tasks.push(task);
    links.push(link);

    const children: Visit[] = [];
    const child = (n: FlowNodeWire, suffix: string, at: number, as: FlowRole): void => {
      children.push({ node: n, path: `${path}.${suffix}`, parentId: id, position: at, role: as });
    };
    if (node.kind === "chain") node.steps.forEach((step, i) => void child(step, `steps[${i}]`, i, "step"));
    else if (node.kind === "group") node.members.forEach((member, i) => void child(member, `members[${i}]`, i, "step"));
    else if (node.kind === "chord") {
      child(node.group, "group", 0, "step");
      child(node.callback, "callback", 1, "step");
    }
    if (node.onSuccess) child(node.onSuccess, "onSuccess", 0, "onSuccess");
    if (node.onFailure) child(node.onFailure, "onFailure", 0, "onFailure");
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return { tasks, links };
}

function planTask(id: string, node: Extract<FlowNodeWire, { kind: "task" }>, path: string, context: PlanContext): NewTask {
  const args = encodeJsonOrThrow(node.args ?? []);
  try {
    return resolveTask(id, node.method, args, node.options ?? {}, context.defaultsOf(node.method), context.now);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    const field = (error.data as { path?: string } | undefined)?.path ?? "options";
    throw new ValidationError(`flow node ${path} (${node.method}): ${error.message}`, { data: { path, field } });
  }
}
