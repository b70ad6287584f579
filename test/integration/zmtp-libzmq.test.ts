/**
 * ZMTP conformance of src/zmtp against libzmq (npm `zeromq` as the reference peer, run
 * under Node in a child process). Every case in test/conformance/cases.ts runs twice:
 * in this process on Bun, and bundled on Node (test/conformance/node-runner.ts).
 *
 *   ./node_modules/.bin/bun test test/integration/zmtp-libzmq.test.ts
 */
import { afterAll, describe, expect, test } from "bun:test";
import { describeOnNode } from "../helpers/node-suite.ts";
import { conformanceCases, createCaseRunner } from "../conformance/cases.ts";

test("conformance case names are unique", () => {
  const names = conformanceCases.map((c) => c.name);
  expect(new Set(names).size).toBe(names.length);
});

describe("on Bun", () => {
  const runner = createCaseRunner();
  afterAll(() => runner.dispose());
  for (const c of conformanceCases) {
    test(c.name, () => runner.run(c), (c.timeoutMs ?? 15_000) + 5_000);
  }
});

describeOnNode(
  "on Node",
  "test/conformance/node-runner.ts",
  "conformance-node.mjs",
  conformanceCases.map((c) => c.name),
);
