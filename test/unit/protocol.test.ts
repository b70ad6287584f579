import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import {
  decodeArgs,
  decodeJson,
  decodeMessage,
  describeBadMethodName,
  encodeJson,
  encodeJsonOrThrow,
  encodeMessage,
  type HeaderOf,
  InfoResultSchemas,
  type Kind,
  Limits,
  PROTOCOL_ID,
  ProtocolError,
  ProtocolFailure,
  type Receiver,
  ValidationError,
} from "../../src/protocol/index.ts";

const utf8 = new TextEncoder();
const bytes = (text: string) => utf8.encode(text);
const ascii = (frame: Uint8Array) => new TextDecoder().decode(frame);
const args = encodeJsonOrThrow(["hello", { n: 1 }]);

/** A hand-built message: protocol id, kind, raw header text and optional payload. */
function raw(kind: string, header: string, payload?: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [bytes(PROTOCOL_ID), bytes(kind), bytes(header)];
  if (payload) frames.push(payload);
  return frames;
}

function expectFailure(frames: Uint8Array[], receiver: Receiver, reason: ProtocolFailure, messagePart?: string | RegExp) {
  const result = decodeMessage(frames, receiver);
  if (result.ok) throw new Error(`expected ${reason}, decoded ${result.kind}`);
  expect(result.error).toBeInstanceOf(ProtocolError);
  expect(result.error.code).toBe("PROTOCOL_ERROR");
  expect(result.error.reason).toBe(reason);
  if (messagePart !== undefined) expect(result.error.message).toMatch(messagePart);
  return result;
}

const dealerHello: HeaderOf<"HELLO"> = {
  role: "dealer",
  version: 1,
  apiKey: "dealer_abc123",
  service: "EchoService",
  instanceId: "host-a:4242",
  host: "host-a.example.com",
  maxConcurrent: 4,
  methods: {
    "EchoService.echo": {
      description: "Returns its argument",
      params: { type: "array", items: [{ type: "string" }] },
      stream: false,
      metadata: { tags: ["demo"] },
    },
    "EchoService.count": { stream: true },
  },
};

/** One sample per (receiver, kind) that receiver accepts, fullest header first. */
const samples: Array<{ receiver: Receiver; kind: Kind; header: object; payload?: Uint8Array }> = [
  { receiver: "router", kind: "HELLO", header: { role: "client", version: 1, apiKey: "client_key" } },
  { receiver: "router", kind: "HELLO", header: { role: "client", version: 1 } },
  { receiver: "router", kind: "HELLO", header: dealerHello },
  {
    receiver: "router",
    kind: "REQUEST",
    header: { id: 1, method: "EchoService.echo", stream: false, timeoutMs: 5000, waitForDealer: true, idempotent: true, credit: 0 },
    payload: args,
  },
  { receiver: "router", kind: "REQUEST", header: { id: Number.MAX_SAFE_INTEGER, method: "A.b" }, payload: bytes("[]") },
  { receiver: "router", kind: "CANCEL", header: { id: 1 } },
  { receiver: "router", kind: "CREDIT", header: { id: 1, n: 16 } },
  { receiver: "router", kind: "INFO", header: { id: 2, topic: "services" } },
  { receiver: "router", kind: "INFO", header: { id: 3, topic: "queues" } },
  { receiver: "router", kind: "RESULT", header: { id: 9 }, payload: bytes('{"answer":42}') },
  { receiver: "router", kind: "CHUNK", header: { id: 9, seq: 0 }, payload: bytes("1") },
  { receiver: "router", kind: "END", header: { id: 9, count: 1 } },
  {
    receiver: "router",
    kind: "ERROR",
    header: { id: 9, code: "REMOTE_ERROR", message: "boom", data: { name: "TypeError", message: "boom" } },
  },
  { receiver: "router", kind: "DRAIN", header: {} },
  { receiver: "router", kind: "BYE", header: {} },
  {
    receiver: "dealer",
    kind: "WELCOME",
    header: { role: "dealer", version: 1, dealerId: "EchoService-1", heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 5000 },
  },
  {
    receiver: "dealer",
    kind: "REQUEST",
    header: { id: 77, method: "EchoService.count", stream: true, credit: 8, deadlineMs: 4999 },
    payload: args,
  },
  { receiver: "dealer", kind: "CANCEL", header: { id: 77 } },
  { receiver: "dealer", kind: "CREDIT", header: { id: 77, n: 1 } },
  { receiver: "dealer", kind: "ERROR", header: { code: "AUTH_FAILED", message: "bad key" } },
  { receiver: "client", kind: "WELCOME", header: { role: "client", version: 1, heartbeatIntervalMs: 0, heartbeatTimeoutMs: 0 } },
  { receiver: "client", kind: "RESULT", header: { id: 1 }, payload: bytes("null") },
  { receiver: "client", kind: "CHUNK", header: { id: 1, seq: 41 }, payload: bytes('"x"') },
  { receiver: "client", kind: "END", header: { id: 1, count: 42 } },
  { receiver: "client", kind: "ERROR", header: { id: 1, code: "TIMEOUT", message: "took too long", data: { timeoutMs: 10 } } },
];

