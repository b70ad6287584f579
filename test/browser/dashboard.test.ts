/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * it refuses without the token, loads without console errors, shows the registered dealers,
 * follows dealers joining and leaving and calls running (Server-Sent Events), finds a task by
 * id and revokes it while it runs, shows a dealer's host, GPUs and tags, a flow's tree and the
 * schedules (one paused and resumed from the page), each method's queue over time (a sparkline
 * per row), and fits a phone's width. A screenshot under load is saved
 * to test-artifacts/dashboard.png.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { type ClientDealer, chain, group, type ServiceDealer, type ServiceRouter, task } from "../../src/index.ts";
import { Cluster, ROOT } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";
import { EchoService, Gate, GatedService, Probe } from "../fixtures/services.ts";

const TOKEN = "dashboard-test-token";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test-artifacts");
/** Time for the page to show a change: the feed pushes once a second; a loaded machine is slow. */
const LIVE_MS = 15_000;
/** A test's own limit: a few live updates and a browser page or two on a loaded machine. */
const TEST_MS = 90_000;

let browser: Browser;
let cluster: Cluster;
let router: ServiceRouter;
let client: ClientDealer;
let url: string;
const probe = new Probe();

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  cluster = new Cluster("tcp");
  router = await cluster.router({ http: { port: 0, token: TOKEN } });
  url = router.httpUrl!;
  await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 2 });
  client = await cluster.client();
}, TEST_MS);

afterAll(async () => {
  await browser?.close();
  await cluster?.dispose();
}, TEST_MS);

/** A page with its console errors and uncaught exceptions collected. */
async function openPage(width = 1280, height = 900): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  return { page, errors };
}

async function signedIn(width?: number, height?: number): Promise<{ page: Page; errors: string[] }> {
  const opened = await openPage(width, height);
  const response = await opened.page.goto(`${url}/?token=${TOKEN}`);
  expect(response?.status()).toBe(200);
  await opened.page.waitForSelector('[data-stat="live"] strong:text("connected")', { timeout: LIVE_MS });
  return opened;
}

