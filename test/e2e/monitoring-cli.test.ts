/**
 * The HTTP server and the operator verbs through the compiled binary: `voidrail router
 * --http-port/--http-host/--http-token` (and VOIDRAIL_HTTP_PORT / VOIDRAIL_HTTP_TOKEN), the
 * sign-in link in the start-up log, the loopback rule as a one-line error, the dashboard's files
 * served from the binary; the same flags on `voidrail serve` (its dealers in /metrics, the token,
 * the loopback rule); `voidrail client --drain` and `voidrail task retry`.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { buildBinary, expectOneLineError, freePort, killAll, REPO_ROOT, runCli, runCliOk, spawnCli } from "../helpers/voidrail-cli.ts";
import { waitFor } from "../helpers/wait.ts";

const SERVICES = join(REPO_ROOT, "examples/services.ts");
const TOKEN = "e2e-token-0123456789";

beforeAll(() => buildBinary(), 120_000);
afterEach(() => killAll());

describe("voidrail router --http-port", () => {
  test("serves metrics and the dashboard's files from the binary; the log prints the sign-in link", async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const router = spawnCli(["router", "--port", String(port), "--http-port", String(httpPort), "--http-token", TOKEN]);
    const link = `http://127.0.0.1:${httpPort}/?token=${TOKEN}`;
    await router.waitForOutput(link, { timeoutMs: 20_000 });
    const base = `http://127.0.0.1:${httpPort}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const metrics = await fetch(`${base}/metrics`, { headers: auth });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("voidrail_build_info");
    for (const asset of ["app.js", "preact.js", "hooks.js", "htm.js", "uplot.js", "uplot.css", "style.css"]) {
      const response = await fetch(`${base}/assets/${asset}`, { headers: auth });
      expect({ asset, status: response.status }).toEqual({ asset, status: 200 });
      expect((await response.text()).length).toBeGreaterThan(500);
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  }, 90_000);

  test("VOIDRAIL_HTTP_PORT and VOIDRAIL_HTTP_TOKEN do the same", async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const router = spawnCli(["router", "--port", String(port)], {
      env: { VOIDRAIL_HTTP_PORT: String(httpPort), VOIDRAIL_HTTP_TOKEN: TOKEN },
    });
    await router.waitForOutput(`?token=${TOKEN}`, { timeoutMs: 20_000 });
    expect((await fetch(`http://127.0.0.1:${httpPort}/api/router`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${httpPort}/api/router`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  }, 90_000);

  test("a non-loopback --http-host without a token is refused with one line; bad flags too", async () => {
    const port = String(await freePort());
    const refused = await runCli(["router", "--port", port, "--http-port", "0", "--http-host", "0.0.0.0"]);
    expect(refused.code).not.toBe(0);
    expectOneLineError(refused, /without a token/);
    const badPort = await runCli(["router", "--port", port, "--http-port", "80000"]);
    expect(badPort.code).toBe(2);
    expectOneLineError(badPort, /--http-port/);
    const hostAlone = await runCli(["router", "--port", port, "--http-host", "127.0.0.1"]);
    expect(hostAlone.code).toBe(2);
    expectOneLineError(hostAlone, /need --http-port/);
  }, 90_000);
});

describe("voidrail serve --http-port: the same HTTP flags as router", () => {
  test("serves /metrics with the module's dealers counted", async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const serve = spawnCli(["serve", "--module", SERVICES, "--instances", "2", "--port", String(port), "--http-port", String(httpPort)]);
    await serve.waitForOutput(/registered as EchoService-\d+/, { timeoutMs: 20_000, count: 2 });
    const metrics = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    const dealers = text.split("\n").filter((line) => line.startsWith("voidrail_dealers{"));
    expect(dealers).toContain('voidrail_dealers{service="EchoService",state="active"} 2');
    // The module's one service, and its instances in no other state.
    for (const line of dealers) expect(line).toMatch(/^voidrail_dealers\{service="EchoService",state="(active"\} 2|\w+"\} 0)$/);
  }, 90_000);

  test("--http-token: a request without it is 401, with it 200; /healthz stays open", async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const p = ["--port", String(port), "--http-port", String(httpPort)];
    const serve = spawnCli(["serve", "--module", SERVICES, ...p, "--http-token", TOKEN]);
    await serve.waitForOutput(`http://127.0.0.1:${httpPort}/?token=${TOKEN}`, { timeoutMs: 20_000 });
    const base = `http://127.0.0.1:${httpPort}`;
    for (const path of ["/metrics", "/api/services", "/"]) {
      expect({ path, status: (await fetch(`${base}${path}`)).status }).toEqual({ path, status: 401 });
      const wrong = await fetch(`${base}${path}`, { headers: { authorization: "Bearer not-the-token-at-all" } });
      expect({ path, status: wrong.status }).toEqual({ path, status: 401 });
    }
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("voidrail_build_info");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  }, 90_000);

  test("a non-loopback --http-host without a token is refused with one line, before any service starts", async () => {
    const port = String(await freePort());
    const refused = await runCli(["serve", "--module", SERVICES, "--port", port, "--http-port", "0", "--http-host", "0.0.0.0"]);
    expect(refused.code).not.toBe(0);
    expectOneLineError(refused, /without a token/);
    expect(refused.stdout + refused.stderr).not.toContain("registered as");
  }, 90_000);
});

describe("operator verbs", () => {
  test("voidrail client --drain DEALER_ID: the dealer takes no more calls and leaves the router", async () => {
    const port = String(await freePort());
    const router = spawnCli(["router", "--port", port]);
    await router.waitForOutput("router listening", { timeoutMs: 20_000 });
    const dealer = spawnCli(["dealer", "--module", SERVICES, "--port", port]);
    await dealer.waitForOutput(/registered as EchoService-\d+/, { timeoutMs: 20_000 });
    const [info] = JSON.parse(await runCliOk(["client", "--clusters", "--port", port])) as { id: string }[];
    const drained = JSON.parse(await runCliOk(["client", "--drain", info.id, "--port", port]));
    expect(drained).toEqual({ dealerId: info.id, draining: true });
    await waitFor(async () => JSON.parse(await runCliOk(["client", "--clusters", "--port", port])).length === 0, {
      timeoutMs: 15_000,
      message: "the drained dealer to leave",
      intervalMs: 200,
    });
    // A dealer process drained at the router ends by itself, exit 0.
    expect(await dealer.exited(15_000)).toBe(0);
    expect(dealer.output).toContain("drained by the router");
    const unknown = await runCli(["client", "--drain", "Nobody-7", "--port", port]);
    expect(unknown.code).not.toBe(0);
    expectOneLineError(unknown, /no registered dealer has the id Nobody-7/);
  }, 90_000);

  test("voidrail task retry ID: a failed task runs again as a new task", async () => {
    const port = String(await freePort());
    const router = spawnCli(["router", "--port", port]);
    await router.waitForOutput("router listening", { timeoutMs: 20_000 });
    const dealer = spawnCli(["dealer", "--module", SERVICES, "--port", port]);
    await dealer.waitForOutput(/registered as EchoService-\d+/, { timeoutMs: 20_000 });
    const p = ["--port", port];
    const id = (await runCliOk(["task", "submit", "EchoService.add", "--args", '["x", 1]', ...p])).trim();
    await runCli(["task", "wait", id, ...p]);
    expect(JSON.parse(await runCliOk(["task", "status", id, ...p])).state).toBe("failed");
    const copy = JSON.parse(await runCliOk(["task", "retry", id, ...p]));
    expect(copy.id).not.toBe(id);
    expect(copy.method).toBe("EchoService.add");
    const again = await runCli(["task", "retry", "0190d4c2-7a8b-7c3d-8e4f-0123456789ab", ...p]);
    expect(again.code).not.toBe(0);
    expectOneLineError(again, /0190d4c2-7a8b-7c3d-8e4f-0123456789ab/);
  }, 90_000);
});
