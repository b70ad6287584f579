/**
 * ZMTP 3.1 codec (src/zmtp/codec.ts), byte by byte: greeting, frame headers, flags, commands,
 * metadata, and the streaming Decoder fed in every chunking.
 */
import { describe, expect, test } from "bun:test";
import { seededRandom } from "../helpers/random.ts";
import { Buffer } from "node:buffer";
import {
  Decoder,
  type DecodedItem,
  encodeCommand,
  encodeErrorCommand,
  encodeFrame,
  encodeGreeting,
  encodeMetadata,
  encodePing,
  FrameFlag,
  FrameParts,
  frameHeaderSize,
  GREETING_SIZE,
  parseCommand,
  parseErrorCommand,
  parseGreeting,
  parseMetadata,
  parsePing,
  SHORT_FRAME_MAX,
  writeFrameHeader,
} from "../../src/zmtp/codec.ts";
import { ZmtpErrorCode, ZmtpProtocolError } from "../../src/zmtp/errors.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const ascii = (text: string) => Buffer.from(text, "latin1");

/** The 64 bytes of a NULL greeting built by hand from RFC 23, independent of encodeGreeting. */
function handGreeting(opts: { major?: number; minor?: number; mechanism?: string; asServer?: number } = {}): Buffer {
  const g = Buffer.alloc(64);
  g[0] = 0xff;
  g[8] = 0x01;
  g[9] = 0x7f;
  g[10] = opts.major ?? 3;
  g[11] = opts.minor ?? 1;
  g.write(opts.mechanism ?? "NULL", 12, "latin1");
  g[32] = opts.asServer ?? 0;
  return g;
}

/** Expects `fn` to throw a ZmtpProtocolError with `code` (and a message matching `message`). */
function expectProtocolError(fn: () => unknown, code: string = ZmtpErrorCode.PROTOCOL, message?: RegExp): ZmtpProtocolError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) throw new Error(`expected a ZmtpProtocolError ${code}, nothing was thrown`);
  if (!(thrown instanceof ZmtpProtocolError))
    throw new Error(`expected a ZmtpProtocolError ${code}, got ${(thrown as Error)?.name}: ${(thrown as Error)?.message}`);
  expect(thrown.code).toBe(code as ZmtpProtocolError["code"]);
  if (message) expect(thrown.message).toMatch(message);
  return thrown;
}

/** Pushes each chunk and drains next() after each; returns every item decoded. */
function decodeChunks(decoder: Decoder, chunks: Uint8Array[]): DecodedItem[] {
  const items: DecodedItem[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let item = decoder.next(); item !== undefined; item = decoder.next()) items.push(item);
  }
  return items;
}

/** Decoder without a greeting: for frame-level tests. */
const frameDecoder = (maxFrameSize?: number) => new Decoder({ expectGreeting: false, maxFrameSize });

