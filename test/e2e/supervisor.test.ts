/**
 * The dealer's supervision of its instances, through the compiled binary: a killed instance is
 * restarted and no call is lost, a stop signal drains work in flight, the instances never outlive
 * their supervisor, and a services module needs no node_modules beside it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { waitFor } from "../helpers/wait.ts";
import { type CliProcess, buildBinary, freePort, killAll, REPO_ROOT, runCli, runCliOk, spawnCli } from "../helpers/voidrail-cli.ts";

const SLOW_MODULE = "test/fixtures/cli/slow-services.ts";

interface Cluster {
  id: string;
  instanceId: string;
  load: number;
  state: string;
}

beforeAll(() => buildBinary(), 120_000);
afterEach(() => killAll());

async function startRouter(port: number): Promise<CliProcess> {
  const router = spawnCli(["router", "--port", String(port)]);
  await router.waitForOutput(/router listening/);
  return router;
}

async function clusters(port: number): Promise<Cluster[]> {
  return JSON.parse(await runCliOk(["client", "--clusters", "--json", "--port", String(port)]));
}

/** Waits until the router has `count` calls running on dealers. */
async function callsRunning(port: number, count: number): Promise<void> {
  await waitFor(
    async () => {
      const info = JSON.parse(await runCliOk(["client", "--router-info", "--port", String(port)])) as { inProgressRequests: number };
      return info.inProgressRequests >= count;
    },
    { timeoutMs: 10_000, intervalMs: 50, message: `${count} call(s) running on dealers` },
  );
}

/**
 * Whether a process runs. An orphan that exited stays a zombie until init reaps it, which can
 * take a second in a container; a zombie has stopped running.
 */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return !existsSync("/proc/self");
  }
}

/** Starts `client --call SlowService.sleep [ms, value]` in the background. */
function slowCall(port: number, ms: number, value: string): CliProcess {
  return spawnCli(["client", "--call", "SlowService.sleep", "--args", JSON.stringify([ms, value]), "--port", String(port)]);
}

/** The call's exit code and result; fails with the client's output when it did not succeed. */
async function resultOf(call: CliProcess): Promise<{ value: string; pid: number }> {
  const code = await call.exited(20_000);
  if (code !== 0) throw new Error(`a call was lost (exit ${code})\n${call.describe()}`);
  return JSON.parse(call.stdout);
}

