/**
 * A CURVE Router against a hand-driven CURVE client (RawPeer plus our own pure client session,
 * so every byte can be bent): replayed and reordered MESSAGE nonces, a second INITIATE, an
 * INITIATE replayed on a new connection, an outer frame with MORE set, a NULL peer. Each is
 * refused by closing that connection; the process stays up and an honest peer keeps talking.
 *
 *   ./node_modules/.bin/bun test test/integration/zmtp-curve-bad-input.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { encodeFrame, encodeGreeting } from "../../src/zmtp/codec.ts";
import { curveClient, curveKeyPair, Dealer, type MessageBox, Router, type SocketEventMap, ZmtpErrorCode } from "../../src/zmtp/index.ts";
import { RawPeer } from "../helpers/raw-peer.ts";
import { waitFor } from "../helpers/wait.ts";

const STEP_MS = 5_000;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  router: Router;
  serverKey: string;
  failures: SocketEventMap["handshake:error"][];
  disconnects: SocketEventMap["disconnect"][];
  warnings: string[];
  /** An honest CURVE Dealer already talking to the router (its echo proves others are unaffected). */
  honest: Dealer;
}

async function setUp(): Promise<Setup> {
  const keys = curveKeyPair();
  const warnings: string[] = [];
  const router = new Router({ curveServer: true, curveSecretKey: keys.secretKey, logger: { warn: (line) => warnings.push(line) } });
  cleanups.push(() => router.close());
  const failures: Setup["failures"] = [];
  const disconnects: Setup["disconnects"] = [];
  router.events.on("handshake:error", (event) => failures.push(event));
  router.events.on("disconnect", (event) => disconnects.push(event));
  await router.bind("tcp://127.0.0.1:0");
  void (async () => {
    for await (const [id, ...frames] of router) await router.send([id, ...frames]);
  })();
  const honest = new Dealer({ curveServerKey: keys.publicKey, curveSecretKey: curveKeyPair().secretKey, logger: null });
  cleanups.push(() => honest.close());
  honest.connect(router.lastEndpoint!);
  await expectEcho(honest, "before");
  return { router, serverKey: keys.publicKey, failures, disconnects, warnings, honest };
}

async function expectEcho(dealer: Dealer, text: string): Promise<void> {
  await dealer.send([text]);
  const [reply] = await waitFor(dealer.receive(), { timeoutMs: STEP_MS, message: `echo of "${text}"` });
  expect(reply.toString()).toBe(text);
}

interface RawCurveClient {
  raw: RawPeer;
  box: MessageBox;
  initiate: Buffer;
  /** A MESSAGE body for one frame, sealed with the next nonce. */
  sealed(payload: string, flags?: number): Buffer;
}

/** A raw connection that completes a real CURVE handshake with our session code. */
async function rawCurveClient(endpoint: string, serverKey: string): Promise<RawCurveClient> {
  const raw = await RawPeer.connect(endpoint);
  cleanups.push(() => raw.destroy());
  const session = curveClient({ serverKey, secretKey: curveKeyPair().secretKey }).createSession(
    { "Socket-Type": "DEALER", Identity: "" },
    { remoteAddress: "" },
  );
  raw.write(encodeGreeting("CURVE", false));
  for (const hello of session.start()) raw.write(encodeFrame(hello, { command: true }));
  const welcome = await raw.nextCommand("WELCOME", STEP_MS, "WELCOME");
  const [initiate] = session.onCommand(welcome).send;
  raw.write(encodeFrame(initiate, { command: true }));
  const ready = await raw.nextCommand("READY", STEP_MS, "READY");
  const box = session.onCommand(ready).done!.box!;
  return {
    raw,
    box,
    initiate,
    sealed(payload, flags = 0) {
      const body = Buffer.alloc(box.overhead + Buffer.byteLength(payload));
      body.write(payload, box.overhead);
      box.seal(body, flags);
      return body;
    },
  };
}

async function expectRefused(setup: Setup, raw: RawPeer, reason: RegExp): Promise<void> {
  await raw.closedWithin(STEP_MS, "our Router to close the connection");
  await waitFor(() => [...setup.failures, ...setup.disconnects].some((e) => e.error && reason.test(e.error.message)), {
    timeoutMs: STEP_MS,
    message: `a refusal matching ${reason}`,
  });
  await expectEcho(setup.honest, "after");
}

