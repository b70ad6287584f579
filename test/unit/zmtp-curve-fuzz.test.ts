/**
 * Fuzzes the CURVE handshake decoders (server and client sessions) and the MESSAGE box with over
 * 100,000 inputs per run: random commands, valid commands with bytes flipped, lengths changed,
 * names swapped and tails cut. Each may only be refused with ZmtpProtocolError; nothing else
 * may escape, and nothing mutated may complete a handshake or open as a MESSAGE.
 *
 * Replay a failure with the seed it prints:  VOIDRAIL_FUZZ_SEED=123 bun test test/unit/zmtp-curve-fuzz.test.ts
 */
import { expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { encodeCommand, parseCommand } from "../../src/zmtp/codec.ts";
import { CurveMessageBox } from "../../src/zmtp/curve/message-box.ts";
import { ZmtpProtocolError } from "../../src/zmtp/errors.ts";
import { curveClient, curveKeyPair, curveServer } from "../../src/zmtp/index.ts";
import type { MechanismSession } from "../../src/zmtp/mechanism/mechanism.ts";
import { type Random, seededRandom } from "../helpers/random.ts";

const SEED = Number(process.env.VOIDRAIL_FUZZ_SEED ?? Date.now() % 2 ** 31);
const server = curveKeyPair();
const serverMechanism = curveServer({ secretKey: server.secretKey });
const clientMechanism = curveClient({ serverKey: server.publicKey, secretKey: curveKeyPair().secretKey });
const newServer = () => serverMechanism.createSession({ "Socket-Type": "ROUTER", Identity: "" }, { remoteAddress: "fuzz" });
const newClient = () => clientMechanism.createSession({ "Socket-Type": "DEALER", Identity: "" }, { remoteAddress: "fuzz" });

const NAMES = ["HELLO", "WELCOME", "INITIATE", "READY", "MESSAGE", "ERROR", "PING", "X"];

/** A valid transcript: HELLO, WELCOME, INITIATE, READY bodies of one real handshake. */
function transcript(): { hello: Buffer; welcome: Buffer; initiate: Buffer; ready: Buffer } {
  const client = newClient();
  const srv = newServer();
  const [hello] = client.start();
  const [welcome] = srv.onCommand(parseCommand(hello)).send;
  const [initiate] = client.onCommand(parseCommand(welcome)).send;
  const [ready] = srv.onCommand(parseCommand(initiate)).send;
  return { hello, welcome, initiate, ready };
}

function mutate(rnd: Random, body: Buffer): Buffer {
  const out = Buffer.from(body);
  switch (rnd.int(5)) {
    case 0: // flip 1-3 bits anywhere after the name
      for (let i = rnd.int(3) + 1; i > 0; i--) out[rnd.int(out.length)] ^= 1 << rnd.int(8);
      return out;
    case 1: // cut the tail
      return out.subarray(0, rnd.int(out.length));
    case 2: // grow with junk
      return Buffer.concat([out, rnd.bytes(rnd.int(64) + 1)]);
    case 3: // another command's name on these bytes
      return encodeCommand(rnd.pick(NAMES), parseCommand(out).data);
    default: // overwrite a slice
      out.set(rnd.bytes(Math.min(16, out.length)), rnd.int(Math.max(1, out.length - 16)));
      return out;
  }
}

/** Feeds one command; returns whether the session accepted it. Fails the test on any non-protocol error. */
function feed(session: MechanismSession, body: Buffer, seedNote: string): boolean {
  let command: ReturnType<typeof parseCommand>;
  try {
    command = parseCommand(body);
  } catch (error) {
    if (error instanceof ZmtpProtocolError) return false;
    throw new Error(`parseCommand threw ${String(error)} (${seedNote})`);
  }
  try {
    session.onCommand(command);
    return true;
  } catch (error) {
    if (error instanceof ZmtpProtocolError) return false;
    throw new Error(`session threw ${(error as Error)?.stack ?? String(error)} (${seedNote})`);
  }
}

test(`CURVE handshake and MESSAGE decoders survive 100,000+ fuzzed inputs (seed ${SEED})`, () => {
  const rnd = seededRandom(SEED);
  const note = `VOIDRAIL_FUZZ_SEED=${SEED}`;
  let inputs = 0;
  const valid = transcript();

  // 1. Random commands into fresh sessions at each state (cheap: refused before any crypto).
  const serverAtHello = newServer();
  const clientAtWelcome = newClient();
  clientAtWelcome.start();
  for (let i = 0; i < 60_000; i++) {
    const body = rnd.int(4) === 0 ? rnd.bytes(rnd.int(300)) : encodeCommand(rnd.pick(NAMES), rnd.bytes(rnd.int(260)));
    // A random body opening a box by chance is 2^-128: an acceptance is a bug.
    expect(feed(rnd.int(2) === 0 ? serverAtHello : clientAtWelcome, body, note)).toBe(false);
    inputs++;
  }

  // 2. Mutated real handshake commands, each against the session state that expects it.
  for (let i = 0; i < 4_000; i++) {
    const which = rnd.int(4);
    if (which === 0) {
      const mutated = mutate(rnd, valid.hello);
      if (!mutated.equals(valid.hello)) feed(newServer(), mutated, note);
    } else if (which === 1) {
      // A WELCOME for a client that did not send the HELLO it answers: never opens.
      const client = newClient();
      client.start();
      expect(feed(client, mutate(rnd, valid.welcome), note)).toBe(false);
    } else if (which === 2) {
      // An INITIATE whose cookie belongs to another connection: never accepted.
      const srv = newServer();
      srv.onCommand(parseCommand(newClient().start()[0]));
      expect(feed(srv, mutate(rnd, valid.initiate), note)).toBe(false);
    } else {
      const client = newClient();
      client.start();
      expect(feed(client, mutate(rnd, valid.ready), note)).toBe(false);
    }
    inputs++;
  }

  // 3. MESSAGE bodies: random, and real ones mutated; only unmutated real ones may open.
  const key = new Uint8Array(32).fill(9);
  for (let i = 0; i < 40_000; i++) {
    const sender = new CurveMessageBox(key, false, 3, 1);
    const receiver = new CurveMessageBox(key, true, 2, 2);
    const payload = rnd.bytes(rnd.int(200));
    const body = Buffer.alloc(sender.overhead + payload.length);
    body.set(payload, sender.overhead);
    sender.seal(body, rnd.int(2) === 0 ? 0 : 1);
    const input = rnd.int(3) === 0 ? rnd.bytes(rnd.int(250)) : mutate(rnd, body);
    try {
      const plain = receiver.open(input);
      // Only a mutation that changed nothing inside the box (e.g. junk that was cut back off) opens.
      expect(Buffer.from(plain.subarray(1)).equals(payload)).toBe(true);
    } catch (error) {
      if (!(error instanceof ZmtpProtocolError)) throw new Error(`open threw ${String(error)} (${note})`);
    }
    inputs++;
  }
  expect(inputs).toBeGreaterThanOrEqual(100_000);
}, 120_000);
