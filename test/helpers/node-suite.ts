/**
 * Runs a suite's cases a second time under real Node: bundles the suite's runner script with
 * `bun build --target=node`, runs it with `node`, and defines one bun test per case that checks
 * the case passed there. The runner prints one JSON line per case (see case-report.ts).
 */
import { beforeAll, describe, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { CaseResult } from "./case-report.ts";
import { onLines } from "./lines.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const NODE = process.env.VOIDRAIL_NODE || "node";

/** Defines `describe(title)` with one test per case name, each checking the case passed under Node. */
export function describeOnNode(title: string, runnerScript: string, bundleName: string, caseNames: readonly string[]): void {
  describe(title, () => {
    const results = new Map<string, CaseResult>();
    let runError: string | null = null;
    const bundle = join(ROOT, ".tmp", bundleName);

    beforeAll(async () => {
      try {
        mkdirSync(join(ROOT, ".tmp"), { recursive: true });
        await run(BUN, ["build", runnerScript, "--target=node", "--outfile", bundle, "--external", "zeromq"], 60_000);
        await run(NODE, [bundle], 150_000, (line) => {
          try {
            const result = JSON.parse(line) as CaseResult;
            if (typeof result.name === "string") results.set(result.name, result);
          } catch {
            // Not a result line.
          }
        });
      } catch (err) {
        runError = (err as Error).message;
      }
    }, 240_000);

    for (const name of caseNames) {
      test(name, () => {
        const result = results.get(name);
        if (!result) throw new Error(`no result for this case from the Node run${runError ? `: ${runError}` : ""}`);
        if (!result.ok) throw new Error(`failed on Node (${result.ms} ms): ${result.error}`);
      });
    }
  });
}

/** Runs a command; resolves with its output, rejects (with the output) on failure or deadline. */
function run(cmd: string, args: string[], timeoutMs: number, onLine?: (line: string) => void): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    onLines(child.stdout, (line) => {
      stdout += `${line}\n`;
      onLine?.(line);
    });
    child.stderr.setEncoding("utf8");
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
