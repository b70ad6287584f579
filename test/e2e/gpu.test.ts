/**
 * GPU services through the compiled binary, with no GPU: a fake `nvidia-smi` on PATH prints what
 * the real `nvidia-smi -L` prints, and each instance says which CUDA_VISIBLE_DEVICES it saw when
 * its module loaded. Covers --gpus (a list, all, missing nvidia-smi), --gpus-per-instance, the
 * gpu tag and --tag with calls that require tags, setup()/teardown() (a failing setup exits 78
 * once), and recycling under load (--max-calls-per-instance, --max-memory-per-instance) with no
 * call lost.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClientDealer, NoSuchMethodError, silentLogger } from "../../src/index.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  type CliProcess,
  buildBinary,
  expectOneLineError,
  freePort,
  killAll,
  runCli,
  runCliOk,
  spawnCli,
} from "../helpers/voidrail-cli.ts";

const MODULE = "test/fixtures/cli/gpu-services.ts";
const STEP_MS = 20_000;

interface Cluster {
  id: string;
  instanceId: string;
  state: string;
  gpus?: string[];
  tags?: Record<string, string>;
}

interface WhoAmI {
  pid: number;
  seenAtLoad: { cuda: string | null; gpu: string | null };
  tags: Record<string, string>;
  gpus: string[];
  modelLoaded: boolean;
}

let fakeBin: string;
let fakeNvidiaSmiTwo: string;
let emptyBin: string;
const clients: ClientDealer[] = [];

/** A directory holding an executable `nvidia-smi` that prints `lines` for `-L`, as the real one does. */
function fakeNvidiaSmi(lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "voidrail-fake-smi-"));
  const script = `#!/bin/sh\nif [ "$1" = "-L" ]; then\ncat <<'EOF'\n${lines.join("\n")}\nEOF\nexit 0\nfi\necho "fake nvidia-smi: only -L" >&2\nexit 2\n`;
  writeFileSync(join(dir, "nvidia-smi"), script);
  chmodSync(join(dir, "nvidia-smi"), 0o755);
  return dir;
}

const H200 = (i: number) => `GPU ${i}: NVIDIA H200 (UUID: GPU-5f1c0b2e-7a3d-4c1e-9b8a-00000000000${i})`;

beforeAll(async () => {
  fakeBin = fakeNvidiaSmi([0, 1, 2, 3].map(H200));
  fakeNvidiaSmiTwo = fakeNvidiaSmi([0, 1].map(H200));
  emptyBin = mkdtempSync(join(tmpdir(), "voidrail-no-smi-"));
  await buildBinary();
}, 120_000);
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await killAll();
});
afterAll(() => {
  rmSync(fakeBin, { recursive: true, force: true });
  rmSync(fakeNvidiaSmiTwo, { recursive: true, force: true });
  rmSync(emptyBin, { recursive: true, force: true });
});

/** PATH with the fake nvidia-smi first (or, with `bin` = emptyBin, with no nvidia-smi at all). */
function pathWith(bin: string, keepSystem = true): Record<string, string> {
  return { PATH: keepSystem ? `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` : bin };
}

async function startRouter(port: number, mode = "fifo"): Promise<CliProcess> {
  const router = spawnCli(["router", "--port", String(port), "--mode", mode]);
  await router.waitForOutput(/router listening/);
  return router;
}

async function clusters(port: number): Promise<Cluster[]> {
  return JSON.parse(await runCliOk(["client", "--clusters", "--json", "--port", String(port)]));
}

async function client(port: number): Promise<ClientDealer> {
  const c = new ClientDealer({ routerAddress: `tcp://127.0.0.1:${port}`, logger: silentLogger, timeout: 30 });
  clients.push(c);
  await c.connect();
  return c;
}

/** The devices each instance said it saw at module load, from the dealer's output. */
function devicesSeen(dealer: CliProcess): string[] {
  return [...dealer.output.matchAll(/gpu-fixture pid=\d+ CUDA_VISIBLE_DEVICES=(\S+) VOIDRAIL_GPU=(\S+)/g)].map((m) => {
    expect(m[2]).toBe(m[1]);
    return m[1];
  });
}

