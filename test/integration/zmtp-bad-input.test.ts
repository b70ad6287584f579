/**
 * Bad input through real sockets: a raw peer (node:net, test/helpers/raw-peer.ts) sends broken
 * or hostile ZMTP to our bound Router (and Dealer). For every case our side must close that one
 * connection, report a ZmtpError with a sensible code on `handshake:error` or `disconnect`, log
 * the reason through the `logger` option, and keep serving a well-behaved Dealer throughout.
 *
 * Runs for both socket transports (Bun.listen and node:net) over tcp and ipc.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { Dealer, Router, ZmtpError, ZmtpErrorCode, type SocketEventMap } from "../../src/zmtp/index.ts";
import { encodeGreeting } from "../../src/zmtp/codec.ts";
import { RawPeer } from "../helpers/raw-peer.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const SOCKET_TRANSPORTS = ["bun", "node"] as const;
const ENDPOINT_KINDS = ["tcp", "ipc"] as const;
const MAX_MESSAGE_SIZE = 1000;
const HANDSHAKE_INTERVAL_MS = 200;
/** How long our side may take to notice bad input and close. */
const CLOSE_MS = 3000;
/** The good Dealer's heartbeat of traffic: one request/reply per tick. */
const GOOD_TRAFFIC_TICK_MS = 10;

type ClosedEvent = { type: "handshake:error" | "disconnect"; error?: ZmtpError; routingId?: Buffer; index: number };

/** Our socket under attack, the events and log lines it produced, and a well-behaved peer's traffic. */
interface Harness {
  endpoint: string;
  events: ClosedEvent[];
  logs: string[];
  /** Request/reply round trips the good peer has completed. */
  exchanged(): number;
  /** First failure of the good peer's traffic, if any. */
  trafficError(): Error | undefined;
  /** Disconnects the good peer saw (must stay empty). */
  goodPeerDisconnects: unknown[];
  close(): void;
}

function record(socket: Router | Dealer, events: ClosedEvent[]): void {
  socket.events.on("handshake:error", (e: SocketEventMap["handshake:error"]) =>
    events.push({ type: "handshake:error", error: e.error, index: events.length }),
  );
  socket.events.on("disconnect", (e: SocketEventMap["disconnect"]) =>
    events.push({ type: "disconnect", error: e.error, routingId: e.routingId, index: events.length }),
  );
}

/**
 * Our Router bound on a fresh endpoint with a small maxMessageSize and handshakeInterval, a capturing
 * logger, an echo loop, and a good Dealer that exchanges one message per tick for the whole run.
 */
async function routerHarness(transport: "bun" | "node", kind: "tcp" | "ipc"): Promise<Harness> {
  const logs: string[] = [];
  const events: ClosedEvent[] = [];
  const router = new Router({
    transport,
    maxMessageSize: MAX_MESSAGE_SIZE,
    handshakeInterval: HANDSHAKE_INTERVAL_MS,
    logger: { warn: (m) => logs.push(m) },
  });
  record(router, events);
  await router.bind(uniqueEndpoint(kind));
  const endpoint = router.lastEndpoint!;
  void (async () => {
    for await (const [id, ...frames] of router) await router.send([id, ...frames]).catch(() => {});
  })();

  const dealer = new Dealer({ transport, routingId: "good", receiveTimeout: 3000, logger: null });
  const goodPeerDisconnects: unknown[] = [];
  dealer.events.on("disconnect", (e) => goodPeerDisconnects.push(e));
  dealer.connect(endpoint);
  let exchanged = 0;
  let error: Error | undefined;
  let busy = false;
  // Pacing, not synchronisation: one round trip per tick keeps traffic flowing without spinning a core.
  const ticker = setInterval(() => {
    if (busy || error) return;
    busy = true;
    const n = exchanged;
    dealer
      .send(["ping", String(n)])
      .then(() => dealer.receive())
      .then(([word, count]) => {
        if (word?.toString() !== "ping" || count?.toString() !== String(n))
          throw new Error(`good Dealer got a wrong reply to ping ${n}: ${word} ${count}`);
        exchanged++;
      })
      .catch((e: Error) => {
        if (!dealer.closed) error = e;
      })
      .finally(() => {
        busy = false;
      });
  }, GOOD_TRAFFIC_TICK_MS);
  await waitFor(() => exchanged >= 3 || error !== undefined, { timeoutMs: 5000, message: "the good Dealer's first round trips" });
  if (error) throw error;
  return {
    endpoint,
    events,
    logs,
    exchanged: () => exchanged,
    trafficError: () => error,
    goodPeerDisconnects,
    close() {
      clearInterval(ticker);
      dealer.close();
      router.close();
    },
  };
}

