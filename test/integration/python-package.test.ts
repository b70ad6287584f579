/**
 * The Python package (python/voidrail) against real TypeScript peers: pytest runs the Python
 * client against TypeScript services started here, and these tests call Python services (run by
 * `python -m voidrail dealer`) with the TypeScript client.
 *
 *   ./node_modules/.bin/bun test test/integration/python-package.test.ts
 *
 * Needs Debian's python3-zmq, python3-pytest, python3-pytest-asyncio, python3-fastapi,
 * python3-httpx (.ci/run installs them). Without them these tests fail and say so: never skipped.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EchoService } from "../../examples/services.ts";
import { ClientDealer, curveKeyPair, ServiceRouter, silentLogger } from "../../src/index.ts";
import { PYTHON, PYTHON_PACKAGE, runProcess, runPytest, TsPeerService } from "../fixtures/python-peers.ts";
import { Cluster, CURVE_TCP } from "../helpers/cluster.ts";
import { onLines } from "../helpers/lines.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const PYTEST_TIMEOUT_MS = 180_000;
const CLIENT_KEY = "client_python-package-test";
const DEALER_KEY = "dealer_python-package-test";
const SERVICE = "PyService";

/** Fails with pytest's own output unless it ran at least `minimum` tests and every one passed. */
function expectPytestPassed(outcome: Awaited<ReturnType<typeof runPytest>>, minimum: number): void {
  const summary = `pytest exited ${outcome.exitCode}: ${outcome.tests} tests, ${outcome.failures} failed, ${outcome.errors} errors, ${outcome.skipped} skipped`;
  if (outcome.exitCode !== 0 || !(outcome.tests >= minimum) || outcome.failures !== 0 || outcome.errors !== 0 || outcome.skipped !== 0) {
    throw new Error(`${summary} (at least ${minimum} expected, none failing or skipped)\n${outcome.output}`);
  }
}

describe("Python package (python/voidrail): pytest", () => {
  test(
    "python/tests/test_units.py: frames, binary values, errors, task options, method kinds, CLI flags",
    async () => {
      expectPytestPassed(await runPytest(["test_units.py"], {}, PYTEST_TIMEOUT_MS), 20);
    },
    PYTEST_TIMEOUT_MS + 10_000,
  );
});

describe("Python package (python/voidrail): pip install", () => {
  test("pip installs ./python into a virtual environment: importable from anywhere, typed (py.typed), pyzmq its only dependency", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "voidrail-pip-"));
    try {
      // A copy, so that setuptools' in-tree build leaves nothing in the checkout.
      cpSync(PYTHON_PACKAGE, join(scratch, "python"), { recursive: true, filter: (path) => !/__pycache__|\.egg-info|\/build$/.test(path) });
      const venv = join(scratch, "venv");
      // --system-site-packages: Debian's pyzmq and setuptools serve it, so nothing is downloaded.
      const made = await runProcess([PYTHON, "-m", "venv", "--system-site-packages", venv], { timeoutMs: 60_000 });
      expect(made.stderr).toBe("");
      const installed = await runProcess(
        [join(venv, "bin/python"), "-m", "pip", "install", "--no-build-isolation", "--no-index", "-q", join(scratch, "python")],
        { cwd: scratch, timeoutMs: 120_000 },
      );
      if (installed.exitCode !== 0) throw new Error(`pip install failed:\n${installed.stdout}${installed.stderr}`);
      const check = await runProcess(
        [
          join(venv, "bin/python"),
          "-c",
          "import importlib.metadata as m, os, voidrail; print(voidrail.__file__); print(os.path.exists(os.path.join(os.path.dirname(voidrail.__file__), 'py.typed'))); print(m.requires('voidrail'))",
        ],
        { cwd: scratch, timeoutMs: 30_000, env: { PYTHONPATH: "" } },
      );
      const [file, typed, requires] = check.stdout.trim().split("\n");
      expect(file).toStartWith(join(venv, "lib"));
      expect(typed).toBe("True");
      // One requirement, pyzmq ("pyzmq>=22", or "pyzmq (>=22)" as older setuptools write it).
      expect(requires).toMatch(/^\['pyzmq ?\(?>=22\)?'\]$/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 200_000);
});

