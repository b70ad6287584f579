/**
 * The pure CURVE parts of src/zmtp: Z85 (RFC 32 vectors), keys (libzmq's documented test
 * keys), the NaCl shim (NaCl's own crypto_box test vectors), the MESSAGE box (libzmq's
 * unittest_curve_encoding cases plus nonce rules) and the handshake sessions driven against
 * each other in memory, with libzmq's negative cases from tests/test_security_curve.cpp.
 */
import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { encodeCommand, parseCommand } from "../../src/zmtp/codec.ts";
import { xsalsa20poly1305 } from "@noble/ciphers/salsa.js";
import { open, seal, sharedKey } from "../../src/zmtp/curve/box.ts";
import { CurveMessageBox } from "../../src/zmtp/curve/message-box.ts";
import { ZmtpErrorCode, ZmtpProtocolError } from "../../src/zmtp/errors.ts";
import { curveAllowList, curveClient, curveKeyPair, curvePublicKey, curveServer, z85Decode, z85Encode } from "../../src/zmtp/index.ts";
import type { HandshakeResult, Mechanism, MechanismSession } from "../../src/zmtp/mechanism/mechanism.ts";

// doc/zmq_curve.adoc's fixed test keys.
const CLIENT_PUBLIC = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
const CLIENT_SECRET = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
const SERVER_PUBLIC = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
const SERVER_SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

const hex = (text: string) => Uint8Array.from(Buffer.from(text, "hex"));

describe("Z85 (RFC 32)", () => {
  test("the RFC's vector: 86 4F D2 6F B5 59 F7 5B is HelloWorld", () => {
    expect(z85Encode(hex("864FD26FB559F75B"))).toBe("HelloWorld");
    expect(Buffer.from(z85Decode("HelloWorld")).toString("hex")).toBe("864fd26fb559f75b");
  });

  test("the RFC's 32-byte key vector round-trips", () => {
    const key = hex("8E0BDD697628B91D8F245587EE95C5B04D48963F79259877B49CD9063AEAD3B7");
    expect(z85Encode(key)).toBe("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6");
    expect(z85Decode(z85Encode(key))).toEqual(key);
  });

  test("round-trips every byte value and the empty string", () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    expect(z85Decode(z85Encode(bytes))).toEqual(bytes);
    expect(z85Encode(new Uint8Array(0))).toBe("");
    expect(z85Decode("")).toEqual(new Uint8Array(0));
    expect(z85Encode(new Uint8Array([255, 255, 255, 255]))).toBe("%nSc0");
  });

  test("refuses bad lengths, characters outside the alphabet and groups over 32 bits", () => {
    expect(() => z85Encode(new Uint8Array(3))).toThrow(RangeError);
    expect(() => z85Decode("Hell")).toThrow(RangeError);
    expect(() => z85Decode('Hell"')).toThrow(/invalid Z85 character/);
    expect(() => z85Decode("Hellé")).toThrow(/invalid Z85 character/);
    expect(() => z85Decode("%nSc1")).toThrow(/exceeds 32 bits/);
  });
});

describe("CURVE keys", () => {
  test("curvePublicKey derives libzmq's documented public keys", () => {
    expect(curvePublicKey(CLIENT_SECRET)).toBe(CLIENT_PUBLIC);
    expect(curvePublicKey(SERVER_SECRET)).toBe(SERVER_PUBLIC);
  });

  test("curveKeyPair returns two 40-character Z85 keys that belong together, fresh each time", () => {
    const a = curveKeyPair();
    const b = curveKeyPair();
    expect(a.publicKey).toHaveLength(40);
    expect(a.secretKey).toHaveLength(40);
    expect(curvePublicKey(a.secretKey)).toBe(a.publicKey);
    expect(a.secretKey).not.toBe(b.secretKey);
  });

  test("bad keys are refused with a message naming the option", () => {
    expect(() => curvePublicKey("short")).toThrow(/secretKey must be a 40-character Z85 string/);
    expect(() => curveClient({ serverKey: new Uint8Array(31), secretKey: CLIENT_SECRET })).toThrow(/curveServerKey must be 32 bytes/);
    expect(() => curveServer({ secretKey: `${SERVER_SECRET.slice(0, 39)}~` })).toThrow(/curveSecretKey is not valid Z85/);
    expect(() => curveClient({ serverKey: SERVER_PUBLIC, secretKey: CLIENT_SECRET, publicKey: SERVER_PUBLIC })).toThrow(/does not belong/);
  });
});

