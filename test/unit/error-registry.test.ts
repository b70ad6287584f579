/** Every error code this implementation knows comes back from the wire as its own class. */
import { expect, test } from "bun:test";
import { ErrorCode, errorFromWire, VoidRailError } from "../../src/protocol/index.ts";

test("each ErrorCode is rebuilt as a class that owns that code, with the message and data", () => {
  for (const code of Object.values(ErrorCode)) {
    const error = errorFromWire({ code, message: `a ${code}`, data: { n: 1 } });
    expect(error).toBeInstanceOf(VoidRailError);
    expect(error.constructor).not.toBe(VoidRailError);
    expect((error.constructor as typeof VoidRailError).code).toBe(code);
    expect(error.code).toBe(code);
    expect([error.message, error.data]).toEqual([`a ${code}`, { n: 1 }]);
  }
});

test("an unknown code stays a bare VoidRailError carrying it", () => {
  const error = errorFromWire({ code: "OUT_OF_STOCK", message: "none left" });
  expect(error.constructor).toBe(VoidRailError);
  expect(error.code).toBe("OUT_OF_STOCK");
});
