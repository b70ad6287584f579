import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import {
  AuthError,
  CancelledError,
  ConnectionError,
  TaskNotFoundError,
  ScheduleNotFoundError,
  DealerLostError,
  decodeMessage,
  encodeMessage,
  ErrorCode,
  errorFromWire,
  errorToWire,
  Limits,
  NoSuchMethodError,
  ProtocolError,
  QueueFullError,
  RemoteError,
  ShuttingDownError,
  TimeoutError,
  UNKNOWN_ERROR_CODE,
  ValidationError,
  validationErrorFromIssues,
  VoidRailError,
} from "../../src/protocol/index.ts";

/** Sends `err` the way a dealer or router would and rebuilds it the way a client would. */
function overTheWire(err: unknown, id = 7): VoidRailError {
  const frames = encodeMessage("ERROR", { id, ...errorToWire(err) });
  const decoded = decodeMessage(frames, "client");
  if (!decoded.ok) throw decoded.error;
  if (decoded.kind !== "ERROR") throw new Error(`expected ERROR, got ${decoded.kind}`);
  expect(decoded.header.id).toBe(id);
  return errorFromWire(decoded.header);
}

const classes = [
  [NoSuchMethodError, "NO_SUCH_METHOD", { method: "A.b" }],
  [QueueFullError, "QUEUE_FULL", { method: "A.b", queueLength: 1000 }],
  [TimeoutError, "TIMEOUT", { timeoutMs: 50 }],
  [CancelledError, "CANCELLED", undefined],
  [DealerLostError, "DEALER_LOST", { dealerId: "A-1" }],
  [AuthError, "AUTH_FAILED", { reason: "BAD_KEY" }],
  [ValidationError, "VALIDATION_ERROR", { path: "args.0.name", issues: [{ path: "args.0.name", message: "Invalid type" }] }],
  [RemoteError, "REMOTE_ERROR", { name: "TypeError", message: "x is undefined", stack: "TypeError: x is undefined\n    at f (a.ts:1:1)" }],
  [ProtocolError, "PROTOCOL_ERROR", { reason: "SCHEMA", frame: 2, kind: "REQUEST", path: "method" }],
  [ShuttingDownError, "SHUTTING_DOWN", undefined],
  [ConnectionError, "CONNECTION_LOST", undefined],
  [TaskNotFoundError, "TASK_NOT_FOUND", { taskId: "0190a5f0-0000-7000-8000-000000000000" }],
  [ScheduleNotFoundError, "SCHEDULE_NOT_FOUND", { name: "daily-report" }],
] as const;

describe("error classes", () => {
  for (const [ErrorClass, code, data] of classes) {
    test(`${ErrorClass.name}: code ${code}, name, data and cause`, () => {
      const cause = new Error("underneath");
      const err = new ErrorClass("it failed", { cause, data });
      expect(err).toBeInstanceOf(VoidRailError);
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe(code);
      expect(ErrorClass.code).toBe(code);
      expect(err.name).toBe(ErrorClass.name);
      expect(err.message).toBe("it failed");
      expect(err.data).toEqual(data);
      expect(err.cause).toBe(cause);
    });

    test(`${ErrorClass.name} crosses the wire as the same class with code, message and data`, () => {
      const rebuilt = overTheWire(new ErrorClass("it failed", { data, cause: new Error("stays local") }));
      expect(rebuilt).toBeInstanceOf(ErrorClass);
      expect(rebuilt.code).toBe(code);
      expect(rebuilt.name).toBe(ErrorClass.name);
      expect(rebuilt.message).toBe("it failed");
      expect(rebuilt.data).toEqual(data);
      expect(rebuilt.cause).toBeUndefined();
    });
  }

  test("every ErrorCode has a class", () => {
    expect(classes.map(([, code]) => code).sort()).toEqual(Object.values(ErrorCode).sort() as never);
  });

  test("a bare VoidRailError has the unknown-error code unless given one", () => {
    expect(new VoidRailError("x").code).toBe(UNKNOWN_ERROR_CODE);
    expect(new VoidRailError("x", { code: "OUT_OF_STOCK" }).code).toBe("OUT_OF_STOCK");
    // A subclass's code is fixed by the class.
    expect(new TimeoutError("x", { code: "OTHER" }).code).toBe("TIMEOUT");
  });

  test("helpers read typed details from data", () => {
    expect(new ValidationError("x", { data: { path: "args.1" } }).path).toBe("args.1");
    expect(new ValidationError("x").path).toBeUndefined();
    expect(new ProtocolError("x", { data: { reason: "BAD_JSON" } }).reason).toBe("BAD_JSON");
    expect(new RemoteError("x", { data: { name: "E", message: "m" } }).remote).toEqual({ name: "E", message: "m" });
    expect(new RemoteError("x", { data: "not the right shape" }).remote).toBeUndefined();
  });
});

