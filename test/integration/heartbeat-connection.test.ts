/**
 * BEAT (docs/PROTOCOL.md §4.13, §10): a dealer's heartbeat connection keeps the dealer registered
 * while its own connection is silent, and only while the BEATs keep coming. The dealer's own
 * connection is a raw ZMTP peer that never answers PING, so nothing else can keep it alive.
 */
import { afterEach, expect, test } from "bun:test";
import { ClientDealer, type Logger, ServiceRouter, silentLogger } from "../../src/index.ts";
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from "../../src/protocol/index.ts";
import { Dealer } from "../../src/zmtp/index.ts";
import { RawPeer } from "../helpers/raw-peer.ts";
import { connectionTimings } from "../../src/router/connection-timings.ts";
import { waitFor, withinLoaded } from "../helpers/wait.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const DEALER_KEY = "dealer-key-0123456789";
const CLIENT_KEY = "client-key-0123456789";
const HEARTBEAT_TIMEOUT_S = 0.4;
const { heartbeatTimeoutMs: TIMEOUT_MS, heartbeatIntervalMs: INTERVAL_MS } = connectionTimings(HEARTBEAT_TIMEOUT_S);

/**
 * A router (heartbeat timeout 0.4 s, so PINGs every 100 ms), a client, and a registered raw
 * dealer; with `auth`, the router requires keys of both.
 */
async function silentDealer(auth = false) {
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (message) => warnings.push(message) };
  const router = new ServiceRouter({
    address: "tcp://127.0.0.1:0",
    heartbeatTimeout: HEARTBEAT_TIMEOUT_S,
    logger,
    ...(auth ? { requireAuth: true, dealerApiKeys: [DEALER_KEY], clientApiKeys: [CLIENT_KEY] } : {}),
  });
  await router.start();
  cleanups.push(() => router.stop());
  const client = new ClientDealer({
    routerAddress: router.address,
    timeout: 5,
    logger: silentLogger,
    ...(auth ? { apiKey: CLIENT_KEY } : {}),
  });
  await client.connect();
  cleanups.push(() => client.close());
  const dealer = await RawPeer.connect(router.address);
  cleanups.push(() => dealer.destroy());
  await dealer.handshake({ socketType: "DEALER" });
  const hello = {
    role: "dealer" as const,
    version: PROTOCOL_VERSION,
    service: "Quiet",
    methods: { "Quiet.work": { stream: false } },
    ...(auth ? { apiKey: DEALER_KEY } : {}),
  };
  dealer.sendMessage(encodeMessage("HELLO", hello));
  // The last thing the dealer's own connection ever sends.
  const helloAt = Date.now();
  const welcome = decodeMessage(await dealer.message(0, 2000, "WELCOME"), "dealer");
  if (!welcome.ok || welcome.kind !== "WELCOME") throw new Error(`expected WELCOME, got ${JSON.stringify(welcome)}`);
  expect(welcome.header.beatToken).toMatch(/^[A-Za-z0-9_-]{22,128}$/);
  return { router, client, dealer, token: welcome.header.beatToken!, helloAt, warnings };
}

/** Our Dealer as a heartbeat connection, sending BEAT with `token` every 100 ms until stopped. */
function beatEvery100ms(address: string, token: string): { stop(): void } {
  const beats = new Dealer({ logger: null });
  beats.connect(address);
  const frames = encodeMessage("BEAT", { token });
  const timer = setInterval(() => void beats.send(frames), 100);
  const stop = () => {
    clearInterval(timer);
    beats.close();
  };
  cleanups.push(stop);
  return { stop };
}

test.each([
  ["", false],
  [" (router requiring keys: the token is a BEAT's only credential)", true],
])(
  "BEATs on a second connection keep a dealer whose own connection never answers PING; when they stop, it is dropped%s",
  async (_, auth) => {
    const { router, client, dealer, token, helloAt, warnings } = await silentDealer(auth);
    const heartbeat = beatEvery100ms(router.address, token);
    // 15 unanswered PINGs on the dealer's own connection: 1.5 s, almost 4x the heartbeat timeout.
    await waitFor(() => dealer.commands.filter((c) => c.name === "PING").length >= 15, {
      timeoutMs: 5000,
      message: "15 PINGs to the silent dealer",
    });
    expect(dealer.closed).toBe(false);
    const clusters = await client.discoverClusters();
    expect(clusters.map((c) => c.service)).toEqual(["Quiet"]);
    // lastHeartbeat follows the BEATs, not the silent connection (last heard from at its HELLO,
    // 15 PINGs ago).
    expect(Date.parse(clusters[0].lastHeartbeat) - helloAt).toBeGreaterThanOrEqual(10 * INTERVAL_MS);

    heartbeat.stop();
    await dealer.closedWithin(withinLoaded(TIMEOUT_MS + INTERVAL_MS), "the router to drop the dealer once the BEATs stopped");
    // Dropped by the ordinary rule, measured by the router's own clock (the silence it states):
    // between the timeout and the timeout plus one interval, plus one interval of scheduling slack.
    const line = await waitFor(async () => warnings.some((warning) => /heartbeat timeout/.test(warning)), {
      timeoutMs: withinLoaded(0),
      message: "the router's line about the dropped dealer",
    }).then(() => warnings.find((warning) => /heartbeat timeout/.test(warning))!);
    const silentMs = Number(/peer silent for (\d+) ms/.exec(line)?.[1]);
    expect(silentMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(silentMs).toBeLessThanOrEqual(TIMEOUT_MS + 2 * INTERVAL_MS);
    await waitFor(async () => (await client.discoverClusters()).length === 0, {
      timeoutMs: withinLoaded(0),
      message: "the dealer gone from monitoring",
    });
  },
  15_000,
);

test("a BEAT with another token keeps nothing alive and gets no answer; a malformed BEAT is refused with PROTOCOL_ERROR", async () => {
  const { router, dealer } = await silentDealer();
  // A token that no registration holds: the silent dealer is dropped as if there were no BEATs.
  const stranger = await RawPeer.connect(router.address);
  cleanups.push(() => stranger.destroy());
  await stranger.handshake({ socketType: "DEALER" });
  const timer = setInterval(() => stranger.sendMessage(encodeMessage("BEAT", { token: "A".repeat(22) })), 100);
  cleanups.push(() => clearInterval(timer));
  await dealer.closedWithin(withinLoaded(TIMEOUT_MS + INTERVAL_MS), "the router to drop the dealer despite BEATs with an unknown token");
  expect(stranger.messages).toEqual([]);

  stranger.sendMessage(encodeMessage("BEAT", { token: "short" }));
  const refusal = decodeMessage(await stranger.message(0, 2000, "the answer to a malformed BEAT"), "client");
  if (!refusal.ok || refusal.kind !== "ERROR") throw new Error(`expected ERROR, got ${JSON.stringify(refusal)}`);
  expect(refusal.header.code).toBe("PROTOCOL_ERROR");
  expect(refusal.header.message).toContain("token");
  expect(refusal.header.message).not.toContain("short");
}, 15_000);
