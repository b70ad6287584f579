/**
 * Scenario 5 with binary chunks (issue 12): a client reads a 200 MiB stream of 64 KiB binary
 * values (each its own frame) slowly. A stream of binary chunks is flow-controlled as a JSON
 * one: router and dealer memory stay flat (the 64-chunk window, 4 MiB, is all that is in
 * transit), and every chunk arrives whole, in order, once.
 *
 *   ./node_modules/.bin/bun test test/chaos/slow-binary-consumer.test.ts
 */
import { expect, test } from "bun:test";
import { MiB } from "./lib/ledger.ts";
import { runSlowConsumer } from "./scenarios/slow-consumer.ts";

/** As in slow-consumer.test.ts: the window plus what the allocators and collectors keep around. */
const GROWTH_LIMIT_BYTES = 40 * MiB;

test("a client reading a 200 MiB stream of binary chunks slowly: every chunk arrives whole and in order, router and dealer memory stay flat", async () => {
  const figures = await runSlowConsumer({ totalBytes: 200 * MiB, readDelayMs: 1, binary: true });
  console.log(`[chaos] scenario 5 slow consumer, binary chunks: ${JSON.stringify(figures)}`);

  expect(figures.error).toBeUndefined();
  expect(figures.received).toBe(figures.chunks);
  expect(figures.receivedBytes).toBe(figures.chunks * 64 * 1024);
  expect(figures.outOfOrder).toBe(0);
  expect(figures.produced).toBe(figures.chunks);
  expect(figures.duplicateReplies).toBe(0);
  expect(figures.rssBytes.router.growth).toBeLessThan(GROWTH_LIMIT_BYTES);
  expect(figures.rssBytes.dealer.growth).toBeLessThan(GROWTH_LIMIT_BYTES);
}, 120_000);
