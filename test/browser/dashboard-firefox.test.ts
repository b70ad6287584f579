/**
 * The dashboard in Firefox: Debian's `firefox-esr`, driven over WebDriver BiDi by puppeteer-core
 * (playwright-core drives a stock Firefox only from a newer release than the ESR: it needs BiDi's
 * `network.addDataCollector`). The same page as in Chromium: it signs in by the `?token=` link,
 * loads without console errors, follows a dealer joining (Server-Sent Events), shows a dealer's
 * GPUs and tags and a flow's tree, pauses a schedule from the page, draws a method's queue over
 * time, and fits a phone's width.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { type ClientDealer, chain, type ServiceRouter, task } from "../../src/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";
import { EchoService, GatedService, Probe } from "../fixtures/services.ts";

const TOKEN = "dashboard-firefox-token";
const FIREFOX = process.env.FIREFOX_PATH ?? "/usr/bin/firefox-esr";
/** Time for the page to show a change: the feed pushes once a second; a loaded machine is slow. */
const LIVE_MS = 15_000;
/** Firefox's start (a fresh profile) on a loaded machine, and one test's few live updates. */
const LAUNCH_MS = 60_000;
const TEST_MS = 90_000;

let browser: Browser;
let cluster: Cluster;
let router: ServiceRouter;
let client: ClientDealer;
let url: string;

beforeAll(async () => {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: apt-get install -y firefox-esr (see .ci/run)`);
  browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    timeout: LAUNCH_MS,
    defaultViewport: null,
    // Firefox refuses to start when $HOME belongs to another user (root in CI containers).
    env: { ...process.env, HOME: process.env.HOME ?? "/root" },
  });
  cluster = new Cluster("tcp");
  router = await cluster.router({ http: { port: 0, token: TOKEN } });
  url = router.httpUrl!;
  client = await cluster.client();
}, LAUNCH_MS + 30_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.dispose();
}, TEST_MS);

/**
 * A page of this viewport size, signed in. puppeteer's setViewport sends BiDi's
 * `browsingContext.setViewport` and `emulation.setScreenOrientationOverride` together; the ESR
 * knows only the first, so that one's refusal is let pass and the size is checked instead.
 */
async function signedIn(width: number, height: number): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width, height }).catch((error: Error) => {
    if (!error.message.includes("setScreenOrientationOverride")) throw error;
  });
  const size = async () => JSON.stringify(await page.evaluate(() => [window.innerWidth, window.innerHeight]));
  await waitFor(async () => (await size()) === JSON.stringify([width, height]), {
    timeoutMs: LIVE_MS,
    message: `the viewport to be ${width}x${height}`,
  });
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  const response = await page.goto(`${url}/?token=${TOKEN}`, { timeout: LIVE_MS });
  expect(response?.status()).toBe(200);
  // waitForFunction would compile its function in the page, which the dashboard's CSP forbids.
  await page.waitForSelector('[data-stat="live"].on', { timeout: LIVE_MS });
  return { page, errors };
}

describe("the dashboard in Firefox", () => {
  test(
    "refuses without the token",
    async () => {
      const page = await browser.newPage();
      const response = await page.goto(`${url}/`, { timeout: LIVE_MS });
      expect(response?.status()).toBe(401);
      expect(await page.$$eval("form[action='/login'] input[name=token]", (inputs) => inputs.length)).toBe(1);
      await page.close();
    },
    TEST_MS,
  );

  test(
    "live dealers with GPUs and tags, a flow's tree, a schedule paused from the page, no console errors",
    async () => {
      const { page, errors } = await signedIn(1280, 900);
      const saved = { cuda: process.env.CUDA_VISIBLE_DEVICES, gpu: process.env.VOIDRAIL_GPU };
      // A gpu tag given: the dealer does not ask nvidia-smi, whose answer the process keeps (tags-setup.test.ts fakes it).
      const dealer = await cluster.dealer((options) => new EchoService(options), { gpus: ["0"], tags: { zone: "eu-1", gpu: "h200" } });
      for (const [name, value] of [
        ["CUDA_VISIBLE_DEVICES", saved.cuda],
        ["VOIDRAIL_GPU", saved.gpu],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      // The dealer joined after the page opened: it arrives by the live feed.
      const row = `#dealers tr[data-dealer="${dealer.dealerId}"]`;
      await page.waitForSelector(row, { timeout: LIVE_MS });
      expect(await page.$eval(`${row} [data-col="gpus"]`, (cell) => cell.textContent)).toBe("0");
      expect(await page.$eval(`${row} [data-col="tags"]`, (cell) => cell.textContent)).toContain("zone=eu-1");

      const flow = await client.submitFlow(chain(task("EchoService.add", [1, 2]), task("EchoService.add", [3])));
      await client.waitTask(flow.id, { timeout: LIVE_MS / 1000 });
      await page.type("#task-search", flow.id);
      await page.click("#task-find");
      await page.waitForSelector(`#tasks tr[data-task="${flow.id}"]`, { timeout: LIVE_MS });
      await page.click(`#tasks tr[data-task="${flow.id}"]`);
      const tree = await client.getFlow(flow.id);
      for (const node of [tree, ...tree.steps!]) {
        await page.waitForSelector(`#flow-tree li[data-flow-node="${node.id}"][data-state="succeeded"]`, { timeout: LIVE_MS });
      }

      await client.schedules.set({
        name: "firefox-nightly",
        cron: "0 3 * * *",
        timezone: "Europe/Berlin",
        method: "EchoService.add",
        args: [1, 2],
      });
      const schedule = '#schedules tr[data-schedule="firefox-nightly"]';
      await page.waitForSelector(`${schedule}[data-paused="false"]`, { timeout: LIVE_MS });
      await page.click(`${schedule} button`);
      await page.waitForSelector(`${schedule}[data-paused="true"]`, { timeout: LIVE_MS });
      expect((await client.schedules.list()).find((s) => s.name === "firefox-nightly")?.paused).toBe(true);
      expect(errors).toEqual([]);
      await page.close();
      await dealer.stop();
    },
    TEST_MS,
  );

  test(
    "a method with calls waiting: its row's sparkline, no console errors",
    async () => {
      const probe = new Probe();
      const gated = await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 1 });
      const { page, errors } = await signedIn(1280, 900);
      const held = ["a", "b", "c"].map((tag) => client.call("GatedService.hold", [tag]));
      try {
        // CSS only: the CSP forbids the function waitForFunction would compile in the page.
        await page.waitForSelector(
          '#queues tr[data-method="GatedService.hold"] svg.spark[data-method="GatedService.hold"][data-peak-depth="2"] path[d^="M"]',
          { timeout: LIVE_MS },
        );
      } finally {
        probe.gate.open();
      }
      await Promise.all(held);
      expect(errors).toEqual([]);
      await page.close();
      await gated.stop();
    },
    TEST_MS,
  );

  test(
    "fits a phone's width",
    async () => {
      await cluster.dealer((options) => new EchoService(options));
      const { page, errors } = await signedIn(390, 844);
      await page.waitForSelector("#dealers tr[data-dealer]", { timeout: LIVE_MS });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      expect(errors).toEqual([]);
      await page.close();
    },
    TEST_MS,
  );
});
