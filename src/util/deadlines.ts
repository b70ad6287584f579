/**
 * Many timeouts on one timer. Every call in flight has a deadline in the client, the router and
 * the dealer; a native timer per call showed up as the largest single cost in profiles of the
 * call path. Deadlines sit in a binary min-heap and one timer is armed for the earliest.
 * Cancelling is O(1) and lazy; cancelled entries are swept out once they dominate the heap.
 */
export interface Deadline {
  readonly at: number;
  /** Stops the callback from running. Safe to call more than once, or after it ran. */
  cancel(): void;
}

class Entry implements Deadline {
  cancelled = false;
  constructor(
    readonly at: number,
    public callback: (() => void) | undefined,
    private readonly owner: Deadlines,
  ) {}
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.callback = undefined;
    this.owner.noteCancelled();
  }
}

export class Deadlines {
  private heap: Entry[] = [];
  private cancelledCount = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  /** Runs `callback` once, `delayMs` from now, unless cancelled first. */
  add(delayMs: number, callback: () => void): Deadline {
    const entry = new Entry(Date.now() + Math.max(0, delayMs), callback, this);
    this.push(entry);
    if (entry.at < this.armedFor) this.arm();
    return entry;
  }

  /** Live deadlines (not yet run or cancelled). */
  get size(): number {
    return this.heap.length - this.cancelledCount;
  }

  /** Cancels everything and releases the timer. */
  clear(): void {
    for (const entry of this.heap) {
      entry.cancelled = true;
      entry.callback = undefined;
    }
    this.heap = [];
    this.cancelledCount = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  /** @internal */
  noteCancelled(): void {
    this.cancelledCount++;
    // Keep memory proportional to live deadlines: rebuild once most entries are dead.
    if (this.cancelledCount > 1024 && this.cancelledCount * 2 > this.heap.length) {
      const live = this.heap.filter((entry) => !entry.cancelled);
      this.heap = [];
      this.cancelledCount = 0;
      for (const entry of live) this.push(entry);
    }
  }

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0].cancelled) {
      this.pop();
      this.cancelledCount--;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    if (this.heap.length === 0) return;
    const at = this.heap[0].at;
    this.armedFor = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now()));
    (this.timer as { unref?: () => void }).unref?.();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = Date.now();
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const entry = this.pop();
      if (entry.cancelled) {
        this.cancelledCount--;
        continue;
      }
      entry.cancelled = true;
      const callback = entry.callback;
      entry.callback = undefined;
      callback?.();
    }
    this.arm();
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].at <= entry.at) break;
      heap[index] = heap[parent];
      index = parent;
    }
    heap[index] = entry;
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right].at < heap[left].at ? right : left;
        if (heap[child].at >= last.at) break;
        heap[index] = heap[child];
        index = child;
      }
      heap[index] = last;
    }
    return top;
  }
}
