/**
 * Owns dispatch: the strategies that pick which free dealer takes the next call (the router core
 * is the same in both modes, as Hono picks a router implementation; only this choice and the
 * default number of slots per dealer differ), and the Dispatcher that moves calls from their
 * method queues to free slots: a new call straight to a dealer when nobody waits before it, the
 * oldest waiting call across a dealer's methods when one of its slots frees up.
 */
import { QueueFullError } from "../protocol/index.ts";
import type { Call, CallTable } from "./calls.ts";
import type { RouterEvents } from "./events.ts";
import type { MethodQueue, Queues } from "./queues.ts";
import type { DealerRegistry, Redispatch, RegisteredDealer } from "./registry.ts";
import { meetsRequirement } from "./requirements.ts";

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

/** The strategy of a router mode. */
export function strategyFor(mode: "fifo" | "load_balance"): DispatchStrategy {
  return mode === "fifo" ? fifoStrategy : loadBalanceStrategy;
}

export class Dispatcher implements Redispatch {
  /** Set once, after the registry is built (the registry re-dispatches through this object). */
  registry!: Pick<DealerRegistry, "offering">;

  constructor(
    readonly strategy: DispatchStrategy,
    private readonly queues: Queues<Call>,
    private readonly calls: CallTable,
    private readonly events?: RouterEvents,
  ) {}

  /**
   * A checked new call: to a free dealer at once when none of its method waits, else into its
   * queue, or ended with QUEUE_FULL when the queue is at its limit.
   */
  admit(call: Call): void {
    const method = call.method;
    const free = this.freeDealers(method, call.require);
    const waiting = this.queues.count(method);
    if (free.length > 0 && waiting === 0) {
      this.calls.dispatched(call, this.strategy.pick(free));
      return;
    }
    const limit = this.queues.limitOf(method);
    if (waiting >= limit) {
      this.calls.finished(
        call,
        new QueueFullError(`the queue of ${method} is full (${limit} waiting)`, { data: { method, queueLength: limit } }),
      );
      return;
    }
    this.calls.queued(call, false);
    this.serveMethod(method);
  }

  /** A call whose dealer was lost goes back to the head of its line: it arrived before everything waiting now. */
  requeue(call: Call): void {
    this.calls.queued(call, true);
    this.serveMethod(call.method);
  }

  /** Serves a method's queue while some dealer offering it has a free slot. */
  serveMethod(method: string): void {
    const queue = this.queues.get(method);
    if (!queue) return;
    if (queue.restricted > 0) return this.serveRestricted(method, queue);
    while (queue.peek() !== undefined) {
      const free = this.freeDealers(method, undefined);
      if (free.length === 0) return;
      this.calls.dispatched(queue.take()!, this.strategy.pick(free));
    }
  }

  /**
   * A line where some calls require tags: each waiting call, oldest first, goes to a free dealer
   * that meets its requirement; one that no free dealer meets keeps its place and does not hold
   * up the calls behind it that others can run.
   */
  private serveRestricted(method: string, queue: MethodQueue<Call>): void {
    for (const call of queue.snapshot()) {
      if (this.freeDealers(method, undefined).length === 0) return;
      const free = this.freeDealers(method, call.require);
      if (free.length === 0) continue;
      queue.takeCall(call);
      this.calls.dispatched(call, this.strategy.pick(free));
    }
  }

  /** A dealer has a free slot: give it the oldest call it can run, across its methods. */
  serveDealer(dealer: RegisteredDealer): void {
    while (dealer.hasFreeSlot) {
      let oldest: Call | undefined;
      let oldestQueue: MethodQueue<Call> | undefined;
      for (const method of dealer.methods.keys()) {
        const queue = this.queues.get(method);
        if (queue === undefined) continue;
        // Without calls that require tags the head is the one; otherwise the first this dealer meets.
        const head = queue.restricted === 0 ? queue.peek() : queue.firstMeeting(dealer.tags);
        if (head && (!oldest || head.seq < oldest.seq)) {
          oldest = head;
          oldestQueue = queue;
        }
      }
      if (!oldest || !oldestQueue) {
        // Nothing of the router's own waits for it: tell whoever has other work (tasks).
        this.events?.emit("dealer.free", dealer);
        return;
      }
      if (oldestQueue.restricted === 0) oldestQueue.take();
      else oldestQueue.takeCall(oldest);
      this.calls.dispatched(oldest, dealer);
    }
  }

  /** Free dealers offering `method` that meet `require` (all free ones, without a requirement). */
  private freeDealers(method: string, require: Call["require"]): RegisteredDealer[] {
    const free: RegisteredDealer[] = [];
    const offering = this.registry.offering(method);
    if (offering === undefined) return free;
    if (require === undefined) {
      for (const dealer of offering) if (dealer.hasFreeSlot) free.push(dealer);
    } else {
      for (const dealer of offering) if (dealer.hasFreeSlot && meetsRequirement(dealer.tags, require)) free.push(dealer);
    }
    return free;
  }
}
