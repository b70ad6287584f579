/**
 * Workflow builders (`task`, `chain`, `group`, `chord`) and their translation to the FLOW
 * payload: options in seconds become the wire's milliseconds, and a tree that cannot be sent (a
 * cycle, too deep, too many nodes, a bad option) is refused here with a ValidationError naming
 * the node by its path (`flow.steps[1].members[0]`). Pure: no I/O.
 *
 * @example
 * import { chain, group, task } from "voidrail";
 * const flow = chain(task("Data.fetch", ["url"]), group([task("Img.resize"), task("Img.thumb")]), task("Data.save"));
 */
import {
  FlowLimits,
  type FlowNodeWire,
  type GroupJoin,
  type SubmitOptions,
  submitOptionsToWire,
  type TaskDefaults,
  ValidationError,
} from "../protocol/index.ts";

/** Options of one task of a flow: a submit's (seconds), plus how it takes its input and its callbacks. */
export interface TaskStepOptions extends TaskDefaults {
  /** When it may start once its turn came: a Date or an ISO 8601 string; instead of `countdown`. */
  eta?: Date | string;
  /** Ignore the previous step's result instead of taking it as the first argument (Celery's `.si()`). */
  immutable?: boolean;
  /** Runs once this task succeeded, with its result as the first argument (Celery's `link`). */
  onSuccess?: TaskSignature;
  /** Runs once this task failed or expired, with `{ code, name, message }` first (Celery's `link_error`). */
  onFailure?: TaskSignature;
}

/** One task of a flow: `method(...args)`. */
export interface TaskSignature {
  readonly kind: "task";
  readonly method: string;
  readonly args: readonly unknown[];
  readonly options: TaskStepOptions;
}

/** Steps one after another; each gets the previous one's result as its first argument. */
export interface ChainSignature {
  readonly kind: "chain";
  readonly steps: readonly FlowSignature[];
}

/** Members in parallel; the result is the array of their results, in order. */
export interface GroupSignature {
  readonly kind: "group";
  readonly members: readonly FlowSignature[];
  readonly join: GroupJoin;
}

/** A group, then a callback that gets the group's array. */
export interface ChordSignature {
  readonly kind: "chord";
  readonly group: GroupSignature;
  readonly callback: FlowSignature;
}

export type FlowSignature = TaskSignature | ChainSignature | GroupSignature | ChordSignature;

/** Callbacks of a task or a flow. */
export interface FlowCallbacks {
  /** Runs once it succeeded, with its result as the first argument. */
  onSuccess?: TaskSignature;
  /** Runs once it failed or expired, with `{ code, name, message }` as the first argument. */
  onFailure?: TaskSignature;
}

/**
 * One task of a flow.
 * @example task("Img.resize", [800], { priority: 8, retries: 2 })
 */
export function task(method: string, args: readonly unknown[] = [], options: TaskStepOptions = {}): TaskSignature {
  return { kind: "task", method, args, options };
}

/**
 * Steps that run one after another, each getting the previous step's result as its first
 * argument (unless built with `immutable: true`); the chain's result is the last step's.
 */
export function chain(...steps: FlowSignature[]): ChainSignature {
  return { kind: "chain", steps };
}

/**
 * Members that run in parallel. `join: "all"` (default): the result is the array of results in
 * order, and the first failure fails the group and revokes the rest; `join: "settled"`: every
 * member runs to its end and the result is `{ ok: true, value }` or `{ ok: false, error }` per member.
 */
export function group(members: readonly FlowSignature[], options: { join?: GroupJoin } = {}): GroupSignature {
  return { kind: "group", members, join: options.join ?? "all" };
}

/** A group, then `callback` once, with the group's array as its first argument. */
export function chord(members: GroupSignature | readonly FlowSignature[], callback: FlowSignature): ChordSignature {
  return { kind: "chord", group: Array.isArray(members) ? group(members) : (members as GroupSignature), callback };
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError(`flow node ${path}: ${message}`, { data: { path } });
}