describe("greeting", () => {
  test("encodeGreeting writes the RFC 23 layout byte by byte", () => {
    const g = encodeGreeting("NULL", false);
    expect(g.length).toBe(GREETING_SIZE);
    expect(g[0]).toBe(0xff); // signature start
    expect(hex(g.subarray(1, 8))).toBe("00000000000000"); // padding
    expect(g[8]).toBe(0x01); // ZMTP 1.0 length byte, as libzmq sends
    expect(g[9]).toBe(0x7f); // signature end
    expect(g[10]).toBe(3); // major
    expect(g[11]).toBe(1); // minor
    expect(g.subarray(12, 16).toString("latin1")).toBe("NULL");
    expect(hex(g.subarray(16, 32))).toBe("00".repeat(16)); // mechanism null padding
    expect(g[32]).toBe(0); // as-server
    expect(hex(g.subarray(33))).toBe("00".repeat(31)); // filler
    expect(hex(g)).toBe(hex(handGreeting()));
  });

  test("as-server sets byte 32 to 1; minor version is configurable", () => {
    expect(encodeGreeting("NULL", true)[32]).toBe(1);
    expect(encodeGreeting("NULL", false, 0)[11]).toBe(0);
    expect(hex(encodeGreeting("PLAIN", true))).toBe(hex(handGreeting({ mechanism: "PLAIN", asServer: 1 })));
  });

  test("parseGreeting reads version, mechanism and as-server", () => {
    expect(parseGreeting(encodeGreeting("NULL", false))).toEqual({ major: 3, minor: 1, mechanism: "NULL", asServer: false });
    expect(parseGreeting(handGreeting({ mechanism: "CURVE", asServer: 1 }))).toEqual({
      major: 3,
      minor: 1,
      mechanism: "CURVE",
      asServer: true,
    });
  });

  test("ZMTP 3.0 is accepted (minor 0), and a later 3.x too", () => {
    expect(parseGreeting(handGreeting({ minor: 0 }))).toMatchObject({ major: 3, minor: 0 });
    expect(parseGreeting(handGreeting({ minor: 7 }))).toMatchObject({ major: 3, minor: 7 });
    const decoder = new Decoder();
    expect(decodeChunks(decoder, [handGreeting({ minor: 0 })])).toEqual([
      { kind: "greeting", greeting: { major: 3, minor: 0, mechanism: "NULL", asServer: false } },
    ]);
  });

  test("ZMTP 2.x and 1.x greetings are rejected", () => {
    expectProtocolError(() => parseGreeting(handGreeting({ major: 2, minor: 0 })), ZmtpErrorCode.PROTOCOL, /version 2/);
    expectProtocolError(() => parseGreeting(handGreeting({ major: 1 })), ZmtpErrorCode.PROTOCOL, /version 1/);
  });

  test("the Decoder rejects a version 2 greeting as soon as the version byte arrives (11 bytes)", () => {
    const g = handGreeting({ major: 2 });
    const decoder = new Decoder();
    decoder.push(g.subarray(0, 10));
    expect(decoder.next()).toBeUndefined();
    decoder.push(g.subarray(10, 11));
    expectProtocolError(() => decoder.next(), ZmtpErrorCode.PROTOCOL, /version 2/);
  });

  test("a bad first byte is rejected after 1 byte", () => {
    for (const first of [0x00, 0x7f, 0xfe, 0x47 /* 'G' of an HTTP request */]) {
      const decoder = new Decoder();
      decoder.push(Buffer.from([first]));
      expectProtocolError(() => decoder.next(), ZmtpErrorCode.PROTOCOL, /signature/);
    }
  });

  test("a bad tenth byte is rejected after 10 bytes, not before", () => {
    const g = handGreeting();
    g[9] = 0x7e;
    const decoder = new Decoder();
    decoder.push(g.subarray(0, 9));
    expect(decoder.next()).toBeUndefined();
    decoder.push(g.subarray(9, 10));
    expectProtocolError(() => decoder.next(), ZmtpErrorCode.PROTOCOL, /signature/);
  });

  test("a greeting arriving one byte at a time is returned only at byte 64", () => {
    const g = encodeGreeting("NULL", true);
    const decoder = new Decoder();
    for (let i = 0; i < GREETING_SIZE - 1; i++) {
      decoder.push(g.subarray(i, i + 1));
      expect(decoder.next()).toBeUndefined();
    }
    decoder.push(g.subarray(63));
    expect(decoder.next()).toEqual({ kind: "greeting", greeting: { major: 3, minor: 1, mechanism: "NULL", asServer: true } });
    expect(decoder.next()).toBeUndefined();
  });

  test("truncated greeting, bad mechanism names and a bad as-server flag are rejected", () => {
    expectProtocolError(() => parseGreeting(encodeGreeting("NULL", false).subarray(0, 63)), ZmtpErrorCode.PROTOCOL, /truncated/);
    expectProtocolError(() => parseGreeting(handGreeting({ mechanism: "null" })), ZmtpErrorCode.PROTOCOL, /mechanism/);
    const notPadded = handGreeting();
    notPadded[20] = 0x41; // "NULL\0\0\0\0A..."
    expectProtocolError(() => parseGreeting(notPadded), ZmtpErrorCode.PROTOCOL, /null-padded/);
    expectProtocolError(() => parseGreeting(handGreeting({ asServer: 2 })), ZmtpErrorCode.PROTOCOL, /as-server/);
  });

  test("a 20-character mechanism name (no padding at all) is accepted", () => {
    const name = "ABCDEFGHIJKLMNOPQRST";
    expect(parseGreeting(handGreeting({ mechanism: name })).mechanism).toBe(name);
  });
});

