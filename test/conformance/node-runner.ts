/**
 * Runs every conformance case in this process and prints one JSON line per case on stdout.
 * Meant to run under Node, bundled (zeromq stays external; only the libzmq peer child loads it):
 *   ./node_modules/.bin/bun build test/conformance/node-runner.ts --target=node \
 *     --outfile .tmp/conformance-node.mjs --external zeromq
 *   node .tmp/conformance-node.mjs [name-substring ...]
 */
import { runCasesAndReport } from "../helpers/case-report.ts";
import { conformanceCases, createCaseRunner } from "./cases.ts";

await runCasesAndReport("conformance-runner", conformanceCases, createCaseRunner());