describe("NaCl box shim", () => {
  // NaCl's tests/box.c and tests/firstkey.c: alice's secret, bob's public, their beforenm key.
  const aliceSecret = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const bobPublic = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");

  test("crypto_box_beforenm matches NaCl's firstkey vector", () => {
    expect(Buffer.from(sharedKey(bobPublic, aliceSecret)!).toString("hex")).toBe(
      "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389",
    );
  });

  test("an all-zero (low-order) public key gives no shared key", () => {
    expect(sharedKey(new Uint8Array(32), aliceSecret)).toBeNull();
  });

  test("seal/open round-trip; a flipped bit or a wrong nonce does not open", () => {
    const key = sharedKey(bobPublic, aliceSecret)!;
    const nonce = new Uint8Array(24).fill(7);
    const box = seal(key, nonce, Buffer.from("attack at dawn"));
    expect(box.length).toBe(14 + 16);
    expect(Buffer.from(open(key, nonce, box)!).toString()).toBe("attack at dawn");
    const flipped = Uint8Array.from(box);
    flipped[20] ^= 1;
    expect(open(key, nonce, flipped)).toBeNull();
    expect(open(key, new Uint8Array(24), box)).toBeNull();
    expect(open(key, nonce, box.subarray(0, 10))).toBeNull();
  });
});

/** A MESSAGE body of `payload` sealed by `box` as the connection does it. */
function sealFrame(box: CurveMessageBox, payload: Uint8Array, flags = 0): Buffer {
  const body = Buffer.alloc(box.overhead + payload.length);
  body.set(payload, box.overhead);
  box.seal(body, flags);
  return body;
}

describe("CURVE MESSAGE box (libzmq unittest_curve_encoding)", () => {
  const key = new Uint8Array(32).fill(42);
  const pair = () => ({ client: new CurveMessageBox(key, false, 3, 1), server: new CurveMessageBox(key, true, 2, 2) });

  for (const [name, size, flags] of [
    ["empty", 0, 0],
    ["32 bytes", 32, 0],
    ["2048 bytes", 2048, 0],
    ["empty with MORE", 0, 1],
    ["a command", 10, 4],
  ] as const) {
    test(`${name} round-trips client → server with its flags`, () => {
      const { client, server } = pair();
      const payload = new Uint8Array(size).map((_, i) => i & 0xff);
      const body = sealFrame(client, payload, flags);
      expect(body.subarray(0, 8).toString("latin1")).toBe("\x07MESSAGE");
      expect(body.readBigUInt64BE(8)).toBe(3n);
      const plain = server.open(body);
      expect(plain[0]).toBe(flags);
      expect(Uint8Array.from(plain.subarray(1))).toEqual(payload);
    });
  }

  test("the box carries libzmq's flag bits: 0x02 for a command inside, not the wire's 0x04", () => {
    const { client } = pair();
    const probe = new CurveMessageBox(key, true, 2, 2);
    const body = sealFrame(client, new Uint8Array(4), 4);
    // Open by hand with the raw NaCl layer: flags byte first.
    const nonce = Buffer.concat([Buffer.from("CurveZMQMESSAGEC"), body.subarray(8, 16)]);
    expect(open(key, nonce, body.subarray(16))![0]).toBe(0x02);
    expect(probe.open(body)[0]).toBe(4);
  });

  test("a replayed, a lower and an equal nonce are refused; a gap is allowed", () => {
    const { client, server } = pair();
    const first = sealFrame(client, Buffer.from("a"));
    const second = sealFrame(client, Buffer.from("b"));
    sealFrame(client, Buffer.from("skipped"));
    const fourth = sealFrame(client, Buffer.from("d"));
    server.open(first);
    expect(() => server.open(first)).toThrow(/replayed or reordered/);
    server.open(fourth);
    expect(() => server.open(second)).toThrow(/replayed or reordered/);
  });

  test("a nonce not above the handshake's is refused (MESSAGE counters start after INITIATE)", () => {
    const early = new CurveMessageBox(key, false, 2, 1);
    const server = new CurveMessageBox(key, true, 2, 2);
    expect(() => server.open(sealFrame(early, Buffer.from("x")))).toThrow(/not above/);
  });

  test("wrong direction, corruption, truncation and other commands are refused", () => {
    const { client, server } = pair();
    expect(() => client.open(sealFrame(new CurveMessageBox(key, false, 5, 1), Buffer.from("x")))).toThrow(/does not open/);
    const body = sealFrame(client, Buffer.from("hello"));
    const corrupted = Buffer.from(body);
    corrupted[30] ^= 0x80;
    expect(() => server.open(corrupted)).toThrow(ZmtpProtocolError);
    expect(() => server.open(body.subarray(0, 32))).toThrow(/shorter than 33/);
    expect(() => server.open(Buffer.from("\x07MESSAGX".padEnd(40, "\0"), "latin1"))).toThrow(/expected a CURVE MESSAGE/);
    expect(() => server.open(Buffer.alloc(0))).toThrow(/expected a CURVE MESSAGE/);
  });
});