describe("frame headers", () => {
  const SHORT_SIZES = [0, 1, 255];
  const LONG_SIZES = [256, 65535, 65536];
  const HUGE_SIZES = [2 ** 32, 2 ** 32 + 5, 2 ** 40 + 1, Number.MAX_SAFE_INTEGER];

  test("sizes 0, 1 and 255 use the 2-byte short form", () => {
    for (const size of SHORT_SIZES) {
      expect(frameHeaderSize(size)).toBe(2);
      const header = Buffer.alloc(2);
      expect(writeFrameHeader(header, 0, size, 0)).toBe(2);
      expect(hex(header)).toBe(hex(Buffer.from([0x00, size])));
    }
    expect(SHORT_FRAME_MAX).toBe(255);
  });

  test("sizes 256, 65535 and 65536 use the 9-byte long form, 64-bit big-endian", () => {
    const expected: Record<number, string> = {
      256: "020000000000000100",
      65535: "02000000000000ffff",
      65536: "020000000000010000",
    };
    for (const size of LONG_SIZES) {
      expect(frameHeaderSize(size)).toBe(9);
      const header = Buffer.alloc(9);
      expect(writeFrameHeader(header, 0, size, 0)).toBe(9);
      expect(hex(header)).toBe(expected[size]);
    }
  });

  test("sizes beyond 2^32 encode the high word (header only)", () => {
    const expected: Record<number, string> = {
      [2 ** 32]: "020000000100000000",
      [2 ** 32 + 5]: "020000000100000005",
      [2 ** 40 + 1]: "020000010000000001",
      [Number.MAX_SAFE_INTEGER]: "02001fffffffffffff",
    };
    for (const size of HUGE_SIZES) {
      const header = Buffer.alloc(9);
      writeFrameHeader(header, 0, size, FrameFlag.MORE);
      expect(hex(header)).toBe(`03${expected[size].slice(2)}`);
    }
  });

  test("writeFrameHeader writes at an offset and returns the offset after the header", () => {
    const target = Buffer.alloc(16, 0xee);
    expect(writeFrameHeader(target, 3, 7, FrameFlag.COMMAND)).toBe(5);
    expect(hex(target.subarray(0, 6))).toBe("eeeeee0407ee");
  });

  test("short and long headers decode to the announced size, bodies intact", () => {
    for (const size of [...SHORT_SIZES, ...LONG_SIZES]) {
      const body = Buffer.alloc(size, size & 0xff);
      const items = decodeChunks(frameDecoder(), [encodeFrame(body)]);
      expect(items.length).toBe(1);
      const item = items[0];
      if (item.kind !== "frame") throw new Error("expected a frame");
      expect(item.frame.body.length).toBe(size);
      expect(item.frame.body.equals(body)).toBe(true);
    }
  });

  test("a long header for a small body is accepted (libzmq does too)", () => {
    const frame = Buffer.from([0x02, 0, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0x63]);
    expect(decodeChunks(frameDecoder(), [frame])).toEqual([{ kind: "frame", frame: { more: false, command: false, body: ascii("abc") } }]);
  });

  test("a header announcing 2^32+5 bytes is checked against maxFrameSize without its body", () => {
    const header = Buffer.alloc(9);
    writeFrameHeader(header, 0, 2 ** 32 + 5, 0);
    const decoder = frameDecoder(1 << 20);
    decoder.push(header);
    expectProtocolError(() => decoder.next(), ZmtpErrorCode.MESSAGE_TOO_LARGE, /4294967301 bytes exceeds/);
  });

  test("a header announcing 2^53 bytes or more is rejected (EMSGSIZE)", () => {
    const header = Buffer.from("020020000000000000", "hex");
    const decoder = frameDecoder();
    decoder.push(header);
    expectProtocolError(() => decoder.next(), ZmtpErrorCode.MESSAGE_TOO_LARGE);
  });

  // A Buffer holds at most buffer.constants.MAX_LENGTH (4 GiB in Bun and Node 20). Without a
  // maxFrameSize, a 9-byte header must not make the decoder throw a RangeError from allocUnsafe.
  test("a header announcing more than a Buffer can hold, with no maxFrameSize, throws ZmtpProtocolError (EMSGSIZE)", () => {
    for (const size of [2 ** 32 + 5, 2 ** 40 + 1]) {
      const header = Buffer.alloc(9);
      writeFrameHeader(header, 0, size, 0);
      const decoder = frameDecoder();
      // Some of the body arrives too, as it would on a socket.
      decoder.push(Buffer.concat([header, Buffer.alloc(70_000)]));
      expectProtocolError(() => decoder.next(), ZmtpErrorCode.MESSAGE_TOO_LARGE);
    }
  });

  test("a header split in two waits for its last byte", () => {
    const frame = encodeFrame(Buffer.alloc(300, 1), { more: true });
    const decoder = frameDecoder();
    for (let i = 0; i < 9; i++) {
      decoder.push(frame.subarray(i, i + 1));
      expect(decoder.next()).toBeUndefined();
    }
    decoder.push(frame.subarray(9));
    const item = decoder.next();
    expect(item?.kind === "frame" && item.frame.more && item.frame.body.length === 300).toBe(true);
  });
});

