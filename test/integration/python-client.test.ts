/**
 * examples/python/client.py, a VoidRail client written from docs/PROTOCOL.md with pyzmq, run by
 * Debian's /usr/bin/python3 against a real router and services started in this process.
 *
 *   ./node_modules/.bin/bun test test/integration/python-client.test.ts
 *
 * Needs python3-zmq (apt-get install python3-zmq; .ci/run installs it). Without it these tests
 * fail and say so: they are never skipped.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { EchoService, FailingService, InheritingService, PlainService } from "../fixtures/services.ts";
import { Cluster, ROOT, TRANSPORTS } from "../helpers/cluster.ts";
import { uniqueEndpoint } from "../helpers/wait.ts";

const PYTHON = "/usr/bin/python3";
const CLIENT = join(ROOT, "examples/python/client.py");
/** Deadline for one run of the Python client; it normally takes well under a second. */
const RUN_TIMEOUT_MS = 20_000;

interface Run {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed: one JSON object per line. */
  records: Record<string, unknown>[];
}

/** Runs `command`, collecting its output; kills it and rejects at the deadline. */
async function run(command: string[], timeoutMs = RUN_TIMEOUT_MS): Promise<Omit<Run, "records">> {
  const child = Bun.spawn(command, {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`Timed out after ${timeoutMs} ms waiting for: ${command.join(" ")} to exit`));
    }, timeoutMs);
  });
  try {
    const [stdout, stderr, exitCode] = await Promise.race([
      Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]),
      deadline,
    ]);
    return { exitCode, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

let pyzmqCheck: Promise<void> | undefined;

/** Fails (never skips) when Debian's python3 cannot import zmq, saying what to install. */
function requirePyzmq(): Promise<void> {
  pyzmqCheck ??= run([PYTHON, "-c", "import zmq"]).then(
    ({ exitCode, stderr }) => {
      if (exitCode !== 0) {
        throw new Error(
          `${PYTHON} cannot import zmq: install python3-zmq (apt-get install python3-zmq; .ci/run installs it). ${stderr.trim().split("\n").at(-1)}`,
        );
      }
    },
    (error: Error) => {
      throw new Error(`${PYTHON} could not be run (${error.message}): install python3 and python3-zmq (.ci/run installs python3-zmq)`);
    },
  );
  return pyzmqCheck;
}

/** Runs examples/python/client.py against `address` with extra arguments. */
async function pythonClient(address: string, ...args: string[]): Promise<Run> {
  await requirePyzmq();
  const result = await run([PYTHON, CLIENT, address, "--timeout", "10", ...args]);
  const lines = result.stdout.split("\n").filter((line) => line.trim() !== "");
  const records = lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`client.py printed a line that is not JSON: ${line}\nstderr: ${result.stderr}`);
    }
  });
  return { ...result, records };
}

/** Fails with the client's own output when it did not exit as expected. */
function expectExit(result: Run, code: number): void {
  if (result.exitCode !== code) {
    throw new Error(`client.py exited with ${result.exitCode}, expected ${code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

const DEMO_OPS = ["invoke", "invoke", "stream", "discover_services", "router_info", "queue_status"];

function expectDemo(records: Record<string, unknown>[], address: string): void {
  expect(records.slice(0, DEMO_OPS.length).map((record) => record.op)).toEqual(DEMO_OPS);
  const [echo, add, stream, discovery, routerInfo, queues] = records;
  expect(echo).toEqual({ op: "invoke", method: "EchoService.echo", result: "Hello from Python" });
  expect(add).toEqual({ op: "invoke", method: "EchoService.add", result: 8 });
  // The client streams with a window of 2, so this only completes if its CREDITs reach the dealer.
  expect(stream).toEqual({ op: "stream", method: "EchoService.streamNumbers", result: [0, 1, 2, 3, 4] });

  const services = discovery.result as Record<string, { stream: boolean; instances: number; description?: string }>;
  expect(Object.keys(services)).toEqual(
    expect.arrayContaining(["EchoService.echo", "EchoService.add", "EchoService.streamNumbers", "FailingService.explode"]),
  );
  expect(services["EchoService.echo"]).toMatchObject({ stream: false, instances: 1, description: "Returns its argument" });
  expect(services["EchoService.streamNumbers"]).toMatchObject({ stream: true, instances: 1 });

  expect(routerInfo.result).toMatchObject({ address, activeServices: 2, activeDealers: 2, queuedRequests: 0, inProgressRequests: 0 });
  expect((queues.result as Record<string, unknown>)["EchoService.echo"]).toEqual({ queueLength: 0, availableServices: 1, busyServices: 0 });
}

for (const transport of TRANSPORTS) {
  describe(`Python client (pyzmq) over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    async function start(): Promise<string> {
      const router = await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      await cluster.dealer((options) => new FailingService(options));
      return router.address;
    }

    test("invokes, streams with credit, and reads discovery and monitoring", async () => {
      const address = await start();
      const result = await pythonClient(address);
      expectExit(result, 0);
      expect(result.stderr).toBe("");
      expect(result.records).toHaveLength(DEMO_OPS.length);
      expectDemo(result.records, address);
    });

    test("rebuilds errors from their codes: REMOTE_ERROR with the original message, NO_SUCH_METHOD, VALIDATION_ERROR", async () => {
      const address = await start();
      const result = await pythonClient(
        address,
        ...["--call", "FailingService.explode", JSON.stringify("widget")],
        ...["--call", "Nope.nothing"],
        ...["--call", "EchoService.add", "1", JSON.stringify("two")],
        ...["--call", "EchoService.echo", JSON.stringify({ still: "working" })],
      );
      expectExit(result, 0);
      // With --call and no --demo, only the calls run.
      expect(result.records).toHaveLength(4);
      const [explode, unknown, invalid, echo] = result.records;

      expect(explode).toMatchObject({
        op: "invoke",
        method: "FailingService.explode",
        error: {
          code: "REMOTE_ERROR",
          message: "widget is out of stock",
          data: { name: "InventoryError", message: "widget is out of stock" },
        },
      });
      expect(unknown).toMatchObject({ method: "Nope.nothing", error: { code: "NO_SUCH_METHOD", data: { method: "Nope.nothing" } } });
      expect(invalid).toMatchObject({ method: "EchoService.add", error: { code: "VALIDATION_ERROR", data: { path: "args.1" } } });
      // The connection is fine after failed calls.
      expect(echo).toEqual({ op: "invoke", method: "EchoService.echo", result: { still: "working" } });
    });

    test("--demo runs the demo, then the calls", async () => {
      const address = await start();
      const result = await pythonClient(address, "--demo", "--call", "EchoService.add", "2", "3");
      expectExit(result, 0);
      expectDemo(result.records, address);
      expect(result.records.slice(DEMO_OPS.length)).toEqual([{ op: "invoke", method: "EchoService.add", result: 5 }]);
    });
  });
}

