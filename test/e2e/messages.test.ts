/**
 * Messages a new user meets, through the compiled binary: each says what happened and what to do
 * about it, in one line, with the exit code the README gives (0 ok, 1 failure, 2 wrong command
 * line, 78 a service that cannot start).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BINARY,
  type CliProcess,
  buildBinary,
  cleanEnv,
  expectOneLineError,
  freePort,
  killAll,
  REPO_ROOT,
  runCli,
  runCliOk,
  spawnCli,
} from "../helpers/voidrail-cli.ts";

const ESCAPE = "\u001b";

beforeAll(() => buildBinary(), 120_000);
afterEach(() => killAll());

async function startRouter(port: number, extra: string[] = []): Promise<CliProcess> {
  const router = spawnCli(["router", "--port", String(port), ...extra]);
  await router.waitForOutput(/router listening/);
  return router;
}

/** SIGTERM, then the exit code; every line the process printed has been read once this returns. */
async function stop(child: CliProcess): Promise<number> {
  child.signal("SIGTERM");
  return child.exited(10_000);
}

describe("--call takes Service.method", () => {
  test("--call echo (no Service.) is a usage error, exit 2, that shows the form; the router never hears of it", async () => {
    const port = await freePort();
    const router = await startRouter(port);

    const bare = await runCli(["client", "--call", "echo", "--port", String(port)]);
    expectOneLineError(bare, /^voidrail: --call "echo" is not a method name: expected Service\.method, e\.g\. EchoService\.echo$/);
    expect(bare.code).toBe(2);
    const badPart = await runCli(["client", "--call", "EchoService.echo-it", "--args", '"x"', "--port", String(port)]);
    expectOneLineError(
      badPart,
      /^voidrail: --call "EchoService\.echo-it" is not a method name: expected Service\.method, each part an identifier/,
    );
    expect(badPart.code).toBe(2);

    // The router still serves, and (all its output read at its exit) warned about nothing.
    expect(JSON.parse(await runCliOk(["client", "--list", "--port", String(port)]))).toEqual({});
    expect(await stop(router)).toBe(0);
    expect(router.stderr).not.toContain("WARN");
    expect(router.output).not.toContain("bad message");
  });
});

describe("API keys: a missing key and a wrong one are told apart", () => {
  // One router per test: afterEach stops every process a test started.
  const routerWithKeys = async () => {
    const port = await freePort();
    return { port, router: await startRouter(port, ["--require-auth", "--dealer-keys", "dealer-key-1", "--client-keys", "client-key-1"]) };
  };

  test("client: no key, a wrong --api-key, a wrong VOIDRAIL_API_KEY", async () => {
    const { port, router } = await routerWithKeys();
    const missing = await runCli(["client", "--list", "--port", String(port)]);
    expectOneLineError(
      missing,
      /^voidrail: AUTH_FAILED: the router requires a client API key and none was given \(pass --api-key or set VOIDRAIL_API_KEY\)$/,
    );
    expect(missing.code).toBe(1);
    const refused =
      /^voidrail: AUTH_FAILED: the router refused this client's API key \(check --api-key or VOIDRAIL_API_KEY: it must be one of the router's --client-keys\)$/;
    const wrongFlag = await runCli(["client", "--list", "--port", String(port), "--api-key", "client-key-2"]);
    expectOneLineError(wrongFlag, refused);
    expect(wrongFlag.code).toBe(1);
    expectOneLineError(await runCli(["client", "--list", "--port", String(port)], { env: { VOIDRAIL_API_KEY: "client-key-2" } }), refused);
    // A dealer's key is not a client's.
    expectOneLineError(await runCli(["client", "--list", "--port", String(port), "--api-key", "dealer-key-1"]), refused);
    expect(await runCliOk(["client", "--list", "--port", String(port), "--api-key", "client-key-1"])).toBe("{}\n");
    expect(await stop(router)).toBe(0);
  });

  test("dealer: no key, and a wrong key, in process and with --instances 2: once, exit 78", async () => {
    const { port, router } = await routerWithKeys();
    for (const instances of ["1", "2"]) {
      const dealer = ["dealer", "--module", "examples/services.ts", "--port", String(port), "--instances", instances];
      const missing = await runCli(dealer);
      expectOneLineError(
        missing,
        /^voidrail: EchoService could not start: the router requires a dealer API key and none was given \(pass --api-key or set VOIDRAIL_API_KEY\)$/,
      );
      expect(missing.code).toBe(78);
      const wrong = await runCli([...dealer, "--api-key", "client-key-1"]);
      expectOneLineError(
        wrong,
        /^voidrail: EchoService could not start: the router refused this dealer's API key \(check --api-key or VOIDRAIL_API_KEY: it must be one of the router's --dealer-keys\)$/,
      );
      expect(wrong.code).toBe(78);
    }
    expect(await stop(router)).toBe(0);
  }, 20_000);
});