describe("frame flags", () => {
  test("MORE, COMMAND and LONG decode from the flags byte", () => {
    const cases: [number, { more: boolean; command: boolean }][] = [
      [0x00, { more: false, command: false }],
      [0x01, { more: true, command: false }],
      [0x04, { more: false, command: true }],
    ];
    for (const [flags, expected] of cases) {
      for (const long of [false, true]) {
        const frame = long ? Buffer.from([flags | 0x02, 0, 0, 0, 0, 0, 0, 0, 1, 0x7a]) : Buffer.from([flags, 1, 0x7a]);
        const items = decodeChunks(frameDecoder(), [frame]);
        expect(items).toEqual([{ kind: "frame", frame: { ...expected, body: ascii("z") } }]);
      }
    }
  });

  test("encodeFrame sets MORE and COMMAND bits", () => {
    expect(hex(encodeFrame(ascii("a")))).toBe("000161");
    expect(hex(encodeFrame(ascii("a"), { more: true }))).toBe("010161");
    expect(hex(encodeFrame(ascii("a"), { command: true }))).toBe("040161");
    expect(hex(encodeFrame(Buffer.alloc(256), { more: true }).subarray(0, 9))).toBe("030000000000000100");
  });

  test("each reserved bit (0x08..0x80) is rejected", () => {
    for (let bit = 0x08; bit <= 0x80; bit <<= 1) {
      const decoder = frameDecoder();
      decoder.push(Buffer.from([bit, 0]));
      expectProtocolError(() => decoder.next(), ZmtpErrorCode.PROTOCOL, /reserved/);
    }
  });

  test("reserved bits are rejected from the flags byte alone, before the size arrives", () => {
    const decoder = frameDecoder();
    decoder.push(Buffer.from([0x81]));
    expectProtocolError(() => decoder.next(), ZmtpErrorCode.PROTOCOL, /reserved/);
  });

  test("a command frame with MORE is rejected (short and long)", () => {
    for (const flags of [0x05, 0x07]) {
      const decoder = frameDecoder();
      decoder.push(Buffer.from([flags]));
      expectProtocolError(() => decoder.next(), ZmtpErrorCode.PROTOCOL, /MORE/);
    }
  });
});

describe("maxFrameSize", () => {
  test("a frame of exactly maxFrameSize is accepted; one byte more is rejected at its header", () => {
    const ok = decodeChunks(frameDecoder(300), [encodeFrame(Buffer.alloc(300))]);
    expect(ok.length).toBe(1);
    const decoder = frameDecoder(300);
    decoder.push(encodeFrame(Buffer.alloc(301)).subarray(0, 9)); // header only
    expectProtocolError(() => decoder.next(), ZmtpErrorCode.MESSAGE_TOO_LARGE, /301 bytes exceeds maxMessageSize 300/);
  });

  test("short frames are limited too; maxFrameSize 0 allows only empty frames", () => {
    expect(decodeChunks(frameDecoder(0), [encodeFrame(Buffer.alloc(0))]).length).toBe(1);
    const decoder = frameDecoder(0);
    decoder.push(Buffer.from([0x00, 0x01]));
    expectProtocolError(() => decoder.next(), ZmtpErrorCode.MESSAGE_TOO_LARGE);
  });

  test("-1 (the default) means no limit", () => {
    expect(decodeChunks(frameDecoder(-1), [encodeFrame(Buffer.alloc(70_000))]).length).toBe(1);
  });
});

