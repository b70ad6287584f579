/**
 * The heartbeat rules of one Connection, on a fake transport and a fake clock (bun:test fake
 * timers): exact to the tick, and independent of how loaded the machine is. The same rules
 * through real sockets are in test/behaviour/cases.ts and test/integration/zmtp-stalled-peers.test.ts.
 */
import { afterEach, beforeEach, expect, jest, test } from "bun:test";
import { Buffer } from "node:buffer";
import { Connection, type ConnectionOwner } from "../../src/zmtp/connection.ts";
import { Decoder, encodeCommand, encodeFrame, encodeGreeting, encodeMetadata, parseCommand } from "../../src/zmtp/codec.ts";
import type { ZmtpError } from "../../src/zmtp/errors.ts";
import { nullMechanism } from "../../src/zmtp/mechanism/null.ts";
import type { TransportStream } from "../../src/zmtp/transport/transport.ts";

const INTERVAL_MS = 100;
const TIMEOUT_MS = 300;

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/**
 * Moves the fake clock on by `ms`, 10 ms at a time; after each step lets the connection write
 * what it queued (it flushes on setImmediate, which the fake clock does not run).
 */
async function advance(ms: number): Promise<void> {
  for (let done = 0; done < ms; done += 10) {
    jest.advanceTimersByTime(10);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A Router-side connection to a peer speaking ZMTP 3.`minor`, with what it wrote and how it ended. */
function connection(minor: number) {
  const decoder = new Decoder();
  const commands: { name: string; at: number }[] = [];
  let closed: { at: number; reason: ZmtpError | undefined } | undefined;
  const stream: TransportStream = {
    write(data) {
      decoder.push(data);
      for (let item = decoder.next(); item !== undefined; item = decoder.next()) {
        if (item.kind === "frame" && item.frame.command) commands.push({ name: parseCommand(item.frame.body).name, at: Date.now() });
      }
      return true;
    },
    end() {},
    destroy() {},
    pause() {},
    resume() {},
    remoteAddress: "fake",
  };
  const owner: ConnectionOwner = {
    onReady() {},
    onMessage() {},
    onWritable() {},
    onClose(_connection, reason) {
      closed = { at: Date.now(), reason };
    },
  };
  const conn = new Connection(
    stream,
    {
      socketType: "ROUTER",
      routingId: Buffer.alloc(0),
      mechanism: nullMechanism,
      maxMessageSize: -1,
      handshakeIntervalMs: 0,
      heartbeatIntervalMs: INTERVAL_MS,
      heartbeatTimeoutMs: TIMEOUT_MS,
      heartbeatTimeToLiveMs: 0,
      sendHighWaterMark: 0,
    },
    owner,
    "fake",
  );
  conn.start();
  const peer = (bytes: Buffer) => conn.handlers.data(bytes);
  peer(
    Buffer.concat([
      encodeGreeting("NULL", false, minor),
      encodeFrame(encodeCommand("READY", encodeMetadata({ "Socket-Type": "DEALER", Identity: "" })), { command: true }),
    ]),
  );
  return { conn, peer, commands, pings: () => commands.filter((c) => c.name === "PING"), closed: () => closed };
}

test("ZMTP 3.1: dropped on the tick after the timeout / interval-th unanswered PING, timeout after the first of them", async () => {
  const c = connection(1);
  expect(c.conn.isReady).toBe(true);
  await advance(INTERVAL_MS); // first tick: PING 1
  expect(c.pings()).toHaveLength(1);
  // The peer answers it halfway to the next tick: its last traffic.
  await advance(INTERVAL_MS / 2);
  const lastTrafficAt = Date.now();
  c.peer(encodeFrame(encodeCommand("PONG"), { command: true }));
  await advance(10 * INTERVAL_MS);
  const unanswered = c.pings().slice(1);
  expect(unanswered).toHaveLength(TIMEOUT_MS / INTERVAL_MS);
  const closed = c.closed()!;
  expect(closed.reason?.message).toMatch(/heartbeat timeout: no answer to a PING within 300 ms/);
  expect(closed.at - unanswered[0].at).toBe(TIMEOUT_MS);
  // Between timeout and timeout + interval after the peer's last traffic.
  expect(closed.at - lastTrafficAt).toBeGreaterThanOrEqual(TIMEOUT_MS);
  expect(closed.at - lastTrafficAt).toBeLessThanOrEqual(TIMEOUT_MS + INTERVAL_MS);
});

test("ZMTP 3.1: any traffic answers every PING sent so far", async () => {
  const c = connection(1);
  for (let i = 0; i < 20; i++) {
    await advance(INTERVAL_MS * 2); // two PINGs, then a frame from the peer
    c.peer(encodeFrame(Buffer.from("still here")));
  }
  expect(c.closed()).toBeUndefined();
  expect(c.pings().length).toBeGreaterThanOrEqual(20);
});

test("ZMTP 3.0: no PING is sent (3.0 has none); dropped on the first tick after timeout of silence", async () => {
  const c = connection(0);
  const lastTrafficAt = Date.now();
  await advance(10 * INTERVAL_MS);
  expect(c.pings()).toEqual([]);
  const closed = c.closed()!;
  expect(closed.reason?.message).toMatch(/ZMTP 3\.0 peer \(no PING\) silent for 300 ms/);
  expect(closed.at - lastTrafficAt).toBe(TIMEOUT_MS);
});

test("ZMTP 3.0: a peer that keeps sending is kept, then dropped once it stops", async () => {
  const c = connection(0);
  for (let i = 0; i < 20; i++) {
    await advance(TIMEOUT_MS - 10);
    c.peer(encodeFrame(Buffer.from("still here")));
  }
  expect(c.closed()).toBeUndefined();
  const lastTrafficAt = Date.now();
  await advance(TIMEOUT_MS + INTERVAL_MS);
  expect(c.closed()!.at - lastTrafficAt).toBeGreaterThanOrEqual(TIMEOUT_MS);
  expect(c.closed()!.at - lastTrafficAt).toBeLessThanOrEqual(TIMEOUT_MS + INTERVAL_MS);
});

test("ZMTP 3.0: mid-frame silence (10 of 100 bytes) is silence too", async () => {
  const c = connection(0);
  c.peer(Buffer.concat([Buffer.from([0x00, 100]), Buffer.alloc(10, 0x61)]));
  const lastTrafficAt = Date.now();
  await advance(10 * INTERVAL_MS);
  expect(c.closed()!.at - lastTrafficAt).toBe(TIMEOUT_MS);
});
