/**
 * Workflows through real sockets, on the memory store and a SQLite file: chain (result passing,
 * immutable steps), group with join "all" and "settled", chord, nesting, callbacks on tasks and
 * flows (each exactly once, the failure one with `{ code, name, message }`), revoke of a flow,
 * getFlow's tree, and bad input refused before anything is stored.
 *
 *   ./node_modules/.bin/bun test test/integration/flows.test.ts
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CallContext,
  type ClientDealer,
  chain,
  chord,
  type FlowInfo,
  group,
  NoSuchMethodError,
  RemoteError,
  ServiceDealer,
  serviceMethod,
  task,
  ValidationError,
} from "../../src/index.ts";
import { SqliteTaskStore } from "../../src/store/sqlite/store.ts";
import { planFlow } from "../../src/tasks/flows/flow-plan.ts";
import { newTaskId } from "../../src/tasks/task-id.ts";
import { encodeMessage, PROTOCOL_VERSION } from "../../src/protocol/index.ts";
import { WirePeer } from "../chaos/lib/wire-peer.ts";
import { Gate } from "../fixtures/services.ts";
import { Cluster } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

const STEP_MS = 15_000;
const dir = mkdtempSync(join(tmpdir(), "voidrail-flows-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** What the fixtures record, per test. */
class Journal {
  /** Every call of every method, as `method:args` (JSON). */
  readonly calls: string[] = [];
  readonly aborted: string[] = [];
  gate = new Gate();
  count(prefix: string): number {
    return this.calls.filter((call) => call.startsWith(prefix)).length;
  }
}
let journal = new Journal();

class Flow extends ServiceDealer {
  @serviceMethod
  add(a: number, b: number) {
    journal.calls.push(`add:${JSON.stringify([a, b])}`);
    return a + b;
  }

  @serviceMethod
  double(x: number) {
    journal.calls.push(`double:${JSON.stringify([x])}`);
    return 2 * x;
  }

  @serviceMethod
  sum(values: number[]) {
    journal.calls.push(`sum:${JSON.stringify([values])}`);
    return values.reduce((a, b) => a + b, 0);
  }

  /** Records its arguments and returns them (what a step received). */
  @serviceMethod
  echo(...args: unknown[]) {
    journal.calls.push(`echo:${JSON.stringify(args)}`);
    return args;
  }

  @serviceMethod
  boom(label: string) {
    journal.calls.push(`boom:${JSON.stringify([label])}`);
    throw new RangeError(`boom ${label}`);
  }

  /** Waits for the journal's gate (or its abort). */
  @serviceMethod({ context: true })
  async hold(label: string, context: CallContext) {
    journal.calls.push(`hold:${JSON.stringify([label])}`);
    await Promise.race([journal.gate.opened, new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }))]);
    if (context.signal.aborted) {
      journal.aborted.push(label);
      throw context.signal.reason;
    }
    return label;
  }

  @serviceMethod
  async *numbers() {
    yield 1;
  }
}

function states(info: FlowInfo): string[] {
  const out: string[] = [];
  const walk = (node: FlowInfo | undefined) => {
    if (!node) return;
    if (node.kind === "task") out.push(`${node.method}:${node.state}`);
    for (const child of [...(node.steps ?? []), ...(node.members ?? []), node.group, node.callback, node.onSuccess, node.onFailure]) {
      walk(child);
    }
  };
  walk(info);
  return out;
}