describe("discardAbove: a message over the bound is skipped, not held, and the stream goes on", () => {
  const discarding = (bound: number) => new Decoder({ expectGreeting: false, discardAbove: bound });
  /** The frames of a message, MORE on all but the last. */
  const message = (...bodies: Buffer[]) => Buffer.concat(bodies.map((body, i) => encodeFrame(body, { more: i < bodies.length - 1 })));
  const shape = (items: DecodedItem[]) =>
    items.map((item) => (item.kind === "frame" ? { frame: item.frame.body.toString("latin1"), more: item.frame.more } : item));

  test("the frames before the bound arrive, the rest become one discarded item with the message's size; the next message is whole", () => {
    const big = Buffer.alloc(5000, 7);
    const bytes = Buffer.concat([message(ascii("head"), ascii("er"), big, ascii("tail")), message(ascii("next"))]);
    // Whole, and in every split of the bytes into two chunks around the interesting places.
    for (const split of [bytes.length, 1, 7, 9, 20, 2000, 5010, bytes.length - 3]) {
      const items = decodeChunks(discarding(1000), [bytes.subarray(0, split), bytes.subarray(split)]);
      expect(shape(items)).toEqual([
        { frame: "head", more: true },
        { frame: "er", more: true },
        { kind: "discarded", size: 4 + 2 + 5000 + 4 },
        { frame: "next", more: false },
      ]);
    }
  });

  test("a message of exactly the bound is whole; one byte more is discarded", () => {
    expect(shape(decodeChunks(discarding(10), [message(ascii("12345"), ascii("67890"))]))).toEqual([
      { frame: "12345", more: true },
      { frame: "67890", more: false },
    ]);
    expect(shape(decodeChunks(discarding(10), [message(ascii("12345"), ascii("678901"))]))).toEqual([
      { frame: "12345", more: true },
      { kind: "discarded", size: 11 },
    ]);
  });

  test("a discarded frame is never allocated: a header announcing 2^40 bytes is skipped byte by byte", () => {
    const decoder = discarding(1024);
    const header = Buffer.alloc(9);
    writeFrameHeader(header, 0, 2 ** 40, 0);
    decoder.push(header);
    expect(decoder.next()).toBeUndefined();
    for (let i = 0; i < 64; i++) decoder.push(Buffer.alloc(1 << 20));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.bufferedBytes).toBe(64 << 20);
  });

  test("command frames between messages are not counted and still arrive", () => {
    const bytes = Buffer.concat([encodeFrame(encodePing(1), { command: true }), message(ascii("abc"))]);
    const items = decodeChunks(discarding(3), [bytes]);
    expect(items.map((item) => item.kind === "frame" && item.frame.command)).toEqual([true, false]);
  });

  test("many small frames past the bound in one chunk do not recurse", () => {
    const bodies = Array.from({ length: 100_000 }, () => ascii("x"));
    const items = decodeChunks(discarding(10), [message(...bodies)]);
    expect(items.length).toBe(11);
    expect(items.at(-1)).toEqual({ kind: "discarded", size: 100_000 });
  });
});

