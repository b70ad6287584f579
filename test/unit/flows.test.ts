/**
 * The pure parts of workflows: a tree checked node by node (errors name the node), planned into
 * blocked records and links, the rules that pick a container's next move and a callback's fate,
 * and results spliced as bytes.
 *
 *   ./node_modules/.bin/bun test test/unit/flows.test.ts
 */
import { describe, expect, test } from "bun:test";
import { chain, group, task } from "../../src/client/flow-builders.ts";
import { flowToWire } from "../../src/client/flow-builders.ts";
import { FlowLimits, NoSuchMethodError, ValidationError } from "../../src/protocol/index.ts";
import type { StoredFlowLink } from "../../src/store/task-store.ts";
import { failureOf, joinArray, prependArgument, settledEntry } from "../../src/tasks/flows/flow-bytes.ts";
import { checkFlowTree } from "../../src/tasks/flows/flow-check.ts";
import { callbackMoves, FlowGraph, nextMove, unfinishedBelow } from "../../src/tasks/flows/flow-graph.ts";
import { planFlow } from "../../src/tasks/flows/flow-plan.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);
const offered = {
  method: (name: string) => (name.startsWith("Svc.") ? { stream: name === "Svc.stream" } : undefined),
  waitForDealer: false,
};

function refusal(check: () => unknown): Error {
  try {
    check();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a refusal");
}

describe("results as bytes", () => {
  test("the input goes first, before the step's own arguments", () => {
    expect(text(prependArgument(bytes('{"a":1}'), bytes("[]")))).toBe('[{"a":1}]');
    expect(text(prependArgument(bytes("3"), bytes('[1,"x"]')))).toBe('[3,1,"x"]');
  });

  test("a group's array and a settled group's entries are valid JSON", () => {
    expect(JSON.parse(text(joinArray([bytes("1"), bytes('"two"'), bytes("[3]")])))).toEqual([1, "two", [3]]);
    expect(JSON.parse(text(joinArray([])))).toEqual([]);
    expect(JSON.parse(text(joinArray([settledEntry(true, bytes("5")), settledEntry(false, bytes('{"code":"X"}'))])))).toEqual([
      { ok: true, value: 5 },
      { ok: false, error: { code: "X" } },
    ]);
  });

  test("a failure is { code, name, message }: the exception's own name for a remote error, else the class's", () => {
    expect(failureOf({ code: "REMOTE_ERROR", message: "boom", data: { name: "RangeError", message: "boom" } })).toEqual({
      code: "REMOTE_ERROR",
      name: "RangeError",
      message: "boom",
    });
    expect(failureOf({ code: "TIMEOUT", message: "late" })).toEqual({ code: "TIMEOUT", name: "TimeoutError", message: "late" });
  });
});

describe("checking a tree", () => {
  test("a well-formed tree passes; an unknown method is NoSuchMethodError naming the node, unless waitForDealer", () => {
    const tree = flowToWire(chain(task("Svc.a"), group([task("Svc.b"), task("Other.c")])));
    const error = refusal(() => checkFlowTree(tree, offered));
    expect(error).toBeInstanceOf(NoSuchMethodError);
    expect(error.message).toBe("no service offers Other.c (flow node flow.steps[1].members[1])");
    expect(checkFlowTree(tree, { ...offered, waitForDealer: true })).toBe(tree);
  });

  test("what the router refuses, each naming the node", () => {
    const cases: [unknown, string][] = [
      [null, "flow node flow: expected an object"],
      [{ kind: "loop" }, 'flow node flow: unknown kind "loop"'],
      [{ kind: "chain", steps: [] }, "flow node flow: a chain needs at least one step"],
      [{ kind: "group", members: [{ kind: "task", method: "Svc.a" }], join: "any" }, 'flow node flow: join must be "all" or "settled"'],
      [
        { kind: "chord", group: { kind: "task", method: "Svc.a" }, callback: { kind: "task", method: "Svc.a" } },
        "flow node flow.group: a chord's first part must be a group",
      ],
      [
        { kind: "chain", steps: [{ kind: "task", method: "Svc.stream" }] },
        "flow node flow.steps[0] (Svc.stream): Svc.stream is a streaming method",
      ],
      [{ kind: "task", method: "Svc.a", args: "no" }, "flow node flow (Svc.a): args must be an array"],
      [{ kind: "task", method: "Svc.a", options: { priority: 10 } }, "flow node flow (Svc.a): options.priority"],
      [{ kind: "task", method: "not a method" }, "flow node flow: method must be a Service.method name"],
      [{ kind: "task", method: "Svc.a", onSuccess: { kind: "chain", steps: [] } }, "flow node flow.onSuccess: a callback must be a task"],
      [
        { kind: "task", method: "Svc.a", onSuccess: { kind: "task", method: "Svc.b", onFailure: { kind: "task", method: "Svc.c" } } },
        "flow node flow.onSuccess: a callback cannot have callbacks of its own",
      ],
    ];
    for (const [tree, message] of cases) {
      const error = refusal(() => checkFlowTree(tree, offered));
      expect({ tree, error: error.name }).toEqual({ tree, error: "ValidationError" });
      expect(error.message).toContain(message);
    }
  });

  test("limits: depth and node count, checked without recursion", () => {
    let deep: unknown = { kind: "task", method: "Svc.a" };
    for (let i = 0; i < FlowLimits.MAX_FLOW_DEPTH + 1; i++) deep = { kind: "chain", steps: [deep] };
    const tooDeep = refusal(() => checkFlowTree(deep, offered));
    expect(tooDeep).toBeInstanceOf(ValidationError);
    expect(tooDeep.message).toContain(`nested deeper than ${FlowLimits.MAX_FLOW_DEPTH}`);
    const wide = { kind: "group", members: Array.from({ length: FlowLimits.MAX_FLOW_NODES }, () => ({ kind: "task", method: "Svc.a" })) };
    expect(refusal(() => checkFlowTree(wide, offered)).message).toContain(`more than ${FlowLimits.MAX_FLOW_NODES} nodes`);
  });

  test("the client refuses a cycle, naming where it closes", () => {
    const looped = chain(task("Svc.a"));
    (looped.steps as unknown[]).push(group([looped]));
    const error = refusal(() => flowToWire(looped));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toContain("flow node flow.steps[1].members[0]: the flow contains itself (a cycle)");
    // The same node twice (not inside itself) is fine: two tasks alike.
    const shared = task("Svc.a");
    expect(() => flowToWire(chain(shared, shared))).not.toThrow();
  });
});

describe("planning and moving", () => {
  const plan = () =>
    planFlow(
      flowToWire(chain(task("Svc.a", [1], { countdown: 2, expires: 5 }), group([task("Svc.b"), task("Svc.c", [], { immutable: true })]))),
      {},
      {
        now: 1_000,
        newId: (() => {
          let n = 0;
          return () => `id-${n++}`;
        })(),
        defaultsOf: () => ({}),
      },
    );

  test("every node is a blocked record of the flow; links go parents first; timing waits for the release", () => {
    const { tasks, links } = plan();
    expect(tasks.map((t) => [t.id, t.method, t.state, t.flowId])).toEqual([
      ["id-0", "chain", "blocked", "id-0"],
      ["id-1", "Svc.a", "blocked", "id-0"],
      ["id-2", "group", "blocked", "id-0"],
      ["id-3", "Svc.b", "blocked", "id-0"],
      ["id-4", "Svc.c", "blocked", "id-0"],
    ]);
    expect(tasks[1].expiresAt).toBeUndefined();
    expect(links[1]).toMatchObject({ parentId: "id-0", position: 0, release: { countdownMs: 2000, expiresMs: 5000 } });
    expect(links[2]).toMatchObject({ kind: "group", join: "all", position: 1 });
    expect(links[4]).toMatchObject({ parentId: "id-2", position: 1, immutable: true });
  });

  test("a chain releases its next step with the previous result; a group joins when all succeeded, or fails at the first failure", () => {
    const { links } = plan();
    const graph = FlowGraph.fromLinks(links.map((link): StoredFlowLink => ({ ...link, state: "blocked" })));
    const [root, a, g, b, c] = ["id-0", "id-1", "id-2", "id-3", "id-4"].map((id) => graph.nodes.get(id)!);
    expect(nextMove(root)).toEqual({ type: "wait" });
    graph.record(a, "queued");
    graph.record(a, "succeeded");
    expect(nextMove(root)).toMatchObject({ type: "release", step: g, inputFrom: a });
    graph.record(b, "succeeded");
    expect(nextMove(g)).toEqual({ type: "wait" });
    graph.record(c, "failed");
    expect(nextMove(g)).toMatchObject({ type: "fail", cause: c });
    expect(graph.record(c, "failed")).toBe(false); // counted once
    expect(graph.open).toBe(2);
  });

  test("a settled group waits for every member; callbacks follow the outcome; a revoke reaches everything unfinished below", () => {
    const tree = flowToWire(group([task("Svc.a"), task("Svc.b")], { join: "settled" }), {
      onSuccess: task("Svc.ok"),
      onFailure: task("Svc.ko"),
    });
    let n = 0;
    const { links } = planFlow(tree, {}, { now: 0, newId: () => `n${n++}`, defaultsOf: () => ({}) });
    const graph = FlowGraph.fromLinks(links.map((link): StoredFlowLink => ({ ...link, state: "blocked" })));
    const root = graph.root;
    graph.record(root.steps[0], "failed");
    expect(nextMove(root)).toEqual({ type: "wait" });
    expect(unfinishedBelow({ ...root, state: "revoked" }).map((node) => node.id)).toEqual([root.steps[1].id]);
    graph.record(root.steps[1], "succeeded");
    expect(nextMove(root)).toEqual({ type: "succeed" });
    graph.record(root, "succeeded");
    expect(callbackMoves(root)).toEqual({ run: root.onSuccess, skip: [root.onFailure!] });
    expect(callbackMoves({ ...root, state: "failed" })).toEqual({ run: root.onFailure, skip: [root.onSuccess!] });
    expect(callbackMoves({ ...root, state: "revoked" }).skip).toEqual([root.onSuccess!, root.onFailure!]);
  });
});
