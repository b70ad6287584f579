/**
 * Fuzzes the ZMTP Decoder (src/zmtp/codec.ts) with over 100,000 inputs per run: random byte
 * streams, random frames after a valid greeting, and mutated valid streams, each pushed in random
 * chunks. The decoder may only ever throw ZmtpProtocolError, must never loop, and must decode
 * unmutated streams exactly.
 *
 * Replay a failure with the seed it prints:  VOIDRAIL_FUZZ_SEED=123 bun test test/unit/zmtp-fuzz.test.ts
 */
import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { Decoder, encodeCommand, encodeFrame, encodeGreeting, encodeMetadata, encodePing } from "../../src/zmtp/codec.ts";
import { ZmtpErrorCode, ZmtpProtocolError } from "../../src/zmtp/errors.ts";
import { seededRandom } from "../helpers/random.ts";

const SEED = Number(process.env.VOIDRAIL_FUZZ_SEED ?? Date.now() % 2 ** 31);

const random = seededRandom;
type Random = ReturnType<typeof random>;

/** What a decoded item looks like, for exact comparison. */
type Expected =
  | { kind: "greeting"; major: number; minor: number; mechanism: string; asServer: boolean }
  | { kind: "frame"; more: boolean; command: boolean; body: Buffer };

interface ValidStream {
  bytes: Buffer;
  expected: Expected[];
  /** Offsets of every frame header in `bytes`, for length-field corruption. */
  headers: number[];
}

/** A well-formed stream: greeting, READY, messages with short and long frames, PING/PONG and unknown commands. */
function validStream(rnd: Random, options: { withGreeting: boolean; allowHuge: boolean }): ValidStream {
  const parts: Buffer[] = [];
  const expected: Expected[] = [];
  const headers: number[] = [];
  let length = 0;
  const add = (part: Buffer) => {
    parts.push(part);
    length += part.length;
  };
  const frame = (body: Buffer, more: boolean, command: boolean) => {
    headers.push(length);
    add(encodeFrame(body, { more, command }));
    expected.push({ kind: "frame", more, command, body });
  };
  if (options.withGreeting) {
    const minor = rnd.pick([0, 1, 1, 1]);
    const asServer = rnd.next() < 0.5;
    add(encodeGreeting("NULL", asServer, minor));
    expected.push({ kind: "greeting", major: 3, minor, mechanism: "NULL", asServer });
    frame(
      encodeCommand("READY", encodeMetadata({ "Socket-Type": rnd.pick(["DEALER", "ROUTER"]), Identity: rnd.bytes(rnd.int(8)) })),
      false,
      true,
    );
  }
  const messages = 1 + rnd.int(4);
  for (let m = 0; m < messages; m++) {
    if (rnd.next() < 0.2) frame(encodePing(rnd.int(100), rnd.bytes(rnd.int(17))), false, true);
    if (rnd.next() < 0.1) frame(encodeCommand(rnd.pick(["PONG", "SUBSCRIBE", "X-UNKNOWN"]), rnd.bytes(rnd.int(20))), false, true);
    const frames = 1 + rnd.int(4);
    for (let f = 0; f < frames; f++) {
      const roll = rnd.next();
      // Mostly small frames; the 255/256 boundary often; now and then one above the 64 KiB assembly threshold.
      const size =
        roll < 0.6
          ? rnd.int(40)
          : roll < 0.8
            ? rnd.pick([254, 255, 256, 257])
            : roll < 0.98 || !options.allowHuge
              ? rnd.int(700)
              : 65_536 + rnd.int(4000);
      frame(rnd.bytes(size), f < frames - 1, false);
    }
  }
  return { bytes: Buffer.concat(parts, length), expected, headers };
}