describe("keepPartsAbove: a large frame that arrives in pieces is returned as those pieces, not copied", () => {
  test("split across chunks: one parts item whose pieces are views of the chunks and hold the body in order", () => {
    const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 256));
    const bytes = Buffer.concat([encodeFrame(ascii("head"), { more: true }), encodeFrame(body), encodeFrame(ascii("next"))]);
    const chunks = [bytes.subarray(0, 20), bytes.subarray(20, 3000), bytes.subarray(3000, 5010), bytes.subarray(5010)];
    const items = decodeChunks(new Decoder({ expectGreeting: false, keepPartsAbove: 1000 }), chunks);
    expect(items.map((item) => item.kind)).toEqual(["frame", "parts", "frame"]);
    const parts = items[1].kind === "parts" ? items[1] : undefined;
    expect(parts?.more).toBe(false);
    expect(parts?.parts.byteLength).toBe(5000);
    expect(parts?.parts.toBuffer()).toEqual(body);
    // No copies: every piece shares memory with a pushed chunk.
    for (const piece of parts?.parts.parts ?? []) expect(chunks.some((chunk) => chunk.buffer === piece.buffer)).toBe(true);
  });

  test("a large frame that arrives whole in one chunk is an ordinary frame; small frames are never parts", () => {
    const body = Buffer.alloc(5000, 1);
    const items = decodeChunks(new Decoder({ expectGreeting: false, keepPartsAbove: 1000 }), [encodeFrame(body)]);
    expect(items.map((item) => item.kind)).toEqual(["frame"]);
    const small = encodeFrame(Buffer.alloc(900, 2));
    const split = decodeChunks(new Decoder({ expectGreeting: false, keepPartsAbove: 1000 }), [small.subarray(0, 100), small.subarray(100)]);
    expect(split.map((item) => item.kind)).toEqual(["frame"]);
  });

  test("with discardAbove too: parts count toward the message's size", () => {
    const decoder = new Decoder({ expectGreeting: false, keepPartsAbove: 1000, discardAbove: 6000 });
    const first = encodeFrame(Buffer.alloc(5000, 1), { more: true });
    const second = encodeFrame(Buffer.alloc(2000, 2));
    const items = decodeChunks(decoder, [first.subarray(0, 100), first.subarray(100), second]);
    expect(items.map((item) => item.kind)).toEqual(["parts", "discarded"]);
    expect(items[1]).toEqual({ kind: "discarded", size: 7000 });
  });
});

