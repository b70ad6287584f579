/**
 * Behaviour of our own Router and Dealer (test/behaviour/cases.ts), ours on both ends. Every case
 * runs in this process on Bun, over both socket transports (Bun sockets and node:net) and both
 * endpoint kinds (tcp, ipc); the node-transport cases run again bundled under real Node
 * (test/behaviour/node-runner.ts).
 *
 *   ./node_modules/.bin/bun test test/integration/zmtp-behaviour.test.ts
 *   VOIDRAIL_NODE_RUNNER_LOG=1 to see the Node run's progress on stderr.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { behaviourCases, createCaseRunner } from "../behaviour/cases.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const BUNDLE = join(ROOT, ".tmp/behaviour-node.mjs");
const NODE = process.env.VOIDRAIL_NODE || "node";

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

interface NodeResult {
  name: string;
  ok: boolean;
  error: string | null;
  ms: number;
}

/** Runs a command; resolves with its output, rejects (with the output) on failure or deadline. */
function run(cmd: string, args: string[], timeoutMs: number, onLine?: (line: string) => void): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let pending = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      if (!onLine) return;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      if (process.env.VOIDRAIL_NODE_RUNNER_LOG) process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} did not finish within ${timeoutMs} ms\n--- stderr ---\n${stderr.slice(-3000)}`));
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(" ")} exited with ${signal ?? code}\n--- stderr ---\n${stderr.slice(-3000)}`));
    });
  });
}

describe("on Node (node transport)", () => {
  const nodeCases = behaviourCases.filter((c) => c.transport === "node");
  const results = new Map<string, NodeResult>();
  let runError: string | null = null;

  beforeAll(async () => {
    try {
      mkdirSync(join(ROOT, ".tmp"), { recursive: true });
      await run(BUN, ["build", "test/behaviour/node-runner.ts", "--target=node", "--outfile", BUNDLE, "--external", "zeromq"], 60_000);
      await run(NODE, [BUNDLE], 150_000, (line) => {
        try {
          const r = JSON.parse(line) as NodeResult;
          if (typeof r.name === "string") results.set(r.name, r);
        } catch {
          /* not a result line */
        }
      });
    } catch (err) {
      runError = (err as Error).message;
    }
  }, 240_000);

  for (const c of nodeCases) {
    test(c.name, () => {
      const r = results.get(c.name);
      if (!r) throw new Error(`no result for this case from the Node run${runError ? `: ${runError}` : ""}`);
      if (!r.ok) throw new Error(`failed on Node (${r.ms} ms): ${r.error}`);
    });
  }
});