/** Splits `input` into random chunks: one piece, byte by byte, or random sizes (sometimes empty). */
function split(rnd: Random, input: Buffer): Buffer[] {
  const roll = rnd.next();
  if (roll < 0.15 || input.length === 0) return [input];
  if (roll < 0.25 && input.length <= 400) return Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
  const chunks: Buffer[] = [];
  // Tiny chunks only for small inputs: a body of up to 64 KiB is re-concatenated on every push
  // (quadratic), which would make large inputs in 3-byte chunks dominate the run time.
  const maxChunk = input.length > 8000 ? rnd.pick([600, 5000, 20_000]) : rnd.pick([3, 16, 80, 600, 5000]);
  for (let at = 0; at < input.length; ) {
    const size = rnd.next() < 0.03 ? 0 : 1 + rnd.int(maxChunk);
    chunks.push(input.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Applies 1 to 3 mutations: bit flips, truncation, insertion, duplicated or deleted ranges, header corruption. */
function mutate(rnd: Random, stream: ValidStream): { bytes: Buffer; applied: string[] } {
  let bytes = Buffer.from(stream.bytes);
  const applied: string[] = [];
  const count = 1 + rnd.int(3);
  for (let i = 0; i < count && bytes.length > 0; i++) {
    const at = rnd.int(bytes.length);
    switch (rnd.int(7)) {
      case 0: {
        const bits = 1 + rnd.int(4);
        for (let b = 0; b < bits; b++) bytes[rnd.int(bytes.length)] ^= 1 << rnd.int(8);
        applied.push(`flip ${bits} bits`);
        break;
      }
      case 1:
        bytes = bytes.subarray(0, at);
        applied.push(`truncate at ${at}`);
        break;
      case 2: {
        const inserted = rnd.bytes(1 + rnd.int(12));
        bytes = Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]);
        applied.push(`insert ${inserted.length} at ${at}`);
        break;
      }
      case 3: {
        const end = Math.min(bytes.length, at + 1 + rnd.int(200));
        const where = rnd.int(bytes.length + 1);
        bytes = Buffer.concat([bytes.subarray(0, where), bytes.subarray(at, end), bytes.subarray(where)]);
        applied.push(`duplicate ${at}..${end} at ${where}`);
        break;
      }
      case 4: {
        const end = Math.min(bytes.length, at + 1 + rnd.int(100));
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(end)]);
        applied.push(`delete ${at}..${end}`);
        break;
      }
      default: {
        // Length-field and flags corruption on a real frame header (offsets shift after other edits: still fine).
        const header = stream.headers.length > 0 ? rnd.pick(stream.headers) : at;
        if (header + 1 >= bytes.length) break;
        const long = (bytes[header] & 0x02) !== 0;
        const roll = rnd.next();
        if (roll < 0.2) {
          bytes[header] ^= 0x02; // short <-> long
          applied.push(`toggle LONG at ${header}`);
        } else if (roll < 0.3) {
          bytes[header] |= rnd.pick([0x04, 0x05, 0x08, 0x80, 0xff]);
          applied.push(`corrupt flags at ${header}`);
        } else if (!long) {
          bytes[header + 1] = rnd.pick([0, 1, 0xfe, 0xff, rnd.int(256)]);
          applied.push(`short size at ${header}`);
        } else if (header + 9 <= bytes.length) {
          const size = rnd.pick([
            0,
            1,
            255,
            65_535,
            65_536,
            2 ** 31,
            2 ** 32 - 1,
            2 ** 32,
            2 ** 32 + 1,
            2 ** 40,
            2 ** 53 - 1,
            2 ** 53,
            2 ** 64 - 1,
          ]);
          const high = Math.min(0xffffffff, Math.floor(size / 2 ** 32));
          bytes.writeUInt32BE(high, header + 1);
          bytes.writeUInt32BE((size % 2 ** 32) >>> 0, header + 5);
          if (rnd.next() < 0.3) bytes[header + 1 + rnd.int(8)] = rnd.int(256);
          applied.push(`long size ${size} at ${header}`);
        }
      }
    }
  }
  return { bytes, applied };
}

interface RunResult {
  items: Expected[];
  error?: ZmtpProtocolError;
}

/**
 * Feeds `chunks` to a fresh decoder, draining next() after each push. Throws (with a description)
 * when the decoder throws anything but ZmtpProtocolError or calls next() more than the input allows.
 */