describe("Python client (python/voidrail) against TypeScript services: pytest", () => {
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());

  test(
    "python/tests/test_client.py: every call kind, bytes, 1,000 concurrent invokes, timeouts, cancel, errors, auth, tasks, CURVE options",
    async () => {
      const open = await cluster.router({ taskStore: "memory" });
      await cluster.dealer((options) => new TsPeerService({ ...options, maxConcurrent: 200 }));
      const guarded = await cluster.router({ clientApiKeys: [CLIENT_KEY], taskStore: "memory" });
      await cluster.dealer((options) => new TsPeerService({ ...options, maxConcurrent: 10 }));
      const outcome = await runPytest(
        ["test_client.py"],
        { VOIDRAIL_TEST_ADDRESS: open.address, VOIDRAIL_TEST_AUTH_ADDRESS: guarded.address, VOIDRAIL_TEST_CLIENT_KEY: CLIENT_KEY },
        PYTEST_TIMEOUT_MS,
      );
      expectPytestPassed(outcome, 14);
    },
    PYTEST_TIMEOUT_MS + 10_000,
  );

  test(
    "python/tests/test_fastapi_example.py: the FastAPI example under httpx.AsyncClient calls, streams and submits to a TypeScript service",
    async () => {
      const router = await cluster.router({ taskStore: "memory" });
      await cluster.dealer((options) => new EchoService({ ...options, maxConcurrent: 20 }));
      const outcome = await runPytest(["test_fastapi_example.py"], { VOIDRAIL_TEST_ADDRESS: router.address }, PYTEST_TIMEOUT_MS);
      expectPytestPassed(outcome, 4);
    },
    PYTEST_TIMEOUT_MS + 10_000,
  );
});

describe("Python peers against a TypeScript CURVE router with key lists (curveSecretKey + curveAllow): pytest", () => {
  const cluster = new Cluster(CURVE_TCP);
  afterEach(() => cluster.dispose());

  test(
    "python/tests/test_curve_tags.py: allowed keys call and register, a key on no list gets AuthError, tags and require",
    async () => {
      const keys = cluster.curve!;
      const router = await cluster.router({
        taskStore: "memory",
        curveAllow: { dealers: [keys.dealer.publicKey], clients: [keys.client.publicKey] },
      });
      await cluster.dealer((options) => new TsPeerService({ ...options, maxConcurrent: 10 }));
      const outcome = await runPytest(
        ["test_curve_tags.py"],
        {
          VOIDRAIL_TEST_CURVE_ADDRESS: router.address,
          VOIDRAIL_TEST_CURVE_SERVER_KEY: keys.router.publicKey,
          VOIDRAIL_TEST_CURVE_CLIENT_SECRET: keys.client.secretKey,
          VOIDRAIL_TEST_CURVE_DEALER_SECRET: keys.dealer.secretKey,
        },
        PYTEST_TIMEOUT_MS,
      );
      expectPytestPassed(outcome, 6);
    },
    PYTEST_TIMEOUT_MS + 10_000,
  );
});

/** `python -m voidrail dealer --module peer_service ...`, run from python/tests; its stderr is kept for failure messages. */
class PythonDealers {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr = "";

  constructor(address: string, args: string[] = [], env: Record<string, string> = {}, whole?: { cwd: string; args: string[] }) {
    const command = whole ? whole.args : ["dealer", "--module", "peer_service", "--address", address, ...args];
    this.process = spawn(PYTHON, ["-m", "voidrail", ...command], {
      cwd: whole?.cwd ?? join(PYTHON_PACKAGE, "tests"),
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONPATH: PYTHON_PACKAGE, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1", ...env },
    });
    onLines(this.process.stderr!, (line) => {
      this.stderr += `${line}\n`;
    });
    this.process.stdout!.resume();
    this.exited = new Promise((resolve) => this.process.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))));
  }

  signal(name: NodeJS.Signals): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill(name);
  }

  /** Ends the process (and, through their parent-death signal, its children) within the deadline. */
  async stop(): Promise<void> {
    this.signal("SIGTERM");
    const ended = await Promise.race([this.exited.then(() => true), Bun.sleep(5_000).then(() => false)]);
    if (!ended) {
      this.signal("SIGKILL");
      await this.exited;
    }
  }
}

const running: PythonDealers[] = [];

function startPythonDealers(address: string, args: string[] = [], env: Record<string, string> = {}): PythonDealers {
  const dealers = new PythonDealers(address, args, env);
  running.push(dealers);
  return dealers;
}

/** The router's entries for the registered PyService dealers. */
async function pythonDealersOf(client: ClientDealer) {
  return (await client.discoverClusters()).filter((dealer) => dealer.service === SERVICE);
}