describe("--gpus", () => {
  test("--instances 4 --gpus 0,1: one device each, round robin (instances 1 and 3 get GPU 0), set before the module loads; clusters show them with the gpu tag", async () => {
    const port = await freePort();
    const router = await startRouter(port);
    const dealer = spawnCli(["dealer", "--module", MODULE, "--instances", "4", "--gpus", "0,1", "--port", String(port)], {
      env: pathWith(fakeBin),
    });
    await dealer.waitForOutput(/GpuService registered as/, { count: 4, timeoutMs: STEP_MS });
    expect(dealer.output).toContain("on GPU(s) 1:0 2:1 3:0 4:1");
    expect(devicesSeen(dealer).sort()).toEqual(["0", "0", "1", "1"]);
    const seen = await clusters(port);
    expect(seen.map((c) => (c.gpus ?? []).join(",")).sort()).toEqual(["0", "0", "1", "1"]);
    for (const c of seen) expect(c.tags).toEqual({ gpu: "h200" });
    // What the method sees agrees with what discovery shows.
    const c = await client(port);
    const answers = await Promise.all(Array.from({ length: 8 }, () => c.invoke<WhoAmI>("GpuService.whoami", 50)));
    for (const answer of answers) expect(answer.gpus).toEqual([answer.seenAtLoad.cuda as string]);
    const table = await runCliOk(["client", "--clusters", "--port", String(port)]);
    expect(table).toContain("h200");
    dealer.signal("SIGTERM");
    expect(await dealer.exited(STEP_MS)).toBe(0);
    router.signal("SIGTERM");
    expect(await router.exited()).toBe(0);
  }, 60_000);

  test("--gpus all --gpus-per-instance 2: nvidia-smi -L finds 4 GPUs, each of 2 instances gets 2", async () => {
    const port = await freePort();
    const router = await startRouter(port);
    const dealer = spawnCli(
      ["dealer", "--module", MODULE, "--instances", "2", "--gpus", "all", "--gpus-per-instance", "2", "--port", String(port)],
      { env: pathWith(fakeBin) },
    );
    await dealer.waitForOutput(/GpuService registered as/, { count: 2, timeoutMs: STEP_MS });
    expect(devicesSeen(dealer).sort()).toEqual(["0,1", "2,3"]);
    expect((await clusters(port)).map((c) => c.gpus).sort()).toEqual([
      ["0", "1"],
      ["2", "3"],
    ]);
    dealer.signal("SIGTERM");
    expect(await dealer.exited(STEP_MS)).toBe(0);
    router.signal("SIGTERM");
    await router.exited();
  }, 60_000);

  test("serve --gpus 1 with one instance: the in-process instance gets the device too", async () => {
    const port = await freePort();
    const serve = spawnCli(["serve", "--module", MODULE, "--gpus", "1", "--port", String(port)], { env: pathWith(fakeBin) });
    await serve.waitForOutput(/GpuService registered as/, { timeoutMs: STEP_MS });
    expect(devicesSeen(serve)).toEqual(["1"]);
    expect((await clusters(port))[0]).toMatchObject({ gpus: ["1"], tags: { gpu: "h200" } });
    serve.signal("SIGTERM");
    expect(await serve.exited(STEP_MS)).toBe(0);
  }, 60_000);

  test("--gpus all without nvidia-smi: one line saying so, exit 2 (a configuration error)", async () => {
    const result = await runCli(["dealer", "--module", MODULE, "--instances", "2", "--gpus", "all"], {
      env: pathWith(emptyBin, false),
    });
    expect(result.code).toBe(2);
    expectOneLineError(result, /--gpus all needs nvidia-smi.*not found on PATH/);
  });

  test("flag mistakes: a GPU nvidia-smi does not list, a group size that does not divide, a bad --tag", async () => {
    const cases: [string[], RegExp][] = [
      [["--gpus", "0,7"], /--gpus: 7 not among the GPUs nvidia-smi -L lists \(0, 1, 2, 3\)/],
      [["--gpus", "0,1,2", "--gpus-per-instance", "2"], /--gpus-per-instance 2 does not divide the 3 GPUs/],
      [["--gpus-per-instance", "2"], /--gpus-per-instance goes with --gpus/],
      [["--tag", "gpu"], /--tag must be name=value/],
      [["--tag", "a=1", "--tag", "a=2"], /--tag a is given twice/],
    ];
    for (const [flags, pattern] of cases) {
      const result = await runCli(["dealer", "--module", MODULE, ...flags], { env: pathWith(fakeBin) });
      expect(result.code).toBe(2);
      expectOneLineError(result, pattern);
    }
  });
});

