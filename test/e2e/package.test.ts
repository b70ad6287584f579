/**
 * The npm package as a user gets it: `npm pack` (which builds lib/ on prepack), the tarball
 * installed into a temporary plain Node project outside this repository, and that project run
 * with a PATH that holds `node` and nothing else, so no Bun can be found. The router and the
 * EchoService it calls run here, under Bun, from the sources.
 *
 * The install is offline: the project gets a lockfile built from this repository's, so npm takes
 * the runtime dependencies (citty, consola, valibot, @valibot/to-json-schema, and @types/node for
 * the type check) from its cache, filled by the `npm ci` that set up this checkout.
 *
 *   ./node_modules/.bin/bun test test/e2e/package.test.ts
 *
 * Deadlines: on an idle 2-core machine `npm pack` takes ~1 s, `npm ci --offline` ~0.5 s, a Node
 * script here ~0.2 s, tsc ~1 s, the whole file ~12 s. With two `yes` hogs beside three other test
 * runs (load average 9 to 12) the file took 53-87 s: pack and install ~50 s, tsc up to 13 s, the
 * second install 10 s. Each deadline allows several times that.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import {
  accessSync,
  constants,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, posix } from "node:path";
import { ClientDealer, ServiceRouter, silentLogger } from "../../src/index.ts";
import { EchoService } from "../fixtures/services.ts";
import { BUN, ROOT } from "../helpers/cluster.ts";
import { onLines } from "../helpers/lines.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  dependencies: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>;
  main: string;
  types: string;
};
const FIXTURES = join(ROOT, "test/fixtures/package");
const STEP_TIMEOUT_MS = 120_000;
const SCRIPT_TIMEOUT_MS = 30_000;
/** bun test's own limit per test (5 s by default) must outlast the deadlines inside it. */
const TEST_TIMEOUT_MS = 2 * STEP_TIMEOUT_MS;

/** The `node` that runs the user's project: VOIDRAIL_NODE, or the first on PATH. */
function findNode(): string {
  if (process.env.VOIDRAIL_NODE) return process.env.VOIDRAIL_NODE;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "node");
    try {
      accessSync(candidate, constants.X_OK);
      return realpathSync(candidate);
    } catch {
      // Not here.
    }
  }
  throw new Error("no node on PATH: these tests need Node ≥ 20");
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (any exit code); rejects only at the deadline or when it cannot start. */
function run(command: string, args: string[], options: { cwd: string; env: Record<string, string>; timeoutMs: number }): Promise<Finished> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
  return finish(child, `${command} ${args.join(" ")}`, options.timeoutMs);
}

function finish(child: ChildProcess, what: string, timeoutMs: number): Promise<Finished> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`Timed out after ${timeoutMs} ms waiting for: ${what} to exit (stdout: ${stdout}; stderr: ${stderr})`));
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${what}: ${error.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function expectSuccess(result: Finished, what: string): Finished {
  if (result.code !== 0) throw new Error(`${what} exited with ${result.signal ?? result.code}\n${result.stderr}${result.stdout}`);
  return result;
}

interface LockEntry {
  version: string;
  dependencies?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * A project that depends on the tarball, with a lockfile whose other entries are copied from this
 * repository's, so that `npm ci --offline` needs nothing but npm's cache.
 */
function writeProject(dir: string, tarball: string, devDependencies: string[]): void {
  const repoLock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const dependencies = { voidrail: `file:${tarball}` };
  const devDependencyRanges = Object.fromEntries(devDependencies.map((name) => [name, repoLock.packages[`node_modules/${name}`].version]));
  const packages: Record<string, unknown> = {
    "": { name: "voidrail-user", dependencies, devDependencies: devDependencyRanges },
    "node_modules/voidrail": {
      version: PACKAGE.version,
      resolved: `file:${tarball}`,
      dependencies: PACKAGE.dependencies,
      bin: PACKAGE.bin,
    },
  };
  /** Node's lookup, as the lockfile records it: the nearest node_modules/<name> above `from`. */
  const locate = (from: string, name: string): string => {
    for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf("/node_modules/")))) {
      const key = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
      if (repoLock.packages[key]) return key;
      if (!dir) throw new Error(`${name} is not in package-lock.json; cannot install it offline`);
    }
  };
  const copy = (key: string, dev: boolean) => {
    if (packages[key]) return;
    const entry = repoLock.packages[key];
    packages[key] = { ...entry, dev: dev || undefined };
    for (const dependency of Object.keys(entry.dependencies ?? {})) copy(locate(key, dependency), dev);
  };
  for (const name of Object.keys(PACKAGE.dependencies)) copy(locate("", name), false);
  for (const name of devDependencies) copy(locate("", name), true);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "voidrail-user", private: true, type: "module", dependencies, devDependencies: devDependencyRanges }, null, 2),
  );
  writeFileSync(
    join(dir, "package-lock.json"),
    JSON.stringify({ name: "voidrail-user", lockfileVersion: 3, requires: true, packages }, null, 2),
  );
}