describe("CURVE: bad input on an encrypted connection", () => {
  test("a well-behaved raw client works (the harness itself is sound)", async () => {
    const setup = await setUp();
    const client = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    client.raw.write(encodeFrame(client.sealed("hi")));
    const [echo] = await client.raw.message(0, STEP_MS, "echo");
    expect(client.box.open(echo).subarray(1).toString()).toBe("hi");
  });

  test("a replayed MESSAGE is refused", async () => {
    const setup = await setUp();
    const client = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    const once = encodeFrame(client.sealed("once"));
    client.raw.write(once);
    await client.raw.message(0, STEP_MS, "echo of the first send");
    client.raw.write(once);
    await expectRefused(setup, client.raw, /replayed or reordered/);
  });

  test("out-of-order MESSAGE nonces are refused", async () => {
    const setup = await setUp();
    const client = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    const first = encodeFrame(client.sealed("first"));
    const second = encodeFrame(client.sealed("second"));
    client.raw.write(second);
    client.raw.write(first);
    await expectRefused(setup, client.raw, /replayed or reordered/);
    expect(client.raw.messages.length).toBeLessThanOrEqual(1);
  });

  test("a second INITIATE after READY is refused", async () => {
    const setup = await setUp();
    const client = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    client.raw.write(encodeFrame(client.initiate, { command: true }));
    await expectRefused(setup, client.raw, /outside the CURVE box/);
  });

  test("an INITIATE replayed on a new connection is refused", async () => {
    const setup = await setUp();
    const first = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    const raw = await RawPeer.connect(setup.router.lastEndpoint!);
    cleanups.push(() => raw.destroy());
    const session = curveClient({ serverKey: setup.serverKey, secretKey: curveKeyPair().secretKey }).createSession(
      { "Socket-Type": "DEALER", Identity: "" },
      { remoteAddress: "" },
    );
    raw.write(encodeGreeting("CURVE", false));
    for (const hello of session.start()) raw.write(encodeFrame(hello, { command: true }));
    await raw.nextCommand("WELCOME", STEP_MS, "WELCOME on the second connection");
    raw.write(encodeFrame(first.initiate, { command: true }));
    await expectRefused(setup, raw, /cookie does not open/);
    expect(setup.failures.at(-1)?.error.code).toBe(ZmtpErrorCode.SECURITY);
  });

  test("an outer frame with MORE set is refused", async () => {
    const setup = await setUp();
    const client = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    client.raw.write(encodeFrame(client.sealed("part", 1), { more: true }));
    await expectRefused(setup, client.raw, /MORE or COMMAND set outside the CURVE box/);
  });

  test("a frame in clear after the handshake is refused", async () => {
    const setup = await setUp();
    const client = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    client.raw.write(encodeFrame(Buffer.from("plain text")));
    await expectRefused(setup, client.raw, /expected a CURVE MESSAGE/);
  });

  test("a NULL peer is refused with a log line naming both mechanisms", async () => {
    const setup = await setUp();
    const raw = await RawPeer.connect(setup.router.lastEndpoint!);
    cleanups.push(() => raw.destroy());
    raw.sendGreeting();
    await expectRefused(setup, raw, /peer uses the NULL mechanism; this socket uses CURVE/);
    expect(setup.warnings.some((line) => line.includes("NULL mechanism; this socket uses CURVE"))).toBe(true);
  });

  test("a ZMTP 1.0 greeting followed by a sneaky message is refused and the message never delivered (libzmq's test)", async () => {
    const setup = await setUp();
    let delivered = 0;
    setup.router.events.on("handshake", () => delivered++);
    const raw = await RawPeer.connect(setup.router.lastEndpoint!);
    cleanups.push(() => raw.destroy());
    // ZMTP 1.0: a one-byte length (1 + identity), flags 0, empty identity; then a message frame.
    raw.write(Buffer.from([0x01, 0x00, 0x06, 0x00, ...Buffer.from("sneak")]));
    await expectRefused(setup, raw, /signature/);
    expect(delivered).toBe(0);
  });

  test("a flood of random bytes after the handshake is refused", async () => {
    const setup = await setUp();
    const client = await rawCurveClient(setup.router.lastEndpoint!, setup.serverKey);
    const noise = Buffer.alloc(5000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 131 + 7) & 0xff;
    client.raw.write(encodeFrame(noise));
    await expectRefused(setup, client.raw, /CURVE MESSAGE/);
  });
});
