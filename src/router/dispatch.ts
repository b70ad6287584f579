/**
 * Dispatch strategies: which free dealer takes the next request. The router core is the same in
 * both modes (Hono picks a router implementation the same way); only this choice and the
 * default number of slots per dealer differ.
 */
export interface DispatchCandidate {
  /** Requests in flight on this dealer. */
  load: number;
  maxConcurrent: number;
  /** Monotonic sequence number of this dealer's last dispatch (0 = never). */
  lastDispatch: number;
}

export interface DispatchStrategy {
  readonly mode: "fifo" | "load_balance";
  /** Slots a dealer gets when it does not say (the seed: FIFO runs one at a time). */
  readonly defaultMaxConcurrent: number;
  /** Picks among dealers that all have a free slot. */
  pick<T extends DispatchCandidate>(free: readonly T[]): T;
}

/** FIFO: one request per dealer by default; the dealer idle longest goes first, so work rotates. */
export const fifoStrategy: DispatchStrategy = {
  mode: "fifo",
  defaultMaxConcurrent: 1,
  pick(free) {
    let best = free[0];
    for (const candidate of free) if (candidate.lastDispatch < best.lastDispatch) best = candidate;
    return best;
  },
};

/** Load balance: the least-loaded dealer (relative to its slots) goes first; ties rotate. */
export const loadBalanceStrategy: DispatchStrategy = {
  mode: "load_balance",
  defaultMaxConcurrent: 100,
  pick(free) {
    let best = free[0];
    let bestRatio = best.load / best.maxConcurrent;
    for (const candidate of free) {
      const ratio = candidate.load / candidate.maxConcurrent;
      if (ratio < bestRatio || (ratio === bestRatio && candidate.lastDispatch < best.lastDispatch)) {
        best = candidate;
        bestRatio = ratio;
      }
    }
    return best;
  },
};
