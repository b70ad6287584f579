/**
 * Scenario 5, slow consumer: a client reads a 200 MiB stream (64 KiB chunks) slowly. Router and
 * dealer memory stay flat — the stream window (64 chunks of credit, 4 MiB) is all that is ever in
 * transit — and every chunk arrives in order, once. (`npm run soak` streams 1 GiB.)
 *
 *   ./node_modules/.bin/bun test test/chaos/slow-consumer.test.ts
 */
import { expect, test } from "bun:test";
import { MiB } from "./lib/ledger.ts";
import { runSlowConsumer } from "./scenarios/slow-consumer.ts";

/**
 * Allowed RSS growth after warm-up: the window plus what the runtimes' allocators and garbage
 * collectors keep around (measured: under 25 MiB). Without flow control the router would queue
 * most of the 200 MiB for the slow client (its send high-water mark is 10,000 messages).
 */
const GROWTH_LIMIT_BYTES = 40 * MiB;

test("a client reading a 200 MiB stream slowly: every chunk arrives in order, router and dealer memory stay flat", async () => {
  const figures = await runSlowConsumer({ totalBytes: 200 * MiB, readDelayMs: 1 });
  console.log(`[chaos] scenario 5 slow consumer: ${JSON.stringify(figures)}`);

  expect(figures.error).toBeUndefined();
  expect(figures.received).toBe(figures.chunks);
  expect(figures.receivedBytes).toBe(figures.chunks * 64 * 1024);
  expect(figures.outOfOrder).toBe(0);
  expect(figures.produced).toBe(figures.chunks);
  expect(figures.duplicateReplies).toBe(0);
  expect(figures.rssBytes.router.growth).toBeLessThan(GROWTH_LIMIT_BYTES);
  expect(figures.rssBytes.dealer.growth).toBeLessThan(GROWTH_LIMIT_BYTES);
}, 120_000);
