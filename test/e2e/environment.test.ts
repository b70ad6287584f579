/**
 * The VOIDRAIL_* environment variables the README lists, each read by the binary, and a flag
 * beating its variable.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../helpers/wait.ts";
import { type CliProcess, buildBinary, expectOneLineError, freePort, killAll, runCli, spawnCli } from "../helpers/voidrail-cli.ts";

beforeAll(() => buildBinary(), 120_000);
afterAll(() => killAll());

describe("a router, a dealer and a client configured by environment alone", () => {
  let port: number;
  let router: CliProcess;
  let dealer: CliProcess;
  const clientEnv = () => ({ VOIDRAIL_ROUTER_ADDRESS: `tcp://127.0.0.1:${port}`, VOIDRAIL_API_KEY: "client-key" });

  beforeAll(async () => {
    port = await freePort();
    router = spawnCli(["router"], {
      env: {
        VOIDRAIL_HOST: "127.0.0.1",
        VOIDRAIL_PORT: String(port),
        VOIDRAIL_ROUTER_MODE: "load_balance",
        VOIDRAIL_HEARTBEAT_TIMEOUT: "7",
        VOIDRAIL_REQUIRE_AUTH: "true",
        VOIDRAIL_DEALER_API_KEYS: "dealer-key, other-dealer-key",
        VOIDRAIL_CLIENT_API_KEYS: "client-key",
      },
    });
    await router.waitForOutput(new RegExp(`listening on tcp://127\\.0\\.0\\.1:${port} \\(mode load_balance\\)`));
    dealer = spawnCli(["dealer", "--module", "examples/services.ts"], {
      env: { VOIDRAIL_PORT: String(port), VOIDRAIL_API_KEY: "other-dealer-key", VOIDRAIL_INSTANCES: "2", VOIDRAIL_LOG_LEVEL: "warn" },
    });
    // At warn the dealer says nothing when its instances register: ask the router.
    await waitFor(
      async () => {
        const result = await runCli(["client", "--list"], { env: clientEnv() });
        return result.code === 0 && JSON.parse(result.stdout)["EchoService.echo"]?.instances === 2;
      },
      { timeoutMs: 10_000, intervalMs: 50, message: "2 instances of EchoService registered" },
    );
  });

  test("the router took its mode and keys from the environment", async () => {
    const result = await runCli(["client", "--router-info"], { env: clientEnv() });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      mode: "load_balance",
      address: `tcp://127.0.0.1:${port}`,
      requireDealerAuth: true,
      requireClientAuth: true,
      activeDealers: 2,
    });
  });

  test("VOIDRAIL_LOG_LEVEL=warn kept the dealer's info lines out", () => {
    expect(dealer.stdout).not.toContain("registered as");
  });

  test("the client's key comes from VOIDRAIL_API_KEY; without it the router refuses", async () => {
    expect((await runCli(["client", "--call", "EchoService.add", "--args", "[2, 2]"], { env: clientEnv() })).stdout).toBe("4\n");
    expectOneLineError(await runCli(["client", "--list"], { env: { VOIDRAIL_ROUTER_ADDRESS: `tcp://127.0.0.1:${port}` } }), /AUTH_FAILED/);
  });

  test("--port beats VOIDRAIL_ROUTER_ADDRESS, and --api-key beats VOIDRAIL_API_KEY", async () => {
    const elsewhere = { VOIDRAIL_ROUTER_ADDRESS: `tcp://127.0.0.1:${await freePort()}`, VOIDRAIL_API_KEY: "wrong-key" };
    const result = await runCli(
      ["client", "--call", "EchoService.echo", "--args", '"flags win"', "--port", String(port), "--api-key", "client-key"],
      { env: elsewhere },
    );
    expect(result.stdout).toBe('"flags win"\n');
  });

  afterAll(async () => {
    dealer.signal("SIGTERM");
    expect(await dealer.exited()).toBe(0);
    router.signal("SIGTERM");
    expect(await router.exited()).toBe(0);
  });
});

test("a bad value in a variable is reported like a bad flag", async () => {
  expectOneLineError(
    await runCli(["router", "--port", String(await freePort())], { env: { VOIDRAIL_HEARTBEAT_TIMEOUT: "soon" } }),
    /--heartbeat-timeout must be a number of seconds, got "soon"/,
  );
  expectOneLineError(
    await runCli(["router", "--port", String(await freePort())], { env: { VOIDRAIL_ROUTER_MODE: "random" } }),
    /--mode must be fifo or load_balance, got "random"/,
  );
  expectOneLineError(await runCli(["client", "--list"], { env: { VOIDRAIL_PORT: "port" } }), /--port must be a whole number, got "port"/);
  expectOneLineError(
    await runCli(["dealer", "--module", "examples/services.ts"], { env: { VOIDRAIL_INSTANCES: "many" } }),
    /--instances must be a whole number, got "many"/,
  );
  expectOneLineError(
    await runCli(["client", "--list"], { env: { VOIDRAIL_LOG_LEVEL: "chatty" } }),
    /--log-level must be silent, error, warn, info or debug, got "chatty"/,
  );
});