/**
 * Our Dealer bound, with our Router connected to it as the well-behaved peer: the Router sends one
 * message per tick addressed to the Dealer's routing id and the Dealer receives them in order.
 */
async function dealerHarness(transport: "bun" | "node", kind: "tcp" | "ipc"): Promise<Harness> {
  const logs: string[] = [];
  const events: ClosedEvent[] = [];
  const dealer = new Dealer({
    transport,
    routingId: "bound-dealer",
    maxMessageSize: MAX_MESSAGE_SIZE,
    handshakeInterval: HANDSHAKE_INTERVAL_MS,
    receiveTimeout: 3000,
    logger: { warn: (m) => logs.push(m) },
  });
  record(dealer, events);
  await dealer.bind(uniqueEndpoint(kind));
  const endpoint = dealer.lastEndpoint!;
  const router = new Router({ transport, mandatory: true, logger: null });
  const goodPeerDisconnects: unknown[] = [];
  router.events.on("disconnect", (e) => goodPeerDisconnects.push(e));
  router.connect(endpoint);
  await waitFor(() => router.hasPeer("bound-dealer"), { timeoutMs: 5000, message: "our Router to connect to the bound Dealer" });
  let exchanged = 0;
  let error: Error | undefined;
  let busy = false;
  const ticker = setInterval(() => {
    if (busy || error) return;
    busy = true;
    const n = exchanged;
    router
      .send(["bound-dealer", String(n)])
      .then(() => dealer.receive())
      .then(([count]) => {
        if (count?.toString() !== String(n)) throw new Error(`bound Dealer got message ${count} where ${n} was expected`);
        exchanged++;
      })
      .catch((e: Error) => {
        if (!dealer.closed) error = e;
      })
      .finally(() => {
        busy = false;
      });
  }, GOOD_TRAFFIC_TICK_MS);
  await waitFor(() => exchanged >= 3 || error !== undefined, { timeoutMs: 5000, message: "the good Router's first messages" });
  if (error) throw error;
  return {
    endpoint,
    events,
    logs,
    exchanged: () => exchanged,
    trafficError: () => error,
    goodPeerDisconnects,
    close() {
      clearInterval(ticker);
      router.close();
      dealer.close();
    },
  };
}

interface Expectation {
  event: "handshake:error" | "disconnect";
  code: ZmtpErrorCode;
  /** What the error message should say. */
  message?: RegExp;
  /** Whether our side should send an ERROR command first (it can once greetings are exchanged). */
  errorCommand?: boolean;
}

/**
 * Connects a raw peer, lets `misbehave` drive it, and checks the whole outcome: the raw connection
 * closes, exactly the expected event carries a ZmtpError, the reason is logged, and the good peer
 * made progress meanwhile without being disconnected.
 */
async function expectRejected(
  h: Harness,
  what: string,
  misbehave: (raw: RawPeer) => Promise<void> | void,
  expected: Expectation,
): Promise<{ raw: RawPeer; event: ClosedEvent; connectedAt: number }> {
  const eventsBefore = h.events.length;
  const logsBefore = h.logs.length;
  const exchangedBefore = h.exchanged();
  const connectedAt = Date.now();
  const raw = await RawPeer.connect(h.endpoint);
  try {
    await misbehave(raw);
    await raw.closedWithin(CLOSE_MS, `our socket to close the connection after ${what}`);
    await waitFor(() => h.events.length > eventsBefore, {
      timeoutMs: CLOSE_MS,
      message: `a handshake:error or disconnect event after ${what}`,
    });
    const event = h.events[eventsBefore];
    const seen = h.events.slice(eventsBefore).map((e) => `${e.type}(${e.error?.code ?? "no error"}: ${e.error?.message ?? ""})`);
    if (event.error === undefined)
      throw new Error(`after ${what}, our socket emitted ${event.type} without an error; events: ${seen.join(", ")}`);
    expect(event.error).toBeInstanceOf(ZmtpError);
    if (event.type !== expected.event || event.error.code !== expected.code) {
      throw new Error(`after ${what}: expected ${expected.event} with ${expected.code}, got ${seen.join(", ")}`);
    }
    if (expected.message) expect(event.error.message).toMatch(expected.message);
    await waitFor(() => h.logs.slice(logsBefore).some((line) => line.includes(event.error!.message)), {
      timeoutMs: 1000,
      message: `the logger to record "${event.error.message}" (logged: ${JSON.stringify(h.logs.slice(logsBefore))})`,
    });
    if (expected.errorCommand) {
      const command = raw.commands.find((c) => c.name === "ERROR");
      if (!command) throw new Error(`after ${what}, the peer got no ERROR command before the close${raw.describeCommands()}`);
    }
    // The good peer kept going: a few more round trips after the bad connection is gone.
    await waitFor(() => h.exchanged() >= exchangedBefore + 3 || h.trafficError() !== undefined, {
      timeoutMs: 5000,
      message: `the well-behaved peer to keep exchanging after ${what} (${h.exchanged() - exchangedBefore} round trips so far)`,
    });
    if (h.trafficError()) throw new Error(`the well-behaved peer's traffic failed: ${h.trafficError()!.message}`);
    expect(h.goodPeerDisconnects).toEqual([]);
    expect(h.events.filter((e) => e.routingId?.toString() === "good" || e.routingId?.toString() === "bound-dealer")).toEqual([]);
    return { raw, event, connectedAt };
  } finally {
    raw.destroy();
  }
}