test("--tag and require: calls go only to dealers with the tags (FIFO among them); none: NoSuchMethodError naming it, or a wait", async () => {
  const port = await freePort();
  const router = await startRouter(port);
  const eu = spawnCli(["dealer", "--module", MODULE, "--instances", "2", "--tag", "region=eu", "--gpus", "0", "--port", String(port)], {
    env: pathWith(fakeBin),
  });
  const us = spawnCli(["dealer", "--module", MODULE, "--tag", "region=us", "--port", String(port)], { env: pathWith(fakeBin) });
  await eu.waitForOutput(/registered as/, { count: 2, timeoutMs: STEP_MS });
  await us.waitForOutput(/registered as/, { timeoutMs: STEP_MS });
  const c = await client(port);
  const inEu = await Promise.all(
    Array.from({ length: 6 }, () => c.call<WhoAmI>("GpuService.whoami", [20], { require: { region: "eu", gpu: "h200" } })),
  );
  for (const answer of inEu) expect(answer.tags).toEqual({ region: "eu", gpu: "h200" });
  const inUs = await Promise.all(Array.from({ length: 3 }, () => c.call<WhoAmI>("GpuService.whoami", [20], { require: { region: "us" } })));
  expect(new Set(inUs.map((answer) => answer.tags.region))).toEqual(new Set(["us"]));
  const missing = await c.call("GpuService.whoami", [], { require: { region: "asia" } }).catch((error: Error) => error);
  expect(missing).toBeInstanceOf(NoSuchMethodError);
  expect((missing as Error).message).toBe("no service offers GpuService.whoami with region=asia");
  // The same from the command line: client --call --require.
  const viaCli = JSON.parse(await runCliOk(["client", "--call", "GpuService.whoami", "--require", "region=us", "--port", String(port)]));
  expect(viaCli.tags.region).toBe("us");
  const refused = await runCli(["client", "--call", "GpuService.whoami", "--require", "region=asia", "--port", String(port)]);
  expect(refused.code).toBe(1);
  expectOneLineError(refused, /^voidrail: NO_SUCH_METHOD: no service offers GpuService\.whoami with region=asia$/);
  const waiting = c.call<WhoAmI>("GpuService.whoami", [], { require: { region: "asia" }, waitForDealer: true });
  const asia = spawnCli(["dealer", "--module", MODULE, "--tag", "region=asia", "--port", String(port)]);
  expect((await waitFor(waiting, { timeoutMs: STEP_MS, message: "the call waiting for region=asia" })).tags.region).toBe("asia");
  const task = await c.submit("GpuService.whoami", [], { require: { region: "us" } });
  expect((await c.waitTask<WhoAmI>(task.id, { timeout: 20 })).tags.region).toBe("us");
  const taskId = (await runCliOk(["task", "submit", "GpuService.whoami", "--require", "region=eu", "--port", String(port)])).trim();
  expect(JSON.parse(await runCliOk(["task", "wait", taskId, "--port", String(port)])).tags.region).toBe("eu");
  for (const dealer of [eu, us, asia]) dealer.signal("SIGTERM");
  for (const dealer of [eu, us, asia]) expect(await dealer.exited(STEP_MS)).toBe(0);
  router.signal("SIGTERM");
  await router.exited();
}, 60_000);