function run(chunks: Buffer[], options: { maxFrameSize?: number; expectGreeting: boolean }, describeInput: () => string): RunResult {
  const decoder = new Decoder(options);
  const inputLength = chunks.reduce((sum, c) => sum + c.length, 0);
  // Each item consumes at least 2 bytes and each push ends with one undefined: this bound is generous.
  const maxCalls = inputLength + chunks.length + 16;
  let calls = 0;
  const items: Expected[] = [];
  try {
    for (const chunk of chunks) {
      decoder.push(chunk);
      for (;;) {
        if (++calls > maxCalls)
          throw new Error(`decoder looping: more than ${maxCalls} next() calls for ${inputLength} bytes in ${chunks.length} chunks`);
        const item = decoder.next();
        if (item === undefined) break;
        // This decoder has no discardAbove, so every item is a greeting or a frame.
        if (item.kind === "discarded" || item.kind === "parts")
          throw new Error("a decoder without discardAbove or keepPartsAbove gave a " + item.kind);
        items.push(item.kind === "greeting" ? { kind: "greeting", ...item.greeting } : { kind: "frame", ...item.frame });
      }
    }
  } catch (error) {
    if (error instanceof ZmtpProtocolError && (error.code === ZmtpErrorCode.PROTOCOL || error.code === ZmtpErrorCode.MESSAGE_TOO_LARGE)) {
      return { items, error };
    }
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new Error(`${what}\n  seed ${SEED} (replay with VOIDRAIL_FUZZ_SEED=${SEED})\n  ${describeInput()}`);
  }
  return { items };
}

function describeBytes(bytes: Buffer, chunks: Buffer[], options: object, extra = ""): string {
  const shown = bytes.length > 160 ? `${bytes.subarray(0, 160).toString("hex")}… (${bytes.length} bytes)` : bytes.toString("hex");
  return `options ${JSON.stringify(options)}${extra}\n  input ${shown}\n  chunk sizes ${chunks
    .map((c) => c.length)
    .join(",")
    .slice(0, 300)}`;
}

