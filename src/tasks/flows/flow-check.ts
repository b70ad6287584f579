/**
 * Checks a workflow tree as it arrives (the decoded FLOW payload) before anything is stored:
 * each node's shape, the limits (nodes, depth), and that a dealer offers every method. One
 * iterative pass, so a 10,000-member group or a deep tree costs no recursion; every error names
 * the node by its path in the tree (`flow.steps[1].members[3]`). Pure apart from the `method`
 * lookup it is given.
 */
import * as v from "valibot";
import {
  FlowLimits,
  type FlowNodeWire,
  FlowTaskOptionsSchema,
  GROUP_JOINS,
  METHOD_NAME_PATTERN,
  NoSuchMethodError,
  ValidationError,
} from "../../protocol/index.ts";

/** What the check needs to know of a method: whether some dealer offers it, and whether it streams. */
export type MethodLookup = (method: string) => { stream: boolean } | undefined;

export interface FlowCheckOptions {
  method: MethodLookup;
  /** Accept methods no dealer offers yet (they wait in the store). */
  waitForDealer: boolean;
}

interface Pending {
  value: unknown;
  path: string;
  /** Chains, groups and chords above it, itself included once it is one. */
  depth: number;
  /** A callback: a task node with no callbacks of its own. */
  callback: boolean;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

function invalid(path: string, message: string): ValidationError {
  return new ValidationError(`flow node ${path}: ${message}`, { data: { path } });
}

/**
 * The tree, checked: returns it typed, or throws ValidationError (shape, limits, a streaming
 * method) or NoSuchMethodError (a method no dealer offers, unless `waitForDealer`), naming the node.
 */
export function checkFlowTree(tree: unknown, options: FlowCheckOptions): FlowNodeWire {
  const stack: Pending[] = [{ value: tree, path: "flow", depth: 0, callback: false }];
  let nodes = 0;
  while (stack.length > 0) {
    const { value, path, depth, callback } = stack.pop()!;
    if (++nodes > FlowLimits.MAX_FLOW_NODES) {
      throw invalid(path, `the flow has more than ${FlowLimits.MAX_FLOW_NODES} nodes (tasks, chains, groups, chords and callbacks)`);
    }
    if (!isObject(value)) throw invalid(path, "expected an object made by task(), chain(), group() or chord()");
    const kind = value.kind;
    if (callback && kind !== "task") throw invalid(path, "a callback must be a task(...), not a chain, group or chord");
    for (const role of ["onSuccess", "onFailure"] as const) {
      if (value[role] === undefined) continue;
      if (callback) throw invalid(path, "a callback cannot have callbacks of its own");
      stack.push({ value: value[role], path: `${path}.${role}`, depth, callback: true });
    }
    if (kind === "task") {
      checkTask(value, path, options);
      continue;
    }
    if (kind !== "chain" && kind !== "group" && kind !== "chord") {
      throw invalid(path, `unknown kind ${JSON.stringify(String(kind)).slice(0, 40)}: expected task, chain, group or chord`);
    }
    const inner = depth + 1;
    if (inner > FlowLimits.MAX_FLOW_DEPTH) {
      throw invalid(path, `nested deeper than ${FlowLimits.MAX_FLOW_DEPTH} chains, groups and chords`);
    }
    if (kind === "chord") {
      const group = value.group;
      if (!isObject(group) || group.kind !== "group") throw invalid(`${path}.group`, "a chord's first part must be a group");
      // Pushed last so the group is checked before the callback (errors come in tree order).
      stack.push({ value: value.callback, path: `${path}.callback`, depth: inner, callback: false });
      stack.push({ value: group, path: `${path}.group`, depth: inner, callback: false });
      continue;
    }
    const field = kind === "chain" ? "steps" : "members";
    const children = value[field];
    if (!Array.isArray(children) || children.length === 0) {
      throw invalid(path, `a ${kind} needs at least one ${kind === "chain" ? "step" : "member"} (${field}: a non-empty array)`);
    }
    if (children.length > FlowLimits.MAX_FLOW_NODES) {
      throw invalid(path, `the flow has more than ${FlowLimits.MAX_FLOW_NODES} nodes (tasks, chains, groups, chords and callbacks)`);
    }
    if (kind === "group" && value.join !== undefined && !(GROUP_JOINS as readonly unknown[]).includes(value.join)) {
      throw invalid(path, `join must be "all" or "settled"`);
    }
    for (let i = children.length - 1; i >= 0; i--) {
      stack.push({ value: children[i], path: `${path}.${field}[${i}]`, depth: inner, callback: false });
    }
  }
  return tree as FlowNodeWire;
}

function checkTask(node: Record<string, unknown>, path: string, options: FlowCheckOptions): void {
  const method = node.method;
  if (typeof method !== "string" || !METHOD_NAME_PATTERN.test(method)) {
    throw invalid(path, "method must be a Service.method name");
  }
  const named = `${path} (${method})`;
  if (node.args !== undefined && !Array.isArray(node.args)) throw invalid(named, "args must be an array of arguments");
  if (node.immutable !== undefined && typeof node.immutable !== "boolean") throw invalid(named, "immutable must be true or false");
  if (node.options !== undefined) {
    const parsed = v.safeParse(FlowTaskOptionsSchema, node.options);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const field = issue.path?.map((p) => String(p.key)).join(".") ?? "options";
      throw invalid(named, `options.${field}: ${issue.message}`);
    }
  }
  const offered = options.method(method);
  if (!offered && !options.waitForDealer) {
    throw new NoSuchMethodError(`no service offers ${method} (flow node ${path})`, { data: { method, path } });
  }
  if (offered?.stream) throw invalid(named, `${method} is a streaming method; a flow's steps run unary methods`);
}
