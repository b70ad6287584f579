/**
 * No connection to a ServiceRouter stays open forever without saying who it is. Below VoidRail,
 * ZMTP's handshakeInterval and heartbeats close a peer that stalls (test/integration/
 * zmtp-stalled-peers.test.ts); but a peer whose ZMTP library answers PING by itself (libzmq, our
 * Dealer) passes those, so with client keys required the router also gives every new connection
 * a deadline to be welcomed (HELLO with a valid key) or to vouch for a dealer (a valid BEAT).
 *
 * Deadlines come from the router's own settings (connectionTimings), plus LOAD_SLACK_MS.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { ClientDealer, type Logger, ServiceRouter } from "../../src/index.ts";
import { decodeMessage, encodeMessage } from "../../src/protocol/index.ts";
import { connectionTimings } from "../../src/router/connection-timings.ts";
import { Dealer } from "../../src/zmtp/index.ts";
import { RawPeer } from "../helpers/raw-peer.ts";
import { waitFor, withinLoaded } from "../helpers/wait.ts";

const CLIENT_KEY = "client-key-stalled";
const DEALER_KEY = "dealer-key-stalled";
const HEARTBEAT_TIMEOUT_S = 1;
const timings = connectionTimings(HEARTBEAT_TIMEOUT_S);
const TIMER_GRANULARITY_MS = 20;

/**
 * The session the chaos suite's mutation produced (seed 863957907, mutated stream 122): a valid
 * client session whose greeting says ZMTP 3.0 (byte 11 flipped from 1 to 0), cut off inside its
 * HELLO's header frame. Before the fix it was never closed.
 */
const CHAOS_SESSION = Buffer.from(
  "ff00000000000000017f03004e554c4c0000000000000000000000000000000000000000000000000000000000000000" +
    "0000000000000000000000000000000004290552454144590b536f636b65742d54797065000000064445414c45520849" +
    "64656e7469747900000000010456525031010548454c4c4f00397b22726f6c65223a22636c6d656e74222c2276657273" +
    "696f6e223a312c226170694b6579223a22634c69656e742d6b65792d6368616f73",
  "hex",
);

function capture(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { logger: { error: (m) => warnings.push(`error ${m}`), warn: (m) => warnings.push(m), info() {}, debug() {} }, warnings };
}

/** A bare ZMTP DEALER (it answers PING on its own), recording when it connected and when it was first closed. */
class ZmtpPeer {
  readonly socket = new Dealer({ logger: null, reconnectInterval: 60_000 });
  readonly received: ReturnType<typeof decodeMessage>[] = [];
  /** Before connecting: no earlier than the router's handshake, whatever this process's pauses. */
  readonly createdAt = Date.now();
  handshakeAt: number | undefined;
  closed: Promise<{ at: number; why: string }>;

  constructor(address: string) {
    this.socket.events.once("handshake", () => {
      this.handshakeAt = Date.now();
    });
    this.closed = new Promise((resolve) =>
      this.socket.events.once("disconnect", ({ error }) => resolve({ at: Date.now(), why: error?.message ?? "closed cleanly" })),
    );
    this.socket.connect(address);
    void (async () => {
      for await (const frames of this.socket) this.received.push(decodeMessage(frames, "dealer"));
    })();
  }

  send(frames: Uint8Array[]): void {
    void this.socket.send(frames);
  }

  async next(count: number, what: string): Promise<ReturnType<typeof decodeMessage>> {
    await waitFor(() => this.received.length >= count, { timeoutMs: withinLoaded(0), message: what });
    return this.received[count - 1];
  }

  close(): void {
    this.socket.close();
  }
}