// ---- handshake sessions against each other, in memory ----

const METADATA = (type: string) => ({ "Socket-Type": type, Identity: "" });

interface Outcome {
  client?: HandshakeResult;
  server?: HandshakeResult;
  error?: ZmtpProtocolError;
  serverSent: Buffer[];
}

/**
 * Runs a handshake between two sessions, passing commands both ways; `tamper` may rewrite or
 * drop any command on its way (returning null drops it).
 */
function handshake(
  client: MechanismSession,
  server: MechanismSession,
  tamper: (from: "client" | "server", body: Buffer) => Buffer | null = (_, body) => body,
): Outcome {
  const outcome: Outcome = { serverSent: [] };
  const queue: { to: "client" | "server"; body: Buffer }[] = [];
  const push = (from: "client" | "server", bodies: Buffer[]) => {
    for (const body of bodies) {
      if (from === "server") outcome.serverSent.push(body);
      const changed = tamper(from, body);
      if (changed !== null) queue.push({ to: from === "client" ? "server" : "client", body: changed });
    }
  };
  try {
    push("server", server.start());
    push("client", client.start());
    while (queue.length > 0) {
      const { to, body } = queue.shift()!;
      const result = (to === "server" ? server : client).onCommand(parseCommand(body));
      push(to, result.send);
      if (result.refused) throw result.refused;
      if (result.done) outcome[to] = result.done;
    }
  } catch (error) {
    if (!(error instanceof ZmtpProtocolError)) throw error;
    outcome.error = error;
  }
  return outcome;
}

const sessionOf = (mechanism: Mechanism, type: string) => mechanism.createSession(METADATA(type), { remoteAddress: "127.0.0.1:5000" });

