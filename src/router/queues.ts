/**
 * Owns the per-method waiting lines: one bounded FIFO per method, each keeping the count of the
 * calls that really wait in it. Calls that stop waiting (cancelled, timed out, client gone) are
 * forgotten at once in the count and dropped lazily from the line, so ending a call is O(1).
 */
import { Fifo } from "../util/fifo.ts";
import { meetsRequirement } from "./requirements.ts";

/** What a queue needs of a call: whether it still waits, its arrival number, its requirement. */
export interface Waiting {
  readonly state: string;
  /** Arrival order across all methods: FIFO across methods compares these. */
  readonly seq: number;
  /** Tags its dealer must have (`{ gpu: "h200" }`); undefined: any dealer. */
  readonly require?: Readonly<Record<string, string>> | undefined;
}

/** One method's line. Its `count` is the number of entries still in state "queued". */
export class MethodQueue<T extends Waiting> {
  private line = new Fifo<T>();
  private waiting = 0;
  private waitingRestricted = 0;

  constructor(
    readonly method: string,
    /** Most calls that may wait; a full queue refuses new ones (QUEUE_FULL). */
    readonly limit: number,
  ) {}

  /** Calls waiting now. */
  get count(): number {
    return this.waiting;
  }

  /**
   * Calls waiting now that require tags. While it is 0 the head of the line is the call any dealer
   * takes next; otherwise dispatch looks for the first call a dealer may run.
   */
  get restricted(): number {
    return this.waitingRestricted;
  }

  get isFull(): boolean {
    return this.waiting >= this.limit;
  }

  /** Adds a call at the back, or at the front for one that arrived before everything waiting now. */
  push(call: T, atFront = false): void {
    if (atFront) {
      const rest = this.line.drain();
      this.line.push(call);
      for (const other of rest) this.line.push(other);
    } else {
      this.line.push(call);
    }
    this.waiting++;
    if (call.require !== undefined) this.waitingRestricted++;
  }

  /** The oldest call still waiting, left in place. */
  peek(): T | undefined {
    const line = this.line;
    for (let head = line.peek(); head !== undefined; head = line.peek()) {
      if (head.state === "queued") return head;
      line.shift();
    }
    return undefined;
  }

  /** Removes and returns the oldest call still waiting. */
  take(): T | undefined {
    const head = this.peek();
    if (head === undefined) return undefined;
    this.line.shift();
    this.waiting--;
    if (head.require !== undefined) this.waitingRestricted--;
    return head;
  }

  /** The oldest waiting call that a dealer with `tags` may run, left in place. */
  firstMeeting(tags: Readonly<Record<string, string>>): T | undefined {
    for (const call of this.line) if (call.state === "queued" && meetsRequirement(tags, call.require)) return call;
    return undefined;
  }

  /**
   * Removes `call`, which waits in this line, wherever it is. Its entry goes at once (not lazily):
   * a call taken from the middle may come back (re-queued) while its old entry would still be here.
   */
  takeCall(call: T): void {
    if (this.peek() === call) {
      this.take();
      return;
    }
    if (!this.line.remove((other) => other === call)) return;
    this.waiting--;
    if (call.require !== undefined) this.waitingRestricted--;
  }

  /** A waiting call stops waiting (it is about to leave state "queued"); its entry goes lazily. */
  forget(call: T): void {
    this.waiting--;
    if (call.require !== undefined) this.waitingRestricted--;
  }

  /** Drops the entries of calls that no longer wait, so a line nobody serves holds no garbage. */
  compact(): void {
    const kept = new Fifo<T>();
    for (const call of this.line.drain()) if (call.state === "queued") kept.push(call);
    this.line = kept;
  }

  /** Removes every entry; returns the calls that were still waiting, oldest first. */
  drain(): T[] {
    const waiting = this.line.drain().filter((call) => call.state === "queued");
    this.waiting = 0;
    this.waitingRestricted = 0;
    return waiting;
  }

  /** The calls waiting now, oldest first (a copy: ending them while iterating is safe). */
  snapshot(): T[] {
    const waiting: T[] = [];
    for (const call of this.line) if (call.state === "queued") waiting.push(call);
    return waiting;
  }
}

/** Every method's queue, created at its first waiting call with the method's limit. */
export class Queues<T extends Waiting> {
  private readonly byMethod = new Map<string, MethodQueue<T>>();

  constructor(
    private readonly maxQueueLength: number,
    private readonly queueLimits: Readonly<Record<string, number>>,
  ) {}

  /** The queue of `method`, if a call ever waited for it. */
  get(method: string): MethodQueue<T> | undefined {
    return this.byMethod.get(method);
  }

  /** The queue of `method`, created when missing. */
  of(method: string): MethodQueue<T> {
    let queue = this.byMethod.get(method);
    if (queue === undefined) this.byMethod.set(method, (queue = new MethodQueue<T>(method, this.limitOf(method))));
    return queue;
  }

  limitOf(method: string): number {
    return this.queueLimits[method] ?? this.maxQueueLength;
  }

  /** Calls waiting for `method` now. */
  count(method: string): number {
    return this.byMethod.get(method)?.count ?? 0;
  }

  /** Calls waiting across all methods. */
  get total(): number {
    let total = 0;
    for (const queue of this.byMethod.values()) total += queue.count;
    return total;
  }

  /** Methods with at least one call waiting. */
  *methodsWithWaiting(): IterableIterator<string> {
    for (const [method, queue] of this.byMethod) if (queue.count > 0) yield method;
  }

  /** Every waiting call, queue by queue, oldest first (a copy: ending them while iterating is safe). */
  waitingCalls(): T[] {
    const waiting: T[] = [];
    for (const queue of this.byMethod.values()) for (const call of queue.snapshot()) waiting.push(call);
    return waiting;
  }

  /** Empties every queue; returns the calls that were waiting. */
  drainAll(): T[] {
    const waiting: T[] = [];
    for (const queue of this.byMethod.values()) for (const call of queue.drain()) waiting.push(call);
    return waiting;
  }
}
