/**
 * CURVE interop with libzmq (pyzmq from Debian's python3-zmq, libzmq 4.3 with libsodium) in both
 * directions: our Router as CURVE server with pyzmq DEALER clients, our Dealer as CURVE client
 * of a pyzmq ROUTER guarded by ThreadAuthenticator (allow-any and allow-list). Multi-frame,
 * empty frames, 1 MiB and 64 MiB messages, and libzmq heartbeats on an idle encrypted link.
 *
 *   ./node_modules/.bin/bun test test/integration/zmtp-curve-libzmq.test.ts
 *
 * Needs python3-zmq (.ci/run installs it); without it these tests fail, never skip.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { curveAllowList, curveKeyPair, Dealer, Router, type SocketEventMap, ZmtpErrorCode } from "../../src/zmtp/index.ts";
import { PyzmqCurvePeer } from "../helpers/pyzmq-curve-peer.ts";
import { waitFor } from "../helpers/wait.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function peer(args: string[]): PyzmqCurvePeer {
  const started = new PyzmqCurvePeer(args);
  cleanups.push(() => started.stop());
  return started;
}

function track<T extends { close(): void }>(socket: T): T {
  cleanups.push(() => socket.close());
  return socket;
}

/** Our CURVE Router on a random port, with its handshakes and failures recorded. */
async function curveRouter(options: ConstructorParameters<typeof Router>[0] = {}) {
  const keys = curveKeyPair();
  const router = track(new Router({ curveServer: true, curveSecretKey: keys.secretKey, logger: null, ...options }));
  const handshakes: SocketEventMap["handshake"][] = [];
  const failures: SocketEventMap["handshake:error"][] = [];
  const disconnects: SocketEventMap["disconnect"][] = [];
  router.events.on("handshake", (event) => handshakes.push(event));
  router.events.on("handshake:error", (event) => failures.push(event));
  router.events.on("disconnect", (event) => disconnects.push(event));
  await router.bind("tcp://127.0.0.1:0");
  const port = Number(router.lastEndpoint!.split(":").pop());
  return { router, keys, port, handshakes, failures, disconnects };
}

const patterned = (size: number, seed: number) => {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = (i / 4096 + seed) & 0xff;
  if (size > 0) bytes[size - 1] = seed;
  return bytes;
};