/** The wire tree of `flow`, with `callbacks` on its root; ValidationError names a node that cannot be sent. */
export function flowToWire(flow: FlowSignature, callbacks: FlowCallbacks = {}): FlowNodeWire {
  const ancestors = new Set<object>();
  let nodes = 0;
  const visit = (node: FlowSignature, path: string, depth: number, callback: boolean): FlowNodeWire => {
    if (typeof node !== "object" || node === null) throw invalid(path, "expected task(), chain(), group() or chord()");
    if (ancestors.has(node)) throw invalid(path, "the flow contains itself (a cycle): a step cannot be one of its own ancestors");
    if (++nodes > FlowLimits.MAX_FLOW_NODES) throw invalid(path, `the flow has more than ${FlowLimits.MAX_FLOW_NODES} nodes`);
    if (callback && node.kind !== "task") throw invalid(path, "a callback must be a task(...)");
    ancestors.add(node);
    try {
      if (node.kind === "task") return taskToWire(node, path, callback, visit);
      if (node.kind !== "chain" && node.kind !== "group" && node.kind !== "chord") {
        throw invalid(path, "expected task(), chain(), group() or chord()");
      }
      if (depth + 1 > FlowLimits.MAX_FLOW_DEPTH) {
        throw invalid(path, `nested deeper than ${FlowLimits.MAX_FLOW_DEPTH} chains, groups and chords`);
      }
      if (node.kind === "chain") {
        if (!Array.isArray(node.steps) || node.steps.length === 0) throw invalid(path, "a chain needs at least one step");
        return { kind: "chain", steps: node.steps.map((step, i) => visit(step, `${path}.steps[${i}]`, depth + 1, false)) };
      }
      if (node.kind === "group") {
        if (!Array.isArray(node.members) || node.members.length === 0) throw invalid(path, "a group needs at least one member");
        if (node.join !== "all" && node.join !== "settled") throw invalid(path, `join must be "all" or "settled"`);
        const members = node.members.map((member, i) => visit(member, `${path}.members[${i}]`, depth + 1, false));
        return { kind: "group", members, ...(node.join === "settled" ? { join: "settled" as const } : {}) };
      }
      if (node.group?.kind !== "group") throw invalid(`${path}.group`, "a chord's first part must be a group");
      return {
        kind: "chord",
        group: visit(node.group, `${path}.group`, depth + 1, false),
        callback: visit(node.callback, `${path}.callback`, depth + 1, false),
      };
    } finally {
      ancestors.delete(node);
    }
  };
  const wire = visit(flow, "flow", 0, false);
  for (const role of ["onSuccess", "onFailure"] as const) {
    const callback = callbacks[role];
    if (callback === undefined) continue;
    if (wire[role] !== undefined) throw invalid("flow", `${role} is given twice (in the task's options and the flow's)`);
    wire[role] = visit(callback, `flow.${role}`, 0, true);
  }
  return wire;
}

type Visit = (node: FlowSignature, path: string, depth: number, callback: boolean) => FlowNodeWire;

function taskToWire(node: TaskSignature, path: string, callback: boolean, visit: Visit): FlowNodeWire {
  if (typeof node.method !== "string") throw invalid(path, "method must be a Service.method name");
  const named = `${path} (${node.method})`;
  if (!Array.isArray(node.args)) throw invalid(named, "args must be an array of arguments");
  const { immutable, onSuccess, onFailure, ...submit } = (node.options ?? {}) as TaskStepOptions & SubmitOptions;
  if (submit.idempotencyKey !== undefined) throw invalid(named, "idempotencyKey belongs to the whole flow (submitFlow's options)");
  if (submit.waitForDealer !== undefined) throw invalid(named, "waitForDealer belongs to the whole flow (submitFlow's options)");
  let options: ReturnType<typeof submitOptionsToWire>["options"];
  try {
    options = submitOptionsToWire(submit).options;
  } catch (error) {
    if (error instanceof ValidationError) throw invalid(named, error.message);
    throw error;
  }
  if (immutable !== undefined && typeof immutable !== "boolean") throw invalid(named, "immutable must be true or false");
  const wire: FlowNodeWire = { kind: "task", method: node.method, args: [...node.args] };
  if (Object.keys(options).length > 0) wire.options = options;
  if (immutable) wire.immutable = true;
  if ((onSuccess || onFailure) && callback) throw invalid(named, "a callback cannot have callbacks of its own");
  if (onSuccess) wire.onSuccess = visit(onSuccess, `${path}.onSuccess`, 0, true);
  if (onFailure) wire.onFailure = visit(onFailure, `${path}.onFailure`, 0, true);
  return wire;
}