describe("setup() and teardown()", () => {
  test("an instance in setup() shows as setup and gets no call; a call made meanwhile runs on a loaded model; teardown() runs once on drain", async () => {
    const port = await freePort();
    const router = await startRouter(port);
    const dealer = spawnCli(["dealer", "--module", MODULE, "--instances", "2", "--port", String(port)], {
      env: { GPU_FIXTURE_SETUP_MS: "3000" },
    });
    // How discovery first showed each instance: in setup (its setup() lasts 3 s; we look every 50 ms).
    const firstSeen = new Map<string, string>();
    const c = await client(port);
    let during: Promise<WhoAmI>[] = [];
    await waitFor(
      async () => {
        for (const cl of await clusters(port)) if (!firstSeen.has(cl.id)) firstSeen.set(cl.id, cl.state);
        // Calls made while the first instance is in setup: they wait for a loaded model.
        if (firstSeen.size > 0 && during.length === 0) during = Array.from({ length: 4 }, () => c.invoke<WhoAmI>("GpuService.whoami"));
        return firstSeen.size === 2;
      },
      { timeoutMs: STEP_MS, intervalMs: 50, message: "both instances to register" },
    );
    expect([...firstSeen.values()]).toEqual(["setup", "setup"]);
    const answers = await Promise.all(during);
    for (const answer of answers) expect(answer.modelLoaded).toBe(true);
    // The calls may all have gone to the instance that was ready first; the other one follows.
    await waitFor(async () => (await clusters(port)).every((cl) => cl.state === "active"), {
      timeoutMs: STEP_MS,
      intervalMs: 50,
      message: "both instances active after their setup()",
    });
    dealer.signal("SIGTERM");
    expect(await dealer.exited(STEP_MS)).toBe(0);
    expect(dealer.output.match(/teardown after/g)).toHaveLength(2);
    expect(dealer.output.match(/setup done/g)).toHaveLength(2);
    router.signal("SIGTERM");
    await router.exited();
  }, 60_000);

  test("a setup() that throws: reported once, exit 78, no restart loop", async () => {
    const port = await freePort();
    const router = await startRouter(port);
    const dealer = spawnCli(["dealer", "--module", MODULE, "--instances", "3", "--port", String(port)], {
      env: { GPU_FIXTURE_SETUP_FAIL: "the model file is missing" },
    });
    expect(await dealer.exited(STEP_MS)).toBe(78);
    const reports = dealer.stderr.split("\n").filter((line) => line.startsWith("voidrail: "));
    expect(reports).toEqual(["voidrail: GpuService could not start: setup() failed: the model file is missing"]);
    expect(dealer.output).not.toContain("restarting");
    const single = await runCli(["dealer", "--module", MODULE, "--port", String(port)], {
      env: { GPU_FIXTURE_SETUP_FAIL: "the model file is missing" },
      timeoutMs: STEP_MS,
    });
    expect(single.code).toBe(78);
    expectOneLineError(single, /^voidrail: GpuService could not start: setup\(\) failed: the model file is missing$/);
    expect(await clusters(port)).toEqual([]);
    router.signal("SIGTERM");
    await router.exited();
  }, 60_000);
});