describe("CURVE handshake (libzmq tests/test_security_curve.cpp)", () => {
  const server = () => sessionOf(curveServer({ secretKey: SERVER_SECRET }), "ROUTER");
  const client = (overrides: Partial<{ serverKey: string; secretKey: string }> = {}) =>
    sessionOf(curveClient({ serverKey: SERVER_PUBLIC, secretKey: CLIENT_SECRET, ...overrides }), "DEALER");

  test("valid credentials: both sides finish, learn each other's metadata and long-term keys, and talk", () => {
    const outcome = handshake(client(), server());
    expect(outcome.error).toBeUndefined();
    expect(outcome.server?.peerPublicKey).toBe(CLIENT_PUBLIC);
    expect(outcome.client?.peerPublicKey).toBe(SERVER_PUBLIC);
    expect(outcome.server?.peerMetadata.get("socket-type")?.toString()).toBe("DEALER");
    expect(outcome.client?.peerMetadata.get("socket-type")?.toString()).toBe("ROUTER");
    const toServer = sealFrame(outcome.client!.box as CurveMessageBox, Buffer.from("ping"));
    expect(outcome.server!.box!.open(toServer).subarray(1).toString()).toBe("ping");
    const toClient = sealFrame(outcome.server!.box as CurveMessageBox, Buffer.from("pong"));
    expect(outcome.client!.box!.open(toClient).subarray(1).toString()).toBe("pong");
  });

  test("the command sizes are libzmq's: HELLO 200, WELCOME 168, INITIATE ≥ 257, READY ≥ 30", () => {
    const sizes: Record<string, number> = {};
    handshake(client(), server(), (_, body) => {
      sizes[parseCommand(body).name] = body.length;
      return body;
    });
    expect(sizes.HELLO).toBe(200);
    expect(sizes.WELCOME).toBe(168);
    expect(sizes.INITIATE).toBeGreaterThanOrEqual(257);
    expect(sizes.READY).toBeGreaterThanOrEqual(30);
  });

  test("a client with the wrong server key: the server cannot open HELLO", () => {
    const outcome = handshake(client({ serverKey: CLIENT_PUBLIC }), server());
    expect(outcome.error?.code).toBe(ZmtpErrorCode.SECURITY);
    expect(outcome.error?.message).toMatch(/wrong server key/);
  });

  test("a bogus client key is denied by the allow-list with ERROR 400", () => {
    const listed = sessionOf(curveServer({ secretKey: SERVER_SECRET, authenticator: curveAllowList([CLIENT_PUBLIC]) }), "ROUTER");
    const stranger = curveKeyPair();
    const outcome = handshake(client({ secretKey: stranger.secretKey }), listed);
    expect(outcome.error?.code).toBe(ZmtpErrorCode.SECURITY);
    expect(outcome.error?.message).toContain(stranger.publicKey);
    const last = parseCommand(outcome.serverSent.at(-1)!);
    expect(last.name).toBe("ERROR");
    expect(last.data.toString("latin1")).toBe("\x03400");
    const admitted = handshake(
      client(),
      sessionOf(curveServer({ secretKey: SERVER_SECRET, authenticator: curveAllowList([CLIENT_PUBLIC]) }), "ROUTER"),
    );
    expect(admitted.error).toBeUndefined();
    expect(admitted.server?.userId).toBe(CLIENT_PUBLIC);
  });

  test("the authenticator sees the client's key, address and routing id after the vouch", () => {
    const seen: unknown[] = [];
    const mechanism = curveServer({
      secretKey: SERVER_SECRET,
      authenticator: (request) => {
        seen.push({ key: request.publicKey, address: request.address, id: request.routingId.toString() });
        return { allow: false, reason: "not today" };
      },
    });
    const dealer = curveClient({ serverKey: SERVER_PUBLIC, secretKey: CLIENT_SECRET }).createSession(
      { "Socket-Type": "DEALER", Identity: "worker-1" },
      { remoteAddress: "" },
    );
    const outcome = handshake(dealer, sessionOf(mechanism, "ROUTER"));
    expect(seen).toEqual([{ key: CLIENT_PUBLIC, address: "127.0.0.1:5000", id: "worker-1" }]);
    expect(outcome.error?.message).toContain("not today");
  });

  test("the client reads the server's ERROR 400 as a refusal of its key", () => {
    const result = () => client().onCommand(parseCommand(encodeCommand("ERROR", Buffer.from("\x03400", "latin1"))));
    expect(result).toThrow(/does not admit this client's public key/);
  });

  const corruptions: [string, "client" | "server", string, (body: Buffer) => Buffer, RegExp][] = [
    ["HELLO with the wrong length", "client", "HELLO", (b) => b.subarray(0, 199), /malformed HELLO/],
    [
      "HELLO with a changed name byte",
      "client",
      "HELLO",
      (b) => Buffer.concat([Buffer.from("\x05HELLp"), b.subarray(6)]),
      /unexpected HELLp/,
    ],
    ["HELLO asking for version 2", "client", "HELLO", (b) => Object.assign(Buffer.from(b), { 6: 2 }), /only 1.0/],
    [
      "HELLO with a corrupted box",
      "client",
      "HELLO",
      (b) => Object.assign(Buffer.from(b), { 150: b[150] ^ 1 }),
      /cannot open the client's HELLO/,
    ],
    ["INITIATE with the wrong length", "client", "INITIATE", (b) => b.subarray(0, 256), /malformed INITIATE/],
    [
      "INITIATE with a bad name",
      "client",
      "INITIATE",
      (b) => Buffer.concat([Buffer.from("\x08INITIATF"), b.subarray(9)]),
      /unexpected INITIATF/,
    ],
    [
      "INITIATE with a corrupted cookie",
      "client",
      "INITIATE",
      (b) => Object.assign(Buffer.from(b), { 40: b[40] ^ 1 }),
      /cookie does not open/,
    ],
    [
      "INITIATE with a corrupted box",
      "client",
      "INITIATE",
      (b) => Object.assign(Buffer.from(b), { 200: b[200] ^ 1 }),
      /INITIATE box does not open/,
    ],
    ["WELCOME with the wrong length", "server", "WELCOME", (b) => b.subarray(0, 167), /malformed WELCOME/],
    [
      "WELCOME with a corrupted box",
      "server",
      "WELCOME",
      (b) => Object.assign(Buffer.from(b), { 100: b[100] ^ 1 }),
      /cannot open the server's WELCOME/,
    ],
    ["READY with a corrupted box", "server", "READY", (b) => Object.assign(Buffer.from(b), { 20: b[20] ^ 1 }), /READY box does not open/],
    ["READY too short", "server", "READY", (b) => b.subarray(0, 29), /malformed READY/],
  ];
  for (const [name, from, command, change, message] of corruptions) {
    test(`${name} is refused`, () => {
      const outcome = handshake(client(), server(), (sender, body) =>
        sender === from && parseCommand(body).name === command ? change(body) : body,
      );
      expect(outcome.error?.message).toMatch(message);
      expect(outcome.client === undefined || outcome.server === undefined).toBe(true);
    });
  }

  test("READY before WELCOME and a second HELLO are refused", () => {
    const early = client();
    early.start();
    expect(() => early.onCommand(parseCommand(encodeCommand("READY", Buffer.alloc(40))))).toThrow(/unexpected READY/);
    const twice = server();
    const hello = client().start()[0];
    twice.onCommand(parseCommand(hello));
    expect(() => twice.onCommand(parseCommand(hello))).toThrow(/unexpected HELLO/);
  });

  test("an INITIATE replayed on a new connection is refused: its cookie key was that connection's", () => {
    let recorded: Buffer | undefined;
    handshake(client(), server(), (_, body) => {
      if (parseCommand(body).name === "INITIATE") recorded = body;
      return body;
    });
    const fresh = server();
    fresh.onCommand(parseCommand(client().start()[0]));
    expect(() => fresh.onCommand(parseCommand(recorded!))).toThrow(/cookie does not open/);
  });

  test("all-zero keys are refused", () => {
    expect(() => sessionOf(curveClient({ serverKey: new Uint8Array(32), secretKey: CLIENT_SECRET }), "DEALER").start()).toThrow(
      /not a usable public key/,
    );
    const outcome = handshake(client(), server(), (sender, body) => {
      if (sender !== "client" || parseCommand(body).name !== "HELLO") return body;
      const zeroed = Buffer.from(body);
      zeroed.fill(0, 80, 112); // C' = 0
      return zeroed;
    });
    expect(outcome.error?.message).toMatch(/cannot open the client's HELLO/);
  });
});

describe("MESSAGE boxes against @noble/ciphers", () => {
  test("a sealed MESSAGE is crypto_box_easy_afternm's bytes, and opens what noble seals, for every length 0-600 and around 2048 bytes", () => {
    const lengths = [...Array.from({ length: 601 }, (_, i) => i), 1990, 2000, 2014, 2015, 2016, 2017, 2030, 2047, 2048, 4096];
    for (const length of lengths) {
      const key = crypto.getRandomValues(new Uint8Array(32));
      // A counter with both 32-bit halves in use, as after 2^32 frames.
      const counter = 0x1_0000_0000 * (1 + (length % 7)) + length * 977 + 3;
      const sender = new CurveMessageBox(key, false, counter, 1);
      const receiver = new CurveMessageBox(key, true, 2, counter - 1);
      const payload = crypto.getRandomValues(new Uint8Array(length));
      const body = sealFrame(sender, payload, length % 2);
      const nonce = Buffer.concat([Buffer.from("CurveZMQMESSAGEC"), body.subarray(8, 16)]);
      expect(body.readBigUInt64BE(8)).toBe(BigInt(counter));
      const expected = xsalsa20poly1305(key, nonce).encrypt(Buffer.concat([Buffer.from([length % 2]), payload]));
      expect(Buffer.from(body.subarray(16)).equals(Buffer.from(expected))).toBe(true);
      const opened = receiver.open(body);
      expect(opened[0]).toBe(length % 2);
      expect(Buffer.from(opened.subarray(1)).equals(Buffer.from(payload))).toBe(true);
      // Noble seals a frame server → client; our client opens it.
      const back = Buffer.concat([Buffer.from("\x07MESSAGE", "latin1"), body.subarray(8, 16)]);
      const serverNonce = Buffer.concat([Buffer.from("CurveZMQMESSAGES"), body.subarray(8, 16)]);
      const fromServer = Buffer.concat([back, xsalsa20poly1305(key, serverNonce).encrypt(Buffer.concat([Buffer.from([0]), payload]))]);
      const client = new CurveMessageBox(key, false, 3, counter - 1);
      expect(Buffer.from(client.open(fromServer).subarray(1)).equals(Buffer.from(payload))).toBe(true);
      const forged = Buffer.from(body);
      forged[16 + ((length * 7) % (forged.length - 16))] ^= 0x10;
      expect(() => new CurveMessageBox(key, true, 2, counter - 1).open(forged)).toThrow(/does not open/);
    }
  });
});
