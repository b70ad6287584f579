/**
 * The router's per-method rate limits on a fake clock: the router's setting wins over a dealer's,
 * the latest dealer's rate applies, a method without a limit always has a token, and a method out
 * of tokens is served again when its next one is due.
 *
 *   ./node_modules/.bin/bun test test/unit/router-rate-limits.test.ts
 */
import { expect, test } from "bun:test";
import { MethodRateLimits } from "../../src/router/rate-limits.ts";
import { waitFor } from "../helpers/wait.ts";

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test("with nothing configured or declared, no method is limited and the check is off", () => {
  const limits = new MethodRateLimits({});
  expect(limits.active).toBe(false);
  limits.declared("Svc.free", undefined);
  expect(limits.active).toBe(false);
  expect(limits.take("Svc.free")).toBe(0);
});

test("the router's rate wins over a dealer's; among dealers the latest registration's applies", () => {
  const time = clock();
  const limits = new MethodRateLimits({ "Mail.send": "2/s" }, time.now);
  limits.declared("Mail.send", "1000/s");
  expect(limits.rateOf("Mail.send")).toEqual({ count: 2, periodMs: 1_000 });
  limits.declared("Img.resize", "10/m");
  limits.declared("Img.resize", "1/h");
  expect(limits.rateOf("Img.resize")).toEqual({ count: 1, periodMs: 3_600_000 });
  // A dealer that declares nothing leaves the limit as it was.
  limits.declared("Img.resize", undefined);
  expect(limits.limits("Img.resize")).toBe(true);
  expect(limits.take("Img.resize")).toBe(0);
  expect(limits.take("Img.resize")).toBe(3_600_000);
  limits.clear();
});

test("a method out of tokens is served again when the next one is due", async () => {
  const served: string[] = [];
  const limits = new MethodRateLimits({ "Svc.tick": "20/s" });
  limits.onAvailable = (method) => served.push(method);
  expect(limits.take("Svc.tick")).toBe(0);
  expect(limits.take("Svc.tick")).toBe(0);
  const waitMs = limits.take("Svc.tick");
  expect(waitMs).toBeGreaterThan(0);
  expect(waitMs).toBeLessThanOrEqual(50);
  expect(limits.available("Svc.tick")).toBe(false);
  await waitFor(() => served.length === 1, { timeoutMs: 5_000, message: "the method to be served when its token is due" });
  expect(served).toEqual(["Svc.tick"]);
  expect(limits.available("Svc.tick")).toBe(true);
  limits.clear();
});

test("stats: each limited method's rate per second, whether it waits now, and one hold per wait, not per check", () => {
  const time = clock();
  const limits = new MethodRateLimits({ "Mail.send": "2/s" }, time.now);
  limits.declared("Img.resize", "6/m");
  const byMethod = () => Object.fromEntries(limits.stats().map((stat) => [stat.method, stat]));
  expect(byMethod()).toEqual({
    "Mail.send": { method: "Mail.send", perSecond: 2, waiting: false, holds: 0 },
    "Img.resize": { method: "Img.resize", perSecond: 0.1, waiting: false, holds: 0 },
  });
  expect(limits.take("Img.resize")).toBe(0);
  expect(limits.take("Img.resize")).toBeGreaterThan(0);
  // The dispatcher checks again on every free slot while the call waits: still the one hold.
  expect(limits.available("Img.resize")).toBe(false);
  expect(limits.available("Img.resize")).toBe(false);
  expect(byMethod()["Img.resize"]).toMatchObject({ waiting: true, holds: 1 });
  expect(byMethod()["Mail.send"]).toMatchObject({ waiting: false, holds: 0 });
  limits.clear();
  expect(byMethod()["Img.resize"]).toMatchObject({ waiting: false, holds: 1 });
});
