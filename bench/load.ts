/** The call-load drivers the call benchmarks share: N calls from K callers, and the median of runs. */

export interface Figures {
  callsPerSecond: number;
  /** Latency percentiles, µs. */
  p50: number;
  p99: number;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** `count` calls from `callers` callers, each starting its next call when the previous answers (1: sequential). */
export async function timedCalls(count: number, callers: number, call: () => Promise<unknown>): Promise<Figures> {
  const latencies: number[] = [];
  let issued = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (issued < count) {
        issued++;
        const t = performance.now();
        await call();
        latencies.push((performance.now() - t) * 1000);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { callsPerSecond: count / elapsed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

/** One warm-up run, then the median of `runs` runs, figure by figure. */
export async function medianOf(runs: number, run: () => Promise<Figures>): Promise<Figures> {
  await run();
  const results: Figures[] = [];
  for (let i = 0; i < runs; i++) results.push(await run());
  const median = (pick: (f: Figures) => number) => results.map(pick).sort((a, b) => a - b)[results.length >> 1];
  return { callsPerSecond: median((f) => f.callsPerSecond), p50: median((f) => f.p50), p99: median((f) => f.p99) };
}