describe("the dashboard in Chromium", () => {
  test(
    "refuses without the token: the login form, and 401 from the API",
    async () => {
      const { page } = await openPage();
      const response = await page.goto(`${url}/`);
      expect(response?.status()).toBe(401);
      expect(await page.locator("form[action='/login'] input[name=token]").count()).toBe(1);
      const api = await page.evaluate(async () => (await fetch("/api/router")).status);
      expect(api).toBe(401);
      await page.fill("input[name=token]", "wrong-token-value");
      await page.click("button[type=submit]");
      await page.waitForSelector(".error");
      await page.fill("input[name=token]", TOKEN);
      await page.click("button[type=submit]");
      await page.waitForSelector("#dealers", { timeout: LIVE_MS });
      await page.context().close();
    },
    TEST_MS,
  );

  test(
    "loads without console errors and shows the registered dealers",
    async () => {
      const { page, errors } = await signedIn();
      await page.waitForSelector('#dealers tr[data-dealer^="GatedService-"]', { timeout: LIVE_MS });
      expect(await page.locator("#queues tr[data-method='GatedService.hold']").count()).toBe(1);
      expect(errors).toEqual([]);
      await page.context().close();
    },
    TEST_MS,
  );

  test(
    "follows a dealer joining, calls running, and the dealer leaving when drained from the page",
    async () => {
      const { page, errors } = await signedIn();
      const echo: ServiceDealer = await cluster.dealer((options) => new EchoService(options));
      await page.waitForSelector('#dealers tr[data-dealer^="EchoService-"]', { timeout: LIVE_MS });
      const before = Number(await page.locator('[data-stat="calls"] strong').textContent());
      for (let i = 0; i < 40; i++) await client.call("EchoService.add", [i, i]);
      await page.waitForFunction(
        (least) => Number(document.querySelector('[data-stat="calls"] strong')?.textContent) >= least,
        before + 40,
        {
          timeout: LIVE_MS,
        },
      );
      // It leaves by the page's Drain button: the router drains it and it stops by itself.
      await page.locator(`#dealers tr[data-dealer="${echo.dealerId}"] button`).click();
      await page.waitForSelector('#dealers tr[data-dealer^="EchoService-"]', { state: "detached", timeout: LIVE_MS });
      await echo.drainedByRouter;
      expect(errors).toEqual([]);
      await page.context().close();
    },
    TEST_MS,
  );

  test(
    "finds a task by id and revokes it while it runs",
    async () => {
      const { page, errors } = await signedIn();
      const task = await client.submit("GatedService.hold", ["to-revoke"]);
      await page.fill("#task-search", task.id);
      await page.click("#task-find");
      const row = page.locator(`#tasks tr[data-task="${task.id}"]`);
      await row.waitFor({ timeout: LIVE_MS });
      expect(await page.locator("#tasks tbody tr").count()).toBe(1);
      await row.click();
      await page.waitForSelector(`#task-detail[data-task="${task.id}"] #task-state:text("running")`, { timeout: LIVE_MS });
      await page.click("#revoke");
      await page.waitForSelector('#task-state:text("revoked")', { timeout: LIVE_MS });
      expect((await client.getTask(task.id)).state).toBe("revoked");
      expect(errors).toEqual([]);
      await page.context().close();
    },
    TEST_MS,
  );

  test(
    "shows a dealer's host, GPUs and tags, a flow's tree with each node's state, and pauses and resumes a schedule",
    async () => {
      // `gpus` sets CUDA_VISIBLE_DEVICES and VOIDRAIL_GPU for the process: put them back so later dealers have none.
      const saved = { cuda: process.env.CUDA_VISIBLE_DEVICES, gpu: process.env.VOIDRAIL_GPU };
      let gpuDealer: ServiceDealer;
      try {
        // A gpu tag given: the dealer does not ask nvidia-smi, whose answer the process keeps (tags-setup.test.ts fakes it).
        gpuDealer = await cluster.dealer((options) => new EchoService(options), { gpus: ["0", "1"], tags: { zone: "eu-1", gpu: "h200" } });
      } finally {
        for (const [name, value] of [
          ["CUDA_VISIBLE_DEVICES", saved.cuda],
          ["VOIDRAIL_GPU", saved.gpu],
        ] as const) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
      await client.schedules.set({
        name: "nightly-report",
        cron: "0 3 * * *",
        timezone: "Europe/Berlin",
        method: "EchoService.add",
        args: [1, 2],
      });
      await client.schedules.set({ name: "hourly-sum", every: 3600, method: "EchoService.add", args: [3, 4] });
      const flow = await client.submitFlow(
        chain(task("EchoService.add", [1, 2]), group([task("EchoService.add", [10]), task("EchoService.add", ["not a number"])])),
      );
      await client.waitTask(flow.id, { timeout: LIVE_MS / 1000 }).catch(() => undefined);
      const { page, errors } = await signedIn();

      const row = page.locator(`#dealers tr[data-dealer="${gpuDealer.dealerId}"]`);
      await row.waitFor({ timeout: LIVE_MS });
      expect(await row.locator('[data-col="host"]').textContent()).toBe(hostname());
      expect(await row.locator('[data-col="gpus"]').textContent()).toBe("0, 1");
      expect(await row.locator('[data-col="tags"]').textContent()).toContain("zone=eu-1");
      expect(await row.locator('[data-col="tags"]').textContent()).toContain("gpu=h200");

      // The flow's root found by id: its tree, each node with its state as getFlow reports it.
      await page.fill("#task-search", flow.id);
      await page.click("#task-find");
      await page.locator(`#tasks tr[data-task="${flow.id}"]`).click({ timeout: LIVE_MS });
      const tree = await client.getFlow(flow.id);
      const nodes = [tree, ...tree.steps!, ...tree.steps![1].members!];
      for (const node of nodes) {
        await page.waitForSelector(`#flow-tree li[data-flow-node="${node.id}"][data-state="${node.state}"]`, { timeout: LIVE_MS });
      }
      expect(await page.locator("#flow-tree li[data-flow-node]").count()).toBe(nodes.length);
      // The failed chain is no method to run again: no retry button (its failed member has one).
      expect(await page.locator("#task-detail #retry").count()).toBe(0);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.locator("#task-detail").screenshot({ path: join(ARTIFACTS, "dashboard-flow.png") });
      // A node picked in the tree opens that task, and the tree stays with the whole flow.
      const failedMember = tree.steps![1].members![1];
      await page.locator(`#flow-tree li[data-flow-node="${failedMember.id}"] > button`).click();
      await page.waitForSelector(`#task-detail[data-task="${failedMember.id}"] #task-state:text("failed")`, { timeout: LIVE_MS });
      expect(await page.locator("#task-detail #retry").count()).toBe(1);
      await page.waitForSelector(`#flow-tree li[data-flow-node="${flow.id}"]`, { timeout: LIVE_MS });

      // Schedules: listed live; paused and resumed by the page's button, as the router then reports.
      const schedule = page.locator('#schedules tr[data-schedule="nightly-report"]');
      await page.waitForSelector('#schedules tr[data-schedule="nightly-report"][data-paused="false"]', { timeout: LIVE_MS });
      expect(await schedule.textContent()).toContain("0 3 * * *");
      expect(await schedule.textContent()).toContain("Europe/Berlin");
      expect(await page.locator('#schedules tr[data-schedule="hourly-sum"]').textContent()).toContain("every 3600 s");
      await schedule.locator("button").click();
      await page.waitForSelector('#schedules tr[data-schedule="nightly-report"][data-paused="true"]', { timeout: LIVE_MS });
      expect((await client.schedules.list()).find((s) => s.name === "nightly-report")?.paused).toBe(true);
      await schedule.locator("button:text('Resume')").click();
      await page.waitForSelector('#schedules tr[data-schedule="nightly-report"][data-paused="false"]', { timeout: LIVE_MS });
      expect((await client.schedules.list()).find((s) => s.name === "nightly-report")?.paused).toBe(false);
      // A flow waiting on a step due in an hour: its next step is blocked, and the state filter finds it.
      const waiting = await client.submitFlow(chain(task("EchoService.add", [1, 2], { countdown: 3600 }), task("EchoService.add", [3])));
      const waitingTree = await client.getFlow(waiting.id);
      const blockedStep = waitingTree.steps![1];
      expect(blockedStep.state).toBe("blocked");
      await page.fill("#task-search", "");
      await page.selectOption("select[name=state]", "blocked");
      await page.click("#task-find");
      await page.locator(`#tasks tr[data-task="${blockedStep.id}"]`).click({ timeout: LIVE_MS });
      await page.waitForSelector(`#task-detail[data-task="${blockedStep.id}"] #task-state:text("blocked")`, { timeout: LIVE_MS });
      await page.waitForSelector(`#flow-tree li[data-flow-node="${waitingTree.steps![0].id}"][data-state="scheduled"]`, {
        timeout: LIVE_MS,
      });
      await client.revokeTask(waiting.id);
      expect(errors).toEqual([]);
      await page.context().close();
    },
    TEST_MS,
  );

  test(
    "calls waiting on two methods: each method's row shows its queue over time",
    async () => {
      const { page, errors } = await signedIn();
      const waiting = (method: string) => router.waitingCalls().get(method)?.count ?? 0;
      // The gated dealer's two slots fill with held calls; the rest of them, and the quick ones, wait.
      const held = [0, 1, 2, 3].map((i) => client.call("GatedService.hold", [`spark-${i}`]));
      await waitFor(() => waiting("GatedService.hold") >= 2, { timeoutMs: LIVE_MS, message: "held calls waiting" });
      const quick = [0, 1].map((i) => client.call("GatedService.quick", [`spark-q${i}`]));
      await waitFor(() => waiting("GatedService.quick") === 2, { timeoutMs: LIVE_MS, message: "quick calls waiting" });
      try {
        for (const [method, least] of [
          ["GatedService.hold", 2],
          ["GatedService.quick", 2],
        ] as const) {
          const spark = `#queues tr[data-method="${method}"] svg.spark[data-method="${method}"]`;
          await page.waitForFunction(
            ({ selector, depth }) => Number(document.querySelector(selector)?.getAttribute("data-peak-depth")) >= depth,
            { selector: spark, depth: least },
            { timeout: LIVE_MS },
          );
          // Both lines drawn: waiting calls and the oldest one's age.
          const paths = await page.locator(`${spark} path`).evaluateAll((elements) => elements.map((e) => e.getAttribute("d") ?? ""));
          expect(paths).toHaveLength(2);
          for (const d of paths) expect(d).toMatch(/^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+)+/);
          const peak = await page.locator(spark).getAttribute("data-peak-depth");
          expect(await page.locator(spark).getAttribute("aria-label")).toContain(`up to ${peak} waiting`);
        }
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.locator("#queues").screenshot({ path: join(ARTIFACTS, "dashboard-queues.png") });
      } finally {
        probe.gate.open();
      }
      await Promise.all([...held, ...quick]);
      // Later tests hold calls again.
      probe.gate = new Gate();
      expect(errors).toEqual([]);
      await page.context().close();
    },
    TEST_MS,
  );

  test(
    "under load, on a laptop and a phone: a screenshot for the README",
    async () => {
      const echo = await cluster.dealer((options) => new EchoService(options), { maxConcurrent: 4 });
      await cluster.dealer((options) => new EchoService(options), { instanceId: "worker-b", maxConcurrent: 4 });
      // Some work waits in the queue while the gated dealer is busy, some tasks finish or fail.
      const held = [0, 1, 2, 3, 4].map((i) => client.call("GatedService.hold", [`load-${i}`]).catch(() => undefined));
      for (let i = 0; i < 3; i++) await client.submit("EchoService.add", [i, 1]);
      await client.submit("EchoService.add", ["not a number", 1]);
      let running = true;
      const load = (async () => {
        while (running) await Promise.all(Array.from({ length: 8 }, (_, i) => client.call("EchoService.square", [i])));
      })();
      const { page, errors } = await signedIn(1280, 1100);
      await page.waitForFunction(() => document.querySelectorAll("#dealers tr[data-dealer]").length >= 3, undefined, { timeout: LIVE_MS });
      // Let a few seconds of points reach the charts.
      await page.waitForFunction(
        () =>
          Number(document.querySelector('[data-stat="calls"] strong')?.textContent) > 0 &&
          document.querySelectorAll(".u-legend").length >= 3,
        undefined,
        { timeout: LIVE_MS },
      );
      const start = Date.now();
      await page.waitForFunction((t) => Date.now() - t > 4000, start, { timeout: LIVE_MS, polling: 500 });
      // A failed task opened: its error, attempts and timeline show beside the list.
      await page.locator("#tasks tbody tr:has(.badge.failed)").first().click({ timeout: LIVE_MS });
      await page.waitForSelector('#task-detail #task-state:text("failed")', { timeout: LIVE_MS });
      await page.waitForSelector('#task-detail pre:text("not a number")', { timeout: LIVE_MS });
      expect(await page.locator("#task-detail #retry").count()).toBe(1);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

      const phone = await signedIn(390, 844);
      await phone.page.waitForSelector("#dealers tr[data-dealer]", { timeout: LIVE_MS });
      const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      await phone.page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
      running = false;
      await load;
      probe.gate.open();
      await Promise.all(held);
      await echo.stop();
      expect(errors).toEqual([]);
      expect(phone.errors).toEqual([]);
      await page.context().close();
      await phone.page.context().close();
    },
    TEST_MS,
  );
});
