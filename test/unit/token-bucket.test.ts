/**
 * The token bucket and the rate strings, on a fake clock: what a limit lets through over time.
 *
 *   ./node_modules/.bin/bun test test/unit/token-bucket.test.ts
 */
import { describe, expect, test } from "bun:test";
import { burstOf, parseRate } from "../../src/protocol/rates.ts";
import { TokenBucket } from "../../src/util/token-bucket.ts";

function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("parseRate", () => {
  test("reads N/s, N/m and N/h", () => {
    expect(parseRate("10/m")).toEqual({ count: 10, periodMs: 60_000 });
    expect(parseRate("100/s")).toEqual({ count: 100, periodMs: 1_000 });
    expect(parseRate("5/h")).toEqual({ count: 5, periodMs: 3_600_000 });
  });

  test("refuses anything else", () => {
    for (const bad of ["", "10", "0/s", "-1/s", "1.5/s", "10/d", "10 /m", "10/M", "1/s ", "abc", "1000000000/s"]) {
      expect(parseRate(bad)).toBeUndefined();
    }
  });

  test("the burst is what 100 ms of the rate adds, at least one", () => {
    expect(burstOf({ count: 10, periodMs: 60_000 })).toBe(1);
    expect(burstOf({ count: 100, periodMs: 1_000 })).toBe(10);
    expect(burstOf({ count: 5, periodMs: 1_000 })).toBe(1);
  });
});

describe("TokenBucket", () => {
  test("a new bucket lets its burst through at once, then one per interval", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ count: 10, periodMs: 1_000, capacity: 2, now: clock.now });
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    expect(bucket.msUntilNext()).toBe(100);
    clock.advance(99);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(1);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
  });

  test("over any window, takes stay within capacity + rate x window", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ count: 10, periodMs: 60_000, capacity: 1, now: clock.now });
    const takenAt: number[] = [];
    // Someone asks every 250 ms for 10 minutes.
    for (let t = 0; t < 600_000; t += 250) {
      if (bucket.tryTake()) takenAt.push(clock.now());
      clock.advance(250);
    }
    expect(takenAt.length).toBeGreaterThanOrEqual(100);
    expect(takenAt.length).toBeLessThanOrEqual(101);
    for (let i = 0; i < takenAt.length; i++) {
      const inMinute = takenAt.filter((at) => at >= takenAt[i] && at < takenAt[i] + 60_000).length;
      expect(inMinute).toBeLessThanOrEqual(11);
    }
  });

  test("an idle bucket refills to its capacity, no further", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ count: 100, periodMs: 1_000, capacity: 10, now: clock.now });
    for (let i = 0; i < 10; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.isFull).toBe(false);
    clock.advance(60_000);
    expect(bucket.isFull).toBe(true);
    let taken = 0;
    while (bucket.tryTake()) taken++;
    expect(taken).toBe(10);
  });

  test("a clock that steps back neither adds nor removes tokens", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ count: 1, periodMs: 1_000, now: clock.now });
    expect(bucket.tryTake()).toBe(true);
    clock.advance(-5_000);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(5_000);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(1_000);
    expect(bucket.tryTake()).toBe(true);
  });

  test("a new rate applies from now; tokens held are capped by the new capacity", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ count: 100, periodMs: 1_000, capacity: 10, now: clock.now });
    bucket.setRate({ count: 1, periodMs: 1_000, capacity: 1 });
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    expect(bucket.msUntilNext()).toBe(1_000);
  });

  test("fractional refills reach a whole token at the time msUntilNext says", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ count: 3, periodMs: 1_000, now: clock.now });
    let taken = 0;
    for (let i = 0; i < 300; i++) {
      if (!bucket.tryTake()) {
        clock.advance(bucket.msUntilNext());
        expect(bucket.tryTake()).toBe(true);
      }
      taken++;
    }
    expect(taken).toBe(300);
    // 300 takes at 3/s after the first: about 100 s of fake time, never less.
    expect(clock.now() - 1_000_000).toBeGreaterThanOrEqual(99_600);
  });
});