async function untilRegistered(client: ClientDealer, count: number, dealers: PythonDealers) {
  await waitFor(async () => (await pythonDealersOf(client)).length === count, {
    timeoutMs: 20_000,
    message: `${count} Python dealer(s) to register (stderr so far: ${dealers.stderr.trim() || "nothing"})`,
    intervalMs: 50,
  });
  return pythonDealersOf(client);
}

describe("TypeScript clients against a Python service (python -m voidrail dealer)", () => {
  const cluster = new Cluster("tcp");
  afterEach(async () => {
    for (const dealers of running.splice(0)) await dealers.stop();
    await cluster.dispose();
  });

  test("every kind of Python method: sync, async, generator, async generator, bytes both ways, errors by code, discovery", async () => {
    const router = await cluster.router();
    const dealers = startPythonDealers(router.address, ["--max-concurrent", "4"]);
    const client = await cluster.client();
    const [registered] = await untilRegistered(client, 1, dealers);
    expect(registered.maxConcurrent).toBe(4);
    expect(await client.invoke("PyService.echo", { a: [1, "x", null] })).toEqual({ a: [1, "x", null] });
    expect(await client.invoke("PyService.async_echo", "async")).toBe("async");
    expect(await client.invoke("PyService.add", 2, 3)).toBe(5);
    const collect = async (iterable: AsyncIterable<unknown>) => {
      const items: unknown[] = [];
      for await (const item of iterable) items.push(item);
      return items;
    };
    expect(await collect(client.stream("PyService.numbers", 0, 300))).toEqual([...Array(300).keys()]);
    expect(await collect(client.stream("PyService.async_numbers", 3, 6))).toEqual([3, 4, 5]);
    const bytes = new Uint8Array(1 << 20).map((_, i) => i % 256);
    const back = (await client.invoke("PyService.echo", { bytes, floats: new Float32Array([0.5]) })) as Record<string, Uint8Array>;
    expect(back.bytes).toEqual(bytes);
    // Python holds every binary value as bytes, so the Float32Array comes back as its 4 bytes (a Uint8Array).
    expect(back.floats).toBeInstanceOf(Uint8Array);
    expect(new DataView(back.floats.buffer, back.floats.byteOffset, 4).getFloat32(0, true)).toBe(0.5);

    // Compressed arguments (PROTOCOL.md §5.2): the Python dealer inflates gzip with zlib, zstd with python3-zstandard.
    const compressible = new Uint8Array(200_000).map((_, i) => (i >> 6) % 251);
    for (const codec of ["gzip", "zstd"] as const) {
      const echoed = await client.call("PyService.echo", [{ codec, compressible }], { compress: { codec, force: true } });
      expect(echoed).toEqual({ codec, compressible });
    }

    // And compressed results and chunks from Python (@service_method(compress=...)), inflated by the TypeScript client.
    expect(await client.invoke("PyService.compressible", 200_000)).toEqual({ bytes: compressible, small: new Uint8Array(100).fill(7) });
    expect(await collect(client.stream("PyService.zstd_chunks", 3))).toEqual([0, 1, 2].map((i) => new Uint8Array(10).fill(i)));

    // A TypeScript caller's trace context, as the Python method's CallContext sees it.
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    expect(await client.call("PyService.trace_of", [], { traceparent, tracestate: "ts=1" })).toEqual({ traceparent, tracestate: "ts=1" });

    const failure = (await client.invoke("PyService.explode", "widget").catch((error) => error)) as Error & Record<string, unknown>;
    expect(failure).toMatchObject({ code: "REMOTE_ERROR", message: "widget is out of stock", data: { name: "OutOfStock" } });
    expect(String((failure.data as Record<string, unknown>).stack)).toContain("peer_service.py");
    expect(await client.invoke("PyService.refuse").catch((error) => error)).toMatchObject({ code: "OUT_OF_STOCK", data: { left: 0 } });
    expect(await client.invoke("PyService.bad_input").catch((error) => error)).toMatchObject({
      code: "VALIDATION_ERROR",
      data: { path: "args.0.name" },
    });
    expect(await client.invoke("PyService.not_json").catch((error) => error)).toMatchObject({
      code: "VALIDATION_ERROR",
      data: { path: "result" },
    });
    expect(await client.invoke("PyService.add", 1).catch((error) => error)).toMatchObject({
      code: "VALIDATION_ERROR",
      data: { path: "args" },
    });

    const services = await client.discoverServices();
    expect(services["PyService.echo"]).toMatchObject({ description: "Returns its argument", stream: false, instances: 1 });
    expect(services["PyService.numbers"]).toMatchObject({ stream: true });
    expect(services["PyService.async_numbers"]).toMatchObject({ stream: true });
  }, 60_000);

  test("a Python generator waits for the client's credit: a slow TypeScript reader holds the producer back", async () => {
    const router = await cluster.router();
    const dealers = startPythonDealers(router.address, ["--max-concurrent", "4"]);
    const client = await cluster.client({ streamWindow: 4 });
    await untilRegistered(client, 1, dealers);
    const produced = () => client.invoke<number>("PyService.produced_of", "slow-reader");
    const iterator = client.stream<number>("PyService.counted", "slow-reader", 1000)[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toBe(0);
    expect((await iterator.next()).value).toBe(1);
    // Two read: the window of 4 and the 2 handed back are all it may have made, however long we wait.
    await waitFor(async () => (await produced()) >= 4, { timeoutMs: 10_000, message: "the producer to fill the window" });
    expect(await produced()).toBeLessThanOrEqual(6);
    let last = 1;
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) last = step.value;
    expect(last).toBe(999);
    expect(await produced()).toBe(1000);
  }, 60_000);

  test("1,000 concurrent calls from one TypeScript client to two Python instances all come back right", async () => {
    const router = await cluster.router();
    const dealers = startPythonDealers(router.address, ["--instances", "2", "--max-concurrent", "50"]);
    const client = await cluster.client({ timeout: 60 });
    await untilRegistered(client, 2, dealers);
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => client.invoke("PyService.add", i, 1)));
    expect(results).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    // Both instances took part, and every call was answered once.
    const succeeded = (await pythonDealersOf(client)).map((dealer) => dealer.counts.succeeded);
    expect(succeeded).toHaveLength(2);
    expect(succeeded.every((count) => count > 0)).toBe(true);
    expect(succeeded[0] + succeeded[1]).toBe(1000);
  }, 60_000);

  test("timeouts and cancellation reach the Python method: async ones are cancelled, threaded ones see context.cancelled", async () => {
    const router = await cluster.router();
    const dealers = startPythonDealers(router.address, ["--max-concurrent", "8"]);
    const client = await cluster.client();
    await untilRegistered(client, 1, dealers);
    const seen = (tag: string) => client.invoke<string | null>("PyService.seen_of", tag);
    const until = (tag: string, prefix: string) =>
      waitFor(async () => (await seen(tag))?.startsWith(prefix) === true, { timeoutMs: 10_000, message: `${tag} to be ${prefix}` });

    // A client timeout: the router cancels the Python call at the deadline.
    expect(await client.call("PyService.wait_for_cancel", ["t-timeout"], { timeout: 0.3 }).catch((error) => error)).toMatchObject({
      code: "TIMEOUT",
    });
    await until("t-timeout", "cancelled");
    // The router's CANCEL or the dealer's own deadline (deadlineMs), whichever comes first.
    expect(await seen("t-timeout")).toMatch(/^cancelled:(CancelledError|TimeoutError)$/);

    // An explicit cancel.
    const abort = new AbortController();
    const call = client.call("PyService.wait_for_cancel", ["t-abort"], { signal: abort.signal }).catch((error) => error);
    await until("t-abort", "started");
    abort.abort();
    expect(await call).toMatchObject({ code: "CANCELLED" });
    await until("t-abort", "cancelled");

    // A plain (threaded) method learns it through context.cancelled.
    const threaded = new AbortController();
    const inThread = client.call("PyService.wait_in_thread", ["t-thread"], { signal: threaded.signal }).catch((error) => error);
    await until("t-thread", "started");
    threaded.abort();
    expect(await inThread).toMatchObject({ code: "CANCELLED" });
    await until("t-thread", "cancelled");

    // The dealer's own deadline: an async sleep past the time left is cut off.
    expect(await client.call("PyService.sleep", [30], { timeout: 0.3 }).catch((error) => error)).toMatchObject({ code: "TIMEOUT" });
    expect(await client.invoke("PyService.add", 1, 1)).toBe(2);
  }, 60_000);

  test("a Python task attempt reports progress, seen by a TypeScript watcher; the result is stored", async () => {
    const router = await cluster.router({ taskStore: "memory" });
    const dealers = startPythonDealers(router.address);
    const client = await cluster.client();
    await untilRegistered(client, 1, dealers);
    const task = await client.submit("PyService.steps", [4]);
    const events: { state: string; progress?: unknown }[] = [];
    for await (const event of client.watchTask(task.id)) events.push(event);
    expect(events.at(-1)?.state).toBe("succeeded");
    expect(events.map((event) => event.progress)).toContainEqual({ current: 4, total: 4 });
    expect(await client.waitTask(task.id)).toEqual({ done: 4, task: task.id, attempt: 1 });
  }, 60_000);

  test("dealer authentication: the right key registers, a wrong one exits 78 with one line saying so", async () => {
    const router = await cluster.router({ dealerApiKeys: [DEALER_KEY] });
    const client = await cluster.client();
    const good = startPythonDealers(router.address, [], { VOIDRAIL_API_KEY: DEALER_KEY });
    await untilRegistered(client, 1, good);
    expect(await client.invoke("PyService.echo", "keyed")).toBe("keyed");
    const bad = startPythonDealers(router.address, ["--api-key", "dealer_wrong", "--start-timeout", "10"]);
    expect(await waitFor(bad.exited, { timeoutMs: 15_000, message: "the dealer with a wrong key to exit" })).toBe(78);
    expect(bad.stderr).toContain("the router refused this dealer's API key");
  }, 60_000);

  test("a Python instance SIGKILLed mid-call: the call is re-dispatched to the other instance, and the supervisor restarts the dead one", async () => {
    const router = await cluster.router();
    const dealers = startPythonDealers(router.address, ["--instances", "2"]);
    const client = await cluster.client({ timeout: 30 });
    await untilRegistered(client, 2, dealers);
    const scratch = mkdtempSync(join(tmpdir(), "voidrail-py-"));
    try {
      const marker = join(scratch, "marker");
      const call = client.invoke<number>("PyService.hold_once", marker);
      await waitFor(
        () => {
          try {
            return readFileSync(marker, "utf8").length > 0;
          } catch {
            return false;
          }
        },
        { timeoutMs: 10_000, message: "the first instance to take the call" },
      );
      const victim = Number(readFileSync(marker, "utf8"));
      process.kill(victim, "SIGKILL");
      const answeredBy = await waitFor(call, { timeoutMs: 20_000, message: "the re-dispatched call to answer" });
      expect(answeredBy).not.toBe(victim);
      // The supervisor starts a new instance in the dead one's place.
      await waitFor(async () => (await pythonDealersOf(client)).length === 2, { timeoutMs: 20_000, message: "the replacement instance" });
      expect(dealers.stderr).toContain("exited with SIGKILL; restarting it");
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);

  test("a Python method holding the GIL in native code longer than the heartbeat timeout: its dealer stays registered", async () => {
    // heartbeatTimeout 2 s: the router drops a dealer silent for 2 s. The method holds the GIL 5 s in one C call.
    const router = await cluster.router({ heartbeatTimeout: 2 });
    const dealers = startPythonDealers(router.address, ["--max-concurrent", "2"]);
    const client = await cluster.client({ timeout: 30 });
    const [before] = await untilRegistered(client, 1, dealers);
    const held = (await client.invoke("PyService.hold_gil", 5)) as { longest_gap: number };
    // Another Python thread could not run for the whole hold: the GIL really was held (so a heartbeat thread would have been silent).
    expect(held.longest_gap).toBeGreaterThan(4.5);
    const [after] = await pythonDealersOf(client);
    expect(after?.id).toBe(before.id);
    expect(after?.counts.dispatched).toBe(before.counts.dispatched + 1);
    expect(dealers.stderr).not.toContain("lost the router");
  }, 60_000);

  test("a router restart: the Python dealer registers again by itself and serves", async () => {
    let router = new ServiceRouter({ address: uniqueEndpoint("tcp"), logger: silentLogger, shutdownGrace: 0.2 });
    await router.start();
    // The same port again after the restart (the first one was picked by the OS).
    const address = router.address;
    try {
      const dealers = startPythonDealers(address);
      const first = new ClientDealer({ routerAddress: address, logger: silentLogger, timeout: 10 });
      await first.connect();
      await untilRegistered(first, 1, dealers);
      await first.close();
      await router.stop();
      router = new ServiceRouter({ address, logger: silentLogger, shutdownGrace: 0.2 });
      await router.start();
      const second = new ClientDealer({ routerAddress: address, logger: silentLogger, timeout: 10 });
      try {
        await second.connect();
        await untilRegistered(second, 1, dealers);
        expect(await second.invoke("PyService.echo", "again")).toBe("again");
        expect(dealers.stderr).toContain("reconnected to the router after");
      } finally {
        await second.close();
      }
    } finally {
      await router.stop();
    }
  }, 60_000);

  test("SIGTERM drains: the running call finishes, the dealer leaves, the process exits 0", async () => {
    const router = await cluster.router();
    const dealers = startPythonDealers(router.address);
    const client = await cluster.client();
    await untilRegistered(client, 1, dealers);
    const call = client.invoke("PyService.sleep", 1);
    await waitFor(async () => (await pythonDealersOf(client))[0]?.load === 1, { timeoutMs: 10_000, message: "the call to be running" });
    dealers.signal("SIGTERM");
    expect(await call).toBe(1);
    expect(await waitFor(dealers.exited, { timeoutMs: 10_000, message: "the dealer to exit" })).toBe(0);
    expect(await pythonDealersOf(client)).toEqual([]);
    expect(dealers.stderr).toContain("dealer shutdown complete");
  }, 60_000);

  test("a revoke with terminate ends a Python process whose method ignores its cancellation (TERMINATE on the BEAT connection)", async () => {
    const router = await cluster.router({ taskStore: "memory" });
    const dealers = startPythonDealers(router.address, ["--module", "stubborn_service"]);
    const client = await cluster.client();
    await waitFor(async () => (await client.discoverClusters()).some((dealer) => dealer.service === "Stubborn"), {
      timeoutMs: 20_000,
      message: `Stubborn to register (stderr: ${dealers.stderr})`,
    });
    const scratch = mkdtempSync(join(tmpdir(), "voidrail-py-terminate-"));
    try {
      const marker = join(scratch, "pid");
      const task = await client.submit("Stubborn.ignore_cancel", [marker]);
      await waitFor(
        () => {
          try {
            return readFileSync(marker, "utf8").length > 0;
          } catch {
            return false;
          }
        },
        { timeoutMs: 10_000, message: "the attempt to start" },
      );
      expect(Number(readFileSync(marker, "utf8"))).toBe(dealers.process.pid!);
      expect((await client.revokeTask(task.id, { terminate: true })).state).toBe("revoked");
      // CANCEL, then after the router's 1 s grace TERMINATE: the process ends by SIGKILL long before the method's minute.
      await waitFor(dealers.exited, { timeoutMs: 15_000, message: `the terminated dealer to exit (stderr: ${dealers.stderr})` });
      expect(dealers.process.signalCode).toBe("SIGKILL");
      expect(dealers.stderr).toContain("terminated by the router: Stubborn.ignore_cancel was revoked with terminate");
      expect((await client.getTask(task.id)).state).toBe("revoked");
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);

  test("setup(): registered in state setup, calls wait for READY, then served; teardown() after the drain; a failing setup() exits 78", async () => {
    const router = await cluster.router();
    const client = await cluster.client({ timeout: 30 });
    const scratch = mkdtempSync(join(tmpdir(), "voidrail-py-setup-"));
    try {
      const env = { SETUP_GATE: join(scratch, "gate"), TEARDOWN_MARK: join(scratch, "teardown") };
      const dealers = startPythonDealers(router.address, ["--module", "setup_service"], env);
      const loader = async () => (await client.discoverClusters()).find((dealer) => dealer.service === "Loader");
      await waitFor(async () => (await loader())?.state === "setup", {
        timeoutMs: 20_000,
        message: `Loader in setup (stderr: ${dealers.stderr})`,
      });
      // While it sets up, a call waits in the queue instead of failing with NO_SUCH_METHOD.
      const call = client.invoke("Loader.predict", 7);
      await waitFor(async () => (await client.getQueueStatus())["Loader.predict"]?.queueLength === 1, {
        timeoutMs: 10_000,
        message: "the call to wait in the queue",
      });
      writeFileSync(env.SETUP_GATE, "");
      expect(await call).toEqual({ model: "model from gate", x: 7 });
      expect((await loader())?.state).toBe("active");
      expect(dealers.stderr).toContain("setup() finished in");
      dealers.signal("SIGTERM");
      expect(await waitFor(dealers.exited, { timeoutMs: 10_000, message: "the dealer to drain and exit" })).toBe(0);
      expect(readFileSync(env.TEARDOWN_MARK, "utf8")).toBe("freed model from gate");

      const failing = startPythonDealers(router.address, ["--module", "setup_service"], { ...env, SETUP_FAIL: "1" });
      expect(await waitFor(failing.exited, { timeoutMs: 20_000, message: "the failing setup to exit" })).toBe(78);
      expect(failing.stderr).toContain("Loader setup() failed: RuntimeError: no model file");
      expect(await loader()).toBeUndefined();
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);

  test("an operator's drain at the router (DRAIN router → dealer): that instance leaves and is not restarted; all drained, the supervisor exits 0", async () => {
    const router = await cluster.router();
    const dealers = startPythonDealers(router.address, ["--instances", "2"]);
    const client = await cluster.client();
    const [first, second] = await untilRegistered(client, 2, dealers);
    expect(await client.drainDealer(first.id)).toEqual({ dealerId: first.id, draining: true });
    await waitFor(() => dealers.stderr.includes("was drained and exited; not restarting it"), {
      timeoutMs: 15_000,
      message: `the drained instance to exit (stderr: ${dealers.stderr})`,
    });
    expect((await pythonDealersOf(client)).map((dealer) => dealer.id)).toEqual([second.id]);
    expect(await client.invoke("PyService.echo", "still served")).toBe("still served");
    await client.drainDealer(second.id);
    expect(await waitFor(dealers.exited, { timeoutMs: 15_000, message: "the supervisor to exit once all are drained" })).toBe(0);
    expect(dealers.stderr).toContain("drained by the router; dealer shutdown complete");
    expect(await pythonDealersOf(client)).toEqual([]);
  }, 60_000);

  test("no router: exits 78 after --start-timeout, saying why; SIGTERM while it waits exits 0 at once", async () => {
    const alone = startPythonDealers(uniqueEndpoint("ipc"), ["--start-timeout", "0.5"]);
    expect(await waitFor(alone.exited, { timeoutMs: 15_000, message: "the dealer to give up" })).toBe(78);
    expect(alone.stderr).toContain("could not register with the router at ipc://");
    const waiting = startPythonDealers(uniqueEndpoint("ipc"), ["--start-timeout", "60"]);
    // Its signal handlers are in place before it starts connecting, which it logs.
    await waitFor(() => waiting.stderr.includes("PyService connecting to ipc://"), { timeoutMs: 10_000, message: "the dealer to connect" });
    waiting.signal("SIGTERM");
    expect(await waitFor(waiting.exited, { timeoutMs: 10_000, message: "the waiting dealer to exit" })).toBe(0);
  }, 60_000);

  test("the README's Python service (From Python and FastAPI) runs as given, two instances, and serves", async () => {
    const readme = readFileSync(join(PYTHON_PACKAGE, "..", "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## From Python and FastAPI"), readme.indexOf("## Command line"));
    const service = /```python\n(# my_service\.py\n[\s\S]*?)```/.exec(section)?.[1];
    const command = /```sh\n(python -m voidrail dealer [^\n]*)\n```/.exec(section)?.[1];
    expect(service).toBeDefined();
    expect(command).toBe("python -m voidrail dealer --module my_service --instances 2 --address tcp://127.0.0.1:5555");
    const scratch = mkdtempSync(join(tmpdir(), "voidrail-readme-py-"));
    try {
      writeFileSync(join(scratch, "my_service.py"), service!);
      const router = await cluster.router();
      const args = command!
        .split(" ")
        .slice(3)
        .map((word) => (word === "tcp://127.0.0.1:5555" ? router.address : word));
      const child = new PythonDealers(router.address, [], {}, { cwd: scratch, args });
      running.push(child);
      const client = await cluster.client();
      await waitFor(async () => (await client.discoverClusters()).filter((dealer) => dealer.service === "Vision").length === 2, {
        timeoutMs: 20_000,
        message: `two Vision instances (stderr: ${child.stderr})`,
      });
      expect(await client.invoke("Vision.bright", new Uint8Array([0, 201, 255, 100]))).toBe(2);
      const frames: unknown[] = [];
      for await (const frame of client.stream("Vision.frames", 3)) frames.push(frame);
      expect(frames).toEqual([0, 1, 2]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);

  test("usage errors exit 2 with one line: a missing module, an unknown class, a bad --instances", async () => {
    for (const [args, message] of [
      [["--module", "no_such_module_here"], "no such module"],
      [["--module", "peer_service", "--class", "Nope"], "--class Nope: not a ServiceDealer class"],
      [["--module", "peer_service", "--instances", "zero"], '--instances must be a whole number, got "zero"'],
      [["--module", "peer_service", "--address", "http://x"], "--address must look like tcp://host:port"],
    ] as const) {
      const child = spawn(PYTHON, ["-m", "voidrail", "dealer", ...args], {
        cwd: join(PYTHON_PACKAGE, "tests"),
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, PYTHONPATH: PYTHON_PACKAGE },
      });
      let stderr = "";
      child.stderr!.on("data", (chunk) => (stderr += chunk));
      const code = await waitFor(new Promise((resolve) => child.once("exit", resolve)), { timeoutMs: 10_000, message: args.join(" ") });
      expect(code).toBe(2);
      expect(stderr).toContain(message);
    }
  }, 60_000);
});

describe("python -m voidrail dealer with CURVE flags and --tag, against a TypeScript CURVE router", () => {
  const cluster = new Cluster(CURVE_TCP);
  afterEach(async () => {
    for (const dealers of running.splice(0)) await dealers.stop();
    await cluster.dispose();
  });

  test("--curve-server-key and --curve-secret-key-file register 2 instances (the secret in their environment, not argv); --tag reaches require", async () => {
    const keys = cluster.curve!;
    const router = await cluster.router({ curveAllow: { dealers: [keys.dealer.publicKey], clients: [keys.client.publicKey] } });
    const scratch = mkdtempSync(join(tmpdir(), "voidrail-py-curve-"));
    try {
      const secretFile = join(scratch, "dealer.secret");
      writeFileSync(secretFile, `${keys.dealer.secretKey}\n`, { mode: 0o600 });
      const args = [
        "--instances",
        "2",
        "--curve-server-key",
        keys.router.publicKey,
        "--curve-secret-key-file",
        secretFile,
        "--tag",
        "gpu=h200",
      ];
      const dealers = startPythonDealers(router.address, args);
      const client = await cluster.client();
      const registered = await untilRegistered(client, 2, dealers);
      for (const dealer of registered) {
        expect(dealer.tags).toEqual({ gpu: "h200" });
        expect(dealer.publicKey).toBe(keys.dealer.publicKey);
        // The children got the secret key in their environment; no command line holds it.
        const pid = Number(String(dealer.instanceId).split(":").at(-1));
        expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).not.toContain(keys.dealer.secretKey);
        expect(readFileSync(`/proc/${pid}/environ`, "utf8")).toContain(`VOIDRAIL_CURVE_SECRET_KEY=${keys.dealer.secretKey}`);
      }
      expect(await client.call("PyService.echo", ["tagged"], { require: { gpu: "h200" } })).toBe("tagged");
      expect(await client.call("PyService.echo", ["x"], { require: { gpu: "a100" } }).catch((error) => error)).toMatchObject({
        code: "NO_SUCH_METHOD",
      });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);

  test("a dealer key on no list exits 78 at once saying the router refused its CURVE key; an unreadable key file exits 2", async () => {
    const keys = cluster.curve!;
    const router = await cluster.router({ curveAllow: { dealers: [keys.dealer.publicKey], clients: [keys.client.publicKey] } });
    const scratch = mkdtempSync(join(tmpdir(), "voidrail-py-curve-"));
    try {
      const strangerFile = join(scratch, "stranger.secret");
      writeFileSync(strangerFile, `# not on the list\n${curveKeyPair().secretKey}\n`, { mode: 0o600 });
      // start-timeout 30: the refusal, not the timeout, ends it.
      const refused = startPythonDealers(router.address, [
        "--curve-server-key",
        keys.router.publicKey,
        "--curve-secret-key-file",
        strangerFile,
      ]);
      expect(await waitFor(refused.exited, { timeoutMs: 20_000, message: "the refused dealer to exit" })).toBe(78);
      expect(refused.stderr).toContain("refused this dealer's CURVE key");
      const badFile = join(scratch, "bad.secret");
      writeFileSync(badFile, "not a key\n");
      for (const [args, message] of [
        [["--curve-server-key", keys.router.publicKey, "--curve-secret-key-file", badFile], "does not hold one CURVE secret key"],
        [
          ["--curve-server-key", keys.router.publicKey, "--curve-secret-key-file", join(scratch, "missing")],
          "cannot read --curve-secret-key-file",
        ],
        [["--curve-server-key", "short"], "--curve-server-key must be a CURVE public key"],
        [["--tag", "gpu"], "--tag takes NAME=VALUE"],
      ] as const) {
        const child = startPythonDealers(router.address, [...args]);
        expect(await waitFor(child.exited, { timeoutMs: 10_000, message: args.join(" ") })).toBe(2);
        expect(child.stderr).toContain(message);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 60_000);
});
