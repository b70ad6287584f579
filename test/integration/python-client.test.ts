/**
 * examples/python/client.py, a command-line client that is a thin example on the Python package
 * (python/voidrail, on pyzmq), run by Debian's /usr/bin/python3 against a real router and services
 * started in this process.
 *
 *   ./node_modules/.bin/bun test test/integration/python-client.test.ts
 *
 * Needs python3-zmq (apt-get install python3-zmq; .ci/run installs it). Without it these tests
 * fail and say so: they are never skipped.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { decodeMessage, encodeMessage } from "../../src/protocol/index.ts";
import { Router } from "../../src/zmtp/index.ts";
import { EchoService, FailingService, InheritingService, PlainService, Probe, ProgressService } from "../fixtures/services.ts";
import { Cluster, ROOT, TRANSPORTS } from "../helpers/cluster.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

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

/** A client.py still running: its JSON lines arrive in `records` as it prints them. */
interface LiveRun {
  records: Record<string, unknown>[];
  /** Resolves once at least `count` lines have arrived; fails at the deadline with what came so far. */
  untilRecords(count: number, what: string): Promise<void>;
  /** The whole run, once the process has exited. */
  done: Promise<Run>;
}

/** Starts examples/python/client.py against `address` and reads its lines as they come. */
async function startPythonClient(address: string, ...args: string[]): Promise<LiveRun> {
  await requirePyzmq();
  const command = [PYTHON, CLIENT, address, "--timeout", "10", ...args];
  const child = Bun.spawn(command, {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  const records: Record<string, unknown>[] = [];
  let stdout = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stdout) {
      const text = decoder.decode(chunk, { stream: true });
      stdout += text;
      pending += text;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() !== "") records.push(JSON.parse(line) as Record<string, unknown>);
      }
    }
  })();
  const stderr = new Response(child.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = (async () => {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`Timed out after ${RUN_TIMEOUT_MS} ms waiting for: ${command.join(" ")} to exit`));
      }, RUN_TIMEOUT_MS);
    });
    try {
      const [exitCode] = await Promise.race([Promise.all([child.exited, reading]), deadline]);
      return { exitCode, stdout, stderr: await stderr, records };
    } finally {
      clearTimeout(timer);
    }
  })();
  return {
    records,
    untilRecords: (count, what) =>
      waitFor(() => records.length >= count, { timeoutMs: RUN_TIMEOUT_MS, message: `client.py to print ${what} (so far: ${stdout})` }),
    done,
  };
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

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** A well-formed task id that no router has handed out. */
const UNKNOWN_TASK_ID = "01900000-0000-7000-8000-000000000000";

/** A field of a printed record, as the object it is. */
function field(record: Record<string, unknown>, name: string): Record<string, unknown> {
  return record[name] as Record<string, unknown>;
}

