/**
 * Runs every `voidrail` line of the README's "Command line" section against the compiled binary,
 * word for word, and checks what the README says about it. Two substitutions keep runs apart:
 * port 5555 becomes a free port (VOIDRAIL_PORT carries it to the lines that rely on the default),
 * and ipc:///tmp/voidrail.sock becomes a unique socket path.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ReadmeCommands } from "../helpers/readme-commands.ts";
import {
  BINARY,
  type CliProcess,
  buildBinary,
  cleanEnv,
  expectOneLineError,
  freePort,
  killAll,
  runCli,
  spawnCli,
  uniqueIpcAddress,
} from "../helpers/voidrail-cli.ts";

const readme = new ReadmeCommands();
const README_IPC = "ipc:///tmp/voidrail.sock";

beforeAll(() => buildBinary(), 120_000);
afterAll(() => killAll());

/** Where one group of README lines runs: its own port and ipc path. */
interface Place {
  port: number;
  ipc: string;
}

async function newPlace(): Promise<Place> {
  return { port: await freePort(), ipc: uniqueIpcAddress() };
}

function resolveLine(line: string, place: Place) {
  const { env, args } = readme.get(line);
  return {
    args: args.map((arg) => (arg === "5555" ? String(place.port) : arg === README_IPC ? place.ipc : arg)),
    env: { VOIDRAIL_PORT: String(place.port), ...env },
  };
}

/** Runs a README line to completion. */
function run(line: string, place: Place, timeoutMs = 10_000) {
  const { args, env } = resolveLine(line, place);
  return runCli(args, { env, timeoutMs });
}

/** Runs a README line that must succeed, and returns its stdout. */
async function ok(line: string, place: Place): Promise<string> {
  const result = await run(line, place);
  if (result.code !== 0)
    throw new Error(`${line}\nexited ${result.code}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`);
  return result.stdout;
}

/** Starts a long-running README line (router, dealer, serve) and waits until it is ready. */
async function start(line: string, place: Place, ready: RegExp, count = 1): Promise<CliProcess> {
  const { args, env } = resolveLine(line, place);
  const child = spawnCli(args, { env });
  await child.waitForOutput(ready, { count, timeoutMs: 15_000 });
  return child;
}

/** SIGTERM, as Ctrl-C would: the process drains, says so, and exits 0. */
async function stop(child: CliProcess, says: string): Promise<void> {
  child.signal("SIGTERM");
  const code = await child.exited(10_000);
  if (code !== 0) throw new Error(`exited ${code} after SIGTERM\n${child.describe()}`);
  expect(child.stderr).toContain(says);
}

test("building: --version, --help, a command's --help", async () => {
  const place = await newPlace();
  expect(await ok("voidrail --version", place)).toMatch(/^\d+\.\d+\.\d+\n$/);
  expect(await ok("voidrail --help", place)).toContain("USAGE voidrail router|dealer|client|serve");
  expect(await ok("voidrail dealer --help", place)).toContain("--instances");
});

