/**
 * Runs the behaviour cases in this process and prints one JSON line per case on stdout.
 * Meant to run under Node, bundled:
 *   ./node_modules/.bin/bun build test/behaviour/node-runner.ts --target=node \
 *     --outfile .tmp/behaviour-node.mjs --external zeromq
 *   node .tmp/behaviour-node.mjs [name-substring ...]
 * Under Node only the node-transport cases apply (the Bun transport needs Bun.listen/Bun.connect).
 */
import { runCasesAndReport } from "../helpers/case-report.ts";
import { behaviourCases, createCaseRunner } from "./cases.ts";

const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
await runCasesAndReport(
  "behaviour-runner",
  onBun ? behaviourCases : behaviourCases.filter((c) => c.transport === "node"),
  createCaseRunner(),
);