describe("errors across the wire", () => {
  test("an exception thrown in a service method becomes RemoteError with its name, message and stack", () => {
    class ImageTooLargeError extends Error {
      override name = "ImageTooLargeError";
    }
    const thrown = new ImageTooLargeError("4000x4000 exceeds 2048x2048");
    const rebuilt = overTheWire(thrown);
    expect(rebuilt).toBeInstanceOf(RemoteError);
    expect(rebuilt.code).toBe("REMOTE_ERROR");
    expect(rebuilt.message).toBe("4000x4000 exceeds 2048x2048");
    const remote = (rebuilt as RemoteError).remote;
    expect(remote?.name).toBe("ImageTooLargeError");
    expect(remote?.message).toBe("4000x4000 exceeds 2048x2048");
    expect(remote?.stack).toBe(thrown.stack);
  });

  test("the stack can be withheld", () => {
    expect(errorToWire(new Error("secret paths"), { includeStack: false }).data).toEqual({ name: "Error", message: "secret paths" });
  });

  test("thrown non-Errors become RemoteError too", () => {
    expect(overTheWire("just a string").message).toBe("just a string");
    expect(overTheWire(42)).toBeInstanceOf(RemoteError);
    expect(overTheWire(undefined).message).toBe("undefined");
    const hostile = {
      toString: () => {
        throw new Error("no");
      },
    };
    expect(overTheWire(hostile).message).toBe("thrown object");
    expect(overTheWire(Object.create(null)).message).toBe("thrown object");
  });

  test("an unknown code is rebuilt as VoidRailError carrying that code", () => {
    class OutOfStockError extends VoidRailError {
      static override readonly code = "OUT_OF_STOCK";
      override readonly name = "OutOfStockError";
    }
    const rebuilt = overTheWire(new OutOfStockError("no more widgets", { data: { sku: "W-1" } }));
    expect(rebuilt.constructor).toBe(VoidRailError);
    expect(rebuilt.code).toBe("OUT_OF_STOCK");
    expect(rebuilt.message).toBe("no more widgets");
    expect(rebuilt.data).toEqual({ sku: "W-1" });
  });

  test("a VoidRailError whose code the wire cannot carry is sent as REMOTE_ERROR", () => {
    const wire = errorToWire(new VoidRailError("x", { code: "lower-case" }));
    expect(wire.code).toBe("REMOTE_ERROR");
    expect(wire.data).toMatchObject({ name: "VoidRailError", message: "x" });
  });

  test("oversized messages and stacks are truncated to fit an ERROR header", () => {
    const err = new Error("m".repeat(100_000));
    err.stack = "s".repeat(100_000);
    const wire = errorToWire(err);
    expect(wire.message.length).toBe(Limits.MAX_ERROR_MESSAGE_LENGTH);
    expect((wire.data as { stack: string }).stack.length).toBe(Limits.MAX_ERROR_STACK_LENGTH);
    expect(overTheWire(err)).toBeInstanceOf(RemoteError);
  });

  test("messages that escape badly still fit: the stack goes first, then the message shrinks", () => {
    const err = new Error("\u0001".repeat(10_000));
    err.stack = "\u0002".repeat(10_000);
    const rebuilt = overTheWire(err) as RemoteError;
    expect(rebuilt.remote?.stack).toBeUndefined();
    expect(rebuilt.message.length).toBeLessThanOrEqual(Limits.MAX_ERROR_MESSAGE_LENGTH);
  });

  test("truncation never splits a surrogate pair", () => {
    const message = `${"a".repeat(Limits.MAX_ERROR_MESSAGE_LENGTH - 1)}😀tail`;
    const wire = errorToWire(new TimeoutError(message));
    expect(wire.message.length).toBe(Limits.MAX_ERROR_MESSAGE_LENGTH - 1);
    expect(wire.message.endsWith("a")).toBe(true);
  });

  test("data that is too large or not JSON is replaced, so the error still gets through", () => {
    const big = overTheWire(new ValidationError("big", { data: { blob: "x".repeat(Limits.MAX_ERROR_DATA_BYTES) } }));
    expect(big).toBeInstanceOf(ValidationError);
    expect(big.data).toEqual({ truncated: true });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(overTheWire(new QueueFullError("cyclic", { data: cyclic })).data).toEqual({ truncated: true });
    expect(overTheWire(new QueueFullError("bigint", { data: 1n })).data).toEqual({ truncated: true });
  });

  test("connection-level errors travel without an id", () => {
    const frames = encodeMessage("ERROR", errorToWire(new AuthError("invalid API key", { data: { reason: "BAD_KEY" } })));
    const decoded = decodeMessage(frames, "dealer");
    if (!decoded.ok || decoded.kind !== "ERROR") throw new Error("expected ERROR");
    expect(decoded.header.id).toBeUndefined();
    expect(errorFromWire(decoded.header)).toBeInstanceOf(AuthError);
  });

  test("a decode failure can be answered with ERROR carrying its ProtocolError", () => {
    const failed = decodeMessage([new TextEncoder().encode("nope")], "router");
    if (failed.ok) throw new Error("expected failure");
    const rebuilt = overTheWire(failed.error);
    expect(rebuilt).toBeInstanceOf(ProtocolError);
    expect((rebuilt as ProtocolError).reason).toBe("PROTOCOL_ID");
  });
});

describe("validationErrorFromIssues", () => {
  test("names the failing field, prefixed, and lists the issues", () => {
    const schema = v.tuple([v.object({ name: v.string() }), v.number()]);
    const parsed = v.safeParse(schema, [{ name: 1 }, "x"]);
    if (parsed.success) throw new Error("expected failure");
    const err = validationErrorFromIssues(parsed.issues, "args");
    expect(err.path).toBe("args.0.name");
    expect(err.message).toMatch(/^args\.0\.name: /);
    expect((err.data as { issues: unknown[] }).issues).toHaveLength(2);
    const root = v.safeParse(v.string(), 1);
    if (root.success) throw new Error("expected failure");
    expect(validationErrorFromIssues(root.issues).message).toMatch(/^value: /);
  });
});