describe("round trip", () => {
  for (const sample of samples) {
    test(`${sample.kind} to the ${sample.receiver}: ${JSON.stringify(sample.header).slice(0, 60)}`, () => {
      const frames = (encodeMessage as (k: Kind, h: object, p?: Uint8Array) => Uint8Array[])(
        sample.kind,
        sample.header,
        ...(sample.payload ? [sample.payload] : []),
      );
      expect(frames.length).toBe(sample.payload ? 4 : 3);
      expect(ascii(frames[0]!)).toBe("VRP1");
      expect(ascii(frames[1]!)).toBe(sample.kind);
      expect(JSON.parse(ascii(frames[2]!))).toEqual(sample.header);
      const decoded = decodeMessage(frames, sample.receiver);
      if (!decoded.ok) throw decoded.error;
      expect(decoded.kind as Kind).toBe(sample.kind);
      expect(decoded.header).toEqual(sample.header as never);
      // The payload is handed back as the very frame that came in: no copy, no parse.
      expect(decoded.payload).toBe(sample.payload as never);
    });
  }

  test("every kind a receiver accepts has a sample", () => {
    const covered = new Set(samples.map((s) => `${s.receiver}:${s.kind}`));
    expect(covered.size).toBe(11 + 5 + 5);
  });

  test("protocol id and kind frames are cached buffers shared across messages", () => {
    const a = encodeMessage("CANCEL", { id: 1 });
    const b = encodeMessage("CANCEL", { id: 2 });
    expect(a[0]).toBe(b[0]!);
    expect(a[1]).toBe(b[1]!);
    expect(a[2]).not.toBe(b[2]!);
  });

  test("the payload frame is passed through by reference", () => {
    const payload = bytes("[1,2,3]");
    expect(encodeMessage("REQUEST", { id: 1, method: "A.b" }, payload)[3]).toBe(payload);
  });

  test("unknown header fields are dropped, so newer peers can add optional fields", () => {
    const decoded = decodeMessage(raw("CANCEL", '{"id":5,"reason":"user","future":{"x":1}}'), "router");
    if (!decoded.ok) throw decoded.error;
    expect(decoded.header).toEqual({ id: 5 });
  });

  test("frames that are views into a larger buffer decode", () => {
    const big = new Uint8Array(64);
    const header = bytes('{"id":3}');
    big.set(bytes("VRP1"), 5);
    big.set(bytes("END"), 20);
    const frames = [big.subarray(5, 9), big.subarray(20, 23), header];
    expectFailure(frames, "client", ProtocolFailure.SCHEMA, /header\.count/);
    const ok = decodeMessage([big.subarray(5, 9), bytes("CANCEL"), header], "dealer");
    expect(ok.ok).toBe(true);
  });

  test("narrowing on kind gives the kind's header type", () => {
    const decoded = decodeMessage(encodeMessage("REQUEST", { id: 4, method: "A.b", credit: 2 }, args), "dealer");
    if (!decoded.ok || decoded.kind !== "REQUEST") throw new Error("expected REQUEST");
    const credit: number | undefined = decoded.header.credit;
    const payload: Uint8Array = decoded.payload;
    expect(credit).toBe(2);
    expect(payload).toBe(args);
  });
});