describe("Python client (pyzmq) background tasks (protocol revision 2)", () => {
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());
  let probe: Probe;

  async function start(): Promise<string> {
    const router = await cluster.router({ taskStore: "memory" });
    probe = new Probe();
    await cluster.dealer((options) => new EchoService(options));
    await cluster.dealer((options) => new FailingService(options));
    await cluster.dealer((options) => new ProgressService(options, probe));
    return router.address;
  }

  test("submit prints the task id; wait_task gives the result; get_task and list_tasks show the finished task", async () => {
    const address = await start();
    const result = await pythonClient(
      address,
      ...["--submit", "EchoService.add", "2", "3", "--priority", "7"],
      ...["--wait-task", "last", "--get-task", "last"],
      ...["--list-tasks", "--state", "succeeded", "--method", "EchoService.add"],
    );
    expectExit(result, 0);
    expect(result.stderr).toBe("");
    expect(result.records.map((record) => record.op)).toEqual(["submit", "wait_task", "get_task", "list_tasks"]);
    const [submitted, waited, got, listed] = result.records;
    expect(submitted).toMatchObject({ op: "submit", method: "EchoService.add", result: expect.stringMatching(TASK_ID) });
    const id = submitted.result as string;
    expect(waited).toEqual({ op: "wait_task", task: id, result: 5 });

    const task = field(got, "result");
    expect(task).toMatchObject({ id, method: "EchoService.add", state: "succeeded", priority: 7, attempts: 1, lostAttempts: 0, result: 5 });
    const times = ["createdAt", "startedAt", "finishedAt"].map((name) => Date.parse(task[name] as string));
    expect(times.every(Number.isFinite)).toBe(true);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(task.error).toBeUndefined();

    const page = field(listed, "result") as { tasks: { id: string; state: string }[] };
    expect(page.tasks.map((listedTask) => listedTask.id)).toEqual([id]);
  });

  test("a task that fails: wait_task raises its error rebuilt by code, get_task keeps it", async () => {
    const address = await start();
    const result = await pythonClient(
      address,
      "--submit",
      "FailingService.explode",
      JSON.stringify("widget"),
      "--wait-task",
      "last",
      "--get-task",
      "last",
    );
    expectExit(result, 0);
    const [submitted, waited, got] = result.records;
    const id = submitted.result as string;
    expect(waited).toMatchObject({
      op: "wait_task",
      task: id,
      error: {
        code: "REMOTE_ERROR",
        class: "RemoteError",
        message: "widget is out of stock",
        data: { name: "InventoryError", message: "widget is out of stock" },
      },
    });
    expect(field(got, "result")).toMatchObject({
      id,
      state: "failed",
      attempts: 1,
      error: { code: "REMOTE_ERROR", message: "widget is out of stock" },
    });
  });

  test("unknown ids are TASK_NOT_FOUND, malformed ones are refused before sending, bad options name their field", async () => {
    const address = await start();
    const result = await pythonClient(
      address,
      ...["--get-task", UNKNOWN_TASK_ID, "--wait-task", UNKNOWN_TASK_ID, "--watch-task", UNKNOWN_TASK_ID, "--revoke-task", UNKNOWN_TASK_ID],
      ...["--get-task", "not-a-task-id"],
      // Checked by the Python client: nothing is sent.
      ...["--submit", "EchoService.add", "1", "2", "--priority", "12"],
      // Checked by the router.
      ...["--submit", "Nope.nothing"],
      ...["--submit", "EchoService.add", "1", "2", "--eta", "2020-01-01T00:00:00Z"],
      // `last` after a failed submit names no task rather than an older one.
      ...["--wait-task", "last"],
    );
    expectExit(result, 0);
    expect(result.records).toHaveLength(9);
    const notFound = { code: "TASK_NOT_FOUND", class: "TaskNotFoundError", data: { taskId: UNKNOWN_TASK_ID } };
    expect(result.records.slice(0, 4)).toEqual(
      ["get_task", "wait_task", "watch_task", "revoke_task"].map((op) => ({
        op,
        task: UNKNOWN_TASK_ID,
        error: expect.objectContaining(notFound),
      })),
    );
    const [malformed, priority, noMethod, pastEta, last] = result.records.slice(4);
    expect(malformed).toMatchObject({
      op: "get_task",
      error: { code: "VALIDATION_ERROR", class: "ValidationError", data: { path: "taskId" } },
    });
    expect(priority).toMatchObject({ op: "submit", error: { code: "VALIDATION_ERROR", data: { path: "options.priority" } } });
    expect(field(priority, "error").message).toContain("priority must be an integer from 0 to 9");
    expect(noMethod).toMatchObject({
      op: "submit",
      error: { code: "NO_SUCH_METHOD", class: "NoSuchMethodError", data: { method: "Nope.nothing" } },
    });
    expect(pastEta).toMatchObject({ op: "submit", error: { code: "VALIDATION_ERROR", data: { path: "eta" } } });
    expect(last).toMatchObject({ op: "wait_task", error: { code: "VALIDATION_ERROR" } });
    // None of the refused submits was stored.
    const listed = await pythonClient(address, "--list-tasks");
    expect(listed.records).toEqual([{ op: "list_tasks", result: { tasks: [] } }]);
  });

  test("watch_task prints the events as they happen, progress included, ending at succeeded", async () => {
    const address = await start();
    const submitted = await pythonClient(address, "--submit", "ProgressService.steps", "--args", "1");
    expectExit(submitted, 0);
    const id = submitted.records[0].result as string;
    expect(id).toMatch(TASK_ID);
    await waitFor(() => probe.events.includes(`start:${id}`), { timeoutMs: 10_000, message: "the task to start on its dealer" });

    const watching = await startPythonClient(address, "--watch-task", id, "--get-task", id);
    await watching.untilRecords(1, "the watch's first event");
    // The method is held until now, so the watch must see it running, then its progress, then the end.
    expect(watching.records[0]).toMatchObject({ op: "watch_task", task: id, event: { state: "running" } });
    probe.gate.open();
    const result = await watching.done;
    expectExit(result, 0);
    expect(result.stderr).toBe("");

    const events = result.records.filter((record) => record.event !== undefined).map((record) => field(record, "event"));
    expect(events.at(-1)).toMatchObject({ state: "succeeded" });
    expect(events.slice(0, -1).every((event) => event.state === "running")).toBe(true);
    expect(events).toContainEqual(expect.objectContaining({ state: "running", progress: { current: 1, total: 1 } }));
    expect(events.every((event) => Number.isFinite(Date.parse(event.at as string)))).toBe(true);
    const [end, got] = result.records.slice(events.length);
    expect(end).toEqual({ op: "watch_task", task: id, end: true });
    expect(field(got, "result")).toMatchObject({ id, state: "succeeded", progress: { current: 1, total: 1 }, result: { done: 1 } });
  });

  test("countdown and expires go from seconds to milliseconds; revoking a scheduled task ends it revoked, and it never runs", async () => {
    const address = await start();
    const result = await pythonClient(
      address,
      ...["--submit", "ProgressService.steps", "1", "--countdown", "3600", "--expires", "7200.5"],
      ...["--get-task", "last", "--revoke-task", "last", "--wait-task", "last", "--watch-task", "last"],
      ...["--list-tasks", "--state", "revoked"],
    );
    expectExit(result, 0);
    const [submitted, got, revoked, waited, event, end, listed] = result.records;
    const id = submitted.result as string;
    expect(submitted).toMatchObject({ op: "submit", state: "scheduled" });
    const scheduled = field(got, "result");
    expect(scheduled).toMatchObject({ id, state: "scheduled", attempts: 0 });
    // 3600 s on the command line is 3 600 000 ms on the wire; fractions of a second are kept.
    const created = Date.parse(scheduled.createdAt as string);
    expect(Date.parse(scheduled.runAt as string) - created).toBe(3_600_000);
    expect(Date.parse(scheduled.expiresAt as string) - created).toBe(7_200_500);
    expect(field(revoked, "result")).toMatchObject({ id, state: "revoked", attempts: 0, error: { code: "CANCELLED" } });
    expect(waited).toMatchObject({ op: "wait_task", task: id, error: { code: "CANCELLED", class: "CancelledError" } });
    expect(event).toMatchObject({ op: "watch_task", task: id, event: { state: "revoked" } });
    expect(end).toEqual({ op: "watch_task", task: id, end: true });
    expect((field(listed, "result").tasks as { id: string }[]).map((task) => task.id)).toEqual([id]);
    expect(probe.events).toEqual([]);
  });

  test("wait_task gives up at its timeout with TIMEOUT (voidrail.TimeoutError, a Python TimeoutError) and the task goes on", async () => {
    const address = await start();
    const result = await pythonClient(address, "--submit", "ProgressService.steps", "1", "--wait-task", "last", "--wait-timeout", "0.2");
    expectExit(result, 0);
    const [submitted, waited] = result.records;
    expect(waited).toMatchObject({ op: "wait_task", task: submitted.result, error: { code: "TIMEOUT", class: "TimeoutError" } });
    // The task is held by the probe's gate: once the gate opens, another wait sees it succeed.
    await waitFor(() => probe.events.length === 1, { timeoutMs: 10_000, message: "the task to start on its dealer" });
    probe.gate.open();
    const later = await pythonClient(address, "--wait-task", submitted.result as string);
    expect(later.records).toEqual([{ op: "wait_task", task: submitted.result, result: { done: 1 } }]);
    // From the library: the timeout is a Python TimeoutError.
    const check = await run([
      PYTHON,
      "-c",
      "import sys; sys.path.insert(0, 'examples/python'); import client; print(issubclass(client.CallTimeoutError, TimeoutError))",
    ]);
    expect(check.stdout.trim()).toBe("True");
  });
});