test("a second router (or serve) on a port in use: 'address ... is already in use', one line, exit 1", async () => {
  const port = await freePort();
  const first = await startRouter(port);
  const second = await runCli(["router", "--port", String(port)]);
  expectOneLineError(second, new RegExp(`^voidrail: cannot start the router: address tcp://127\\.0\\.0\\.1:${port} is already in use$`));
  expect(second.code).toBe(1);
  const serve = await runCli(["serve", "--module", "examples/services.ts", "--port", String(port)]);
  expectOneLineError(serve, new RegExp(`^voidrail: cannot start the router: address tcp://127\\.0\\.0\\.1:${port} is already in use$`));
  expect(serve.code).toBe(1);
  expect(await stop(first)).toBe(0);
});

test("bare voidrail: exit 2, the usage, and a last line saying no command was given", async () => {
  const result = await runCli([]);
  expect(result.code).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr).toContain("USAGE voidrail router|dealer|client|serve");
  expect(result.stderr.trimEnd().split("\n").at(-1)).toBe(
    "voidrail: no command given (commands: router, dealer, client, serve, task, schedule); see voidrail --help",
  );
});

describe("colour only on a terminal (no NO_COLOR, CI or TEST set, TERM=xterm-256color)", () => {
  const asInAShell = { unsetEnv: ["NO_COLOR", "FORCE_COLOR", "CI", "TEST"], env: { TERM: "xterm-256color" } };

  test("--help, a command's --help and a wrong command line, into a pipe: no escape codes", async () => {
    for (const args of [["--help"], ["client", "--help"], ["dealer", "--help"], [], ["rooter"]]) {
      const result = await runCli(args, asInAShell);
      expect(result.stdout + result.stderr).toContain("voidrail");
      if (result.stdout.includes(ESCAPE) || result.stderr.includes(ESCAPE))
        throw new Error(`voidrail ${args.join(" ")} wrote escape codes into a pipe: ${JSON.stringify(result.stdout + result.stderr)}`);
    }
  });

  // util-linux `script` gives the binary a terminal: the colours are still there for people.
  test.skipIf(!Bun.which("script"))("on a terminal, --help is still in colour", async () => {
    const env = cleanEnv({ TERM: "xterm-256color" });
    for (const name of asInAShell.unsetEnv) delete env[name];
    const child = Bun.spawn(["script", "-qec", `'${BINARY}' --help`, "/dev/null"], {
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    expect(code).toBe(0);
    expect(stdout).toContain(`${ESCAPE}[`);
  });
});

describe("a dealer says when it is back after a router restart", () => {
  for (const instances of [1, 2]) {
    test(`--instances ${instances}: 'lost the router; reconnecting', then 'reconnected to the router ...; registered as ...'`, async () => {
      const port = await freePort();
      const first = await startRouter(port);
      const dealer = spawnCli(["dealer", "--module", "examples/services.ts", "--port", String(port), "--instances", String(instances)]);
      await dealer.waitForOutput(/registered as EchoService-\d+/, { count: instances });

      expect(await stop(first)).toBe(0);
      await dealer.waitForOutput("EchoService lost the router; reconnecting", { count: instances });
      const second = await startRouter(port);
      await dealer.waitForOutput(
        /EchoService reconnected to the router after \d+\.\d s; registered as EchoService-\d+ \(.+:\d+\) with 7 method\(s\)/,
        { count: instances, timeoutMs: 15_000 },
      );
      expect(await runCliOk(["client", "--call", "EchoService.echo", "--args", '"back"', "--port", String(port)])).toBe('"back"\n');
      expect(await stop(dealer)).toBe(0);
      expect(await stop(second)).toBe(0);
    }, 30_000);
  }
});

test("a service's exception is printed with its class: REMOTE_ERROR (RangeError): ...", async () => {
  const port = await freePort();
  const serve = spawnCli(["serve", "--module", "test/fixtures/cli/failing-services.ts", "--port", String(port)]);
  await serve.waitForOutput(/registered as RangeService-\d+/);
  expect(await runCliOk(["client", "--call", "RangeService.check", "--args", "5", "--port", String(port)])).toBe("5\n");
  const failed = await runCli(["client", "--call", "RangeService.check", "--args", "42", "--port", String(port)]);
  expectOneLineError(failed, /^voidrail: REMOTE_ERROR \(RangeError\): 42 is outside 0\.\.10$/);
  expect(failed.code).toBe(1);
  expect(await stop(serve)).toBe(0);
});

describe("--module takes a dotted module path, as the seed's --module myapp.services", () => {
  let directory: string;

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), "voidrail-e2e-dotted-"));
    mkdirSync(join(directory, "myapp"));
    copyFileSync(join(REPO_ROOT, "examples/services.ts"), join(directory, "myapp/services.ts"));
    mkdirSync(join(directory, "lib"));
    // Plain JavaScript: no decorators, the methods are registered by a call.
    writeFileSync(
      join(directory, "lib/tools.js"),
      [
        'import { registerServiceMethod, ServiceDealer } from "voidrail";',
        "export class ToolService extends ServiceDealer {",
        "  upper(text) { return String(text).toUpperCase(); }",
        "}",
        'registerServiceMethod(ToolService, "upper", { description: "Upper-cases its argument" });',
        "",
      ].join("\n"),
    );
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  test("dealer --module myapp.services loads myapp/services.ts from the working directory and says so", async () => {
    const port = await freePort();
    const router = await startRouter(port);
    for (const instances of ["1", "2"]) {
      const dealer = spawnCli(["dealer", "--module", "myapp.services", "--port", String(port), "--instances", instances], {
        cwd: directory,
      });
      await dealer.waitForOutput(/registered as EchoService-\d+/, { count: Number(instances) });
      // Said once, by the process that resolved it (the instances get the file).
      expect(dealer.stdout.match(/--module myapp\.services: loading myapp\/services\.ts/g)).toHaveLength(1);
      expect(await runCliOk(["client", "--call", "EchoService.add", "--args", "[2, 3]", "--port", String(port)])).toBe("5\n");
      expect(await stop(dealer)).toBe(0);
    }
    expect(await stop(router)).toBe(0);
  });

  test("serve --module lib.tools loads lib/tools.js", async () => {
    const port = await freePort();
    const serve = spawnCli(["serve", "--module", "lib.tools", "--port", String(port)], { cwd: directory });
    await serve.waitForOutput(/registered as ToolService-\d+/);
    expect(serve.stdout).toContain("--module lib.tools: loading lib/tools.js");
    expect(await runCliOk(["client", "--call", "ToolService.upper", "--args", '"abc"', "--port", String(port)])).toBe('"ABC"\n');
    expect(await stop(serve)).toBe(0);
  });

  test("a module path with no file behind it: one line naming what was looked for, exit 78", async () => {
    const port = String(await freePort());
    for (const instances of ["1", "3"]) {
      const result = await runCli(["dealer", "--module", "myapp.nothing", "--port", port, "--instances", instances], { cwd: directory });
      expectOneLineError(
        result,
        /^voidrail: module not found: myapp\.nothing \(looked for myapp\/nothing\.ts, myapp\/nothing\.js, myapp\/nothing\/index\.ts and myapp\/nothing\/index\.js in .+\)$/,
      );
      expect(result.code).toBe(78);
    }
  });

  test("a file that exists as given wins over the module path", async () => {
    writeFileSync(join(directory, "myapp.services"), "");
    try {
      const result = await runCli(["dealer", "--module", "myapp.services", "--port", String(await freePort())], { cwd: directory });
      expectOneLineError(result, /^voidrail: --module must be a \.ts or \.js file: myapp\.services$/);
      expect(result.code).toBe(78);
    } finally {
      rmSync(join(directory, "myapp.services"));
    }
  });
});

