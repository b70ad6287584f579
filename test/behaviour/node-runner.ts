/**
 * Runs the behaviour cases on the node transport in this process and prints one JSON line per
 * case on stdout: {"name": ..., "ok": true|false, "error": string|null, "ms": number}. Logs go to stderr.
 *
 * Meant to run under Node, bundled:
 *   ./node_modules/.bin/bun build test/behaviour/node-runner.ts --target=node \
 *     --outfile .tmp/behaviour-node.mjs --external zeromq
 *   node .tmp/behaviour-node.mjs [name-substring ...]
 * With arguments, only cases whose name contains one of them run. Under Bun it runs the
 * cases of both transports.
 */
import { behaviourCases, createCaseRunner } from "./cases.ts";

const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
// The Bun transport needs Bun.listen/Bun.connect: under Node only node-transport cases apply.
const runnable = onBun ? behaviourCases : behaviourCases.filter((c) => c.transport === "node");
const filters = process.argv.slice(2);
const selected = filters.length === 0 ? runnable : runnable.filter((c) => filters.some((f) => c.name.includes(f)));

process.on("unhandledRejection", (err) => {
  process.stderr.write(`[behaviour-runner] unhandled rejection: ${(err as Error)?.stack ?? err}\n`);
});

const runtime = onBun ? "bun" : `node ${process.version}`;
process.stderr.write(`[behaviour-runner] ${selected.length} cases on ${runtime}\n`);

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
  process.stderr.write(`[behaviour-runner] ${error === null ? "pass" : "FAIL"} ${c.name} (${ms} ms)\n`);
}
process.stderr.write(`[behaviour-runner] done: ${selected.length - failed} passed, ${failed} failed\n`);
// Exit explicitly: a socket under test that fails to release its handles must not hang the run.
process.exit(0);