describe("with client keys required, every connection must authenticate within the HELLO deadline", () => {
  let router: ServiceRouter;
  const { logger, warnings } = capture();

  beforeAll(async () => {
    router = new ServiceRouter({
      address: "tcp://127.0.0.1:0",
      heartbeatTimeout: HEARTBEAT_TIMEOUT_S,
      requireAuth: true,
      clientApiKeys: [CLIENT_KEY],
      dealerApiKeys: [DEALER_KEY],
      logger,
    });
    await router.start();
  });
  afterAll(() => router.stop());

  test("a peer that completes ZMTP, answers every PING and never says HELLO is closed at the deadline, with one log line", async () => {
    const peer = new ZmtpPeer(router.address);
    try {
      const closed = await waitFor(peer.closed, {
        timeoutMs: withinLoaded(timings.handshakeIntervalMs + timings.helloTimeoutMs),
        message: "the router to close a connection that never said HELLO",
      });
      expect(closed.why).toMatch(/no VoidRail HELLO with a valid key within 1000 ms/);
      expect(closed.at - peer.createdAt).toBeGreaterThanOrEqual(timings.helloTimeoutMs - TIMER_GRANULARITY_MS);
      expect(warnings.filter((line) => line.includes("no VoidRail HELLO"))).toHaveLength(1);
    } finally {
      peer.close();
    }
  });

  test("a HELLO with a wrong key is refused and does not stop the clock", async () => {
    const peer = new ZmtpPeer(router.address);
    try {
      peer.send(encodeMessage("HELLO", { role: "client", version: 1, apiKey: "a guess" }));
      const answer = await peer.next(1, "the answer to a HELLO with a wrong key");
      expect(answer.ok && answer.kind).toBe("ERROR");
      const closed = await waitFor(peer.closed, {
        timeoutMs: withinLoaded(timings.handshakeIntervalMs + timings.helloTimeoutMs),
        message: "the router to close a connection whose HELLO failed",
      });
      expect(closed.why).toMatch(/no VoidRail HELLO/);
    } finally {
      peer.close();
    }
  });

  test("a welcomed client, a registered dealer and its heartbeat connection (BEAT only) are not closed", async () => {
    const client = new ClientDealer({ routerAddress: router.address, apiKey: CLIENT_KEY, logger: capture().logger });
    const dealer = new ZmtpPeer(router.address);
    const beats = new ZmtpPeer(router.address);
    try {
      await client.connect();
      dealer.send(
        encodeMessage("HELLO", {
          role: "dealer",
          version: 1,
          service: "Idle",
          methods: { "Idle.m": { stream: false } },
          apiKey: DEALER_KEY,
        }),
      );
      const welcome = await dealer.next(1, "the dealer's WELCOME");
      if (!welcome.ok || welcome.kind !== "WELCOME") throw new Error(`expected WELCOME, got ${JSON.stringify(welcome)}`);
      beats.send(encodeMessage("BEAT", { token: (welcome.header as { beatToken: string }).beatToken }));
      // The witness connects after all three and never says HELLO: once it is closed, all three
      // have been connected for longer than the deadline.
      const witness = new ZmtpPeer(router.address);
      try {
        await waitFor(witness.closed, {
          timeoutMs: withinLoaded(timings.handshakeIntervalMs + timings.helloTimeoutMs),
          message: "the witness to be closed at its HELLO deadline",
        });
      } finally {
        witness.close();
      }
      const info = await client.getRouterInfo();
      expect(info.activeDealers).toBe(1);
      const settled = await Promise.race([dealer.closed, beats.closed, Promise.resolve("still open")]);
      expect(settled).toBe("still open");
    } finally {
      await client.close();
      dealer.close();
      beats.close();
    }
  });

  test("a peer dripping its HELLO a byte at a time (traffic the heartbeat counts) is closed at the HELLO deadline", async () => {
    const raw = await RawPeer.connect(router.address);
    let dripping = true;
    try {
      // Timed before the handshake: the router's clock starts after this, whatever this process's pauses.
      const handshakeAt = Date.now();
      await raw.handshake({ socketType: "DEALER" });
      const hello = Buffer.concat(
        encodeMessage("HELLO", { role: "client", version: 1, apiKey: CLIENT_KEY }).map((frame, i, all) =>
          Buffer.concat([Buffer.from([i < all.length - 1 ? 1 : 0, frame.length]), frame]),
        ),
      );
      // A byte every heartbeat interval: the ZMTP heartbeat sees a live peer; only the HELLO deadline can end it.
      void (async () => {
        for (let i = 0; i < hello.length - 1 && dripping && !raw.closed; i++) {
          raw.write(hello.subarray(i, i + 1));
          await new Promise((resolve) => setTimeout(resolve, timings.heartbeatIntervalMs)); // pacing the drip, not synchronising
        }
      })();
      await raw.closedWithin(withinLoaded(timings.helloTimeoutMs), "the router to close a peer dripping its HELLO");
      expect(raw.closedAt! - handshakeAt).toBeGreaterThanOrEqual(timings.helloTimeoutMs - TIMER_GRANULARITY_MS);
      expect(raw.commands.find((command) => command.name === "ERROR")?.data.toString()).toContain("no VoidRail HELLO");
    } finally {
      dripping = false;
      raw.destroy();
    }
  });

  test("the chaos suite's session (ZMTP 3.0, cut off inside its HELLO) is closed", async () => {
    const raw = await RawPeer.connect(router.address);
    try {
      raw.write(CHAOS_SESSION);
      await raw.closedWithin(withinLoaded(timings.silentPeerClosedWithinMs), "the router to close the chaos suite's stalled 3.0 session");
    } finally {
      raw.destroy();
    }
  });
});

describe("without client keys, HELLO is optional and there is no HELLO deadline", () => {
  let router: ServiceRouter;
  const { logger } = capture();

  beforeAll(async () => {
    router = new ServiceRouter({ address: "tcp://127.0.0.1:0", heartbeatTimeout: HEARTBEAT_TIMEOUT_S, logger });
    await router.start();
  });
  afterAll(() => router.stop());

  test("a quiet peer that answers PING stays connected; a peer that answers nothing is closed by the heartbeat", async () => {
    const quiet = new ZmtpPeer(router.address);
    try {
      await waitFor(() => quiet.handshakeAt !== undefined, { timeoutMs: withinLoaded(0), message: "the quiet peer's handshake" });
      // The silent raw peer connects after it: when the heartbeat has closed the raw one, the quiet
      // one has been connected past the HELLO deadline a keyed router would set, and past the heartbeat timeout.
      const raw = await RawPeer.connect(router.address);
      try {
        raw.sendGreeting();
        raw.sendReady({ "Socket-Type": "DEALER", Identity: "" });
        await raw.closedWithin(withinLoaded(timings.silentPeerClosedWithinMs), "the heartbeat to close a peer that answers no PING");
      } finally {
        raw.destroy();
      }
      expect(Date.now() - quiet.handshakeAt!).toBeGreaterThanOrEqual(timings.helloTimeoutMs);
      expect(await Promise.race([quiet.closed, Promise.resolve("still open")])).toBe("still open");
    } finally {
      quiet.close();
    }
  });

  test("the chaos suite's session (ZMTP 3.0, cut off inside its HELLO) is closed by the heartbeat alone", async () => {
    const raw = await RawPeer.connect(router.address);
    try {
      raw.write(CHAOS_SESSION);
      await raw.closedWithin(withinLoaded(timings.silentPeerClosedWithinMs), "the router to close the chaos suite's stalled 3.0 session");
    } finally {
      raw.destroy();
    }
  });
});