describe("malformed input is a ProtocolError naming what is wrong", () => {
  test("no frames at all", () => {
    expectFailure([], "router", ProtocolFailure.FRAME_COUNT, /empty message/);
  });

  test("a frame that is not bytes", () => {
    expectFailure([bytes("VRP1"), "REQUEST" as unknown as Uint8Array, bytes("{}")], "router", ProtocolFailure.BAD_FRAME, /frame 1/);
  });

  test("wrong protocol id", () => {
    expectFailure(
      raw("CANCEL", '{"id":1}').with(0, bytes("VRP2")),
      "router",
      ProtocolFailure.PROTOCOL_ID,
      /expected protocol id "VRP1", got "VRP2"/,
    );
    expectFailure([bytes("VRP"), bytes("CANCEL"), bytes('{"id":1}')], "router", ProtocolFailure.PROTOCOL_ID);
    expectFailure([bytes("VRP1x"), bytes("CANCEL"), bytes('{"id":1}')], "router", ProtocolFailure.PROTOCOL_ID);
    expectFailure([new Uint8Array([0, 1, 0xff]), bytes("CANCEL")], "router", ProtocolFailure.PROTOCOL_ID, /0x0001ff/);
  });

  test("a lone protocol id frame", () => {
    expectFailure([bytes("VRP1")], "router", ProtocolFailure.FRAME_COUNT, /no kind frame/);
  });

  test("unknown kinds", () => {
    expectFailure(raw("PING", "{}"), "router", ProtocolFailure.UNKNOWN_KIND, /unknown message kind "PING"/);
    expectFailure(raw("request", "{}"), "router", ProtocolFailure.UNKNOWN_KIND, /"request"/);
    expectFailure(raw("", "{}"), "router", ProtocolFailure.UNKNOWN_KIND);
    expectFailure(raw("REQUEST_WITH_A_VERY_LONG_NAME", "{}"), "router", ProtocolFailure.UNKNOWN_KIND);
    expectFailure([bytes("VRP1"), new Uint8Array([0xc3, 0x28]), bytes("{}")], "router", ProtocolFailure.UNKNOWN_KIND, /0xc328/);
  });

  test("kinds the receiver never gets", () => {
    const welcome = expectFailure(raw("WELCOME", "{}"), "router", ProtocolFailure.UNEXPECTED_KIND, /router does not accept WELCOME/);
    expect(welcome.kind).toBe("WELCOME");
    expectFailure(raw("HELLO", "{}"), "dealer", ProtocolFailure.UNEXPECTED_KIND);
    expectFailure(raw("REQUEST", "{}", args), "client", ProtocolFailure.UNEXPECTED_KIND);
    expectFailure(raw("INFO", "{}"), "client", ProtocolFailure.UNEXPECTED_KIND);
    expectFailure(raw("BYE", "{}"), "dealer", ProtocolFailure.UNEXPECTED_KIND);
  });

  test("DRAIN from a client names a dealer and its request id, both or neither", () => {
    const both = decodeMessage(raw("DRAIN", '{"id":4,"dealerId":"EchoService-1"}'), "router");
    expect(both.ok && both.kind === "DRAIN" && both.header).toEqual({ id: 4, dealerId: "EchoService-1" });
    const plain = decodeMessage(raw("DRAIN", "{}"), "router");
    expect(plain.ok && plain.header).toEqual({});
    expect(decodeMessage(raw("DRAIN", '{"dealerId":"EchoService-1"}'), "router").ok).toBe(false);
    expect(decodeMessage(raw("DRAIN", '{"id":4,"dealerId":"has space"}'), "router").ok).toBe(false);
    expect(decodeMessage(raw("DRAIN", "{}"), "dealer").ok).toBe(true);
  });

  test("wrong frame count for the kind", () => {
    expectFailure(
      raw("REQUEST", '{"id":1,"method":"A.b"}'),
      "router",
      ProtocolFailure.FRAME_COUNT,
      /REQUEST has 4 frames \(with payload\), got 3/,
    );
    expectFailure(raw("CANCEL", '{"id":1}', args), "router", ProtocolFailure.FRAME_COUNT, /CANCEL has 3 frames, got 4/);
    expectFailure([bytes("VRP1"), bytes("CANCEL")], "router", ProtocolFailure.FRAME_COUNT, /got 2/);
    expectFailure([...raw("RESULT", '{"id":1}', args), args], "client", ProtocolFailure.FRAME_COUNT, /got 5/);
  });

  test("oversized header", () => {
    const padding = "x".repeat(Limits.MAX_HEADER_BYTES);
    expectFailure(
      raw("CANCEL", `{"id":1,"pad":"${padding}"}`),
      "router",
      ProtocolFailure.HEADER_TOO_LARGE,
      /CANCEL header is \d+ bytes, limit 65536/,
    );
  });

  test("a HELLO may be larger than other headers, up to its own limit", () => {
    const methods: Record<string, object> = {};
    for (let i = 0; i < 1000; i++) methods[`Big.m${i}`] = { stream: false, description: "d".repeat(100) };
    const hello = { role: "dealer", version: 1, service: "Big", maxConcurrent: 1, methods };
    const frames = encodeMessage("HELLO", hello as HeaderOf<"HELLO">);
    expect(frames[2]!.byteLength).toBeGreaterThan(Limits.MAX_HEADER_BYTES);
    expect(decodeMessage(frames, "router").ok).toBe(true);
    const huge = `{"role":"client","version":1,"pad":"${"x".repeat(Limits.MAX_HELLO_HEADER_BYTES)}"}`;
    expectFailure(raw("HELLO", huge), "router", ProtocolFailure.HEADER_TOO_LARGE, /limit 1048576/);
  });

  test("header that is not UTF-8", () => {
    const frames = raw("CANCEL", "");
    frames[2] = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]);
    expectFailure(frames, "router", ProtocolFailure.BAD_UTF8, /not valid UTF-8/);
    frames[2] = new Uint8Array([0x7b, 0xed, 0xa0, 0x80, 0x7d]); // an encoded lone surrogate
    expectFailure(frames, "router", ProtocolFailure.BAD_UTF8);
  });

  test("header that is not JSON", () => {
    expectFailure(raw("CANCEL", "{id:1}"), "router", ProtocolFailure.BAD_JSON, /CANCEL header is not JSON/);
    expectFailure(raw("CANCEL", ""), "router", ProtocolFailure.BAD_JSON);
    expectFailure(raw("CANCEL", '{"id":1}garbage'), "router", ProtocolFailure.BAD_JSON);
    expectFailure(raw("CANCEL", '\uFEFF{"id":1}'), "router", ProtocolFailure.BAD_JSON);
  });

  test("header that is JSON but not an object", () => {
    expectFailure(raw("DRAIN", "[]"), "router", ProtocolFailure.NOT_OBJECT, /got an array/);
    expectFailure(raw("DRAIN", "null"), "router", ProtocolFailure.NOT_OBJECT, /got null/);
    expectFailure(raw("DRAIN", "42"), "router", ProtocolFailure.NOT_OBJECT, /got number/);
    expectFailure(raw("DRAIN", '"{}"'), "router", ProtocolFailure.NOT_OBJECT, /got string/);
  });

  test("deeply nested JSON does not crash the decoder", () => {
    const deep = `{"id":1,"x":${"[".repeat(20_000)}${"]".repeat(20_000)}}`;
    const result = decodeMessage(raw("CANCEL", deep), "router");
    expect(result.ok).toBe(true); // within the size limit, and the unknown field is dropped
    const deeper = `{"id":1,"code":"X","message":"m","data":${"[".repeat(40)}${"]".repeat(40)}}`;
    expectFailure(raw("ERROR", deeper), "router", ProtocolFailure.SCHEMA, /header\.data: .*deeper than 32/);
  });

  const schemaCases: Array<[string, Receiver, string, string, RegExp, Uint8Array?]> = [
    ["id missing", "router", "CANCEL", "{}", /header\.id/],
    ["id negative", "router", "CANCEL", '{"id":-1}', /header\.id/],
    ["id fractional", "router", "CANCEL", '{"id":1.5}', /header\.id/],
    ["id beyond safe integers", "router", "CANCEL", '{"id":9007199254740992}', /header\.id/],
    ["id as a string", "router", "CANCEL", '{"id":"1"}', /header\.id/],
    ["method without a service", "router", "REQUEST", '{"id":1,"method":"echo"}', /header\.method: Invalid method name/, args],
    ["method with spaces", "router", "REQUEST", '{"id":1,"method":"A.b c"}', /header\.method/, args],
    ["timeoutMs of zero", "router", "REQUEST", '{"id":1,"method":"A.b","timeoutMs":0}', /header\.timeoutMs/, args],
    ["credit beyond its bound", "router", "REQUEST", '{"id":1,"method":"A.b","credit":2147483648}', /header\.credit/, args],
    ["null where a field is optional", "router", "REQUEST", '{"id":1,"method":"A.b","stream":null}', /header\.stream/, args],
    ["CREDIT of zero", "router", "CREDIT", '{"id":1,"n":0}', /header\.n/],
    ["unknown INFO topic", "router", "INFO", '{"id":1,"topic":"secrets"}', /header\.topic/],
    ["HELLO without role", "router", "HELLO", '{"version":1}', /header\.role/],
    ["HELLO with an unknown role", "router", "HELLO", '{"role":"admin","version":1}', /header\.role/],
    ["HELLO with version 0", "router", "HELLO", '{"role":"client","version":0}', /header\.version/],
    ["API key with a space", "router", "HELLO", '{"role":"client","version":1,"apiKey":"a b"}', /header\.apiKey/],
    [
      "dealer HELLO with no methods",
      "router",
      "HELLO",
      '{"role":"dealer","version":1,"service":"S","maxConcurrent":1,"methods":{}}',
      /header\.methods: .*1 to 1024/,
    ],
    [
      "dealer HELLO with a host name holding a space",
      "router",
      "HELLO",
      '{"role":"dealer","version":4,"service":"S","host":"my laptop","methods":{"S.m":{"stream":false}}}',
      /header\.host/,
    ],
    [
      "dealer HELLO with maxConcurrent 0",
      "router",
      "HELLO",
      '{"role":"dealer","version":1,"service":"S","maxConcurrent":0,"methods":{"S.m":{"stream":false}}}',
      /header\.maxConcurrent/,
    ],
    [
      "dealer HELLO with another service's method",
      "router",
      "HELLO",
      '{"role":"dealer","version":1,"service":"S","maxConcurrent":1,"methods":{"T.m":{"stream":false}}}',
      /must start with the service name/,
    ],
    [
      "method info without stream",
      "router",
      "HELLO",
      '{"role":"dealer","version":1,"service":"S","maxConcurrent":1,"methods":{"S.m":{}}}',
      /header\.methods\.S\.m\.stream/,
    ],
    [
      "params that are not an object",
      "router",
      "HELLO",
      '{"role":"dealer","version":1,"service":"S","maxConcurrent":1,"methods":{"S.m":{"stream":false,"params":[]}}}',
      /params: .*JSON object/,
    ],
    ["ERROR with a lower-case code", "client", "ERROR", '{"id":1,"code":"oops","message":"m"}', /header\.code/],
    ["ERROR without a message", "client", "ERROR", '{"id":1,"code":"X"}', /header\.message/],
    ["CHUNK without seq", "client", "CHUNK", '{"id":1}', /header\.seq/, args],
    [
      "WELCOME for the wrong role",
      "client",
      "WELCOME",
      '{"role":"dealer","version":1,"dealerId":"d","heartbeatIntervalMs":0,"heartbeatTimeoutMs":0}',
      /header\.role/,
    ],
    [
      "dealer WELCOME without dealerId",
      "dealer",
      "WELCOME",
      '{"role":"dealer","version":1,"heartbeatIntervalMs":0,"heartbeatTimeoutMs":0}',
      /header\.dealerId/,
    ],
    ["REQUEST to a dealer with deadlineMs 0", "dealer", "REQUEST", '{"id":1,"method":"A.b","deadlineMs":0}', /header\.deadlineMs/, args],
  ];
  for (const [name, receiver, kind, header, message, payload] of schemaCases) {
    test(`schema: ${name}`, () => {
      const failure = expectFailure(raw(kind, header, payload), receiver, ProtocolFailure.SCHEMA, message);
      expect(failure.kind).toBe(kind as Kind);
      expect(failure.error.message).toStartWith(`frame 2: ${kind} header`);
    });
  }

  test("a rejected API key is not quoted back in the error message", () => {
    const failure = expectFailure(
      raw("HELLO", '{"role":"client","version":1,"apiKey":"secret key"}'),
      "router",
      ProtocolFailure.SCHEMA,
      /apiKey/,
    );
    expect(failure.error.message).not.toContain("secret");
  });

  test("a schema failure still reports a readable request id, so the router can answer ERROR {id}", () => {
    const failure = expectFailure(raw("REQUEST", '{"id":12,"method":"nope"}', args), "router", ProtocolFailure.SCHEMA);
    expect(failure.id).toBe(12);
    expect(failure.error.data).toEqual({ reason: "SCHEMA", frame: 2, kind: "REQUEST", path: "method" });
    const noId = expectFailure(raw("REQUEST", '{"id":"12","method":"A.b"}', args), "router", ProtocolFailure.SCHEMA);
    expect(noId.id).toBeUndefined();
  });
});

