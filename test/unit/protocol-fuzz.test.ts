import { describe, expect, test } from "bun:test";
import { decodeArgs, decodeJson, decodeMessage, encodeJsonOrThrow, encodeMessage, KINDS, type Receiver } from "../../src/protocol/index.ts";
import { seededRandom } from "../helpers/random.ts";

/** A seeded PRNG: a failing case replays from the printed seed. */
const random = (seed: number) => seededRandom(seed).next;

const SEED = Number(process.env.VOIDRAIL_FUZZ_SEED ?? Date.now() % 2 ** 31);
const ITERATIONS = 20_000;
const receivers: Receiver[] = ["router", "dealer", "client"];
const utf8 = new TextEncoder();

const valid: Uint8Array[][] = [
  encodeMessage("REQUEST", { id: 1, method: "EchoService.echo", stream: true, credit: 4, timeoutMs: 100 }, encodeJsonOrThrow(["x"])),
  encodeMessage("HELLO", {
    role: "dealer",
    version: 1,
    service: "S",
    maxConcurrent: 2,
    methods: { "S.m": { stream: false, params: { type: "array" } } },
  }),
  encodeMessage("ERROR", { id: 3, code: "TIMEOUT", message: "late", data: { timeoutMs: 5 } }),
  encodeMessage("CHUNK", { id: 3, seq: 1 }, encodeJsonOrThrow({ a: 1 })),
  encodeMessage("WELCOME", { role: "dealer", version: 1, dealerId: "S-1", heartbeatIntervalMs: 100, heartbeatTimeoutMs: 300 }),
  encodeMessage("INFO", { id: 9, topic: "router" }),
];

describe(`random frames never make the codec throw (seed ${SEED})`, () => {
  test("random byte frames", () => {
    const next = random(SEED);
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T;
    const randomBytes = (max: number) => {
      const out = new Uint8Array(Math.floor(next() * max));
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(next() * 256);
      return out;
    };
    for (let i = 0; i < ITERATIONS; i++) {
      const frames: Uint8Array[] = [];
      const count = Math.floor(next() * 6);
      for (let f = 0; f < count; f++) {
        const roll = next();
        // Plausible frames often enough to get past the early checks into JSON and the schemas.
        if (f === 0 && roll < 0.7) frames.push(utf8.encode("VRP1"));
        else if (f === 1 && roll < 0.7) frames.push(utf8.encode(pick(KINDS)));
        else if (f === 2 && roll < 0.5)
          frames.push(utf8.encode(JSON.stringify({ id: Math.floor(next() * 10) - 2, n: next(), role: pick(["client", "dealer", 1]) })));
        else frames.push(randomBytes(roll < 0.9 ? 24 : 600));
      }
      const result = decodeMessage(frames, pick(receivers));
      if (!result.ok) expect(result.error.code).toBe("PROTOCOL_ERROR");
      const payload = randomBytes(16);
      expect(typeof decodeJson(payload).ok).toBe("boolean");
      expect(typeof decodeArgs(payload).ok).toBe("boolean");
    }
  });

  test("valid messages with random bytes flipped, cut or inserted", () => {
    const next = random(SEED ^ 0x5bd1e995);
    for (let i = 0; i < ITERATIONS; i++) {
      const source = valid[i % valid.length] as Uint8Array[];
      const frames: Uint8Array[] = source.map((frame) => frame.slice());
      const target = Math.floor(next() * frames.length);
      const frame = frames[target] as Uint8Array;
      const roll = next();
      if (roll < 0.5 && frame.length > 0) {
        frame[Math.floor(next() * frame.length)] = Math.floor(next() * 256);
      } else if (roll < 0.75) {
        frames[target] = frame.subarray(0, Math.floor(next() * frame.length));
      } else if (roll < 0.9) {
        const at = Math.floor(next() * (frame.length + 1));
        const grown = new Uint8Array(frame.length + 1);
        grown.set(frame.subarray(0, at));
        grown[at] = Math.floor(next() * 256);
        grown.set(frame.subarray(at), at + 1);
        frames[target] = grown;
      } else {
        frames.splice(target, 1);
      }
      for (const receiver of receivers) {
        const result = decodeMessage(frames, receiver);
        if (!result.ok) {
          expect(result.error.code).toBe("PROTOCOL_ERROR");
          expect(result.error.message.length).toBeGreaterThan(0);
        }
      }
    }
  });
});
