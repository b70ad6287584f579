/**
 * The router's HTTP server through real sockets: /metrics checked against the calls that ran
 * (and by promtool, Prometheus' own parser), a SIGKILLed dealer leaving the gauges, the API's
 * answers and its input checks, the token rules, and the actions.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { ServiceRouter } from "../../src/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { seededRandom } from "../helpers/random.ts";
import { waitFor } from "../helpers/wait.ts";
import { EchoService, GatedService, Probe } from "../fixtures/services.ts";

const TOKEN = "s3cret-token-for-tests";
let cluster = new Cluster("tcp");
afterEach(async () => {
  await cluster.dispose();
  cluster = new Cluster("tcp");
});

function sampleValue(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
  return response.text();
}

describe("GET /metrics", () => {
  test("counts the calls that ran, by method and outcome, and passes promtool check metrics", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    const url = router.httpUrl!;
    await cluster.dealer((options) => new EchoService(options));
    const client = await cluster.client();
    for (let i = 0; i < 25; i++) expect(await client.call("EchoService.add", [i, 1])).toBe(i + 1);
    await expect(client.call("EchoService.add", ["x", 1])).rejects.toThrow();
    await expect(client.call("Nobody.home", [])).rejects.toThrow();
    await expect(client.call("Random.name1", [])).rejects.toThrow();
    const text = await scrape(url);
    expect(sampleValue(text, 'voidrail_requests_total{method="EchoService.add",outcome="ok"}')).toBe(25);
    expect(sampleValue(text, 'voidrail_requests_total{method="EchoService.add",outcome="error"}')).toBe(1);
    // Methods nobody registered share one label value: a client cannot grow the series.
    expect(sampleValue(text, 'voidrail_requests_total{method="other",outcome="no_dealer"}')).toBe(2);
    expect(text).not.toContain("Nobody.home");
    expect(sampleValue(text, 'voidrail_request_duration_seconds_count{method="EchoService.add"}')).toBe(26);
    expect(sampleValue(text, 'voidrail_request_duration_seconds_bucket{method="EchoService.add",le="+Inf"}')).toBe(26);
    expect(sampleValue(text, 'voidrail_dealers{service="EchoService",state="active"}')).toBe(1);
    expect(sampleValue(text, 'voidrail_dealer_busy_slots{service="EchoService"}')).toBe(0);
    expect(sampleValue(text, 'voidrail_queue_depth{method="EchoService.add"}')).toBe(0);
    expect(sampleValue(text, 'voidrail_tasks{state="queued"}')).toBe(0);
    expect(sampleValue(text, "process_resident_memory_bytes")).toBeGreaterThan(1_000_000);
    expect(text).toMatch(/^voidrail_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m);
    // Prometheus' own parser and linter.
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    if (check.error) throw new Error(`promtool is needed (apt-get install prometheus): ${check.error.message}`);
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    expect(check.status).toBe(0);
  }, 30_000);

  test("queue depth and the oldest call's age while calls wait; busy slots while they run", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    const probe = new Probe();
    await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 1 });
    const client = await cluster.client();
    const calls = [0, 1, 2].map((i) => client.call("GatedService.hold", [`t${i}`]));
    await waitFor(() => probe.active === 1, { timeoutMs: 5000, message: "the first call to run" });
    const text = await scrape(router.httpUrl!);
    expect(sampleValue(text, 'voidrail_queue_depth{method="GatedService.hold"}')).toBe(2);
    expect(sampleValue(text, 'voidrail_queue_oldest_age_seconds{method="GatedService.hold"}')).toBeGreaterThan(0);
    expect(sampleValue(text, 'voidrail_dealer_busy_slots{service="GatedService"}')).toBe(1);
    expect(sampleValue(text, "voidrail_requests_inflight")).toBe(1);
    probe.gate.open();
    await Promise.all(calls);
    const after = await scrape(router.httpUrl!);
    expect(sampleValue(after, 'voidrail_queue_depth{method="GatedService.hold"}')).toBe(0);
    expect(sampleValue(after, 'voidrail_dispatch_wait_seconds_count{method="GatedService.hold"}')).toBe(3);
  }, 30_000);

  test("a dealer killed with SIGKILL leaves the gauges within the heartbeat timeout", async () => {
    const heartbeatTimeout = 1;
    const router = await cluster.router({ http: { port: 0 }, heartbeatTimeout });
    const child = await cluster.spawnDealer("CrashService");
    expect(sampleValue(await scrape(router.httpUrl!), 'voidrail_dealers{service="CrashService",state="active"}')).toBe(1);
    child.kill("SIGKILL");
    const killedAt = Date.now();
    let text = "";
    await waitFor(
      async () => {
        text = await scrape(router.httpUrl!);
        return sampleValue(text, 'voidrail_dealers{service="CrashService",state="active"}') === undefined;
      },
      { timeoutMs: heartbeatTimeout * 1000 * 3 + 2000, message: "the killed dealer to leave voidrail_dealers", intervalMs: 50 },
    );
    expect(Date.now() - killedAt).toBeLessThan(heartbeatTimeout * 1000 * 3 + 2000);
    const losses = text.split("\n").filter((line) => line.startsWith('voidrail_dealer_losses_total{service="CrashService"'));
    expect(losses).toEqual(['voidrail_dealer_losses_total{service="CrashService",reason="disconnect"} 1']);
  }, 30_000);

  test("a frozen dealer (SIGSTOP: its connection stays open) leaves the gauges within the heartbeat timeout", async () => {
    const heartbeatTimeout = 1;
    const router = await cluster.router({ http: { port: 0 }, heartbeatTimeout });
    const child = await cluster.spawnDealer("CrashService");
    expect(sampleValue(await scrape(router.httpUrl!), 'voidrail_dealers{service="CrashService",state="active"}')).toBe(1);
    child.kill("SIGSTOP");
    try {
      const frozenAt = Date.now();
      let text = "";
      await waitFor(
        async () => {
          text = await scrape(router.httpUrl!);
          return sampleValue(text, 'voidrail_dealers{service="CrashService",state="active"}') === undefined;
        },
        // The router declares a silent peer gone after heartbeatTimeout (plus a heartbeat interval's slack).
        { timeoutMs: heartbeatTimeout * 1000 * 3 + 2000, message: "the frozen dealer to leave voidrail_dealers", intervalMs: 50 },
      );
      expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(heartbeatTimeout * 1000 * 0.5);
      expect(sampleValue(text, 'voidrail_dealer_losses_total{service="CrashService",reason="heartbeat_timeout"}')).toBe(1);
    } finally {
      child.kill("SIGCONT");
    }
  }, 30_000);
});

describe("auth", () => {
  const ROUTES = [
    "/",
    "/metrics",
    "/api/router",
    "/api/services",
    "/api/clusters",
    "/api/queues",
    "/api/tasks",
    "/api/events",
    "/assets/app.js",
  ];

  test("with a token, every route but /healthz refuses a request without it or with a wrong one", async () => {
    const router = await cluster.router({ http: { port: 0, token: TOKEN } });
    const url = router.httpUrl!;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    for (const path of ROUTES) {
      expect({ path, status: (await fetch(`${url}${path}`)).status }).toEqual({ path, status: 401 });
      const wrong = await fetch(`${url}${path}`, { headers: { authorization: "Bearer not-the-token" } });
      expect({ path, status: wrong.status }).toEqual({ path, status: 401 });
      expect({ path, status: (await fetch(`${url}${path}?token=wrong-token`)).status }).toEqual({ path, status: 401 });
      expect({ path, status: (await fetch(`${url}${path}`, { headers: { cookie: "voidrail_token=nope" } })).status }).toEqual({
        path,
        status: 401,
      });
    }
    for (const [path, init] of [
      ["/api/tasks/0190d4c2-7a8b-7c3d-8e4f-0123456789ab/revoke", { method: "POST" }],
      ["/api/tasks/0190d4c2-7a8b-7c3d-8e4f-0123456789ab/retry", { method: "POST" }],
      ["/api/dealers/X-1/drain", { method: "POST" }],
    ] as const) {
      expect({ path, status: (await fetch(`${url}${path}`, init)).status }).toEqual({ path, status: 401 });
    }
    const json = (await (await fetch(`${url}/api/router`)).json()) as { error: { code: string } };
    expect(json.error.code).toBe("UNAUTHORIZED");
  }, 30_000);

  test("the token works as a Bearer header, as a ?token= link that sets the cookie, as the login form's cookie", async () => {
    const router = await cluster.router({ http: { port: 0, token: TOKEN } });
    const url = router.httpUrl!;
    expect((await fetch(`${url}/api/router`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const apiLink = await fetch(`${url}/api/router?token=${TOKEN}`);
    expect(apiLink.status).toBe(200);
    expect(apiLink.headers.get("set-cookie")).toContain("voidrail_token=");
    const link = await fetch(`${url}/?token=${TOKEN}`, { redirect: "manual" });
    expect(link.status).toBe(303);
    expect(link.headers.get("location")).toBe("/");
    const cookie = link.headers.get("set-cookie")!;
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    const pair = cookie.split(";")[0];
    const page = await fetch(`${url}/`, { headers: { cookie: pair } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/assets/app.js">');
    const form = await fetch(`${url}/login`, {
      method: "POST",
      body: new URLSearchParams({ token: TOKEN }),
      redirect: "manual",
    });
    expect(form.status).toBe(303);
    expect(form.headers.get("set-cookie")).toContain("voidrail_token=");
    const badForm = await fetch(`${url}/login`, { method: "POST", body: new URLSearchParams({ token: "wrong-one!" }), redirect: "manual" });
    expect(badForm.status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { cookie: pair } })).status).toBe(200);
  }, 30_000);

  test("without a token the server refuses to bind a non-loopback address", () => {
    expect(() => new ServiceRouter({ http: { port: 0, host: "0.0.0.0" } })).toThrow("without a token");
    expect(() => new ServiceRouter({ http: { port: 0, host: "192.168.1.10" } })).toThrow("without a token");
    expect(() => new ServiceRouter({ http: { port: 0, host: "0.0.0.0", token: TOKEN } })).not.toThrow();
    expect(() => new ServiceRouter({ http: { port: 0, host: "localhost" } })).not.toThrow();
    expect(() => new ServiceRouter({ http: { port: 70000 } })).toThrow("http");
    expect(() => new ServiceRouter({ http: { port: 0, token: "short" } })).toThrow("token");
  }, 30_000);
});

describe("the JSON API", () => {
  test("the INFO topics, as the router answers them", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    await cluster.dealer((options) => new EchoService(options));
    for (const topic of ["router", "services", "clusters", "queues"]) {
      const body = await (await fetch(`${router.httpUrl}/api/${topic}`)).json();
      const expected = JSON.parse(JSON.stringify(router.info(topic)));
      if (topic === "router") {
        expect((body as { activeDealers: number }).activeDealers).toBe(expected.activeDealers);
      } else {
        expect(body).toEqual(expected);
      }
    }
  }, 30_000);

  test("tasks: search by id, state and method; revoke; retry as a new task; bad input is a 400, never a crash", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    const url = router.httpUrl!;
    const probe = new Probe();
    await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 1 });
    const client = await cluster.client();
    const held = await client.submit("GatedService.hold", ["a"]);
    const quick = await client.submit("GatedService.quick", ["b"]);
    await waitFor(() => probe.active === 1, { timeoutMs: 5000, message: "the task to run" });
    const byId = (await (await fetch(`${url}/api/tasks?id=${held.id}`)).json()) as { tasks: { id: string; state: string }[] };
    expect(byId.tasks.map((t) => t.id)).toEqual([held.id]);
    const running = (await (await fetch(`${url}/api/tasks?state=running`)).json()) as { tasks: { id: string }[] };
    expect(running.tasks.map((t) => t.id)).toEqual([held.id]);
    const byMethod = (await (await fetch(`${url}/api/tasks?method=GatedService.quick`)).json()) as { tasks: { id: string }[] };
    expect(byMethod.tasks.map((t) => t.id)).toEqual([quick.id]);
    const created = Date.parse(held.createdAt);
    const inWindow = (await (
      await fetch(`${url}/api/tasks?from=${new Date(created - 60_000).toISOString()}&to=${created + 60_000}`)
    ).json()) as {
      tasks: { id: string }[];
    };
    expect(inWindow.tasks.map((t) => t.id).sort()).toEqual([held.id, quick.id].sort());
    const later = (await (await fetch(`${url}/api/tasks?from=${created + 60_000}`)).json()) as { tasks: unknown[] };
    expect(later.tasks).toEqual([]);
    const paged = (await (await fetch(`${url}/api/tasks?limit=1`)).json()) as { tasks: { id: string }[]; cursor?: string };
    expect(paged.tasks.length).toBe(1);
    const next = (await (await fetch(`${url}/api/tasks?limit=1&cursor=${encodeURIComponent(paged.cursor!)}`)).json()) as {
      tasks: { id: string }[];
    };
    expect(next.tasks.length).toBe(1);
    expect(next.tasks[0].id).not.toBe(paged.tasks[0].id);
    const one = (await (await fetch(`${url}/api/tasks/${held.id}`)).json()) as { state: string; method: string; args: unknown };
    expect(one.method).toBe("GatedService.hold");
    expect(one.args).toEqual(["a"]);

    const revoked = await fetch(`${url}/api/tasks/${held.id}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { state: string }).state).toBe("revoked");
    const retried = await fetch(`${url}/api/tasks/${held.id}/retry`, { method: "POST" });
    expect(retried.status).toBe(201);
    const copy = (await retried.json()) as { id: string; method: string };
    expect(copy.id).not.toBe(held.id);
    expect(copy.method).toBe("GatedService.hold");
    probe.gate.open();
    await client.waitTask(copy.id, { timeout: 10 });
    expect((await client.getTask(copy.id)).state).toBe("succeeded");
    // Retrying a task that succeeded is refused.
    expect((await fetch(`${url}/api/tasks/${copy.id}/retry`, { method: "POST" })).status).toBe(400);
    // The same verb for clients (voidrail task retry): another new task from the revoked one.
    const again = await client.retryTask(held.id);
    expect(again.id).not.toBe(held.id);
    expect(again.id).not.toBe(copy.id);
    await client.waitTask(again.id, { timeout: 10 });
    await expect(client.retryTask(copy.id)).rejects.toThrow("only a failed, revoked or expired task");

    const bad: [string, number, RequestInit?][] = [
      ["/api/tasks?state=bogus", 400],
      ["/api/tasks?limit=0", 400],
      ["/api/tasks?limit=abc", 400],
      ["/api/tasks?id=not-an-id", 400],
      ["/api/tasks?from=yesterday-ish", 400],
      ["/api/tasks?method=no%20spaces", 400],
      ["/api/tasks?unknown=1", 400],
      ["/api/tasks/xyz", 400],
      ["/api/tasks/%E0%A4%A", 400],
      ["/api/tasks/0190d4c2-7a8b-7c3d-8e4f-0123456789ab", 404],
      ["/api/tasks/0190d4c2-7a8b-7c3d-8e4f-0123456789ab/revoke", 404, { method: "POST" }],
      [`/api/tasks/${quick.id}/revoke`, 415, { method: "POST", body: "terminate=1" }],
      [`/api/tasks/${quick.id}/revoke`, 400, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" }],
      [
        `/api/tasks/${quick.id}/revoke`,
        400,
        { method: "POST", headers: { "content-type": "application/json" }, body: '{"terminate":"yes"}' },
      ],
      [`/api/tasks/${quick.id}/revoke`, 405],
      ["/api/dealers/nobody-1/drain", 404, { method: "POST" }],
      ["/api/nothing", 404],
      ["/metrics", 405, { method: "POST" }],
    ];
    for (const [path, status, init] of bad) {
      const response = await fetch(`${url}${path}`, init);
      expect({ path, status: response.status }).toEqual({ path, status });
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(typeof body.error.message).toBe("string");
    }
    // Still serving.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  }, 30_000);

  test("drain: the dealer gets no new calls, finishes, and leaves", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    const dealer = await cluster.dealer((options) => new EchoService(options));
    const [info] = router.info("clusters") as { id: string }[];
    const response = await fetch(`${router.httpUrl}/api/dealers/${info.id}/drain`, { method: "POST" });
    expect(response.status).toBe(202);
    await waitFor(() => (router.info("clusters") as unknown[]).length === 0, { timeoutMs: 5000, message: "the drained dealer to leave" });
    expect(dealer.dealerId).toBe(info.id);
  }, 30_000);
});

describe("bad input", () => {
  test("random paths, queries, methods and bodies get 4xx JSON answers, never a 500 or a crash", async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000);
    const random = seededRandom(seed);
    const router = await cluster.router({ http: { port: 0 } });
    const url = router.httpUrl!;
    const paths = [
      "/api/tasks",
      "/api/tasks/",
      "/api/router",
      "/api/dealers/x/drain",
      "/api/tasks/abc/revoke",
      "/metrics",
      "/api/",
      "/assets/",
      "/login",
    ];
    const keys = ["id", "state", "method", "from", "to", "limit", "cursor", "token", "x"];
    const noise = () => encodeURIComponent(random.bytes(random.int(40)).toString("latin1"));
    for (let i = 0; i < 300; i++) {
      const path = random.next() < 0.3 ? `/${noise()}/${noise()}` : `${random.pick(paths)}${random.next() < 0.3 ? noise() : ""}`;
      const query = Array.from({ length: random.int(4) }, () => `${random.pick(keys)}=${noise()}`).join("&");
      const method = random.pick(["GET", "POST", "PUT", "DELETE", "PATCH"]);
      const headers: Record<string, string> = random.next() < 0.5 ? { "content-type": "application/json" } : {};
      const body =
        method === "GET"
          ? undefined
          : random.next() < 0.5
            ? new Uint8Array(random.bytes(random.int(300)))
            : JSON.stringify({ terminate: random.pick([1, "x", null, true]) });
      const response = await fetch(`${url}${path}${query ? `?${query}` : ""}`, { method, headers, body });
      const what = { seed, method, path, query, status: response.status };
      expect(what.status < 500 ? "ok" : JSON.stringify(what)).toBe("ok");
      await response.arrayBuffer();
    }
    // Still up and answering.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const big = await fetch(`${url}/api/tasks/0190d4c2-7a8b-7c3d-8e4f-0123456789ab/revoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "x".repeat(200_000),
    });
    expect(big.status).toBe(413);
  }, 30_000);
});