describe("a router, a dealer and the client on the defaults (port from VOIDRAIL_PORT)", () => {
  let place: Place;
  let router: CliProcess;
  let dealer: CliProcess;

  beforeAll(async () => {
    place = await newPlace();
    router = await start("voidrail router", place, new RegExp(`router listening on tcp://127\\.0\\.0\\.1:${place.port}`));
    dealer = await start("voidrail dealer --module examples/services.ts", place, /registered as EchoService-\d+/);
  });

  test("discovery: --list (JSON when piped, and with --json), --clusters, --router-info, --queue-status", async () => {
    for (const line of ["voidrail client --list", "voidrail client --list --json"]) {
      const services = JSON.parse(await ok(line, place));
      expect(Object.keys(services)).toEqual(
        expect.arrayContaining([
          "EchoService.echo",
          "EchoService.add",
          "EchoService.hello",
          "EchoService.streamNumbers",
          "EchoService.countPrimes",
        ]),
      );
      expect(services["EchoService.echo"]).toMatchObject({ description: "Returns its argument", stream: false, instances: 1 });
      expect(services["EchoService.streamNumbers"].stream).toBe(true);
    }
    const clusters = JSON.parse(await ok("voidrail client --clusters", place));
    expect(clusters).toHaveLength(1);
    expect(clusters[0]).toMatchObject({ service: "EchoService", state: "active", busy: false });
    expect(clusters[0].instanceId).toMatch(/^.+:\d+$/);
    const info = JSON.parse(await ok("voidrail client --router-info", place));
    expect(info).toMatchObject({
      mode: "fifo",
      address: `tcp://127.0.0.1:${place.port}`,
      activeServices: 1,
      activeDealers: 1,
      requireDealerAuth: false,
      requireClientAuth: false,
    });
    const queues = JSON.parse(await ok("voidrail client --queue-status", place));
    expect(queues["EchoService.echo"]).toEqual({ queueLength: 0, availableServices: 1, busyServices: 0 });
  });

  // util-linux `script` gives the client a terminal for stdout.
  test.skipIf(!Bun.which("script"))("on a terminal, --list and --queue-status print tables instead of JSON", async () => {
    const onTerminal = async (line: string) => {
      const { args, env } = resolveLine(line, place);
      const quoted = [BINARY, ...args].map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(" ");
      const child = Bun.spawn(["script", "-qec", quoted, "/dev/null"], {
        env: cleanEnv(env),
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
      expect(code).toBe(0);
      return stdout.replace(/\r/g, "");
    };
    const list = await onTerminal("voidrail client --list");
    expect(list).toMatch(/^method\s+kind\s+instances\s+description$/m);
    expect(list).toMatch(/^EchoService\.streamNumbers\s+stream\s+1\s+Streams the integers/m);
    expect(await onTerminal("voidrail client --queue-status")).toMatch(/^EchoService\.echo\s+0\s+1\s+0$/m);
  });

  test("the --args styles: a string, a number, an array of arguments, one object, nested JSON", async () => {
    expect(await ok(`voidrail client --call EchoService.echo --args '"Hello World"'`, place)).toBe('"Hello World"\n');
    expect(await ok(`voidrail client --call EchoService.echo --args '42'`, place)).toBe("42\n");
    expect(await ok(`voidrail client --call EchoService.add --args '[5, 3]'`, place)).toBe("8\n");
    expect(await ok(`voidrail client --call EchoService.hello --args '{"name":"John"}'`, place)).toBe('"Hello, John!"\n');
    const nested = { user: { name: "John", tags: ["a", "b"] }, scores: [1, [2, 3]] };
    expect(
      JSON.parse(
        await ok(`voidrail client --call EchoService.echo --args '{"user":{"name":"John","tags":["a","b"]},"scores":[1,[2,3]]}'`, place),
      ),
    ).toEqual(nested);
    expect(await ok(`voidrail client --call EchoService.echo --args '[[1, 2]]'`, place)).toBe("[1,2]\n");
  });

  test("a stream prints one JSON value per line; a long call with --timeout", async () => {
    expect(await ok(`voidrail client --call EchoService.streamNumbers --args '[0, 5]'`, place)).toBe("0\n1\n2\n3\n4\n");
    expect(JSON.parse(await ok("voidrail client --call EchoService.countPrimes --args 100000 --timeout 60", place))).toMatchObject({
      n: 100000,
      primes: 9592,
    });
  });

  test("failures: one line with the error's code, exit 1 (exit 2 for non-JSON --args)", async () => {
    expectOneLineError(
      await run("voidrail client --call EchoService.nope", place),
      /^voidrail: NO_SUCH_METHOD: no service offers EchoService\.nope$/,
    );
    expectOneLineError(
      await run(`voidrail client --call EchoService.add --args '["five", 3]'`, place),
      /^voidrail: VALIDATION_ERROR: args\.0: /,
    );
    expectOneLineError(
      await run(`voidrail client --call EchoService.asyncEcho --args '"slow"' --timeout 0.05`, place),
      /^voidrail: TIMEOUT: /,
    );
    const notJson = await run("voidrail client --call EchoService.echo --args John", place);
    expectOneLineError(notJson, /--args '"John"'/);
    expect(notJson.code).toBe(2);
    const notServiceMethod = await run("voidrail client --call echo", place);
    expectOneLineError(
      notServiceMethod,
      /^voidrail: --call "echo" is not a method name: expected Service\.method, e\.g\. EchoService\.echo$/,
    );
    expect(notServiceMethod.code).toBe(2);
  });

  test("auth off: a client with a key is served all the same", async () => {
    expect(
      (await runCli(["client", "--call", "EchoService.echo", "--args", '"keyed"', "--api-key", "anything", "--port", String(place.port)]))
        .stdout,
    ).toBe('"keyed"\n');
  });

  test("background tasks: submit prints an id; watch, status, wait, list and revoke work as shown", async () => {
    // The README's example id stands for the one submit printed.
    const README_TASK_ID = "0192f3c0-5e1a-7b2c-9d4e-8f0a1b2c3d4e";
    const runWith = async (line: string, id: string) => {
      const { args, env } = resolveLine(line, place);
      const result = await runCli(
        args.map((arg) => (arg === README_TASK_ID ? id : arg)),
        { env, timeoutMs: 60_000 },
      );
      if (result.code !== 0) throw new Error(`${line}\nexited ${result.code}\n${result.stdout}${result.stderr}`);
      return result.stdout;
    };
    const id = (await ok("voidrail task submit EchoService.countPrimesInSteps --args 300000 --priority 7 --retries 2", place)).trim();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const events = (await runWith("voidrail task watch 0192f3c0-5e1a-7b2c-9d4e-8f0a1b2c3d4e", id))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(events.at(-1).state).toBe("succeeded");
    const status = JSON.parse(await runWith("voidrail task status 0192f3c0-5e1a-7b2c-9d4e-8f0a1b2c3d4e", id));
    expect(status).toMatchObject({ id, state: "succeeded", priority: 7, attempts: 1, progress: { current: 10, total: 10 } });
    expect(JSON.parse(await runWith("voidrail task wait 0192f3c0-5e1a-7b2c-9d4e-8f0a1b2c3d4e --timeout 60", id))).toMatchObject({
      n: 300000,
      primes: 25997,
    });
    const list = JSON.parse(await ok("voidrail task list --state succeeded --limit 20", place));
    expect(list.tasks.map((t: { id: string }) => t.id)).toContain(id);
    const later = (
      await ok("voidrail task submit EchoService.add --args '[2, 3]' --countdown 600 --idempotency-key order-42", place)
    ).trim();
    expect(JSON.parse(await runWith("voidrail task revoke 0192f3c0-5e1a-7b2c-9d4e-8f0a1b2c3d4e", later)).state).toBe("revoked");
    // Revoking a finished task leaves it as it is.
    expect(JSON.parse(await runWith("voidrail task revoke 0192f3c0-5e1a-7b2c-9d4e-8f0a1b2c3d4e", id)).state).toBe("succeeded");
  }, 120_000);

  test("schedules: add (cron in a zone, an interval), list, pause", async () => {
    const daily = JSON.parse(
      await ok(
        `voidrail schedule add daily-report --cron "0 3 * * *" --timezone Europe/Berlin --method Report.generate --args '"daily"'`,
        place,
      ),
    );
    expect(daily).toMatchObject({ name: "daily-report", cron: "0 3 * * *", timezone: "Europe/Berlin", args: ["daily"] });
    const minute = JSON.parse(
      await ok(
        `voidrail schedule add every-minute --every 60 --method System.check --catch-up none --options '{"priority": 8, "expires": 50}'`,
        place,
      ),
    );
    expect(minute).toMatchObject({ every: 60, catchUp: "none", options: { priority: 8, expiresMs: 50_000 } });
    const names = JSON.parse(await ok("voidrail schedule list", place)).map((s: { name: string }) => s.name);
    expect(names).toEqual(expect.arrayContaining(["daily-report", "every-minute"]));
    expect(JSON.parse(await ok("voidrail schedule pause daily-report", place)).paused).toBe(true);
    for (const name of ["daily-report", "every-minute"]) await runCli(["schedule", "remove", name, "--port", String(place.port)]);
  });

  test("SIGTERM stops the dealer, then the router, each with exit 0 and a last word", async () => {
    await stop(dealer, "voidrail: dealer shutdown complete");
    await stop(router, "voidrail: router shutdown complete");
  });
});

test("router --host 0.0.0.0 --port --mode load_balance --heartbeat-timeout", async () => {
  const place = await newPlace();
  const router = await start(
    "voidrail router --host 0.0.0.0 --port 5555 --mode load_balance --heartbeat-timeout 10",
    place,
    new RegExp(`listening on tcp://0\\.0\\.0\\.0:${place.port} \\(mode load_balance\\)`),
  );
  expect(JSON.parse(await ok("voidrail client --router-info", place))).toMatchObject({ mode: "load_balance", activeDealers: 0 });
  await stop(router, "router shutdown complete");
});

test("ipc: router, dealer and client on --address ipc://", async () => {
  const place = await newPlace();
  const router = await start("voidrail router --address ipc:///tmp/voidrail.sock", place, /router listening on ipc:\/\//);
  const dealer = await start("voidrail dealer --module examples/services.ts --address ipc:///tmp/voidrail.sock", place, /registered as/);
  expect(await ok(`voidrail client --address ipc:///tmp/voidrail.sock --call EchoService.echo --args '"over ipc"'`, place)).toBe(
    '"over ipc"\n',
  );
  await stop(dealer, "dealer shutdown complete");
  await stop(router, "router shutdown complete");
});

describe("dealer --instances", () => {
  let place: Place;
  let router: CliProcess;

  beforeAll(async () => {
    place = await newPlace();
    router = await start("voidrail router", place, /router listening/);
  });
  afterAll(() => stop(router, "router shutdown complete"));

  test("--class EchoService --instances 4: four instances in --list --json, four processes in --clusters", async () => {
    const dealer = await start(
      "voidrail dealer --module examples/services.ts --class EchoService --instances 4",
      place,
      /EchoService registered as EchoService-\d+/,
      4,
    );
    const services = JSON.parse(await ok("voidrail client --list --json", place));
    expect(services["EchoService.echo"].instances).toBe(4);
    const clusters = JSON.parse(await ok("voidrail client --clusters", place)) as Array<{ instanceId: string }>;
    expect(new Set(clusters.map((cluster) => cluster.instanceId.split(":").pop())).size).toBe(4);
    await stop(dealer, "dealer shutdown complete");
  });

  test("--module examples.services: a dotted module path, resolved to examples/services.ts and logged", async () => {
    const dealer = await start("voidrail dealer --module examples.services", place, /registered as EchoService-\d+/);
    expect(dealer.stdout).toContain("--module examples.services: loading examples/services.ts");
    const call = await runCli(["client", "--call", "EchoService.echo", "--args", '"dotted"', "--port", String(place.port)]);
    expect(call.stdout).toBe('"dotted"\n');
    await stop(dealer, "dealer shutdown complete");
  });

  test("VOIDRAIL_INSTANCES=2 with --max-concurrent 2", async () => {
    const dealer = await start(
      "VOIDRAIL_INSTANCES=2 voidrail dealer --module examples/services.ts --max-concurrent 2",
      place,
      /EchoService registered as EchoService-\d+/,
      2,
    );
    const clusters = JSON.parse(await ok("voidrail client --clusters", place)) as Array<{ maxConcurrent: number }>;
    expect(clusters.map((cluster) => cluster.maxConcurrent)).toEqual([2, 2]);
    await stop(dealer, "dealer shutdown complete");
  });
});

describe("API keys", () => {
  test("--generate-keys prints a dealer key, a client key and the command lines that use them", async () => {
    const place = await newPlace();
    const first = await ok("voidrail router --generate-keys", place);
    const second = await ok("voidrail router --generate-keys", place);
    const dealerKey = first.match(/^dealer key: (\S+)$/m)?.[1];
    const clientKey = first.match(/^client key: (\S+)$/m)?.[1];
    expect(dealerKey).toMatch(/^dealer_/);
    expect(clientKey).toMatch(/^client_/);
    expect(first).toContain(`voidrail router --require-auth --dealer-keys ${dealerKey} --client-keys ${clientKey}`);
    expect(first).toContain(`--api-key ${dealerKey}`);
    expect(first).toContain(`voidrail client --list --api-key ${clientKey}`);
    expect(second).not.toContain(dealerKey!);

    // The printed keys work: a router requiring them serves a dealer and a client that give them.
    const router = spawnCli([
      "router",
      "--require-auth",
      "--dealer-keys",
      dealerKey!,
      "--client-keys",
      clientKey!,
      "--port",
      String(place.port),
    ]);
    await router.waitForOutput(/router listening/);
    const dealer = spawnCli(["dealer", "--module", "examples/services.ts", "--api-key", dealerKey!, "--port", String(place.port)]);
    await dealer.waitForOutput(/registered as/);
    const listed = await runCli(["client", "--list", "--api-key", clientKey!, "--port", String(place.port)]);
    expect(listed.code).toBe(0);
    expect(Object.keys(JSON.parse(listed.stdout))).toContain("EchoService.echo");
    await stop(dealer, "dealer shutdown complete");
    await stop(router, "router shutdown complete");
  });

  test("--require-auth: keyed dealer and clients are served; a client or dealer without a key is refused in one line", async () => {
    const place = await newPlace();
    const router = await start(
      "voidrail router --require-auth --dealer-keys dealer-key-1,dealer-key-2 --client-keys client-key-1",
      place,
      /router listening/,
    );
    const dealer = await start("voidrail dealer --module examples/services.ts --api-key dealer-key-1", place, /registered as/);
    expect(await ok(`voidrail client --call EchoService.echo --args '"Hello World"' --api-key client-key-1`, place)).toBe(
      '"Hello World"\n',
    );
    expect(Object.keys(JSON.parse(await ok("VOIDRAIL_API_KEY=client-key-1 voidrail client --list", place)))).toContain("EchoService.echo");

    const clientWithout = await run("voidrail client --list", place);
    expectOneLineError(
      clientWithout,
      /^voidrail: AUTH_FAILED: the router requires a client API key and none was given \(pass --api-key or set VOIDRAIL_API_KEY\)$/,
    );
    expect(clientWithout.code).toBe(1);
    const clientWrong = await run("voidrail client --list --api-key wrong-key", place);
    expectOneLineError(clientWrong, /^voidrail: AUTH_FAILED: the router refused this client's API key \(/);
    expect(clientWrong.code).toBe(1);
    // A dealer's key is not a client's.
    const clientWithDealerKey = await runCli(["client", "--list", "--api-key", "dealer-key-1", "--port", String(place.port)]);
    expectOneLineError(clientWithDealerKey, /^voidrail: AUTH_FAILED: the router refused this client's API key \(/);

    const dealerWithout = await run("voidrail dealer --module examples/services.ts", place);
    expectOneLineError(
      dealerWithout,
      /^voidrail: EchoService could not start: the router requires a dealer API key and none was given \(pass --api-key or set VOIDRAIL_API_KEY\)$/,
    );
    expect(dealerWithout.code).toBe(78);

    const info = JSON.parse((await runCli(["client", "--router-info", "--api-key", "client-key-1", "--port", String(place.port)])).stdout);
    expect(info).toMatchObject({ requireDealerAuth: true, requireClientAuth: true, activeDealers: 1 });
    await stop(dealer, "dealer shutdown complete");
    await stop(router, "router shutdown complete");
  });
});

test("serve: router and 4 instances in one command; SIGTERM drains all and says shutdown complete", async () => {
  const place = await newPlace();
  const serve = await start(
    "voidrail serve --module examples/services.ts --instances 4",
    place,
    /EchoService registered as EchoService-\d+/,
    4,
  );
  expect(JSON.parse(await ok("voidrail client --call EchoService.countPrimes --args 200000", place))).toMatchObject({
    n: 200000,
    primes: 17984,
  });
  await stop(serve, "voidrail: shutdown complete");
});

test("every voidrail line of the README's Command line section was run above", () => {
  expect(readme.size).toBeGreaterThan(20);
  expect(readme.notRun()).toEqual([]);
});