describe("our CURVE Router, pyzmq CURVE clients", () => {
  test("handshake, multi-frame and empty frames both ways, the client's key seen by the server", async () => {
    const { router, keys, port, handshakes } = await curveRouter();
    const clientKeys = curveKeyPair();
    const python = peer(["client", "--port", String(port), "--server-key", keys.publicKey, "--secret", clientKeys.secretKey]);
    await waitFor(() => handshakes.length === 1, { timeoutMs: 10_000, message: "handshake with the pyzmq client" });
    expect(handshakes[0].publicKey).toBe(clientKeys.publicKey);
    const id = handshakes[0].routingId;
    const frames = [Buffer.from("first"), Buffer.alloc(0), Buffer.from("third"), Buffer.alloc(0)];
    await router.send([id, ...frames]);
    const [from, ...echoed] = await waitFor(router.receive(), { timeoutMs: 10_000, message: "echo from pyzmq" });
    expect(Buffer.compare(from, id)).toBe(0);
    expect(echoed.map((f) => f.toString())).toEqual(["first", "", "third", ""]);
    await router.send([id, ""]);
    const [, empty] = await waitFor(router.receive(), { timeoutMs: 10_000, message: "echo of one empty frame" });
    expect(empty.length).toBe(0);
    await python.until((r) => r.event === "monitor" && r.name === "HANDSHAKE_SUCCEEDED", "pyzmq HANDSHAKE_SUCCEEDED");
  });

  for (const size of [1024 * 1024, 64 * 1024 * 1024]) {
    test(`a ${size / 1024 / 1024} MiB message there and back`, async () => {
      const { router, keys, port, handshakes } = await curveRouter();
      peer(["client", "--port", String(port), "--server-key", keys.publicKey]);
      await waitFor(() => handshakes.length === 1, { timeoutMs: 10_000, message: "handshake" });
      const payload = patterned(size, 7);
      await router.send([handshakes[0].routingId, "head", payload]);
      const [, head, body] = await waitFor(router.receive(), { timeoutMs: 60_000, message: `echo of ${size} bytes` });
      expect(head.toString()).toBe("head");
      expect(body.length).toBe(size);
      expect(Buffer.compare(body, payload)).toBe(0);
    }, 90_000);
  }

  test("libzmq's heartbeats on an idle encrypted connection are answered inside the box: nobody disconnects", async () => {
    const intervalMs = 50;
    const timeoutMs = 250;
    const { router, keys, port, handshakes, disconnects } = await curveRouter({
      heartbeatInterval: intervalMs,
      heartbeatTimeout: timeoutMs,
    });
    const python = peer([
      "client",
      "--port",
      String(port),
      "--server-key",
      keys.publicKey,
      "--heartbeat-ivl",
      String(intervalMs),
      "--heartbeat-timeout",
      String(timeoutMs),
    ]);
    await waitFor(() => handshakes.length === 1, { timeoutMs: 10_000, message: "handshake" });
    // Idle for many heartbeat timeouts: a PING or PONG not understood closes the link in one.
    const idleMs = timeoutMs * 8;
    const start = Date.now();
    await waitFor(() => Date.now() - start >= idleMs || disconnects.length > 0, { timeoutMs: idleMs * 4, message: "idle period" });
    expect(disconnects).toEqual([]);
    expect(python.monitorEvents()).not.toContain("DISCONNECTED");
    await router.send([handshakes[0].routingId, "still there?"]);
    const [, reply] = await waitFor(router.receive(), { timeoutMs: 10_000, message: "echo after idling" });
    expect(reply.toString()).toBe("still there?");
  });

  test("a client with the wrong server key is refused; a denied key gets libzmq's ERROR 400; others keep working", async () => {
    const allowed = curveKeyPair();
    const { router, keys, port, handshakes, failures } = await curveRouter({ curveAuthenticator: curveAllowList([allowed.publicKey]) });
    const wrongServer = peer(["client", "--port", String(port), "--server-key", curveKeyPair().publicKey]);
    const denied = peer(["client", "--port", String(port), "--server-key", keys.publicKey]);
    const good = peer(["client", "--port", String(port), "--server-key", keys.publicKey, "--secret", allowed.secretKey]);
    await denied.until((r) => r.event === "monitor" && r.name === "HANDSHAKE_FAILED_AUTH", "pyzmq HANDSHAKE_FAILED_AUTH");
    expect(denied.records.find((r) => r.name === "HANDSHAKE_FAILED_AUTH")?.value).toBe(400);
    await waitFor(() => failures.some((f) => /wrong server key/.test(f.error.message)), {
      timeoutMs: 10_000,
      message: "wrong-key refusal",
    });
    expect(failures.every((f) => f.error.code === ZmtpErrorCode.SECURITY)).toBe(true);
    expect(failures.some((f) => /not in the allow-list/.test(f.error.message))).toBe(true);
    await waitFor(() => handshakes.length >= 1, { timeoutMs: 10_000, message: "the allowed client's handshake" });
    expect(handshakes.map((h) => h.publicKey)).toEqual([allowed.publicKey]);
    await router.send([handshakes[0].routingId, "ok"]);
    const [, reply] = await waitFor(router.receive(), { timeoutMs: 10_000, message: "echo from the allowed client" });
    expect(reply.toString()).toBe("ok");
    await wrongServer.stop();
    await good.until((r) => r.event === "echo", "echo");
  });
});