const NODE = findNode();
let work = "";
let tarball = "";
let packedFiles: string[] = [];
/** The plain Node project with the package installed. */
let project = "";
/** A PATH with `node` only (and one with `bun` beside it). */
let nodeOnlyPath = "";
let nodeAndBunPath = "";

function projectEnv(path: string): Record<string, string> {
  return { PATH: path, HOME: work, NO_COLOR: "1" };
}

function npm(args: string[], cwd: string): Promise<Finished> {
  // npm itself runs with this machine's PATH; only the project's own commands get the bare one.
  return run("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd,
    env: { ...(process.env as Record<string, string>), NO_COLOR: "1" },
    timeoutMs: STEP_TIMEOUT_MS,
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "voidrail-package-"));
  const pack = expectSuccess(await npm(["pack", "--json", "--pack-destination", work], ROOT), "npm pack");
  const report = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, report[0].filename);
  packedFiles = report[0].files.map((file) => file.path);

  project = join(work, "project");
  writeProject(project, tarball, ["@types/node"]);
  expectSuccess(await npm(["ci", "--offline", "--ignore-scripts"], project), "npm ci --offline (the tarball into a plain project)");
  for (const file of ["client.mjs", "all-in-node.mjs", "blocking-dealer.mjs", "require.cjs", "typed.ts", "tsconfig.json"])
    cpSync(join(FIXTURES, file), join(project, file));

  for (const [dir, links] of [
    ["path-node", { node: NODE }],
    ["path-bun", { bun: realpathSync(BUN) }],
  ] as const) {
    mkdirSync(join(work, dir));
    for (const [name, target] of Object.entries(links)) symlinkSync(target, join(work, dir, name));
  }
  nodeOnlyPath = join(work, "path-node");
  nodeAndBunPath = `${nodeOnlyPath}${delimiter}${join(work, "path-bun")}`;
}, 3 * STEP_TIMEOUT_MS);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("npm pack", () => {
  test("ships the compiled library with its types, the sources for Bun and the launcher; no tests, benchmarks or docs", () => {
    for (const file of [
      "package.json",
      "README.md",
      "bin/voidrail.js",
      "lib/index.js",
      "lib/index.d.ts",
      "lib/index.js.map",
      "lib/zmtp/index.js",
      "lib/zmtp/index.d.ts",
      "lib/dealer/heartbeat-worker.js",
      "src/index.ts",
      "src/zmtp/index.ts",
      "src/cli/main.ts",
    ])
      expect(packedFiles).toContain(file);
    const outside = packedFiles.filter((file) => !/^(bin|lib|src)\//.test(file) && !["package.json", "README.md"].includes(file));
    expect(outside).toEqual([]);
  });

  test("every file the package names, and every relative import of a packed module, is packed", () => {
    const packed = new Set(packedFiles);
    const named = [PACKAGE.main, PACKAGE.types, ...Object.values(PACKAGE.bin)];
    for (const target of Object.values(PACKAGE.exports)) named.push(...(typeof target === "string" ? [target] : Object.values(target)));
    const missing = named.map((path) => posix.normalize(path)).filter((path) => !packed.has(path));
    // The CLI reads ../../package.json; source maps point at the sources.
    const importPattern = /(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']|"sources":\["([^"]+)"/g;
    for (const file of packedFiles.filter((path) => /\.(js|ts|map)$/.test(path))) {
      const text = readFileSync(join(ROOT, file), "utf8");
      for (const match of text.matchAll(importPattern)) {
        const target = posix.normalize(posix.join(posix.dirname(file), match[1] ?? match[2]));
        if (!packed.has(target)) missing.push(`${target} (from ${file})`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe("the installed package in a plain project (no Bun on PATH)", () => {
  let router: ServiceRouter | undefined;
  let echo: EchoService | undefined;
  const children: ChildProcess[] = [];

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await echo?.stop();
    await router?.stop();
    echo = undefined;
    router = undefined;
  });

  for (const runtime of ["node", "bun"] as const) {
    // Node takes the compiled lib/, Bun the sources (the "bun" export condition).
    const served =
      runtime === "node"
        ? { voidrail: "lib/index.js", zmtp: "lib/zmtp/index.js" }
        : { voidrail: "src/index.ts", zmtp: "src/zmtp/index.ts" };
    test(
      `the same ESM app under ${runtime} imports ClientDealer from voidrail (${served.voidrail}) and Dealer from voidrail/zmtp: calls, streams, and talks ZMTP`,
      async () => {
        router = new ServiceRouter({ address: uniqueEndpoint("tcp"), logger: silentLogger });
        await router.start();
        echo = new EchoService({ routerAddress: router.address, logger: silentLogger });
        await waitFor(echo.start(), { timeoutMs: 10_000, message: "EchoService to register" });

        const result = expectSuccess(
          await run(runtime === "node" ? NODE : realpathSync(BUN), ["client.mjs", router.address], {
            cwd: project,
            env: projectEnv(nodeOnlyPath),
            timeoutMs: SCRIPT_TIMEOUT_MS,
          }),
          `${runtime} client.mjs`,
        );

        const installed = `file://${realpathSync(project)}/node_modules/voidrail`;
        expect(JSON.parse(result.stdout.trim())).toEqual({
          runtime,
          resolved: { voidrail: `${installed}/${served.voidrail}`, zmtp: `${installed}/${served.zmtp}` },
          echo: `from ${runtime}`,
          sum: 42,
          chunks: [0, 1, 2, 3, 4],
          reply: "pong ping zmtp",
        });
      },
      TEST_TIMEOUT_MS,
    );
  }

  test(
    "the whole library runs in one Node process: ServiceRouter, a JavaScript service (registerServiceMethod) and ClientDealer",
    async () => {
      const result = expectSuccess(
        await run(NODE, ["all-in-node.mjs"], { cwd: project, env: projectEnv(nodeOnlyPath), timeoutMs: SCRIPT_TIMEOUT_MS }),
        "node all-in-node.mjs",
      );
      expect(JSON.parse(result.stdout.trim())).toEqual({
        square: 144,
        squares: [1, 4, 9, 16],
        methods: ["Squares.square", "Squares.upTo"],
      });
    },
    TEST_TIMEOUT_MS,
  );

  /** Starts the package's BlockingService under Node; resolves with its dealer id once registered. */
  async function startBlockingDealer(address: string, args: string[]): Promise<string> {
    const child = spawn(NODE, ["blocking-dealer.mjs", address, ...args], {
      cwd: project,
      env: projectEnv(nodeOnlyPath),
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Timed out after ${SCRIPT_TIMEOUT_MS} ms waiting for: the Node dealer to register (stderr: ${stderr})`)),
        SCRIPT_TIMEOUT_MS,
      );
      onLines(child.stdout!, (line) => {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { dealerId: string }).dealerId);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the Node dealer exited (${code}) before it registered: ${stderr}`));
      });
    });
  }

  /**
   * Calls BlockingService.spin for twice the router's heartbeat timeout and watches the dealer
   * list meanwhile; dealerKept when the dealer's registration was there at every look. The
   * timeout is 2 s (not less) so that a loaded machine that starves the beating thread for a
   * moment does not look like a missing thread.
   */
  async function spinAndWatch(heartbeatThread: boolean): Promise<{ dealerKept: boolean; result: unknown }> {
    const heartbeatTimeoutSeconds = 2;
    router = new ServiceRouter({ address: uniqueEndpoint("tcp"), heartbeatTimeout: heartbeatTimeoutSeconds, logger: silentLogger });
    await router.start();
    const dealerId = await startBlockingDealer(router.address, heartbeatThread ? [] : ["--no-heartbeat-thread"]);
    const client = new ClientDealer({ routerAddress: router.address, timeout: 30, logger: silentLogger });
    try {
      await client.connect();
      let dealerKept = true;
      let settled = false;
      const call = client.invoke("BlockingService.spin", heartbeatTimeoutSeconds * 2000).then(
        (value) => value,
        (error: Error) => error.name,
      );
      void call.finally(() => (settled = true));
      // Without its thread the dealer is dropped ~2 s in; with it, it is there until the call ends.
      await waitFor(
        async () => {
          if (!(await client.discoverClusters()).some((dealer) => dealer.id === dealerId)) dealerKept = false;
          return settled || !dealerKept;
        },
        { timeoutMs: 30_000, intervalMs: 50, message: "the spin call to end or its dealer to be dropped" },
      );
      return { dealerKept, result: dealerKept ? await call : undefined };
    } finally {
      for (const child of children.splice(0)) child.kill("SIGKILL");
      await client.close();
    }
  }

  test(
    "a Node dealer from the package keeps its heartbeat thread: a method blocking its event loop for 2x the heartbeat timeout completes on the same registration",
    async () => {
      expect(await spinAndWatch(true)).toEqual({ dealerKept: true, result: true });
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the same Node dealer without its heartbeat thread is dropped by the router (what the thread prevents)",
    async () => {
      expect((await spinAndWatch(false)).dealerKept).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "CommonJS require() of voidrail and voidrail/zmtp works (require(esm), Node ≥ 20.19)",
    async () => {
      const nodeVersion = (
        await run(NODE, ["-p", "process.versions.node"], { cwd: project, env: projectEnv(nodeOnlyPath), timeoutMs: SCRIPT_TIMEOUT_MS })
      ).stdout.trim();
      const [major, minor] = nodeVersion.split(".").map(Number);
      const result = await run(NODE, ["require.cjs"], { cwd: project, env: projectEnv(nodeOnlyPath), timeoutMs: SCRIPT_TIMEOUT_MS });
      if (major > 20 || (major === 20 && minor >= 19)) {
        expectSuccess(result, `node ${nodeVersion} require.cjs`);
        expect(JSON.parse(result.stdout.trim())).toEqual({ ClientDealer: "function", ServiceRouter: "function", Dealer: "function" });
      } else {
        // Older Node cannot require() an ES module at all (documented in the README).
        expect(result.stderr).toContain("ERR_REQUIRE_ESM");
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a TypeScript file type-checks against the installed .d.ts files (strict, NodeNext, no skipLibCheck)",
    async () => {
      const tsc = join(ROOT, "node_modules/.bin/tsc");
      const result = await run(tsc, ["-p", "tsconfig.json"], { cwd: project, env: projectEnv(nodeOnlyPath), timeoutMs: STEP_TIMEOUT_MS });
      expect({ code: result.code, output: result.stdout + result.stderr }).toEqual({ code: 0, output: "" });
    },
    TEST_TIMEOUT_MS,
  );
});

describe("the installed voidrail command", () => {
  const bin = () => join(project, "node_modules/.bin/voidrail");

  test(
    "without Bun anywhere it prints one line on how to get the binary or Bun, and exits 1",
    async () => {
      const result = await run(bin(), ["--version"], { cwd: project, env: projectEnv(nodeOnlyPath), timeoutMs: SCRIPT_TIMEOUT_MS });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toStartWith("voidrail: ");
      expect(lines[0]).toContain("needs Bun");
      expect(lines[0]).toContain("npm install -g bun");
      expect(lines[0]).toContain("npm run build → dist/voidrail");
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "with Bun on PATH it runs the CLI: --version prints the package's version",
    async () => {
      const result = expectSuccess(
        await run(bin(), ["--version"], { cwd: project, env: projectEnv(nodeAndBunPath), timeoutMs: SCRIPT_TIMEOUT_MS }),
        "voidrail --version",
      );
      expect(result.stdout.trim()).toBe(PACKAGE.version);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the CLI's exit code comes through: a wrong command line exits 2 with its one-line message",
    async () => {
      const result = await run(bin(), ["no-such-command"], { cwd: project, env: projectEnv(nodeAndBunPath), timeoutMs: SCRIPT_TIMEOUT_MS });
      expect(result.code).toBe(2);
      expect(result.stderr).toStartWith('voidrail: unknown command "no-such-command"');
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "SIGTERM to the launcher reaches the CLI: a router started through it shuts down cleanly and exits 0",
    async () => {
      const address = uniqueEndpoint("ipc");
      const child = spawn(bin(), ["router", "--address", address], {
        cwd: project,
        env: projectEnv(nodeAndBunPath),
        stdio: ["ignore", "pipe", "pipe"],
      });
      const finished = finish(child, "voidrail router", SCRIPT_TIMEOUT_MS);
      let listening = false;
      onLines(child.stdout!, (line) => {
        if (line.includes("router listening on")) listening = true;
      });
      try {
        await waitFor(() => listening || child.exitCode !== null, { timeoutMs: SCRIPT_TIMEOUT_MS, message: "the router to listen" });
        // The CLI installs its signal handlers just after that line; a client welcomed by the router
        // shows it has got that far (a signal a moment earlier would end it the default way).
        const client = new ClientDealer({ routerAddress: address, timeout: 10, logger: silentLogger });
        await waitFor(client.connect(), { timeoutMs: SCRIPT_TIMEOUT_MS, message: "the router to welcome a client" });
        await client.close();
        child.kill("SIGTERM");
        const result = await finished;
        expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
        expect(result.stderr).toContain("voidrail: router shutdown complete");
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "with the bun npm package installed beside it (and no Bun on PATH) it runs the CLI with that Bun",
    async () => {
      // A second project whose node_modules/bun is this repository's (the real binary inside).
      const withBun = join(work, "project-with-bun");
      writeProject(withBun, tarball, []);
      expectSuccess(await npm(["ci", "--offline", "--ignore-scripts"], withBun), "npm ci --offline");
      symlinkSync(realpathSync(join(ROOT, "node_modules/bun")), join(withBun, "node_modules/bun"));
      const result = expectSuccess(
        await run(join(withBun, "node_modules/.bin/voidrail"), ["--version"], {
          cwd: withBun,
          env: projectEnv(nodeOnlyPath),
          timeoutMs: SCRIPT_TIMEOUT_MS,
        }),
        "voidrail --version",
      );
      expect(result.stdout.trim()).toBe(PACKAGE.version);
    },
    2 * STEP_TIMEOUT_MS,
  );
});