/** Bytes of a short frame header + body, written by hand. */
function shortFrame(flags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([flags, body.length]), body]);
}

/** A 3.x-shaped greeting with another major version (64 bytes). */
function greetingWithVersion(major: number, minor: number): Buffer {
  const g = encodeGreeting("NULL", false);
  g[10] = major;
  g[11] = minor;
  return g;
}

for (const transport of SOCKET_TRANSPORTS) {
  for (const kind of ENDPOINT_KINDS) {
    describe(`our Router (${transport} transport, ${kind}) rejects bad input and keeps serving a good Dealer`, () => {
      let h: Harness;
      beforeAll(async () => {
        h = await routerHarness(transport, kind);
      });
      afterAll(() => h?.close());

      test("a bad signature (an HTTP request) is refused after its first byte", async () => {
        await expectRejected(h, "an HTTP request", (raw) => raw.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), {
          event: "handshake:error",
          code: ZmtpErrorCode.PROTOCOL,
          message: /signature/,
        });
      });

      test("a bad tenth signature byte is refused", async () => {
        const g = encodeGreeting("NULL", false);
        g[9] = 0x00;
        await expectRejected(h, "a greeting whose tenth byte is not 0x7F", (raw) => raw.write(g.subarray(0, 10)), {
          event: "handshake:error",
          code: ZmtpErrorCode.PROTOCOL,
          message: /signature/,
        });
      });

      test("a ZMTP 2.x greeting (major version 2) is refused", async () => {
        await expectRejected(h, "a version 2.1 greeting", (raw) => raw.write(greetingWithVersion(2, 1)), {
          event: "handshake:error",
          code: ZmtpErrorCode.PROTOCOL,
          message: /version 2/,
        });
      });

      test("a ZMTP/2.0 greeting (revision byte 0x01, socket type, identity) is refused", async () => {
        // ZMTP/2.0 (RFC 15): signature, revision 0x01, socket type (DEALER = 5), empty identity frame.
        const zmtp20 = Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0x01, 0x05, 0x00, 0x00]);
        await expectRejected(h, "a ZMTP/2.0 greeting", (raw) => raw.write(zmtp20), {
          event: "handshake:error",
          code: ZmtpErrorCode.PROTOCOL,
          message: /version/,
        });
      });

      test("garbage after a valid greeting (reserved flag bits) is refused with an ERROR command", async () => {
        const garbage = Buffer.from("f8a1c3e5d7b9f0e2c4a6b8d0f1e3c5a7", "hex");
        await expectRejected(
          h,
          "garbage after the greeting",
          (raw) => {
            raw.sendGreeting();
            raw.write(garbage);
          },
          { event: "handshake:error", code: ZmtpErrorCode.PROTOCOL, message: /reserved/, errorCommand: true },
        );
      });

      test("garbage after the handshake is refused and reported as a disconnect", async () => {
        await expectRejected(
          h,
          "garbage after READY",
          async (raw) => {
            await raw.handshake({ identity: "raw-garbage" });
            raw.write(Buffer.from([0x21, 0xff, 0x00]));
          },
          { event: "disconnect", code: ZmtpErrorCode.PROTOCOL, message: /reserved/, errorCommand: true },
        );
      });

      // The peer closes with a frame half sent: the bytes it did send are lost, which our side
      // reports as a protocol error rather than an orderly close.
      test("a truncated frame followed by close is reported with an error and logged", async () => {
        await expectRejected(
          h,
          "a frame announcing 100 bytes, 10 sent, then close",
          async (raw) => {
            await raw.handshake({ identity: "raw-truncated" });
            raw.write(Buffer.concat([Buffer.from([0x00, 100]), Buffer.alloc(10, 0x61)]));
            raw.end();
          },
          { event: "disconnect", code: ZmtpErrorCode.PROTOCOL },
        );
      });

      test("a single frame over maxMessageSize is refused at its header (EMSGSIZE)", async () => {
        await expectRejected(
          h,
          `a frame of ${MAX_MESSAGE_SIZE + 1000} bytes`,
          async (raw) => {
            await raw.handshake({ identity: "raw-big-frame" });
            raw.sendMessage([Buffer.alloc(MAX_MESSAGE_SIZE + 1000)]);
          },
          { event: "disconnect", code: ZmtpErrorCode.MESSAGE_TOO_LARGE, errorCommand: true },
        );
      });

      test("a message whose frames together exceed maxMessageSize is refused (EMSGSIZE)", async () => {
        await expectRejected(
          h,
          `three frames of ${MAX_MESSAGE_SIZE / 2.5} bytes (${(MAX_MESSAGE_SIZE / 2.5) * 3} together)`,
          async (raw) => {
            await raw.handshake({ identity: "raw-big-message" });
            const part = Buffer.alloc(MAX_MESSAGE_SIZE / 2.5, 0x62);
            raw.sendMessage([part, part, part]);
          },
          { event: "disconnect", code: ZmtpErrorCode.MESSAGE_TOO_LARGE, errorCommand: true },
        );
      });

      test("a READY announcing an incompatible Socket-Type (PUB) is refused (ESOCKTNOSUPPORT)", async () => {
        await expectRejected(
          h,
          "READY with Socket-Type PUB",
          (raw) => {
            raw.sendGreeting();
            raw.sendReady({ "Socket-Type": "PUB", Identity: "" });
          },
          { event: "handshake:error", code: ZmtpErrorCode.INCOMPATIBLE_SOCKET, message: /PUB/, errorCommand: true },
        );
      });

      test(`a handshake that never finishes is closed after handshakeInterval (${HANDSHAKE_INTERVAL_MS} ms)`, async () => {
        const { raw, connectedAt } = await expectRejected(h, "a greeting and no READY", (raw) => raw.sendGreeting(), {
          event: "handshake:error",
          code: ZmtpErrorCode.HANDSHAKE_TIMEOUT,
          errorCommand: true,
        });
        // Not before the deadline (some slack for timer granularity).
        expect(raw.closedAt! - connectedAt).toBeGreaterThanOrEqual(HANDSHAKE_INTERVAL_MS - 20);
      });

      test("a peer that connects and sends nothing is closed after handshakeInterval", async () => {
        await expectRejected(h, "a silent connection", () => {}, { event: "handshake:error", code: ZmtpErrorCode.HANDSHAKE_TIMEOUT });
      });

      test("a message frame before READY is refused", async () => {
        await expectRejected(
          h,
          "a message frame between greeting and READY",
          (raw) => {
            raw.sendGreeting();
            raw.write(shortFrame(0x00, Buffer.from("too early")));
          },
          { event: "handshake:error", code: ZmtpErrorCode.PROTOCOL, message: /before the handshake/, errorCommand: true },
        );
      });

      test("a PING whose context is longer than 16 bytes is refused", async () => {
        await expectRejected(
          h,
          "a PING with a 17-byte context",
          async (raw) => {
            await raw.handshake({ identity: "raw-ping" });
            raw.sendCommand("PING", Buffer.concat([Buffer.from([0, 10]), Buffer.alloc(17)]));
          },
          { event: "disconnect", code: ZmtpErrorCode.PROTOCOL, message: /16 bytes/, errorCommand: true },
        );
      });
    });

    describe(`our bound Dealer (${transport} transport, ${kind}) rejects bad input and keeps receiving from a good Router`, () => {
      let h: Harness;
      beforeAll(async () => {
        h = await dealerHarness(transport, kind);
      });
      afterAll(() => h?.close());

      test("a bad signature is refused", async () => {
        await expectRejected(h, "a bad signature", (raw) => raw.write(Buffer.from([0x00, 0x01, 0x02])), {
          event: "handshake:error",
          code: ZmtpErrorCode.PROTOCOL,
          message: /signature/,
        });
      });

      test("a READY announcing Socket-Type PUB is refused (ESOCKTNOSUPPORT)", async () => {
        await expectRejected(
          h,
          "READY with Socket-Type PUB",
          (raw) => {
            raw.sendGreeting();
            raw.sendReady({ "Socket-Type": "PUB" });
          },
          { event: "handshake:error", code: ZmtpErrorCode.INCOMPATIBLE_SOCKET, errorCommand: true },
        );
      });

      test("a message over maxMessageSize is refused (EMSGSIZE)", async () => {
        await expectRejected(
          h,
          "a message over maxMessageSize",
          async (raw) => {
            await raw.handshake({ socketType: "ROUTER", identity: "raw-router" });
            raw.sendMessage([Buffer.alloc(MAX_MESSAGE_SIZE), Buffer.alloc(1)]);
          },
          { event: "disconnect", code: ZmtpErrorCode.MESSAGE_TOO_LARGE, errorCommand: true },
        );
      });
    });
  }
}
