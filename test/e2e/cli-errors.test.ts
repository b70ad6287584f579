/**
 * The compiled binary's own surface: --version, --help, and every way a command line can be
 * wrong. Each mistake must come back as one `voidrail: ...` line and a non-zero exit: no stack
 * trace, no usage dump, no restart loop.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import packageJson from "../../package.json" with { type: "json" };
import { buildBinary, expectOneLineError, freePort, killAll, runCli, runCliOk } from "../helpers/voidrail-cli.ts";

const ESCAPE = "\u001b";

beforeAll(() => buildBinary(), 120_000);
afterEach(() => killAll());

describe("voidrail --version and --help", () => {
  test("--version prints the package version and nothing else", async () => {
    expect(await runCliOk(["--version"])).toBe(`${packageJson.version}\n`);
  });

  test("--help lists the four commands, not the internal one, with no escape codes under NO_COLOR=1", async () => {
    const help = await runCliOk(["--help"]);
    for (const command of ["router", "dealer", "client", "serve"]) expect(help).toContain(`  ${command}  `.trimEnd());
    expect(help).not.toContain("dealer-child");
    expect(help).not.toContain(ESCAPE);
  });

  test.each(["router", "dealer", "client", "serve"])("%s --help documents its flags with no escape codes", async (command) => {
    const result = await runCli([command, "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`voidrail ${command}`);
    expect(result.stdout).toContain("--log-level");
    expect(result.stdout + result.stderr).not.toContain(ESCAPE);
  });
});

describe("a wrong command line is one clear line and a non-zero exit", () => {
  test("unknown command", async () => {
    const result = await runCli(["rooter"]);
    expectOneLineError(result, /unknown command "rooter" \(commands: router, dealer, client, serve, task, schedule\)/);
    expect(result.code).toBe(2);
  });

  test.each([
    ["--verbose", ["--verbose"]],
    ["--prot", ["router", "--prot", "5555"]],
    ["--instance", ["dealer", "--module", "examples/services.ts", "--instance", "2"]],
    ["--jsn", ["client", "--list", "--jsn"]],
    ["--bogus", ["serve", "--module", "examples/services.ts", "--bogus=1"]],
  ])("unknown flag %s", async (flag, args) => {
    const result = await runCli(args);
    expectOneLineError(result, new RegExp(`unknown option ${flag}\\b`));
    expect(result.code).toBe(2);
  });

  test("dealer without --module", async () => {
    const result = await runCli(["dealer"]);
    expectOneLineError(result, /--module is required/);
    expect(result.code).toBe(2);
  });

  test("client with no action, and --args without --call", async () => {
    expectOneLineError(await runCli(["client"]), /choose one of --call, --list/);
    expectOneLineError(await runCli(["client", "--list", "--args", "1"]), /--args goes with --call/);
  });

  test("non-JSON --args shows the quoting to use, with the user's own text", async () => {
    const result = await runCli(["client", "--call", "EchoService.hello", "--args", "John"]);
    const line = expectOneLineError(result, /--args is not JSON: John/);
    expect(line).toContain(`--args '"John"'`);
    expect(line).toContain(`--args '[5, 3]'`);
    expect(line).toContain(`--args '{"name":"John"}'`);
    expect(result.code).toBe(2);
  });

  test("bad option values", async () => {
    expectOneLineError(await runCli(["router", "--mode", "round_robin"]), /--mode must be fifo or load_balance/);
    expectOneLineError(await runCli(["client", "--list", "--port", "70000"]), /--port must be between 1 and 65535/);
    expectOneLineError(
      await runCli(["dealer", "--module", "examples/services.ts", "--instances", "0"]),
      /--instances must be between 1 and 256/,
    );
    expectOneLineError(await runCli(["client", "--list", "--log-level", "loud"]), /--log-level must be/);
    expectOneLineError(await runCli(["router", "--max-message-size", "0.5"]), /--max-message-size must be a whole number of MiB/);
    expectOneLineError(
      await runCli(["router", "--require-auth", "--port", String(await freePort())]),
      /requireAuth is on but no dealer or client API keys/,
    );
  });
});

describe("a module that cannot be loaded is reported once, and nothing is restarted", () => {
  const failures: Array<[string, string[], RegExp]> = [
    ["a path that does not exist", ["--module", "examples/no-such-services.ts"], /module not found: examples\/no-such-services\.ts/],
    ["a file that is not .ts or .js", ["--module", "README.md"], /--module must be a \.ts or \.js file/],
    [
      "a syntax error (with its line and column)",
      ["--module", "test/fixtures/cli/syntax-error.ts"],
      /cannot load test\/fixtures\/cli\/syntax-error\.ts: Unexpected ; \(test\/fixtures\/cli\/syntax-error\.ts:2:\d+\)/,
    ],
    ["no ServiceDealer subclass exported", ["--module", "test/fixtures/cli/no-services.ts"], /exports no ServiceDealer subclass/],
    [
      "an unknown --class",
      ["--module", "examples/services.ts", "--class", "EchoServic"],
      /exports no service class "EchoServic" \(it exports: EchoService\)/,
    ],
  ];

  for (const [what, args, message] of failures) {
    test(`${what}: one line, exit 78, with one instance and with --instances 3`, async () => {
      // The module is checked before anything connects: a port with no router is never reached.
      const port = String(await freePort());
      for (const instances of ["1", "3"]) {
        const result = await runCli(["dealer", ...args, "--port", port, "--instances", instances]);
        expectOneLineError(result, message);
        expect(result.code).toBe(78);
        expect(result.stdout + result.stderr).not.toContain("restarting");
      }
    });
  }

  test("serve reports a bad module the same way and stops its router", async () => {
    const result = await runCli(["serve", "--module", "test/fixtures/cli/syntax-error.ts", "--port", String(await freePort())]);
    expectOneLineError(result, /cannot load test\/fixtures\/cli\/syntax-error\.ts: Unexpected ;/);
    expect(result.code).toBe(78);
  });
});

describe("an unreachable router", () => {
  test("client: fails after --connect-timeout with the address it tried", async () => {
    const port = await freePort();
    const started = performance.now();
    const result = await runCli(["client", "--list", "--port", String(port), "--connect-timeout", "0.3"]);
    const elapsedMs = performance.now() - started;
    expectOneLineError(result, new RegExp(`no answer from the router at tcp://127\\.0\\.0\\.1:${port} within 0\\.3 s`));
    // It gave up after 0.3 s, not after the default 5 s (the margin is for starting the binary on a loaded machine).
    expect(elapsedMs).toBeLessThan(5000);
  });

  test("dealer: gives up after --start-timeout, once, exit 78 (one instance and --instances 3)", async () => {
    const port = await freePort();
    for (const instances of ["1", "3"]) {
      const result = await runCli([
        "dealer",
        "--module",
        "examples/services.ts",
        "--port",
        String(port),
        "--start-timeout",
        "1",
        "--instances",
        instances,
      ]);
      expectOneLineError(result, new RegExp(`EchoService could not start: .*router at tcp://127\\.0\\.0\\.1:${port} within 1 s`));
      expect(result.code).toBe(78);
      expect(result.stdout + result.stderr).not.toContain("restarting");
    }
  });
});