describe("commands", () => {
  test("encodeCommand: name length, name, data", () => {
    expect(hex(encodeCommand("PONG"))).toBe(hex(Buffer.from([4, ...ascii("PONG")])));
    expect(hex(encodeCommand("X", Buffer.from([1, 2])))).toBe("015801" + "02");
    expect(parseCommand(encodeCommand("SUBSCRIBE", ascii("topic")))).toEqual({ name: "SUBSCRIBE", data: ascii("topic") });
  });

  test("malformed command bodies are rejected", () => {
    expectProtocolError(() => parseCommand(Buffer.alloc(0)), ZmtpErrorCode.PROTOCOL, /empty/);
    expectProtocolError(() => parseCommand(Buffer.from([0, 1, 2])), ZmtpErrorCode.PROTOCOL, /name length/);
    expectProtocolError(() => parseCommand(Buffer.from([5, 0x41, 0x42])), ZmtpErrorCode.PROTOCOL, /name length/);
  });

  test("READY metadata: exact bytes and a round trip", () => {
    const identity = Buffer.from([0x00, 0xff, 0x10]);
    const data = encodeMetadata({ "Socket-Type": "DEALER", Identity: identity });
    const expected = Buffer.concat([
      Buffer.from([11]),
      ascii("Socket-Type"),
      Buffer.from([0, 0, 0, 6]),
      ascii("DEALER"),
      Buffer.from([8]),
      ascii("Identity"),
      Buffer.from([0, 0, 0, 3]),
      identity,
    ]);
    expect(hex(data)).toBe(hex(expected));
    const ready = parseCommand(encodeCommand("READY", data));
    expect(ready.name).toBe("READY");
    const properties = parseMetadata(ready.data);
    expect([...properties.keys()]).toEqual(["socket-type", "identity"]);
    expect(properties.get("socket-type")?.toString()).toBe("DEALER");
    expect(hex(properties.get("identity")!)).toBe("00ff10");
  });

  test("metadata names are case-insensitive: any spelling comes back lower-cased", () => {
    for (const name of ["SOCKET-TYPE", "socket-type", "SoCkEt-TyPe"]) {
      const properties = parseMetadata(encodeMetadata({ [name]: "ROUTER" }));
      expect(properties.get("socket-type")?.toString()).toBe("ROUTER");
    }
  });

  test("empty values, empty metadata and UTF-8 values survive", () => {
    expect(parseMetadata(Buffer.alloc(0)).size).toBe(0);
    const properties = parseMetadata(encodeMetadata({ Identity: "", "X-Name": "ÿé" }));
    expect(properties.get("identity")?.length).toBe(0);
    expect(properties.get("x-name")?.toString("utf8")).toBe("ÿé");
  });

  test("malformed metadata is rejected", () => {
    const good = encodeMetadata({ "Socket-Type": "DEALER" });
    expectProtocolError(() => parseMetadata(Buffer.from([0, 0, 0, 0, 0])), ZmtpErrorCode.PROTOCOL, /empty name/);
    expectProtocolError(() => parseMetadata(good.subarray(0, 14)), ZmtpErrorCode.PROTOCOL, /truncated/);
    expectProtocolError(() => parseMetadata(good.subarray(0, good.length - 1)), ZmtpErrorCode.PROTOCOL, /value truncated/);
    expect(() => encodeMetadata({ ["x".repeat(256)]: "v" })).toThrow(RangeError);
  });

  test("PING: 2-byte TTL in deciseconds, then the context", () => {
    const ping = encodePing(5, ascii("ctx"));
    expect(hex(ping)).toBe(hex(Buffer.concat([Buffer.from([4]), ascii("PING"), Buffer.from([0x00, 0x05]), ascii("ctx")])));
    const command = parseCommand(ping);
    expect(command.name).toBe("PING");
    expect(parsePing(command.data)).toEqual({ ttlDeciseconds: 5, context: ascii("ctx") });
    expect(parsePing(parseCommand(encodePing(0)).data)).toEqual({ ttlDeciseconds: 0, context: Buffer.alloc(0) });
  });

  test("PING TTL is clamped to 0..65535 and the context to 16 bytes", () => {
    expect(parsePing(parseCommand(encodePing(70_000)).data).ttlDeciseconds).toBe(0xffff);
    expect(parsePing(parseCommand(encodePing(-3)).data).ttlDeciseconds).toBe(0);
    expect(parsePing(Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(16, 7)])).context.length).toBe(16);
    expectProtocolError(() => parsePing(Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(17)])), ZmtpErrorCode.PROTOCOL, /16 bytes/);
    expectProtocolError(() => parsePing(Buffer.from([0])), ZmtpErrorCode.PROTOCOL, /TTL/);
  });

  test("PONG echoes the context", () => {
    const pong = parseCommand(encodeCommand("PONG", ascii("ctx")));
    expect(pong).toEqual({ name: "PONG", data: ascii("ctx") });
  });

  test("ERROR: one-byte reason length, reason; reasons over 255 bytes are cut", () => {
    const error = encodeErrorCommand("bad");
    expect(hex(error)).toBe(hex(Buffer.concat([Buffer.from([5]), ascii("ERROR"), Buffer.from([3]), ascii("bad")])));
    expect(parseErrorCommand(parseCommand(error).data)).toBe("bad");
    const long = parseCommand(encodeErrorCommand("r".repeat(300)));
    expect(long.data[0]).toBe(255);
    expect(parseErrorCommand(long.data)).toBe("r".repeat(255));
    expect(parseErrorCommand(Buffer.alloc(0))).toBe("");
    // A reason length past the data is read as far as the data goes.
    expect(parseErrorCommand(Buffer.from([9, 0x61, 0x62]))).toBe("ab");
  });
});