describe("Python client (pyzmq) against a router of protocol revision 1", () => {
  test("announces revision 4 (the Python package's), and refuses SUBMIT and TASK where WELCOME says 1, sending neither", async () => {
    // A stand-in router that answers HELLO with revision 1 and every REQUEST with its method's name.
    const router = new Router({ logger: null });
    await router.bind(uniqueEndpoint("tcp"));
    const seen: { kind: string; header: Record<string, unknown> }[] = [];
    const serving = (async () => {
      for await (const [peer, ...frames] of router) {
        const message = decodeMessage(frames, "router");
        if (!message.ok) continue;
        seen.push({ kind: message.kind, header: message.header as Record<string, unknown> });
        if (message.kind === "HELLO") {
          await router.send([
            peer,
            ...encodeMessage("WELCOME", { role: "client", version: 1, heartbeatIntervalMs: 0, heartbeatTimeoutMs: 0 }),
          ]);
        } else if (message.kind === "REQUEST") {
          const { id, method } = message.header as { id: number; method: string };
          await router.send([peer, ...encodeMessage("RESULT", { id }, new TextEncoder().encode(JSON.stringify(method)))]);
        }
      }
    })();
    try {
      const result = await pythonClient(
        router.lastEndpoint!,
        ...["--submit", "EchoService.add", "1", "2", "--get-task", UNKNOWN_TASK_ID, "--list-tasks"],
        ...["--call", "EchoService.echo", JSON.stringify("still here")],
      );
      expectExit(result, 0);
      const refused = { code: "UNSUPPORTED_REVISION", class: "RevisionError", data: { needed: 2, version: 1 } };
      expect(result.records).toEqual([
        { op: "submit", method: "EchoService.add", error: expect.objectContaining(refused) },
        { op: "get_task", task: UNKNOWN_TASK_ID, error: expect.objectContaining(refused) },
        { op: "list_tasks", error: expect.objectContaining(refused) },
        { op: "invoke", method: "EchoService.echo", result: "EchoService.echo" },
      ]);
      expect(field(result.records[0], "error").message).toContain("needs protocol revision 2");
      // The REQUEST came after the refused verbs on the same connection, so they would have arrived before it.
      expect(seen.map((message) => message.kind)).toEqual(["HELLO", "REQUEST"]);
      expect(seen[0].header).toMatchObject({ role: "client", version: 4 });
    } finally {
      router.close();
      await serving.catch(() => undefined);
    }
  });
});

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

  test("usage mistakes with --args and the task flags: argparse's usage and the reason, exit 2", async () => {
    const router = await cluster.router();
    for (const [args, message] of [
      [["--args", "1"], "--args goes after the --call or --submit it is for"],
      [["--get-task", UNKNOWN_TASK_ID, "--args", "1"], "--args goes after the --call or --submit it is for"],
      [["--priority", "3"], "--priority goes after the --submit it is for"],
      [["--call", "PlainService.double", "1", "--countdown", "5"], "--countdown goes after the --submit it is for"],
      [["--submit", "PlainService.double", "1", "--priority", "high"], "argument --priority: invalid int value: 'high'"],
      [["--submit", "PlainService.double", "1", "--retries", "1", "--retries", "2"], "--retries is given twice"],
      [["--wait-task", "last"], "--wait-task last needs a --submit before it"],
      [["--list-tasks", "--state", "done"], "argument --state: invalid choice: 'done'"],
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
