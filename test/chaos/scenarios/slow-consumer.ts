/**
 * Scenario 5, slow consumer: a client reads a large stream more slowly than the dealer can
 * produce it. Credit-based flow control must hold the producer back, so router and dealer memory
 * stay flat (bounded by the stream window and the high-water marks), and every chunk arrives, in
 * order, once.
 */
import { MemorySampler, MiB, ReplyTap } from "../lib/ledger.ts";
import { Stage } from "../lib/stage.ts";

export interface SlowConsumerOptions {
  totalBytes: number;
  /** Default 64 KiB. */
  chunkBytes?: number;
  /** The consumer's pace: it takes this long over each chunk (the simulated slow work). Default 1. */
  readDelayMs?: number;
  /** Memory before this share of the stream has been read is warm-up. Default 0.1. */
  warmupFraction?: number;
  /** Stream the data as binary values (FirehoseService.binaryBlob: one frame per chunk) instead of strings. Default false. */
  binary?: boolean;
  progress?: (line: string) => void;
}

export interface SlowConsumerFigures {
  totalBytes: number;
  chunks: number;
  received: number;
  receivedBytes: number;
  outOfOrder: number;
  /** The dealer's own count of chunks it produced. */
  produced: number;
  duplicateReplies: number;
  durationMs: number;
  consumerMBps: number;
  /** RSS when warm-up ended and the peak after it, per process. */
  rssBytes: Record<"router" | "dealer" | "client", { atWarmup: number; peak: number; growth: number }>;
  error: string | undefined;
}

export async function runSlowConsumer(options: SlowConsumerOptions): Promise<SlowConsumerFigures> {
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const readDelayMs = options.readDelayMs ?? 1;
  const chunks = Math.ceil(options.totalBytes / chunkBytes);
  const warmupChunks = Math.floor(chunks * (options.warmupFraction ?? 0.1));
  const progress = options.progress ?? (() => {});
  const stage = new Stage();
  try {
    const router = await stage.router();
    const dealer = await stage.dealer(router.address, "FirehoseService");
    const client = await stage.client(router.address, { timeout: 30 });
    const tap = ReplyTap.attach(client);
    const memory = new MemorySampler(
      { router: () => router.rss(), dealer: () => dealer.rss(), client: () => process.memoryUsage().rss },
      250,
    ).start();

    let received = 0;
    let receivedBytes = 0;
    let outOfOrder = 0;
    let warmupEndedMs = 0;
    let error: string | undefined;
    const started = performance.now();
    try {
      const method = options.binary ? "FirehoseService.binaryBlob" : "FirehoseService.blob";
      for await (const chunk of client.stream<{ i: number; data: string | Uint8Array }>(method, options.totalBytes, chunkBytes)) {
        const whole =
          typeof chunk.data === "string" || (chunk.data instanceof Uint8Array && chunk.data[chunkBytes - 1] === (chunk.i & 0xff));
        if (chunk.i !== received || chunk.data.length !== chunkBytes || !whole) outOfOrder++;
        received++;
        receivedBytes += chunk.data.length;
        if (received === warmupChunks) warmupEndedMs = memory.samples.at(-1)?.atMs ?? 0;
        if (received % 2048 === 0)
          progress(
            `${Math.round(receivedBytes / MiB)} MiB read; router ${Math.round(router.rss() / MiB)} MiB, dealer ${Math.round(dealer.rss() / MiB)} MiB`,
          );
        // The slow consumer: it spends this long on each chunk.
        if (readDelayMs > 0) await Bun.sleep(readDelayMs);
      }
    } catch (caught) {
      error = `${(caught as Error).name}: ${(caught as Error).message}`;
    }
    const durationMs = performance.now() - started;
    memory.stop();
    const streamed = await dealer
      .event((event) => event.event === "streamed", 10_000, "the dealer to report the end of its stream")
      .catch(() => undefined);

    const rss = (name: "router" | "dealer" | "client") => {
      const atWarmup = memory.series(name, warmupEndedMs)[0] ?? 0;
      const peak = memory.peak(name, warmupEndedMs);
      return { atWarmup, peak, growth: peak - atWarmup };
    };
    return {
      totalBytes: options.totalBytes,
      chunks,
      received,
      receivedBytes,
      outOfOrder,
      produced: (streamed?.chunks as number | undefined) ?? -1,
      duplicateReplies: tap.duplicates.length,
      durationMs,
      consumerMBps: receivedBytes / MiB / (durationMs / 1000),
      rssBytes: { router: rss("router"), dealer: rss("dealer"), client: rss("client") },
      error,
    };
  } finally {
    await stage.dispose();
  }
}