describe("recycling", () => {
  for (const mode of ["fifo", "load_balance"]) {
    test(`--max-calls-per-instance 5 under load (${mode}): instances are replaced (the log says why), no call is lost or fails`, async () => {
      const port = await freePort();
      const router = await startRouter(port, mode);
      const dealer = spawnCli(
        ["dealer", "--module", MODULE, "--instances", "2", "--max-calls-per-instance", "5", "--gpus", "0,1", "--port", String(port)],
        { env: { ...pathWith(fakeBin), GPU_FIXTURE_SETUP_MS: "200" } },
      );
      await dealer.waitForOutput(/registered as/, { count: 2, timeoutMs: STEP_MS });
      const c = await client(port);
      // Waves of 20 concurrent calls until replacements have served some (at most 30 waves).
      const answers: WhoAmI[] = [];
      const pids = new Set<number>();
      for (let wave = 0; wave < 30 && (pids.size < 4 || wave < 3); wave++) {
        const results = await Promise.all(Array.from({ length: 20 }, () => c.invoke<WhoAmI>("GpuService.whoami", 25))).catch((error) => {
          throw new Error(`a call failed in wave ${wave}: ${(error as Error).message}\n${dealer.describe()}`);
        });
        for (const answer of results) {
          answers.push(answer);
          pids.add(answer.pid);
        }
      }
      for (const answer of answers) expect(answer.modelLoaded).toBe(true);
      if (pids.size < 4) throw new Error(`only ${pids.size} processes served the calls\n${dealer.describe()}`);
      await dealer.waitForOutput(
        /replacing GpuService-\d+ \(pid \d+\): it served \d+ calls \(--max-calls-per-instance 5\); starting its replacement/,
        {
          timeoutMs: STEP_MS,
        },
      );
      await dealer.waitForOutput(/GpuService-\d+ \(pid \d+\) replaced by GpuService-\d+ \(pid \d+\) \(it served \d+ calls/, {
        timeoutMs: STEP_MS,
      });
      await dealer.waitForOutput(/drained and exited \(code 0\) after being replaced/, { timeoutMs: STEP_MS });
      // A replacement keeps its predecessor's device: once every replacement asked for is done,
      // two instances, one on each GPU.
      const count = (pattern: RegExp) => (dealer.output.match(pattern) ?? []).length;
      await waitFor(
        async () => {
          if (count(/replacing GpuService-/g) !== count(/after being replaced/g)) return false;
          const now = await clusters(port);
          return now.length === 2 && now.every((cl) => cl.state === "active");
        },
        { timeoutMs: STEP_MS, intervalMs: 100, message: "two active instances after the recycling" },
      );
      expect((await clusters(port)).map((cl) => (cl.gpus ?? []).join(",")).sort()).toEqual(["0", "1"]);
      expect(dealer.output).not.toMatch(/exited \(code \d+\); restarting/);
      dealer.signal("SIGTERM");
      expect(await dealer.exited(STEP_MS)).toBe(0);
      router.signal("SIGTERM");
      await router.exited();
    }, 90_000);
  }

  test("a replacement that cannot start beside the old instance (its GPU is full): the old one drains first, then it starts; no call fails", async () => {
    const lockDir = mkdtempSync(join(tmpdir(), "voidrail-gpu-locks-"));
    try {
      const port = await freePort();
      const router = await startRouter(port);
      const dealer = spawnCli(["dealer", "--module", MODULE, "--max-calls-per-instance", "3", "--gpus", "0", "--port", String(port)], {
        env: { ...pathWith(fakeBin), GPU_FIXTURE_EXCLUSIVE_DIR: lockDir },
      });
      await dealer.waitForOutput(/registered as/, { timeoutMs: STEP_MS });
      const c = await client(port);
      const first = await c.invoke<WhoAmI>("GpuService.whoami");
      const pids = new Set([first.pid]);
      // Calls go on while the instance is replaced; none fails, and one lands on the replacement.
      for (let i = 0; i < 200 && pids.size < 2; i++) pids.add((await c.invoke<WhoAmI>("GpuService.whoami", 10)).pid);
      expect(pids.size).toBe(2);
      expect(dealer.output).toMatch(
        /the replacement of GpuService-\d+ \(pid \d+\) failed to start \(exit code 78: GpuService could not start: setup\(\) failed: CUDA out of memory on GPU 0\); draining GpuService-\d+ first, then starting it again/,
      );
      await dealer.waitForOutput(/drained and exited \(code 0\) after being replaced/, { timeoutMs: STEP_MS });
      // The old instance left only after the replacement had registered: never no dealer at all.
      // (The first replacement registered too, in setup, before its setup() failed.)
      const replacementReady = dealer.stdout.indexOf("setup done", dealer.stdout.indexOf("setup done") + 1);
      expect(replacementReady).toBeGreaterThan(0);
      expect(dealer.stdout.indexOf("teardown after")).toBeLessThan(replacementReady);
      expect(replacementReady).toBeLessThan(dealer.stdout.indexOf("drained and exited"));
      expect(dealer.exitCode).toBeNull();
      dealer.signal("SIGTERM");
      expect(await dealer.exited(STEP_MS)).toBe(0);
      router.signal("SIGTERM");
      await router.exited();
    } finally {
      rmSync(lockDir, { recursive: true, force: true });
    }
  }, 90_000);

  test("--max-memory-per-instance: an instance whose RSS passes the limit is replaced, and its calls complete", async () => {
    const port = await freePort();
    const router = await startRouter(port);
    const dealer = spawnCli(["dealer", "--module", MODULE, "--max-memory-per-instance", "400", "--port", String(port)]);
    await dealer.waitForOutput(/registered as/, { timeoutMs: STEP_MS });
    const c = await client(port);
    const first = await c.invoke<WhoAmI>("GpuService.grow", 1);
    // Each call keeps 64 MiB: within a few calls the instance passes 400 MiB and is replaced. At
    // most 12 calls (768 MiB), so a failure cannot eat the machine's memory.
    const pids = [first.pid];
    for (let i = 0; i < 12 && pids.at(-1) === first.pid; i++) {
      pids.push((await c.invoke<WhoAmI>("GpuService.grow", 64)).pid);
      // The RSS check runs every second: give it a turn before the next 64 MiB.
      if (i >= 4) await dealer.waitForOutput(/replacing GpuService/, { timeoutMs: 1500 }).catch(() => undefined);
    }
    expect(pids.at(-1)).not.toBe(first.pid);
    expect(dealer.output).toMatch(/replacing GpuService-\d+ \(pid \d+\): its RSS of \d+ MiB passed --max-memory-per-instance 400/);
    await dealer.waitForOutput(/drained and exited \(code 0\) after being replaced/, { timeoutMs: STEP_MS });
    dealer.signal("SIGTERM");
    expect(await dealer.exited(STEP_MS)).toBe(0);
    router.signal("SIGTERM");
    await router.exited();
  }, 90_000);
});

test("examples/gpu/services.ts: one GPU per instance, the model loaded in setup(), embeddings as Float32Array", async () => {
  const port = await freePort();
  const router = await startRouter(port, "load_balance");
  const dealer = spawnCli(["dealer", "--module", "examples/gpu/services.ts", "--instances", "2", "--gpus", "all", "--port", String(port)], {
    env: pathWith(fakeNvidiaSmiTwo),
  });
  await dealer.waitForOutput(/Embedder Embedder-\d+ setup\(\) finished in [\d.]+ s; serving/, { count: 2, timeoutMs: STEP_MS });
  expect(dealer.output.match(/Embedder model loaded on cuda \(GPU [01]\)/g)).toHaveLength(2);
  // The log line comes before the router has the READY that follows it: wait until it serves both.
  await waitFor(async () => (await clusters(port)).filter((cl) => cl.state === "active").length === 2, {
    timeoutMs: STEP_MS,
    intervalMs: 50,
    message: "both Embedder instances active at the router",
  });
  const c = await client(port);
  const embedding = await c.call<Float32Array>("Embedder.embed", ["a red bicycle"], { require: { gpu: "h200" } });
  expect(embedding).toBeInstanceOf(Float32Array);
  expect(embedding.length).toBe(64);
  expect(await c.invoke<number>("Embedder.similarity", "a red bicycle", "A red bicycle!")).toBeCloseTo(1, 3);
  const devices = await Promise.all(Array.from({ length: 8 }, () => c.invoke<{ cudaVisibleDevices: string }>("Embedder.device")));
  expect(new Set(devices.map((d) => d.cudaVisibleDevices))).toEqual(new Set(["0", "1"]));
  dealer.signal("SIGTERM");
  expect(await dealer.exited(STEP_MS)).toBe(0);
  router.signal("SIGTERM");
  await router.exited();
}, 60_000);
