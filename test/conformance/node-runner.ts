/**
 * Runs every conformance case in this process and prints one JSON line per case on stdout:
 * {"name": ..., "ok": true|false, "error": string|null, "ms": number}. Logs go to stderr.
 *
 * Meant to run under Node, bundled (zeromq stays external; it is only loaded by the
 * libzmq peer child process):
 *   ./node_modules/.bin/bun build test/conformance/node-runner.ts --target=node \
 *     --outfile .tmp/conformance-node.mjs --external zeromq
 *   node .tmp/conformance-node.mjs [name-substring ...]
 * With arguments, only cases whose name contains one of them run.
 */
import { conformanceCases, createCaseRunner } from "./cases.ts";

const filters = process.argv.slice(2);
const selected = filters.length === 0 ? conformanceCases : conformanceCases.filter((c) => filters.some((f) => c.name.includes(f)));

process.on("unhandledRejection", (err) => {
  process.stderr.write(`[node-runner] unhandled rejection: ${(err as Error)?.stack ?? err}\n`);
});

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : `node ${process.version}`;
process.stderr.write(`[node-runner] ${selected.length} cases on ${runtime}\n`);

const runner = createCaseRunner();
let failed = 0;
for (const c of selected) {
  const started = Date.now();
  let error: string | null = null;
  try {
    await runner.run(c);
  } catch (err) {
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    failed++;
  }
  const ms = Date.now() - started;
  process.stdout.write(JSON.stringify({ name: c.name, ok: error === null, error, ms }) + "\n");
  process.stderr.write(`[node-runner] ${error === null ? "pass" : "FAIL"} ${c.name} (${ms} ms)\n`);
}
await runner.dispose();
process.stderr.write(`[node-runner] done: ${selected.length - failed} passed, ${failed} failed\n`);
// Exit explicitly: a socket under test that fails to release its handles must not hang the run.
process.exit(0);