describe("our CURVE Dealer, a pyzmq CURVE ROUTER with ThreadAuthenticator", () => {
  async function echo(dealer: Dealer, frames: (string | Buffer)[], timeoutMs = 10_000): Promise<Buffer[]> {
    await dealer.send(frames);
    return waitFor(dealer.receive(), { timeoutMs, message: "echo from the pyzmq server" });
  }

  test("allow-any: multi-frame, empty frames, 1 MiB and 64 MiB", async () => {
    const python = peer(["server"]);
    const { port, publicKey } = await python.ready();
    const keys = curveKeyPair();
    const dealer = track(new Dealer({ curveServerKey: publicKey, curveSecretKey: keys.secretKey, logger: null }));
    let handshakeKey = "";
    dealer.events.on("handshake", (event) => {
      handshakeKey = event.publicKey;
    });
    dealer.connect(`tcp://127.0.0.1:${port}`);
    expect((await echo(dealer, ["a", "", "c"])).map((f) => f.toString())).toEqual(["a", "", "c"]);
    expect(handshakeKey).toBe(publicKey!);
    expect((await echo(dealer, [""])).map((f) => f.length)).toEqual([0]);
    for (const size of [1024 * 1024, 64 * 1024 * 1024]) {
      const payload = patterned(size, 3);
      const [body] = await echo(dealer, [payload], 60_000);
      expect(body.length).toBe(size);
      expect(Buffer.compare(body, payload)).toBe(0);
    }
  }, 90_000);

  test("allow-list: a listed key gets in, an unlisted one is refused with a SECURITY error naming the cause", async () => {
    const listed = curveKeyPair();
    const python = peer(["server", "--allow", listed.publicKey]);
    const { port, publicKey } = await python.ready();
    const good = track(
      new Dealer({ curveServerKey: publicKey, curveSecretKey: listed.secretKey, curvePublicKey: listed.publicKey, logger: null }),
    );
    good.connect(`tcp://127.0.0.1:${port}`);
    expect((await echo(good, ["listed"]))[0].toString()).toBe("listed");

    const stranger = track(new Dealer({ curveServerKey: publicKey, curveSecretKey: curveKeyPair().secretKey, logger: null }));
    const errors: SocketEventMap["handshake:error"][] = [];
    stranger.events.on("handshake:error", (event) => errors.push(event));
    stranger.connect(`tcp://127.0.0.1:${port}`);
    await waitFor(() => errors.length > 0, { timeoutMs: 10_000, message: "the stranger's refusal" });
    expect(errors[0].error.code).toBe(ZmtpErrorCode.SECURITY);
    expect(errors[0].error.message).toContain("does not admit this client's public key");
    expect((await echo(good, ["still fine"]))[0].toString()).toBe("still fine");
  });

  test("a wrong server key: libzmq hangs up after HELLO and the error says to check the server key", async () => {
    const python = peer(["server"]);
    const { port } = await python.ready();
    const dealer = track(new Dealer({ curveServerKey: curveKeyPair().publicKey, curveSecretKey: curveKeyPair().secretKey, logger: null }));
    const errors: SocketEventMap["handshake:error"][] = [];
    dealer.events.on("handshake:error", (event) => errors.push(event));
    dealer.connect(`tcp://127.0.0.1:${port}`);
    await waitFor(() => errors.length > 0, { timeoutMs: 10_000, message: "the refusal" });
    expect(errors[0].error.code).toBe(ZmtpErrorCode.SECURITY);
    expect(errors[0].error.message).toMatch(/check the server key \(curveServerKey\)/);
    await python.until((r) => r.name === "HANDSHAKE_FAILED_PROTOCOL", "pyzmq HANDSHAKE_FAILED_PROTOCOL");
  });

  test("a NULL Dealer against a CURVE server is refused as a mechanism mismatch", async () => {
    const python = peer(["server"]);
    const { port } = await python.ready();
    const dealer = track(new Dealer({ logger: null }));
    const errors: SocketEventMap["handshake:error"][] = [];
    let handshakes = 0;
    dealer.events.on("handshake:error", (event) => errors.push(event));
    dealer.events.on("handshake", () => handshakes++);
    dealer.connect(`tcp://127.0.0.1:${port}`);
    await waitFor(() => errors.length > 0, { timeoutMs: 10_000, message: "mechanism mismatch" });
    // libzmq hangs up as soon as it reads our NULL greeting, sometimes before its own arrives whole.
    expect(errors[0].error.message).toMatch(/CURVE mechanism; this socket uses NULL|peer closed the connection during the handshake/);
    expect(handshakes).toBe(0);
  });
});
