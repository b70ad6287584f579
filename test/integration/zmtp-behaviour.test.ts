/**
 * Behaviour of our own Router and Dealer (test/behaviour/cases.ts), ours on both ends. Every case
 * runs in this process on Bun, over both socket transports (Bun sockets and node:net) and both
 * endpoint kinds (tcp, ipc); the node-transport cases run again bundled under real Node
 * (test/behaviour/node-runner.ts).
 *
 *   ./node_modules/.bin/bun test test/integration/zmtp-behaviour.test.ts
 *   VOIDRAIL_NODE_RUNNER_LOG=1 to see the Node run's progress on stderr.
 */
import { describe, expect, test } from "bun:test";
import { describeOnNode } from "../helpers/node-suite.ts";
import { behaviourCases, createCaseRunner } from "../behaviour/cases.ts";

test("behaviour case names are unique", () => {
  const names = behaviourCases.map((c) => c.name);
  expect(new Set(names).size).toBe(names.length);
});

describe("on Bun", () => {
  const runner = createCaseRunner();
  for (const c of behaviourCases) {
    test(c.name, () => runner.run(c), (c.timeoutMs ?? 10_000) + 5_000);
  }
});

describeOnNode(
  "on Node (node transport)",
  "test/behaviour/node-runner.ts",
  "behaviour-node.mjs",
  behaviourCases.filter((c) => c.transport === "node").map((c) => c.name),
);
