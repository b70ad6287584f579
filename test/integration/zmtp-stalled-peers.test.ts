/**
 * No slowloris: a peer that stops talking at any stage of a ZMTP connection (in its greeting, in
 * the handshake, in the middle of a frame, or after a complete handshake without answering PING)
 * is closed by our Router's handshakeInterval or heartbeat, for ZMTP 3.1 and 3.0 peers alike.
 *
 * The regression: a ZMTP 3.0 peer gets no PING (3.0 has none), and the heartbeat timer was not
 * even started for it, so a 3.0 peer that went silent, mid-frame or not, was never closed. The
 * chaos suite hit it with a mutated session whose greeting's minor version byte had flipped to 0.
 *
 * Each deadline is derived from the Router's settings; LOAD_SLACK_MS covers a loaded machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { Dealer, Router, type SocketEventMap, ZmtpError, ZmtpErrorCode } from "../../src/zmtp/index.ts";
import { encodeCommand, encodeFrame, encodeGreeting, encodeMetadata } from "../../src/zmtp/codec.ts";
import { RawPeer } from "../helpers/raw-peer.ts";
import { uniqueEndpoint, waitFor, withinLoaded } from "../helpers/wait.ts";

const HANDSHAKE_INTERVAL_MS = 300;
const HEARTBEAT_INTERVAL_MS = 50;
const HEARTBEAT_TIMEOUT_MS = 200;
/** The heartbeat's worst case: the first PING up to an interval after the last traffic, the timeout, one more tick to notice. */
const HEARTBEAT_CLOSE_MS = HEARTBEAT_TIMEOUT_MS + 2 * HEARTBEAT_INTERVAL_MS;
/** Timers never fire early; this much earlier than the rule allows would mean another rule closed it. */
const TIMER_GRANULARITY_MS = 20;

const READY = encodeFrame(encodeCommand("READY", encodeMetadata({ "Socket-Type": "DEALER", Identity: "" })), { command: true });
/** A frame header announcing 100 bytes, then only 10 of them. */
const PARTIAL_FRAME = Buffer.concat([Buffer.from([0x00, 100]), Buffer.alloc(10, 0x61)]);

type Closed = { type: "handshake:error" | "disconnect"; code: string | undefined; message: string | undefined; at: number };

