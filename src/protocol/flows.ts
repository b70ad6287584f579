/**
 * Workflows on the wire: the JSON tree a FLOW message's payload carries (its header is in
 * messages.ts) (chain,
 * group, chord and task nodes, with callbacks), the limits a tree must fit, and the shape of the
 * router's answer to `TASK {op: "flow"}`. Pure: no I/O. docs/PROTOCOL.md §16 is the normative
 * description. A tree is checked node by node by the router (src/tasks/flows/flow-tree.ts), not
 * by one recursive schema, so a 10,000-member group costs one pass and an error names its node.
 */
import * as v from "valibot";
import { TASK_STATE_NAMES, TaskOptionsSchema } from "./task-messages.ts";

export const FlowLimits = {
  /** Most nodes in one flow: tasks, chains, groups, chords and callbacks together. */
  MAX_FLOW_NODES: 50_000,
  /** Deepest nesting of chains, groups and chords (the root is depth 1). */
  MAX_FLOW_DEPTH: 32,
} as const;

/** How a group finishes: "all" fails at the first failed member; "settled" waits for every member. */
export const GROUP_JOINS = ["all", "settled"] as const;
export type GroupJoin = (typeof GROUP_JOINS)[number];

/** A task node's options: a submit's, less what only a whole flow has (its idempotency key). */
export const FlowTaskOptionsSchema = v.omit(TaskOptionsSchema, ["idempotencyKey"]);
export type FlowTaskOptionsWire = v.InferOutput<typeof FlowTaskOptionsSchema>;

/** A node of the tree as it travels (milliseconds). Callbacks are task nodes without callbacks. */
export type FlowNodeWire =
  | ({ kind: "task"; method: string; args: unknown[]; options?: FlowTaskOptionsWire; immutable?: boolean } & FlowCallbacksWire)
  | ({ kind: "chain"; steps: FlowNodeWire[] } & FlowCallbacksWire)
  | ({ kind: "group"; members: FlowNodeWire[]; join?: GroupJoin } & FlowCallbacksWire)
  | ({ kind: "chord"; group: FlowNodeWire; callback: FlowNodeWire } & FlowCallbacksWire);

export interface FlowCallbacksWire {
  /** Runs with the node's result as its first argument once the node succeeded. */
  onSuccess?: FlowNodeWire;
  /** Runs with `{ code, name, message }` as its first argument once the node failed or expired. */
  onFailure?: FlowNodeWire;
}

/** A flow as `getFlow` describes it: each node's task id and state, children in order. */
export interface FlowInfo {
  id: string;
  kind: "task" | "chain" | "group" | "chord";
  /** Absent when the node's record was purged. */
  state?: (typeof TASK_STATE_NAMES)[number];
  /** Task nodes: the method. */
  method?: string;
  /** Groups: the join mode. */
  join?: GroupJoin;
  /** Chains: the steps, in order. */
  steps?: FlowInfo[];
  /** Groups: the members, in order. */
  members?: FlowInfo[];
  /** Chords: the group and the callback. */
  group?: FlowInfo;
  callback?: FlowInfo;
  onSuccess?: FlowInfo;
  onFailure?: FlowInfo;
}

export const FlowInfoSchema: v.GenericSchema<FlowInfo> = v.object({
  id: v.string(),
  kind: v.picklist(["task", "chain", "group", "chord"]),
  state: v.optional(v.picklist(TASK_STATE_NAMES)),
  method: v.optional(v.string()),
  join: v.optional(v.picklist(GROUP_JOINS)),
  steps: v.optional(v.array(v.lazy(() => FlowInfoSchema))),
  members: v.optional(v.array(v.lazy(() => FlowInfoSchema))),
  group: v.optional(v.lazy(() => FlowInfoSchema)),
  callback: v.optional(v.lazy(() => FlowInfoSchema)),
  onSuccess: v.optional(v.lazy(() => FlowInfoSchema)),
  onFailure: v.optional(v.lazy(() => FlowInfoSchema)),
});

/** What a failure callback gets as its first argument, and a settled group's `error` per member. */
export interface FlowFailure {
  code: string;
  name: string;
  message: string;
}