describe("describeBadMethodName: a sentence for a name the router would refuse", () => {
  test("full method names pass, at the length limit too", () => {
    for (const name of ["EchoService.echo", "_a._b", `${"S".repeat(128)}.${"m".repeat(128)}`])
      expect(describeBadMethodName(name)).toBeUndefined();
  });

  test("a name without its service says the form, with an example", () => {
    for (const name of ["echo", "EchoService.", ".echo", "a.b.c", ""])
      expect(describeBadMethodName(name)).toBe(
        `${JSON.stringify(name)} is not a method name: expected Service.method, e.g. EchoService.echo`,
      );
  });

  test("a name with the right shape but a bad part says what a part may be", () => {
    for (const name of ["Echo-Service.echo", "EchoService.1echo", `S.${"m".repeat(129)}`])
      expect(describeBadMethodName(name)).toMatch(
        /is not a method name: expected Service\.method, each part an identifier \(letters, digits, _; not starting with a digit; at most 128 characters\)$/,
      );
  });

  test("a long name is shortened in the message, and a non-string is named by its type", () => {
    expect(describeBadMethodName("x".repeat(1000))).toStartWith(`"${"x".repeat(80)}…" is not a method name`);
    expect(describeBadMethodName(42)).toBe("the method name must be a string, got number");
    expect(describeBadMethodName(null)).toBe("the method name must be a string, got null");
  });
});

