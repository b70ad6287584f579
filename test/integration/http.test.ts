/**
 * The router's HTTP server through real sockets: /metrics checked against the calls that ran
 * (and by promtool, Prometheus' own parser), a SIGKILLed dealer leaving the gauges, the API's
 * answers and its input checks, the token rules, and the actions.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import {
  chain,
  type FlowInfo,
  group,
  type ScheduleInfo,
  ServiceDealer,
  type ServiceDealerOptions,
  ServiceRouter,
  serviceMethod,
  task,
} from "../../src/index.ts";
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
    expect(sampleValue(text, "voidrail_process_resident_memory_bytes")).toBe(sampleValue(text, "process_resident_memory_bytes"));
    expect(sampleValue(text, "voidrail_process_cpu_seconds_total")).toBeGreaterThan(0);
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

  test("rate limits: the rate in force, whether calls wait for a token now, and how often they had to", async () => {
    const router = await cluster.router({ http: { port: 0 }, rateLimits: { "EchoService.add": "1/h" } });
    await cluster.dealer((options) => new EchoService(options));
    const client = await cluster.client();
    const before = await scrape(router.httpUrl!);
    expect(sampleValue(before, 'voidrail_rate_limit_per_second{method="EchoService.add"}')).toBeCloseTo(1 / 3600, 9);
    expect(sampleValue(before, 'voidrail_rate_limit_waiting{method="EchoService.add"}')).toBe(0);
    expect(sampleValue(before, 'voidrail_rate_limit_holds_total{method="EchoService.add"}')).toBe(0);
    // One token an hour: the first call takes it, the second waits in the queue for the next.
    expect(await client.call("EchoService.add", [1, 1])).toBe(2);
    const waiting = client.call("EchoService.add", [2, 2]).catch((error: Error) => error);
    await waitFor(async () => sampleValue(await scrape(router.httpUrl!), 'voidrail_queue_depth{method="EchoService.add"}') === 1, {
      timeoutMs: 5000,
      message: "the second call to wait in the queue",
    });
    const held = await scrape(router.httpUrl!);
    expect(sampleValue(held, 'voidrail_rate_limit_waiting{method="EchoService.add"}')).toBe(1);
    expect(sampleValue(held, 'voidrail_rate_limit_holds_total{method="EchoService.add"}')).toBe(1);
    // Calls that wait for a token count as queued, with no dealer slot busy: the rate, not the dealers, holds them.
    expect(sampleValue(held, 'voidrail_dealer_busy_slots{service="EchoService"}')).toBe(0);
    const check = spawnSync("promtool", ["check", "metrics"], { input: held, encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    await client.close();
    expect(await waiting).toBeInstanceOf(Error);
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
    "/api/history",
    "/api/schedules",
    "/api/flows/0190d4c2-7a8b-7c3d-8e4f-0123456789ab",
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
      ["/api/schedules/nightly/pause", { method: "POST" }],
      ["/api/schedules/nightly/resume", { method: "POST" }],
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

/** A dealer whose setup() waits until the test lets it finish (a model loading). */
class SlowSetupService extends ServiceDealer {
  private release: () => void = () => {};
  private readonly gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });

  constructor(options: ServiceDealerOptions) {
    super(options);
  }

  finishSetup(): void {
    this.release();
  }

  override async setup() {
    await this.gate;
  }

  @serviceMethod
  ready() {
    return true;
  }
}