describe("a whole stream", () => {
  /** Seeded PRNG (mulberry32): the split test replays from the seed in its name. */
  const random = (seed: number) => seededRandom(seed).next;

  const patterned = (size: number, seed: number) => {
    const b = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) b[i] = (i * 31 + seed + (i >>> 8)) & 0xff;
    return b;
  };

  const messages: Buffer[][] = [
    [ascii("hello")],
    [ascii("a"), Buffer.alloc(0), patterned(255, 1), patterned(256, 2)],
    [patterned(70_000, 3), ascii("tail")], // long, above the 64 KiB assembly threshold
    [patterned(65_536, 4)],
    [Buffer.alloc(0)],
    [patterned(200_000, 5), patterned(1, 6), patterned(100_000, 7)],
  ];
  const ready = encodeCommand("READY", encodeMetadata({ "Socket-Type": "ROUTER", Identity: "peer" }));
  const stream = Buffer.concat([
    encodeGreeting("NULL", false),
    encodeFrame(ready, { command: true }),
    ...messages.flatMap((message) => message.map((body, i) => encodeFrame(body, { more: i < message.length - 1 }))),
    encodeFrame(encodePing(3, ascii("hb")), { command: true }),
  ]);

  /** Items as comparable plain values (bodies as hex would be slow for 200 KB: use length + content check). */
  function summary(items: DecodedItem[]): unknown[] {
    return items.map((item) =>
      item.kind !== "frame"
        ? item
        : { more: item.frame.more, command: item.frame.command, size: item.frame.body.length, body: Buffer.from(item.frame.body) },
    );
  }

  const expected = summary([
    { kind: "greeting", greeting: { major: 3, minor: 1, mechanism: "NULL", asServer: false } },
    { kind: "frame", frame: { more: false, command: true, body: ready } },
    ...messages.flatMap((message) =>
      message.map((body, i): DecodedItem => ({ kind: "frame", frame: { more: i < message.length - 1, command: false, body } })),
    ),
    { kind: "frame", frame: { more: false, command: true, body: encodePing(3, ascii("hb")) } },
  ]);

  test("decoded in one chunk", () => {
    const items = decodeChunks(new Decoder(), [stream]);
    expect(summary(items)).toEqual(expected);
    const readyItem = items[1];
    if (readyItem.kind !== "frame") throw new Error("expected READY");
    const properties = parseMetadata(parseCommand(readyItem.frame.body).data);
    expect(properties.get("identity")?.toString()).toBe("peer");
  });

  test("decoded one byte at a time", () => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
    expect(summary(decodeChunks(new Decoder(), chunks))).toEqual(expected);
  });

  const seed = Number(process.env.VOIDRAIL_FUZZ_SEED ?? Date.now() % 2 ** 31);
  test(`decoded in random chunk splits (seed ${seed})`, () => {
    const next = random(seed);
    // One byte at a time is covered above; here chunks mix tiny and large sizes so headers,
    // bodies and the 64 KiB assembly path all get split at random places.
    for (let round = 0; round < 25; round++) {
      const chunks: Buffer[] = [];
      const maxChunk = [16, 300, 5000, 80_000, 0][round % 5];
      for (let at = 0; at < stream.length; ) {
        const size = 1 + Math.floor(next() * (maxChunk || (next() < 0.3 ? 9 : 5000)));
        chunks.push(stream.subarray(at, at + size));
        at += size;
      }
      const items = decodeChunks(new Decoder(), chunks);
      if (items.length !== expected.length)
        throw new Error(`seed ${seed} round ${round}: ${items.length} items, expected ${expected.length}`);
      expect(summary(items)).toEqual(expected);
    }
  });

  test("bodies that arrived in one chunk are views into it, not copies", () => {
    const frame = encodeFrame(ascii("zero-copy"));
    const items = decodeChunks(frameDecoder(), [frame]);
    const item = items[0];
    if (item.kind !== "frame") throw new Error("expected a frame");
    expect(item.frame.body.buffer).toBe(frame.buffer);
  });

  test("bufferedBytes counts what was pushed but not yet returned", () => {
    const decoder = frameDecoder();
    const frame = encodeFrame(Buffer.alloc(100_000));
    decoder.push(frame.subarray(0, 50_000));
    expect(decoder.next()).toBeUndefined();
    decoder.push(frame.subarray(50_000, 80_000));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.bufferedBytes).toBeGreaterThanOrEqual(80_000 - 9);
    decoder.push(frame.subarray(80_000));
    expect(decoder.next()?.kind).toBe("frame");
    expect(decoder.bufferedBytes).toBe(0);
  });
});

describe("FrameParts", () => {
  test("its size must be its parts' total; toBuffer joins them", () => {
    expect(() => new FrameParts([ascii("ab"), ascii("c")], 4)).toThrow(RangeError);
    expect(new FrameParts([ascii("ab"), ascii("c")], 3).toBuffer().toString()).toBe("abc");
  });
});