function assertSameItems(actual: Expected[], expected: Expected[], where: () => string): void {
  const fail = (why: string) => {
    throw new Error(`${why}\n  seed ${SEED} (replay with VOIDRAIL_FUZZ_SEED=${SEED})\n  ${where()}`);
  };
  if (actual.length !== expected.length) fail(`decoded ${actual.length} items, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a.kind !== e.kind) fail(`item ${i} is a ${a.kind}, expected a ${e.kind}`);
    if (a.kind === "greeting" && e.kind === "greeting") {
      if (a.major !== e.major || a.minor !== e.minor || a.mechanism !== e.mechanism || a.asServer !== e.asServer)
        fail(`greeting differs: ${JSON.stringify(a)} vs ${JSON.stringify(e)}`);
    } else if (a.kind === "frame" && e.kind === "frame") {
      if (a.more !== e.more || a.command !== e.command)
        fail(`frame ${i} flags differ: more ${a.more}/${e.more}, command ${a.command}/${e.command}`);
      if (!a.body.equals(e.body)) fail(`frame ${i} body differs: ${a.body.length} bytes vs ${e.body.length} expected`);
    }
  }
}

// The limits given to the decoder; the default (no limit) is fuzzed separately below.
const LIMITED = [0, 255, 1000, 70_000, 1 << 20, 64 << 20];

/** Per-test deadline: each takes 0.2 to 3 s on a 2-core machine; the margin is for slow CI. */
const TEST_TIMEOUT_MS = 20_000;

/** Inputs per test; 25k + 15k + 45k + 15k = 100k, plus 10k without a limit. */
const COUNTS = { random: 25_000, randomFrames: 15_000, mutated: 45_000, exact: 15_000, unlimited: 10_000 };

describe(`ZMTP Decoder fuzz (seed ${SEED})`, () => {
  // Built once: the valid streams that the mutation tests start from.
  const corpusRandom = random(SEED ^ 0x2545f491);
  const corpus = Array.from({ length: 200 }, (_, i) => validStream(corpusRandom, { withGreeting: i % 4 !== 3, allowHuge: true }));

  test(
    `${COUNTS.random} random byte streams, with and without a greeting`,
    () => {
      const rnd = random(SEED);
      for (let i = 0; i < COUNTS.random; i++) {
        const expectGreeting = rnd.next() < 0.5;
        let input = rnd.bytes(rnd.int(rnd.next() < 0.9 ? 64 : 400));
        // Half the greeting-first inputs start with a valid signature so they get past the first byte.
        if (expectGreeting && rnd.next() < 0.5 && input.length > 0) {
          const prefix = encodeGreeting("NULL", false).subarray(0, rnd.int(65));
          input = Buffer.concat([prefix, input]);
        }
        const options = { maxFrameSize: rnd.pick(LIMITED), expectGreeting };
        const chunks = split(rnd, input);
        run(chunks, options, () => `random stream ${i}: ${describeBytes(input, chunks, options)}`);
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    `${COUNTS.randomFrames} random frame sequences after a valid greeting`,
    () => {
      const rnd = random(SEED + 1);
      for (let i = 0; i < COUNTS.randomFrames; i++) {
        const parts: Buffer[] = [encodeGreeting("NULL", rnd.next() < 0.5)];
        const frames = 1 + rnd.int(6);
        for (let f = 0; f < frames; f++) {
          // Plausible headers with random flags and sizes, bodies shorter or longer than announced.
          const flags = rnd.next() < 0.7 ? rnd.pick([0, 1, 2, 3, 4, 6]) : rnd.int(256);
          const long = (flags & 0x02) !== 0;
          const header = long
            ? Buffer.concat([
                Buffer.from([flags]),
                rnd.next() < 0.5 ? Buffer.from([0, 0, 0, 0, 0, 0, rnd.int(3), rnd.int(256)]) : rnd.bytes(8),
              ])
            : Buffer.from([flags, rnd.int(256)]);
          parts.push(header, rnd.bytes(rnd.int(300)));
        }
        const input = Buffer.concat(parts);
        const options = { maxFrameSize: rnd.pick(LIMITED), expectGreeting: true };
        const chunks = split(rnd, input);
        run(chunks, options, () => `random frames ${i}: ${describeBytes(input, chunks, options)}`);
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    `${COUNTS.mutated} mutated valid streams (bit flips, truncation, insertion, duplicated ranges, length fields)`,
    () => {
      const rnd = random(SEED + 2);
      for (let i = 0; i < COUNTS.mutated; i++) {
        const source = rnd.pick(corpus);
        const { bytes, applied } = mutate(rnd, source);
        const options = { maxFrameSize: rnd.pick(LIMITED), expectGreeting: source.expected[0]?.kind === "greeting" };
        const chunks = split(rnd, bytes);
        run(chunks, options, () => `mutated stream ${i} (${applied.join("; ")}): ${describeBytes(bytes, chunks, options)}`);
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    `${COUNTS.exact} unmutated valid streams decode exactly, in any chunking`,
    () => {
      const rnd = random(SEED + 3);
      for (let i = 0; i < COUNTS.exact; i++) {
        const stream = i < corpus.length ? corpus[i] : validStream(rnd, { withGreeting: rnd.next() < 0.8, allowHuge: rnd.next() < 0.2 });
        const options = { expectGreeting: stream.expected[0]?.kind === "greeting", maxFrameSize: rnd.next() < 0.5 ? undefined : 70_000 };
        const chunks = split(rnd, stream.bytes);
        const where = () => `valid stream ${i}: ${describeBytes(stream.bytes, chunks, options)}`;
        const result = run(chunks, options, where);
        if (result.error) throw new Error(`a valid stream was rejected: ${result.error.message}\n  seed ${SEED}\n  ${where()}`);
        assertSameItems(result.items, stream.expected, where);
      }
      expect(COUNTS.random + COUNTS.randomFrames + COUNTS.mutated + COUNTS.exact).toBeGreaterThanOrEqual(100_000);
    },
    TEST_TIMEOUT_MS,
  );

  // Separate from the tests above so that a failure here (huge announced sizes with no limit)
  // does not hide what the limited runs cover.
  test(
    `${COUNTS.unlimited} mutated streams with no maxFrameSize (the default): huge announced sizes still fail as ZmtpProtocolError`,
    () => {
      const rnd = random(SEED + 4);
      for (let i = 0; i < COUNTS.unlimited; i++) {
        const source = rnd.pick(corpus);
        const { bytes, applied } = mutate(rnd, source);
        const options = { expectGreeting: source.expected[0]?.kind === "greeting" };
        const chunks = split(rnd, bytes);
        run(chunks, options, () => `mutated stream ${i} (${applied.join("; ")}): ${describeBytes(bytes, chunks, options)}`);
      }
    },
    TEST_TIMEOUT_MS,
  );
});
