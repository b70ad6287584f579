/**
 * A ClientDealer running under real Node (not Bun) calls a service through the router, over tcp
 * and ipc. The client is bundled for Node once, then run as a child process.
 *
 *   ./node_modules/.bin/bun test test/integration/core-node-client.test.ts
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { EchoService } from "../fixtures/services.ts";
import { BUN, Cluster, ROOT, TRANSPORTS } from "../helpers/cluster.ts";

const BUNDLE = join(ROOT, ".tmp/node-client.mjs");
const NODE = process.env.VOIDRAIL_NODE || "node";

/** Runs a command to completion; rejects with its output on a non-zero exit or at the deadline. */
function run(command: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `Timed out after ${timeoutMs} ms waiting for: ${command} ${args.join(" ")} to exit (stdout: ${stdout}; stderr: ${stderr})`,
        ),
      );
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code ?? signal}: ${stderr}${stdout}`));
    });
  });
}

beforeAll(async () => {
  mkdirSync(join(ROOT, ".tmp"), { recursive: true });
  await run(BUN, ["build", "test/fixtures/node-client.ts", "--target=node", "--outfile", BUNDLE], 30_000);
});

for (const transport of TRANSPORTS) {
  describe(`Node client over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("a ClientDealer under Node invokes, streams and discovers through the router", async () => {
      const router = await cluster.router();
      await cluster.dealer((options) => new EchoService(options));

      const { stdout } = await run(NODE, [BUNDLE, router.address], 15_000);

      expect(JSON.parse(stdout.trim())).toMatchObject({
        runtime: "node",
        echo: "from node",
        sum: 42,
        chunks: [0, 1, 2, 3, 4],
      });
      expect(JSON.parse(stdout.trim()).methods).toContain("EchoService.echo");
    });
  });
}