describe("encodeMessage rejects programming errors", () => {
  test("missing or unwanted payload, unknown kind, non-object header, oversized header", () => {
    const encode = encodeMessage as (k: string, h: unknown, p?: Uint8Array) => Uint8Array[];
    expect(() => encode("REQUEST", { id: 1, method: "A.b" })).toThrow(/REQUEST needs payload/);
    expect(() => encode("END", { id: 1, count: 0 }, args)).toThrow(/END takes no payload/);
    expect(() => encode("NOPE", {})).toThrow(TypeError);
    expect(() => encode("DRAIN", [])).toThrow(/must be an object/);
    expect(() => encode("DRAIN", { n: 1n })).toThrow(TypeError);
    expect(() => encode("CANCEL", { id: 1, pad: "x".repeat(Limits.MAX_HEADER_BYTES) })).toThrow(RangeError);
  });
});

describe("payload helpers", () => {
  test("encodeJson: values, undefined as null, and unserialisable values as ValidationError", () => {
    const ok = encodeJson({ a: [1, "é"] });
    expect(ok.ok && new TextDecoder().decode(ok.value)).toBe('{"a":[1,"é"]}');
    const nothing = encodeJson(undefined);
    expect(nothing.ok && new TextDecoder().decode(nothing.value)).toBe("null");
    const bigint = encodeJson({ n: 1n }, "result");
    if (bigint.ok) throw new Error("expected failure");
    expect(bigint.error).toBeInstanceOf(ValidationError);
    expect(bigint.error.path).toBe("result");
    expect(bigint.error.message).toMatch(/^result is not JSON-serialisable/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(encodeJson(cyclic).ok).toBe(false);
    expect(() => encodeJsonOrThrow(cyclic)).toThrow(ValidationError);
  });

  test("decodeJson: bad UTF-8 and bad JSON are ProtocolErrors, never exceptions", () => {
    const badUtf8 = decodeJson(new Uint8Array([0x22, 0xc0, 0x22]));
    expect(!badUtf8.ok && badUtf8.error.reason).toBe("BAD_UTF8");
    const badJson = decodeJson(bytes("[1,"));
    expect(!badJson.ok && badJson.error.reason).toBe("BAD_JSON");
    expect(!badJson.ok && badJson.error.data).toMatchObject({ frame: 3 });
    const empty = decodeJson(new Uint8Array(0));
    expect(!empty.ok && empty.error.reason).toBe("BAD_JSON");
    expect(decodeJson(bytes('{"a":null}'))).toEqual({ ok: true, value: { a: null } });
  });

  test("decodeJson with a schema: a mismatch is a ValidationError naming the field", () => {
    const schema = v.object({ name: v.string(), tags: v.array(v.string()) });
    const bad = decodeJson(bytes('{"name":"x","tags":["a",2]}'), schema);
    if (bad.ok) throw new Error("expected failure");
    expect(bad.error).toBeInstanceOf(ValidationError);
    expect((bad.error as ValidationError).path).toBe("tags.1");
    expect(bad.error.message).toMatch(/^tags\.1: /);
    const good = decodeJson(bytes('{"name":"x","tags":[]}'), schema);
    expect(good).toEqual({ ok: true, value: { name: "x", tags: [] } });
  });

  test("decodeArgs: a JSON array of arguments, anything else is NOT_ARRAY", () => {
    expect(decodeArgs(bytes('[{"name":"John"}]'))).toEqual({ ok: true, value: [{ name: "John" }] });
    for (const text of ['{"name":"John"}', '"John"', "null", "42"]) {
      const result = decodeArgs(bytes(text));
      expect(!result.ok && result.error.reason).toBe("NOT_ARRAY");
    }
    const badJson = decodeArgs(bytes("[1"));
    expect(!badJson.ok && badJson.error.reason).toBe("BAD_JSON");
  });
});

describe("monitoring payloads", () => {
  test("sample INFO answers satisfy their schemas", () => {
    const answers = {
      services: { "EchoService.echo": { description: "Echo", params: { type: "array" }, stream: false, instances: 2 } },
      clusters: [
        {
          id: "EchoService-1",
          service: "EchoService",
          instanceId: "host-a:4242",
          methods: ["EchoService.echo"],
          state: "active",
          busy: true,
          load: 1,
          maxConcurrent: 4,
          counts: { dispatched: 10, succeeded: 8, failed: 1 },
          lastHeartbeat: "2025-01-01T00:00:00.000Z",
        },
      ],
      router: {
        mode: "fifo",
        address: "tcp://127.0.0.1:5555",
        uptimeSeconds: 12.5,
        activeServices: 2,
        activeDealers: 2,
        busyDealers: 1,
        idleDealers: 1,
        totalRequests: 10,
        totalResponses: 9,
        queuedRequests: 0,
        inProgressRequests: 1,
        requireDealerAuth: false,
        requireClientAuth: true,
      },
      queues: { "EchoService.echo": { queueLength: 0, availableServices: 1, busyServices: 1 } },
    };
    for (const [topic, answer] of Object.entries(answers)) {
      const schema = InfoResultSchemas[topic as keyof typeof InfoResultSchemas];
      const decoded = decodeJson(encodeJsonOrThrow(answer), schema);
      if (!decoded.ok) throw decoded.error;
      expect(decoded.value).toEqual(answer as never);
    }
  });
});