for (const transport of ["bun", "node"] as const) {
  describe(`our Router (${transport} transport) closes a peer that stalls at any stage`, () => {
    let router: Router;
    let endpoint: string;
    const closes: Closed[] = [];

    beforeAll(async () => {
      router = new Router({
        transport,
        handshakeInterval: HANDSHAKE_INTERVAL_MS,
        heartbeatInterval: HEARTBEAT_INTERVAL_MS,
        heartbeatTimeout: HEARTBEAT_TIMEOUT_MS,
        logger: null,
      });
      const note = (type: Closed["type"]) => (event: SocketEventMap["handshake:error"] | SocketEventMap["disconnect"]) =>
        closes.push({ type, code: event.error?.code, message: event.error?.message, at: Date.now() });
      router.events.on("handshake:error", note("handshake:error"));
      router.events.on("disconnect", note("disconnect"));
      await router.bind(uniqueEndpoint("tcp"));
      endpoint = router.lastEndpoint!;
      // An echo service, for the peers that talk.
      void (async () => {
        for await (const message of router) await router.send(message).catch(() => {});
      })();
    });
    afterAll(() => router.close());

    /**
     * Connects, lets `stall` write its bytes, then waits for our Router to close the connection
     * within `ruleMs` (plus load slack); returns how long after the stall began it closed (timed from
     * before the writes, so a pause of this process cannot make the router look early), and the event.
     */
    async function closedAfterStall(
      what: string,
      stall: (raw: RawPeer) => Promise<void> | void,
      ruleMs: number,
    ): Promise<{ afterMs: number; event: Closed }> {
      const before = closes.length;
      const raw = await RawPeer.connect(endpoint);
      try {
        const stalledAt = Date.now();
        await stall(raw);
        await raw.closedWithin(withinLoaded(ruleMs), `our Router to close a peer that stalled ${what}`);
        await waitFor(() => closes.length > before, {
          timeoutMs: withinLoaded(0),
          message: `the close event for a peer that stalled ${what}`,
        });
        return { afterMs: raw.closedAt! - stalledAt, event: closes[before] };
      } finally {
        raw.destroy();
      }
    }

    test("in its greeting (5 of 64 bytes): closed at handshakeInterval", async () => {
      const { event } = await closedAfterStall(
        "in its greeting",
        (raw) => raw.write(encodeGreeting("NULL", false).subarray(0, 5)),
        HANDSHAKE_INTERVAL_MS,
      );
      expect([event.type, event.code]).toEqual(["handshake:error", ZmtpErrorCode.HANDSHAKE_TIMEOUT]);
    });

    test("dripping its greeting a byte at a time: traffic does not extend handshakeInterval", async () => {
      const greeting = encodeGreeting("NULL", false);
      const connectedAt = Date.now();
      let stop = false;
      const { event } = await closedAfterStall(
        "dripping its greeting",
        (raw) => {
          // One byte per 20 ms would take 1.3 s for the greeting; the deadline is 300 ms from connecting.
          void (async () => {
            for (let i = 0; i < greeting.length && !stop && !raw.closed; i++) {
              raw.write(greeting.subarray(i, i + 1));
              await new Promise((resolve) => setTimeout(resolve, 20)); // pacing the drip, not synchronising
            }
          })();
        },
        HANDSHAKE_INTERVAL_MS,
      );
      stop = true;
      expect([event.type, event.code]).toEqual(["handshake:error", ZmtpErrorCode.HANDSHAKE_TIMEOUT]);
      expect(event.at - connectedAt).toBeGreaterThanOrEqual(HANDSHAKE_INTERVAL_MS - TIMER_GRANULARITY_MS);
    });

    test("in the handshake (greeting, half a READY): closed at handshakeInterval", async () => {
      const { event } = await closedAfterStall(
        "in the handshake",
        (raw) => raw.write(Buffer.concat([encodeGreeting("NULL", false), READY.subarray(0, 8)])),
        HANDSHAKE_INTERVAL_MS,
      );
      expect([event.type, event.code]).toEqual(["handshake:error", ZmtpErrorCode.HANDSHAKE_TIMEOUT]);
    });

    for (const minor of [1, 0]) {
      const version = `ZMTP 3.${minor}`;

      test(`${version}, after a complete handshake, answering no PING: closed by the heartbeat`, async () => {
        const { afterMs, event } = await closedAfterStall(
          `after a ${version} handshake`,
          (raw) => raw.write(Buffer.concat([encodeGreeting("NULL", false, minor), READY])),
          HEARTBEAT_CLOSE_MS,
        );
        expect([event.type, event.code]).toEqual(["disconnect", ZmtpErrorCode.HANDSHAKE_TIMEOUT]);
        expect(event.message).toMatch(/heartbeat timeout/);
        expect(afterMs).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS - TIMER_GRANULARITY_MS);
      });

      test(`${version}, in the middle of a frame (10 of 100 bytes): closed by the heartbeat`, async () => {
        const { event } = await closedAfterStall(
          `mid-frame on ${version}`,
          (raw) => raw.write(Buffer.concat([encodeGreeting("NULL", false, minor), READY, PARTIAL_FRAME])),
          HEARTBEAT_CLOSE_MS,
        );
        expect([event.type, event.code]).toEqual(["disconnect", ZmtpErrorCode.HANDSHAKE_TIMEOUT]);
      });
    }

    test("a ZMTP 3.0 peer that keeps talking stays connected past the heartbeat timeout, and is closed once silent", async () => {
      // Its own Router with a longer timeout: router and peer share this process, and a pause of
      // the process longer than the timeout would end the talk whoever is at fault.
      const timeoutMs = 1000;
      const intervalMs = 100;
      const patient = new Router({ transport, heartbeatInterval: intervalMs, heartbeatTimeout: timeoutMs, logger: null });
      await patient.bind(uniqueEndpoint("tcp"));
      void (async () => {
        for await (const message of patient) await patient.send(message).catch(() => {});
      })();
      const raw = await RawPeer.connect(patient.lastEndpoint!);
      try {
        raw.write(Buffer.concat([encodeGreeting("NULL", false, 0), READY]));
        // Round trips through the echo, each waited for: the peer is never silent for long.
        const startedAt = Date.now();
        let lastSentAt = startedAt;
        for (let n = 0; Date.now() - startedAt < 1.5 * timeoutMs; n++) {
          lastSentAt = Date.now();
          raw.sendMessage([`ping ${n}`]);
          const [echo] = await raw.message(n, withinLoaded(0), `echo ${n}`);
          expect(echo.toString()).toBe(`ping ${n}`);
          await new Promise((resolve) => setTimeout(resolve, intervalMs)); // pacing the talk, not synchronising
        }
        expect(raw.closed).toBe(false);
        await raw.closedWithin(withinLoaded(timeoutMs + 2 * intervalMs), "our Router to close the 3.0 peer once it is silent");
        // Its silence began with its last message (timed before the send, never after it).
        expect(raw.closedAt! - lastSentAt).toBeGreaterThanOrEqual(timeoutMs - TIMER_GRANULARITY_MS);
      } finally {
        raw.destroy();
        patient.close();
      }
    });

    test("closePeer() closes one peer with a reason it is told (ERROR) and the socket reports; unreadFrom() counts what waits unread", async () => {
      // A Router nobody reads from: what a peer sends stays unread.
      const unread = new Router({ transport, logger: null });
      const reasons: (string | undefined)[] = [];
      unread.events.on("disconnect", ({ error }) => reasons.push(error?.message));
      await unread.bind(uniqueEndpoint("tcp"));
      const raw = await RawPeer.connect(unread.lastEndpoint!);
      try {
        await raw.handshake({ identity: "closable" });
        raw.sendMessage(["one"]);
        raw.sendMessage(["two"]);
        await waitFor(() => unread.unreadFrom("closable") === 2, { timeoutMs: withinLoaded(0), message: "two unread messages" });
        expect(unread.unreadFrom("nobody")).toBe(0);
        expect(unread.closePeer("closable", new ZmtpError(ZmtpErrorCode.HANDSHAKE_TIMEOUT, "you took too long"))).toBe(true);
        await raw.closedWithin(withinLoaded(0), "the closed peer's connection to end");
        expect(raw.commands.find((command) => command.name === "ERROR")?.data.toString()).toContain("you took too long");
        expect(reasons).toEqual(["you took too long"]);
        expect(unread.closePeer("closable", new ZmtpError(ZmtpErrorCode.HANDSHAKE_TIMEOUT, "again"))).toBe(false);
      } finally {
        raw.destroy();
        unread.close();
      }
    });

    test("a well-behaved Dealer (which answers PING) is never closed by any of this", async () => {
      const dealer = new Dealer({ transport, routingId: "good", logger: null });
      try {
        dealer.connect(endpoint);
        await dealer.send(["hello"]);
        const [reply] = await waitFor(dealer.receive(), { timeoutMs: withinLoaded(0), message: "the good Dealer's echo" });
        expect(reply.toString()).toBe("hello");
        // A stalled peer connected after it is closed by the heartbeat: by then the Dealer has been
        // idle past the timeout too, and must still be there.
        const idleFrom = Date.now();
        await closedAfterStall(
          "beside the good Dealer",
          (raw) => raw.write(Buffer.concat([encodeGreeting("NULL", false), READY])),
          HEARTBEAT_CLOSE_MS,
        );
        expect(Date.now() - idleFrom).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS);
        expect(router.hasPeer("good")).toBe(true);
        expect(closes.filter((close) => close.type === "disconnect" && close.message?.includes("good"))).toEqual([]);
      } finally {
        dealer.close();
      }
    });
  });
}