test("killing one of 4 instances: the supervisor restarts it, and every call made before and meanwhile completes", async () => {
  const port = await freePort();
  const router = await startRouter(port);
  const dealer = spawnCli(["dealer", "--module", SLOW_MODULE, "--instances", "4", "--port", String(port)]);
  await dealer.waitForOutput(/SlowService registered as SlowService-\d+/, { count: 4 });

  // Four calls run (fifo: one per instance) and four wait at the router.
  const before = Array.from({ length: 8 }, (_, i) => slowCall(port, 600, `before-${i}`));
  await callsRunning(port, 4);
  const busy = (await clusters(port)).find((cluster) => cluster.load > 0);
  expect(busy).toBeDefined();
  const victimPid = Number(busy!.instanceId.split(":").pop());
  process.kill(victimPid, "SIGKILL");
  // Calls made while the instance is down and restarting.
  const meanwhile = Array.from({ length: 4 }, (_, i) => slowCall(port, 100, `meanwhile-${i}`));

  // The supervisor names the instance as the router does: one numbering, not a slot number of its own.
  await dealer.waitForOutput(
    new RegExp(`${busy!.id} \\(pid ${victimPid}\\) exited \\(code \\d+\\); restarting in 100 ms \\(restart #1\\)`),
  );
  await dealer.waitForOutput(/SlowService registered as SlowService-\d+/, { count: 5 });
  expect(dealer.output).not.toMatch(/SlowService#\d/);
  const results = await Promise.all([...before, ...meanwhile].map(resultOf));
  expect(results.map((result) => result.value).sort()).toEqual(
    [...Array.from({ length: 8 }, (_, i) => `before-${i}`), ...Array.from({ length: 4 }, (_, i) => `meanwhile-${i}`)].sort(),
  );
  expect(results.map((result) => result.pid)).not.toContain(victimPid);

  const after = await clusters(port);
  expect(after).toHaveLength(4);
  expect(after.map((cluster) => Number(cluster.instanceId.split(":").pop()))).not.toContain(victimPid);
  expect(JSON.parse(await runCliOk(["client", "--list", "--json", "--port", String(port)]))["SlowService.sleep"].instances).toBe(4);

  dealer.signal("SIGTERM");
  expect(await dealer.exited()).toBe(0);
  router.signal("SIGTERM");
  expect(await router.exited()).toBe(0);
}, 30_000);

describe("a stop signal drains: the call in flight completes, then exit 0 and shutdown complete", () => {
  const cases: Array<[string, string[], "signal" | "group"]> = [
    ["dealer, one instance, SIGTERM", ["--instances", "1"], "signal"],
    ["dealer --instances 2, SIGTERM to the supervisor", ["--instances", "2"], "signal"],
    // A terminal's Ctrl-C reaches every process of the group, instances included.
    ["dealer --instances 2, Ctrl-C (SIGINT to the process group)", ["--instances", "2"], "group"],
  ];

  for (const [what, flags, how] of cases) {
    test(what, async () => {
      const port = await freePort();
      const router = await startRouter(port);
      const dealer = spawnCli(["dealer", "--module", SLOW_MODULE, ...flags, "--port", String(port)]);
      await dealer.waitForOutput(/registered as/, { count: Number(flags[1]) });
      const call = slowCall(port, 1000, "in flight");
      await callsRunning(port, 1);
      if (how === "group") dealer.signalGroup("SIGINT");
      else dealer.signal("SIGTERM");
      expect((await resultOf(call)).value).toBe("in flight");
      expect(await dealer.exited()).toBe(0);
      expect(dealer.stderr).toContain("voidrail: dealer shutdown complete");
      router.signal("SIGTERM");
      expect(await router.exited()).toBe(0);
    });
  }

  test("serve --instances 2, SIGTERM: the call completes before the router stops", async () => {
    const port = await freePort();
    const serve = spawnCli(["serve", "--module", SLOW_MODULE, "--instances", "2", "--port", String(port)]);
    await serve.waitForOutput(/registered as/, { count: 2 });
    const call = slowCall(port, 1000, "in flight");
    await callsRunning(port, 1);
    serve.signal("SIGTERM");
    expect((await resultOf(call)).value).toBe("in flight");
    expect(await serve.exited()).toBe(0);
    expect(serve.stderr).toContain("voidrail: shutdown complete");
  });
});

test("instances do not outlive a supervisor that is killed outright (SIGKILL)", async () => {
  const port = await freePort();
  const router = await startRouter(port);
  const dealer = spawnCli(["dealer", "--module", SLOW_MODULE, "--instances", "2", "--port", String(port)]);
  await dealer.waitForOutput(/registered as/, { count: 2 });
  const pids = (await clusters(port)).map((cluster) => Number(cluster.instanceId.split(":").pop()));
  dealer.signal("SIGKILL");
  await dealer.exited();
  await waitFor(async () => (await clusters(port)).length === 0, {
    timeoutMs: 10_000,
    intervalMs: 50,
    message: "the orphaned instances to leave the router",
  });
  await waitFor(() => pids.every((pid) => !isRunning(pid)), { timeoutMs: 5000, message: `instances ${pids.join(", ")} to exit` });
  router.signal("SIGTERM");
  expect(await router.exited()).toBe(0);
});

describe("a services module with no node_modules beside it", () => {
  let directory: string;

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), "voidrail-e2e-module-"));
    copyFileSync(join(REPO_ROOT, "examples/services.ts"), join(directory, "services.ts"));
    for (let dir = directory; dir !== dirname(dir); dir = dirname(dir)) {
      if (existsSync(join(dir, "node_modules")))
        throw new Error(`${dir}/node_modules exists: the test needs a directory with none above it`);
    }
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test("imports voidrail and valibot from the binary, in process and in supervised instances", async () => {
    const port = await freePort();
    const router = await startRouter(port);
    for (const instances of ["1", "2"]) {
      const dealer = spawnCli(["dealer", "--module", "services.ts", "--instances", instances, "--port", String(port)], { cwd: directory });
      await dealer.waitForOutput(/registered as/, { count: Number(instances) });
      // hello's params are a valibot schema: checked by the module's valibot, which is the binary's.
      expect(await runCliOk(["client", "--call", "EchoService.hello", "--args", '{"name":"John"}', "--port", String(port)])).toBe(
        '"Hello, John!"\n',
      );
      const invalid = await runCli(["client", "--call", "EchoService.hello", "--args", '"John"', "--port", String(port)]);
      expect(invalid.code).toBe(1);
      expect(invalid.stderr).toContain("VALIDATION_ERROR");
      dealer.signal("SIGTERM");
      expect(await dealer.exited()).toBe(0);
    }
    router.signal("SIGTERM");
    expect(await router.exited()).toBe(0);
  });
});