describe("GPU dealers, flows and schedules", () => {
  test("clusters carry tags, GPUs and the setup state; /metrics counts setup dealers", async () => {
    const saved = { cuda: process.env.CUDA_VISIBLE_DEVICES, gpu: process.env.VOIDRAIL_GPU };
    try {
      const router = await cluster.router({ http: { port: 0 } });
      const url = router.httpUrl!;
      // A gpu tag given: the dealer does not ask nvidia-smi, whose answer the process keeps (tags-setup.test.ts fakes it).
      const gpu = await cluster.dealer((options) => new EchoService(options), { gpus: ["0", "1"], tags: { zone: "eu-1", gpu: "h200" } });
      const slow = cluster.dealerStopped((options) => new SlowSetupService(options), { instanceId: "loader:4242" });
      const started = slow.start();
      const inSetup = async () => {
        const clusters = (await (await fetch(`${url}/api/clusters`)).json()) as { service: string; state: string }[];
        return clusters.some((d) => d.service === "SlowSetupService" && d.state === "setup");
      };
      await waitFor(inSetup, { timeoutMs: 5000, message: "the slow dealer to register in setup" });
      const clusters = (await (await fetch(`${url}/api/clusters`)).json()) as {
        id: string;
        instanceId?: string;
        host?: string;
        tags?: Record<string, string>;
        gpus?: string[];
      }[];
      const echo = clusters.find((d) => d.id === gpu.dealerId)!;
      expect(echo.gpus).toEqual(["0", "1"]);
      expect(echo.tags).toEqual({ zone: "eu-1", gpu: "h200" });
      // The host comes from HELLO `host`, so a custom instanceId still shows which machine it runs on.
      expect(clusters.find((d) => d.instanceId === "loader:4242")?.host).toBe(hostname());
      expect(echo.host).toBe(hostname());
      let text = await scrape(url);
      expect(sampleValue(text, 'voidrail_dealers{service="SlowSetupService",state="setup"}')).toBe(1);
      expect(sampleValue(text, 'voidrail_dealers{service="SlowSetupService",state="active"}')).toBe(0);
      slow.finishSetup();
      await waitFor(started, { timeoutMs: 5000, message: "the slow dealer to finish its setup" });
      await waitFor(async () => !(await inSetup()), { timeoutMs: 5000, message: "the dealer to leave the setup state" });
      text = await scrape(url);
      expect(sampleValue(text, 'voidrail_dealers{service="SlowSetupService",state="active"}')).toBe(1);
    } finally {
      for (const [name, value] of [
        ["CUDA_VISIBLE_DEVICES", saved.cuda],
        ["VOIDRAIL_GPU", saved.gpu],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  }, 30_000);

  test("flows: the tree with each node's state as getFlow answers it; a step's flowId; blocked tasks by state", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    const url = router.httpUrl!;
    const probe = new Probe();
    // Three slots: the flow's first step, one keyed task, and a free one the second keyed task may not take.
    await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 3 });
    const client = await cluster.client();
    const root = await client.submitFlow(
      chain(task("GatedService.hold", ["first"]), group([task("GatedService.quick", ["a"]), task("GatedService.quick", ["b"])])),
    );
    await waitFor(() => probe.active === 1, { timeoutMs: 5000, message: "the first step to run" });
    const tree = (await (await fetch(`${url}/api/flows/${root.id}`)).json()) as FlowInfo;
    expect(tree).toEqual(JSON.parse(JSON.stringify(await client.getFlow(root.id))));
    expect(tree.kind).toBe("chain");
    expect(tree.steps!.map((s) => [s.kind, s.state])).toEqual([
      ["task", "running"],
      ["group", "blocked"],
    ]);
    const first = tree.steps![0];
    const step = (await (await fetch(`${url}/api/tasks/${first.id}`)).json()) as { flowId?: string; method: string };
    expect(step.flowId).toBe(root.id);
    expect(step.method).toBe("GatedService.hold");
    const alone = (await (await fetch(`${url}/api/tasks/${root.id}`)).json()) as { flowId?: string; method: string };
    expect(alone.method).toBe("chain");
    // The state filter finds exactly the nodes the tree shows blocked: the group and its members at least.
    const blocked = (await (await fetch(`${url}/api/tasks?state=blocked`)).json()) as { tasks: { id: string }[] };
    const nodes = (node: FlowInfo): FlowInfo[] => [node, ...[...(node.steps ?? []), ...(node.members ?? [])].flatMap(nodes)];
    const blockedInTree = nodes(tree).filter((node) => node.state === "blocked");
    expect(blockedInTree.length).toBeGreaterThanOrEqual(3);
    expect(blocked.tasks.map((t) => t.id).sort()).toEqual(blockedInTree.map((node) => node.id).sort());
    expect(sampleValue(await scrape(url), 'voidrail_tasks{state="blocked"}')).toBe(blockedInTree.length);
    // Two tasks of one concurrency key (limit 1) while a slot is free: the second waits parked.
    const keyed = [0, 1].map((i) => client.submit("GatedService.hold", [`tenant-${i}`], { concurrencyKey: "tenant-a" }));
    const [firstKeyed, secondKeyed] = await Promise.all(keyed);
    await waitFor(() => probe.active === 2, { timeoutMs: 5000, message: "the first keyed task to run" });
    await waitFor(async () => sampleValue(await scrape(url), "voidrail_tasks_parked") === 1, {
      timeoutMs: 5000,
      message: "the second keyed task to be counted parked",
    });
    expect((await client.getTask(secondKeyed.id)).state).toBe("queued");
    probe.gate.open();
    await client.waitTask(root.id, { timeout: 10 });
    await client.waitTask(firstKeyed.id, { timeout: 10 });
    await client.waitTask(secondKeyed.id, { timeout: 10 });
    expect(sampleValue(await scrape(url), "voidrail_tasks_parked")).toBe(0);
    const done = (await (await fetch(`${url}/api/flows/${root.id}`)).json()) as FlowInfo;
    expect(done.state).toBe("succeeded");
    expect(done.steps![1].members!.map((m) => m.state)).toEqual(["succeeded", "succeeded"]);
    // A flow's chain record is no method: retrying it is refused (a copy would wait for ever).
    const later = await client.submitFlow(
      chain(task("GatedService.quick", ["later"], { countdown: 3600 }), task("GatedService.quick", ["then"])),
    );
    expect((await client.revokeTask(later.id)).state).toBe("revoked");
    const refused = await fetch(`${url}/api/tasks/${later.id}/retry`, { method: "POST" });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("the chain of a workflow");
    // A task alone is a one-node tree; bad ids are refused.
    const single = await client.submit("GatedService.quick", ["solo"]);
    expect(await (await fetch(`${url}/api/flows/${single.id}`)).json()).toMatchObject({ id: single.id, kind: "task" });
    expect((await fetch(`${url}/api/flows/not-an-id`)).status).toBe(400);
    expect((await fetch(`${url}/api/flows/0190d4c2-7a8b-7c3d-8e4f-0123456789ab`)).status).toBe(404);
    expect((await fetch(`${url}/api/flows/${root.id}`, { method: "POST" })).status).toBe(405);
  }, 30_000);

  test("schedules: listed as the client lists them, paused and resumed by POST, counted in /metrics", async () => {
    const router = await cluster.router({ http: { port: 0, token: TOKEN } });
    const url = router.httpUrl!;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const post = { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{}" };
    await cluster.dealer((options) => new EchoService(options));
    const client = await cluster.client();
    await client.schedules.set({
      name: "nightly-report",
      cron: "0 3 * * *",
      timezone: "Europe/Berlin",
      method: "EchoService.add",
      args: [1, 2],
    });
    await client.schedules.set({ name: "hourly", every: 3600, method: "EchoService.add", args: [3, 4] });
    const listed = (await (await fetch(`${url}/api/schedules`, { headers: auth })).json()) as { schedules: ScheduleInfo[] };
    expect(listed).toEqual(JSON.parse(JSON.stringify({ schedules: await client.schedules.list() })));
    expect(listed.schedules.map((s) => s.name).sort()).toEqual(["hourly", "nightly-report"]);
    expect(listed.schedules.every((s) => s.nextDueAt !== undefined && !s.paused)).toBe(true);

    // Actions need the token too.
    expect((await fetch(`${url}/api/schedules`)).status).toBe(401);
    expect((await fetch(`${url}/api/schedules/hourly/pause`, { method: "POST" })).status).toBe(401);
    const paused = await fetch(`${url}/api/schedules/hourly/pause`, post);
    expect(paused.status).toBe(200);
    const pausedInfo = (await paused.json()) as ScheduleInfo;
    expect(pausedInfo.paused).toBe(true);
    expect(pausedInfo.nextDueAt).toBeUndefined();
    expect((await client.schedules.list()).find((s) => s.name === "hourly")!.paused).toBe(true);
    let text = await scrape(url, auth);
    expect(sampleValue(text, 'voidrail_schedules{state="paused"}')).toBe(1);
    expect(sampleValue(text, 'voidrail_schedules{state="active"}')).toBe(1);
    const resumed = await fetch(`${url}/api/schedules/hourly/resume`, post);
    expect(resumed.status).toBe(200);
    expect(((await resumed.json()) as ScheduleInfo).paused).toBe(false);
    text = await scrape(url, auth);
    expect(sampleValue(text, 'voidrail_schedules{state="paused"}')).toBe(0);
    expect(sampleValue(text, 'voidrail_schedules{state="active"}')).toBe(2);

    const bad: [string, number, RequestInit][] = [
      ["/api/schedules/nobody/pause", 404, post],
      ["/api/schedules/-bad-name/pause", 400, post],
      [`/api/schedules/${"x".repeat(200)}/resume`, 400, post],
      ["/api/schedules/%E0%A4%A/pause", 400, post],
      ["/api/schedules/hourly/pause", 400, { ...post, body: '{"paused":true}' }],
      ["/api/schedules/hourly/pause", 400, { ...post, body: "[1]" }],
      ["/api/schedules/hourly/pause", 415, { method: "POST", headers: auth, body: "paused=1" }],
      ["/api/schedules/hourly/pause", 405, { headers: auth }],
      ["/api/schedules/hourly/remove", 404, post],
      ["/api/schedules", 405, post],
    ];
    for (const [path, status, init] of bad) {
      const response = await fetch(`${url}${path}`, init);
      expect({ path, status: response.status }).toEqual({ path, status });
      expect(typeof ((await response.json()) as { error: { message: string } }).error.message).toBe("string");
    }
    expect((await client.schedules.list()).every((s) => !s.paused)).toBe(true);
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
      "/api/flows/",
      "/api/schedules",
      "/api/schedules/nightly/pause",
      "/api/schedules/x/resume",
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