for (const store of ["memory", "sqlite"] as const) {
  describe(`flows with the ${store} store`, () => {
    const cluster = new Cluster("tcp");
    afterEach(async () => {
      journal.gate.open();
      await cluster.dispose();
      journal = new Journal();
    });

    async function setup(maxConcurrent = 8): Promise<ClientDealer> {
      await cluster.router({ taskStore: store === "memory" ? "memory" : join(dir, `flows-${++files}.db`) });
      await cluster.dealer((options) => new Flow({ ...options, maxConcurrent }));
      return cluster.client({ timeout: 20 });
    }

    test("chain: each step gets the previous result first; an immutable step ignores it; the flow's result is the last step's", async () => {
      const client = await setup();
      const flow = await client.submitFlow(
        chain(
          task("Flow.add", [1, 2]),
          task("Flow.double"),
          task("Flow.add", [10]),
          task("Flow.echo", ["own"], { immutable: true }),
          task("Flow.echo", ["x"]),
        ),
      );
      expect(flow.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
      expect(await client.waitTask(flow.id, { timeout: 20 })).toEqual([["own"], "x"]);
      expect(journal.calls).toEqual(["add:[1,2]", "double:[3]", "add:[6,10]", 'echo:["own"]', 'echo:[["own"],"x"]']);
      const info = await client.getTask(flow.id);
      expect(info).toMatchObject({ id: flow.id, method: "chain", state: "succeeded", result: [["own"], "x"] });
    });

    test("group: members run in parallel and the result is their results in order", async () => {
      const client = await setup();
      const flow = await client.submitFlow(group([task("Flow.add", [1, 1]), task("Flow.add", [2, 2]), task("Flow.double", [8])]));
      expect(await client.waitTask(flow.id, { timeout: 20 })).toEqual([2, 4, 16]);
    });

    test("group join all: the first failure fails the group at once and revokes the members still running", async () => {
      const client = await setup();
      const flow = await client.submitFlow(group([task("Flow.hold", ["a"]), task("Flow.boom", ["b"]), task("Flow.hold", ["c"])]));
      const error = await client.waitTask(flow.id, { timeout: 20 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as RemoteError).message).toContain("boom b");
      await waitFor(async () => states(await client.getFlow(flow.id)).every((s) => !/queued|running|blocked/.test(s)), {
        timeoutMs: STEP_MS,
        message: "every member to be final",
      });
      const tree = await client.getFlow(flow.id);
      expect(tree).toMatchObject({ kind: "group", join: "all", state: "failed" });
      expect(tree.members!.map((m) => m.state)).toEqual(["revoked", "failed", "revoked"]);
      await waitFor(() => journal.aborted.length === journal.count("hold:"), {
        timeoutMs: STEP_MS,
        message: "the held members to be cancelled",
      });
    });

    test("group join settled: every member runs to its end; the result is { ok, value | error } per member", async () => {
      const client = await setup();
      const flow = await client.submitFlow(
        group([task("Flow.add", [1, 2]), task("Flow.boom", ["x"]), task("Flow.double", [5])], { join: "settled" }),
      );
      expect(await client.waitTask(flow.id, { timeout: 20 })).toEqual([
        { ok: true, value: 3 },
        { ok: false, error: { code: "REMOTE_ERROR", name: "RangeError", message: "boom x" } },
        { ok: true, value: 10 },
      ]);
    });

    test("chord: the callback runs once with the group's array; a settled chord's callback gets the entries", async () => {
      const client = await setup();
      const flow = await client.submitFlow(
        chord([task("Flow.add", [1, 1]), task("Flow.add", [2, 3]), task("Flow.double", [4])], task("Flow.sum")),
      );
      expect(await client.waitTask(flow.id, { timeout: 20 })).toBe(15);
      expect(journal.count("sum:")).toBe(1);
      expect(journal.calls.at(-1)).toBe("sum:[[2,5,8]]");
      const settled = await client.submitFlow(
        chord(group([task("Flow.boom", ["s"]), task("Flow.add", [0, 1])], { join: "settled" }), task("Flow.echo")),
      );
      expect(await client.waitTask(settled.id, { timeout: 20 })).toEqual([
        [
          { ok: false, error: { code: "REMOTE_ERROR", name: "RangeError", message: "boom s" } },
          { ok: true, value: 1 },
        ],
      ]);
    });

    test("nesting: the issue's chain(fetch, group(resize, thumb), save); a group inside a chain gives every member the input", async () => {
      const client = await setup();
      const flow = await client.submitFlow(
        chain(task("Flow.add", [1, 2]), group([task("Flow.double", [], { priority: 8 }), task("Flow.add", [100])]), task("Flow.echo")),
      );
      expect(await client.waitTask(flow.id, { timeout: 20 })).toEqual([[6, 103]]);
      const tree = await client.getFlow(flow.id);
      expect(tree.kind).toBe("chain");
      expect(tree.state).toBe("succeeded");
      expect(tree.steps!.map((s) => s.kind)).toEqual(["task", "group", "task"]);
      expect(tree.steps![1].members!.map((m) => [m.method, m.state])).toEqual([
        ["Flow.double", "succeeded"],
        ["Flow.add", "succeeded"],
      ]);
      for (const node of [tree, ...tree.steps!, ...tree.steps![1].members!])
        expect((await client.getTask(node.id)).state).toBe("succeeded");
      // Deeper: a chord of chains inside a chain.
      const deep = await client.submitFlow(
        chain(
          task("Flow.add", [0, 1]),
          chord([chain(task("Flow.double"), task("Flow.double")), chain(task("Flow.add", [1]))], task("Flow.sum")),
          task("Flow.double"),
        ),
      );
      expect(await client.waitTask(deep.id, { timeout: 20 })).toBe(2 * (4 + 2));
    });

    test("a failed step fails its chain; the steps after it never run; the error is the step's", async () => {
      const client = await setup();
      const flow = await client.submitFlow(chain(task("Flow.add", [1, 1]), task("Flow.boom"), task("Flow.double")));
      const error = await client.waitTask(flow.id, { timeout: 20 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      const tree = await client.getFlow(flow.id);
      expect(tree.steps!.map((s) => s.state)).toEqual(["succeeded", "failed", "revoked"]);
      expect(journal.count("double:")).toBe(0);
    });

    test("callbacks on a task: onSuccess gets the result first; onFailure gets { code, name, message }; each runs once, the other never", async () => {
      const client = await setup();
      const ok = await client.submit("Flow.add", [2, 3], {
        onSuccess: task("Flow.echo", ["ok"]),
        onFailure: task("Flow.echo", ["not me"]),
      });
      expect(await client.waitTask(ok.id, { timeout: 20 })).toBe(5);
      const failed = await client.submit("Flow.boom", ["cb"], {
        onSuccess: task("Flow.echo", ["not me"]),
        onFailure: task("Flow.echo", ["failed"]),
      });
      await client.waitTask(failed.id, { timeout: 20 }).catch(() => undefined);
      for (const id of [ok.id, failed.id]) {
        await waitFor(async () => states(await client.getFlow(id)).every((s) => !/queued|running|blocked/.test(s)), {
          timeoutMs: STEP_MS,
          message: "the callbacks to be final",
        });
      }
      const echoes = journal.calls.filter((call) => call.startsWith("echo:")).sort();
      expect(echoes).toEqual(['echo:[5,"ok"]', 'echo:[{"code":"REMOTE_ERROR","name":"RangeError","message":"boom cb"},"failed"]']);
      const tree = await client.getFlow(ok.id);
      expect(tree).toMatchObject({ id: ok.id, kind: "task", method: "Flow.add", state: "succeeded" });
      expect(tree.onSuccess).toMatchObject({ kind: "task", method: "Flow.echo", state: "succeeded" });
      expect(tree.onFailure).toMatchObject({ kind: "task", state: "revoked" });
    });

    test("callbacks on a flow and on a step inside it", async () => {
      const client = await setup();
      const flow = await client.submitFlow(
        chain(task("Flow.add", [1, 1], { onSuccess: task("Flow.echo", ["step"]) }), task("Flow.double")),
        {
          onSuccess: task("Flow.echo", ["flow"]),
          onFailure: task("Flow.echo", ["never"]),
        },
      );
      expect(await client.waitTask(flow.id, { timeout: 20 })).toBe(4);
      await waitFor(() => journal.count("echo:") === 2, { timeoutMs: STEP_MS, message: "both callbacks" });
      await waitFor(async () => states(await client.getFlow(flow.id)).every((s) => !/queued|running|blocked/.test(s)), {
        timeoutMs: STEP_MS,
        message: "the flow to close",
      });
      expect(journal.calls.filter((c) => c.startsWith("echo:")).sort()).toEqual(['echo:[2,"step"]', 'echo:[4,"flow"]']);
    });

    test("revokeTask(flow.id) revokes every step not yet finished: the running one is cancelled, the blocked ones never run", async () => {
      const client = await setup();
      const flow = await client.submitFlow(
        chain(
          task("Flow.add", [1, 1]),
          group([task("Flow.hold", ["g1"], { immutable: true }), task("Flow.hold", ["g2"], { immutable: true })]),
          task("Flow.double"),
        ),
        {
          onSuccess: task("Flow.echo", ["never"]),
          onFailure: task("Flow.echo", ["never"]),
        },
      );
      await waitFor(() => journal.count("hold:") === 2, { timeoutMs: STEP_MS, message: "both members to run" });
      const revoked = await client.revokeTask(flow.id);
      expect(revoked.state).toBe("revoked");
      await waitFor(async () => states(await client.getFlow(flow.id)).every((s) => !/queued|running|blocked/.test(s)), {
        timeoutMs: STEP_MS,
        message: "every step to be final",
      });
      const tree = await client.getFlow(flow.id);
      expect(states(tree)).toEqual([
        "Flow.add:succeeded",
        "Flow.hold:revoked",
        "Flow.hold:revoked",
        "Flow.double:revoked",
        "Flow.echo:revoked",
        "Flow.echo:revoked",
      ]);
      await waitFor(() => journal.aborted.length === 2, { timeoutMs: STEP_MS, message: "the running members to see their abort" });
      expect(journal.count("double:") + journal.count("echo:")).toBe(0);
    });

    test("a 10,000-member group works (and its chord callback runs once)", async () => {
      const client = await setup(100);
      const n = 10_000;
      const flow = await client.submitFlow(
        chord(
          Array.from({ length: n }, (_, i) => task("Flow.add", [i, 1])),
          task("Flow.sum"),
        ),
      );
      expect(await client.waitTask(flow.id, { timeout: 120 })).toBe((n * (n + 1)) / 2);
      expect(journal.count("sum:")).toBe(1);
      expect(journal.count("add:")).toBe(n);
    }, 180_000);

    test("bad input: an unknown method is NoSuchMethodError naming the node; nothing is stored", async () => {
      const client = await setup();
      const before = (await client.listTasks({ limit: 1000 })).tasks.length;
      const error = await client
        .submitFlow(chain(task("Flow.add", [1, 1]), group([task("Flow.add"), task("Nope.missing")])))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NoSuchMethodError);
      expect((error as Error).message).toContain("Nope.missing");
      expect((error as Error).message).toContain("flow.steps[1].members[1]");
      expect((await client.listTasks({ limit: 1000 })).tasks.length).toBe(before);
      // With waitForDealer it is stored and waits.
      const waiting = await client.submitFlow(chain(task("Flow.add", [1, 1]), task("Later.method")), { waitForDealer: true });
      expect(waiting.state).toBe("blocked");
      await client.revokeTask(waiting.id);
    });

    test("bad input: a cycle, a tree over the limits, a streaming method or a bad option is ValidationError naming the node", async () => {
      const client = await setup();
      const looped = chain(task("Flow.add", [1, 1]));
      (looped.steps as unknown[]).push(looped);
      const cycle = await client.submitFlow(looped).catch((e: unknown) => e);
      expect(cycle).toBeInstanceOf(ValidationError);
      expect((cycle as Error).message).toContain("flow.steps[1]");
      expect((cycle as Error).message).toContain("cycle");

      let deep = chain(task("Flow.add", [1, 1]));
      for (let i = 0; i < 40; i++) deep = chain(deep);
      const tooDeep = await client.submitFlow(deep).catch((e: unknown) => e);
      expect(tooDeep).toBeInstanceOf(ValidationError);
      expect((tooDeep as Error).message).toMatch(/flow(\.steps\[0\])+: nested deeper than 32/);

      const tooMany = await client
        .submitFlow(group(Array.from({ length: 50_001 }, () => task("Flow.add", [1, 1]))))
        .catch((e: unknown) => e);
      expect(tooMany).toBeInstanceOf(ValidationError);

      const stream = await client.submitFlow(chain(task("Flow.add", [1, 1]), task("Flow.numbers"))).catch((e: unknown) => e);
      expect(stream).toBeInstanceOf(ValidationError);
      expect((stream as Error).message).toContain("flow.steps[1] (Flow.numbers)");

      const option = await client.submitFlow(group([task("Flow.add", [1, 1], { priority: 42 })])).catch((e: unknown) => e);
      expect(option).toBeInstanceOf(ValidationError);
      expect((option as Error).message).toContain("flow.members[0] (Flow.add)");

      const empty = await client.submitFlow(group([])).catch((e: unknown) => e);
      expect(empty).toBeInstanceOf(ValidationError);
      expect((await client.listTasks({ limit: 10 })).tasks).toEqual([]);
    });

    test("an idempotency key on a flow gives the same flow, not a second one", async () => {
      const client = await setup();
      const first = await client.submitFlow(chain(task("Flow.add", [1, 1]), task("Flow.double")), { idempotencyKey: "flow-7" });
      const again = await client.submitFlow(chain(task("Flow.add", [1, 1]), task("Flow.double")), { idempotencyKey: "flow-7" });
      expect(again.id).toBe(first.id);
      expect(await client.waitTask(first.id, { timeout: 20 })).toBe(4);
      expect(journal.count("add:")).toBe(1);
    });
  });
}

describe("flows carried on after a restart", () => {
  const cluster = new Cluster("tcp");
  afterEach(async () => {
    await cluster.dispose();
    journal = new Journal();
  });

  test("a router that stopped between a step's success and the next step's release releases it once on start; the callback that was due fires once", async () => {
    const path = join(dir, `carry-on-${++files}.db`);
    // The store as a router killed at that moment leaves it: step 0 succeeded, step 1 still blocked,
    // and a finished group member's onSuccess callback not yet released.
    const store = new SqliteTaskStore(path);
    const plan = planFlow(
      {
        kind: "chain",
        steps: [
          { kind: "task", method: "Flow.add", args: [1, 2] },
          {
            kind: "group",
            members: [{ kind: "task", method: "Flow.double", args: [], onSuccess: { kind: "task", method: "Flow.echo", args: ["cb"] } }],
          },
          { kind: "task", method: "Flow.echo", args: [] },
        ],
      },
      {},
      { now: Date.now(), newId: newTaskId, defaultsOf: () => ({}) },
    );
    await store.insertFlow(plan.tasks, plan.links);
    const [first, member] = [plan.tasks[1].id, plan.tasks[3].id];
    for (const [id, result] of [
      [first, "3"],
      [member, "6"],
    ] as const) {
      await store.transition(id, "markReleased", { runAt: Date.now() });
      await store.transition(id, "markRunning", { countAttempt: true });
      await store.transition(id, "markSucceeded", {
        result: new TextEncoder().encode(result),
        finishedAt: Date.now(),
        purgeAt: Date.now() + 60_000,
      });
    }
    await store.close();

    await cluster.router({ taskStore: path });
    await cluster.dealer((options) => new Flow(options));
    const client = await cluster.client({ timeout: 20 });
    expect(await client.waitTask(plan.tasks[0].id, { timeout: 20 })).toEqual([[6]]);
    await waitFor(() => journal.count("echo:") === 2, { timeoutMs: STEP_MS, message: "the last step and the callback" });
    expect(journal.calls.sort()).toEqual(['echo:[6,"cb"]', "echo:[[6]]"]);
  });
});

describe("FLOW on the wire, from a peer that sends what it likes", () => {
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());

  test("bad trees are answered with an ERROR for their id, naming the node; nothing is stored; the connection stays", async () => {
    await cluster.router({});
    await cluster.dealer((options) => new Flow(options));
    const peer = new WirePeer(cluster.address);
    await peer.ready();
    peer.send(encodeMessage("HELLO", { role: "client", version: PROTOCOL_VERSION }));
    await peer.until(1, STEP_MS, "WELCOME");
    const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    let deep: unknown = { kind: "task", method: "Flow.add", args: [1, 1] };
    for (let i = 0; i < 40; i++) deep = { kind: "chain", steps: [deep] };
    const bad: [Uint8Array, string, string][] = [
      [new TextEncoder().encode("{not json"), "VALIDATION_ERROR", "the flow is not JSON"],
      [json([1, 2]), "VALIDATION_ERROR", "flow node flow: expected an object"],
      [json(deep), "VALIDATION_ERROR", "nested deeper than 32"],
      [
        json({
          kind: "group",
          members: [
            { kind: "task", method: "Flow.add" },
            { kind: "task", method: "Gone.away" },
          ],
        }),
        "NO_SUCH_METHOD",
        "flow.members[1]",
      ],
      [
        json({ kind: "chain", steps: [{ kind: "task", method: "Flow.add", options: { retries: -1 } }] }),
        "VALIDATION_ERROR",
        "flow.steps[0] (Flow.add): options.retries",
      ],
    ];
    for (const [i, [payload]] of bad.entries()) peer.send(encodeMessage("FLOW", { id: 100 + i }, payload));
    await peer.until(1 + bad.length, STEP_MS, "an answer to each bad FLOW");
    const answers = peer.received;
    for (const [i, [, code, text]] of bad.entries()) {
      const answer = answers.find((m) => (m.header as { id?: number }).id === 100 + i);
      expect({ i, kind: answer?.kind, code: (answer?.header as { code?: string } | undefined)?.code }).toEqual({ i, kind: "ERROR", code });
      expect((answer!.header as { message: string }).message).toContain(text);
    }
    peer.send(encodeMessage("TASK", { id: 200, op: "list" }));
    const [list] = await peer.until(2 + bad.length, STEP_MS, "the task list");
    expect(JSON.parse(new TextDecoder().decode(list.payload as Uint8Array))).toEqual({ tasks: [] });
    peer.send(encodeMessage("FLOW", { id: 201 }, json({ kind: "chain", steps: [{ kind: "task", method: "Flow.add", args: [2, 2] }] })));
    const [stored] = await peer.until(3 + bad.length, STEP_MS, "the good FLOW's answer");
    expect(stored.kind).toBe("RESULT");
    expect(JSON.parse(new TextDecoder().decode(stored.payload as Uint8Array))).toMatchObject({ method: "chain" });
    peer.close();
  });
});