describe("a signal the moment the router is up", () => {
  test("SIGINT right after 'router listening' drains and exits 0 (its handler is in place before the start)", async () => {
    for (let round = 0; round < 3; round++) {
      const port = await freePort();
      const router = spawnCli(["router", "--port", String(port)]);
      await router.waitForOutput(/router listening/);
      router.signal("SIGINT");
      expect(await router.exited(10_000)).toBe(0);
      expect(router.stderr).toContain("router shutdown complete");
    }
  });
});

describe("a stopping router says what it waits for", () => {
  test("SIGTERM with a call in flight: it logs the wait, a client that connects then is told SHUTTING_DOWN at once", async () => {
    const port = await freePort();
    const p = ["--port", String(port)];
    const router = await startRouter(port);
    const dealer = spawnCli(["dealer", "--module", join(REPO_ROOT, "examples/services.ts"), ...p]);
    await dealer.waitForOutput(/registered as EchoService-\d+/, { timeoutMs: 20_000 });
    // A call that runs for seconds: the router must wait for it.
    const slow = spawnCli(["client", "--call", "EchoService.countPrimes", "--args", "30000000", "--timeout", "60", ...p]);
    await waitForCall(router, port);
    router.signal("SIGTERM");
    await router.waitForOutput(/router stopping: waiting up to 5 s for 1 call\(s\) in flight/, { timeoutMs: 10_000 });
    const late = await runCli(["client", "--list", "--connect-timeout", "30", ...p]);
    expect(late.code).toBe(1);
    expectOneLineError(late, /^voidrail: SHUTTING_DOWN: the router is stopping$/);
    expect(await router.exited(15_000)).toBe(0);
    slow.signal("SIGTERM");
    dealer.signal("SIGTERM");
  }, 60_000);
});

/** Waits until the router shows one call in progress (its INFO "router" says so). */
async function waitForCall(router: CliProcess, port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const info = await runCli(["client", "--router-info", "--port", String(port)]);
    if (info.code === 0 && JSON.parse(info.stdout).inProgressRequests === 1) return;
    if (Date.now() > deadline) throw new Error(`no call in progress on the router\n${router.describe()}`);
  }
}