describe("Python client (pyzmq) --call against a router without EchoService", () => {
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());

  test("--call Service.method --args JSON works on its own, as voidrail client --args reads it", async () => {
    const router = await cluster.router();
    await cluster.dealer((options) => new InheritingService(options));
    await cluster.dealer((options) => new PlainService(options));
    const result = await pythonClient(
      router.address,
      ...["--call", "InheritingService.hello", "--args", JSON.stringify("Ada")],
      ...["--call", "PlainService.double", "--args", "21"],
      ...["--call", "InheritingService.extra"],
      // An array is the argument list, as for voidrail client: one argument that is an array needs [[...]].
      ...["--call", "InheritingService.hello", "--args", JSON.stringify([["a", "b"]])],
      ...["--call", "PlainService.double", "4"],
    );
    expectExit(result, 0);
    expect(result.stderr).toBe("");
    expect(result.records).toEqual([
      { op: "invoke", method: "InheritingService.hello", result: "hello Ada from child" },
      { op: "invoke", method: "PlainService.double", result: 42 },
      { op: "invoke", method: "InheritingService.extra", result: "extra" },
      { op: "invoke", method: "InheritingService.hello", result: "hello a,b from child" },
      { op: "invoke", method: "PlainService.double", result: 8 },
    ]);
  });

  test("usage mistakes with --args: argparse's usage and the reason, exit 2", async () => {
    const router = await cluster.router();
    for (const [args, message] of [
      [["--args", "1"], "--args goes after the --call it is for"],
      [["--call", "PlainService.double", "1", "--args", "2"], "PlainService.double already has its arguments"],
      [["--call", "PlainService.double", "--args", "two"], "--args is not JSON"],
    ] as const) {
      const result = await pythonClient(router.address, ...args);
      expectExit(result, 2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain(message);
    }
  });
});

describe("Python client (pyzmq) with client authentication", () => {
  const KEY = "client_python-test-key";
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());

  async function start(): Promise<string> {
    const router = await cluster.router({ clientApiKeys: [KEY] });
    await cluster.dealer((options) => new EchoService(options));
    await cluster.dealer((options) => new FailingService(options));
    return router.address;
  }

  test("the right key is welcomed and its calls work", async () => {
    const address = await start();
    const result = await pythonClient(address, "--api-key", KEY);
    expectExit(result, 0);
    expectDemo(result.records, address);
    expect(result.records[4].result).toMatchObject({ requireClientAuth: true, requireDealerAuth: false });
  });

  test("a wrong key, or none, fails the HELLO with AUTH_FAILED and a one-line error", async () => {
    const address = await start();
    for (const keyArgs of [["--api-key", "client_wrong"], []]) {
      const result = await pythonClient(address, ...keyArgs);
      expectExit(result, 1);
      expect(result.records).toEqual([]);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(result.stderr).toStartWith("client.py: AUTH_FAILED: ");
      expect(result.stderr).toContain(`{"reason":"BAD_KEY"}`);
    }
  });
});

describe("Python client (pyzmq) without a router", () => {
  test("gives up on the HELLO at its timeout, with a one-line TIMEOUT error", async () => {
    await requirePyzmq();
    // Nobody listens on a fresh ipc path: the DEALER keeps retrying, the client's poller times out.
    const result = await run([PYTHON, CLIENT, uniqueEndpoint("ipc"), "--timeout", "0.3"]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toStartWith("client.py: TIMEOUT: no WELCOME from ipc://");
  });
});
