/**
 * Owns the dashboard's live feed: once a second it takes one snapshot of the router (dealers,
 * queues, calls in the last second, task counts), keeps the last ten minutes of the numbers for
 * charts (the queue totals and the busiest few methods' queues), and pushes the snapshot to every
 * Server-Sent Events subscriber. One batch a second, whatever happens in between (per-event pushes
 * are what jammed Flower), and a comment line every 15 s so that a proxy that buffers or drops
 * idle connections keeps the stream open. A subscriber that stops reading is dropped, not
 * buffered for without end.
 */
import type { ClustersInfo, QueuesInfo, RouterInfo, ScheduleInfo } from "../protocol/index.ts";
import type { Scheduler } from "../tasks/schedules/scheduler.ts";
import { scheduleInfo } from "../tasks/schedules/schedule-view.ts";
import type { RouterMetrics } from "../observability/router-metrics.ts";
import type { MetricsSource } from "../observability/router-metrics.ts";

/** One second of the router, as the charts plot it. */
export interface LivePoint {
  /** Epoch ms. */
  t: number;
  /** Calls that ended in that second. */
  calls: number;
  errors: number;
  /** Latency quantiles of those calls, in ms (null: none ended). */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Calls waiting at the end of the second, and the oldest one's age in seconds. */
  queued: number;
  oldestAgeSeconds: number;
  /**
   * The methods with the most calls waiting then, deepest first (at most MAX_QUEUES_PER_POINT,
   * so a point's size does not grow with the number of methods). A method missing had none
   * waiting, unless `queuesLeftOut` says some were left out.
   */
  queues: MethodQueuePoint[];
  /** Methods with calls waiting that `queues` leaves out (past the cap). */
  queuesLeftOut: number;
}

/** One method's queue at one point. */
export interface MethodQueuePoint {
  method: string;
  /** Calls waiting. */
  depth: number;
  /** The oldest waiting call's age in seconds. */
  oldestAgeSeconds: number;
}

export interface LiveSnapshot {
  point: LivePoint;
  router: RouterInfo;
  clusters: ClustersInfo;
  queues: QueuesInfo;
  /** Per method: oldest waiting call's age in seconds. */
  queueAges: Record<string, number>;
  tasks: Record<string, number> | null;
  /** The schedules (the first MAX_SCHEDULES by name), null without the task layer. */
  schedules: ScheduleInfo[] | null;
}

export interface LiveSource extends MetricsSource {
  info(topic: string): unknown;
  readonly schedules?: Pick<Scheduler, "list" | "nextDueAt"> | undefined;
}

/** Schedules per snapshot: the panel shows a list, not thousands; GET /api/schedules has all. */
const MAX_SCHEDULES = 200;

/** Methods per point: enough for the queues worth watching, bounded however many methods exist. */
export const MAX_QUEUES_PER_POINT = 8;

const HISTORY_POINTS = 600;
/**
 * Events a subscriber may leave unread before it is dropped: half a minute of snapshots. A tab
 * that stopped reading (a stalled connection the server has not seen close) would otherwise
 * hold every snapshot from then on; a dropped EventSource reconnects and gets the history.
 */
const MAX_UNREAD_EVENTS = 30;
const encoder = new TextEncoder();
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");

export interface LiveFeedOptions {
  /** How often a snapshot is taken and pushed, in ms. Default 1000. */
  intervalMs?: number;
  /** How often a comment line is sent to keep idle proxies from closing the stream, in ms. Default 15000. */
  heartbeatMs?: number;
}

/**
 * The live feed of one router: `start` begins the ticks, `subscribe` gives an SSE body for
 * GET /api/events, `points` the history for GET /api/history, `stop` ends every stream.
 *
 * @example
 * const live = new LiveFeed(router, metrics, { intervalMs: 1000, heartbeatMs: 15_000 });
 * live.start();
 * return new Response(live.subscribe(), { headers: { "content-type": "text/event-stream" } });
 */
export class LiveFeed {
  private readonly history: LivePoint[] = [];
  private readonly subscribers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private last: LiveSnapshot | undefined;
  private readonly intervalMs: number;
  private readonly heartbeatMs: number;

  constructor(
    private readonly source: LiveSource,
    private readonly metrics: RouterMetrics,
    options: LiveFeedOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
  }

  start(): void {
    this.metrics.takeInterval();
    this.tickTimer = setInterval(() => this.tick(), this.intervalMs);
    this.heartbeatTimer = setInterval(() => this.broadcast(KEEP_ALIVE), this.heartbeatMs);
    this.tickTimer.unref?.();
    this.heartbeatTimer.unref?.();
  }

  stop(): void {
    clearInterval(this.tickTimer);
    clearInterval(this.heartbeatTimer);
    for (const controller of this.subscribers) {
      try {
        controller.close();
      } catch {}
    }
    this.subscribers.clear();
  }

  /** The last ten minutes of points, oldest first. */
  points(): LivePoint[] {
    return [...this.history];
  }

  /** The latest snapshot, built now if none was taken yet. */
  snapshot(): LiveSnapshot {
    return this.last ?? this.build(this.emptyPoint());
  }

  /** A new SSE stream: the history and current snapshot first, then one event per tick. */
  subscribe(): ReadableStream<Uint8Array> {
    let mine: ReadableStreamDefaultController<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        mine = controller;
        this.subscribers.add(controller);
        // retry: how long a browser waits before reconnecting after the stream broke.
        controller.enqueue(encoder.encode(`retry: 2000\nevent: history\ndata: ${JSON.stringify(this.points())}\n\n`));
        controller.enqueue(encoder.encode(`event: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n`));
      },
      cancel: () => {
        if (mine) this.subscribers.delete(mine);
      },
    });
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private emptyPoint(): LivePoint {
    return { t: Date.now(), calls: 0, errors: 0, p50Ms: null, p99Ms: null, queued: 0, oldestAgeSeconds: 0, queues: [], queuesLeftOut: 0 };
  }

  private build(point: LivePoint): LiveSnapshot {
    const queueAges: Record<string, number> = {};
    const now = performance.now();
    for (const [method, waiting] of this.source.waitingCalls()) queueAges[method] = (now - waiting.oldestReceivedAt) / 1000;
    return {
      point,
      router: this.source.info("router") as RouterInfo,
      clusters: this.source.info("clusters") as ClustersInfo,
      queues: this.source.info("queues") as QueuesInfo,
      queueAges,
      tasks: this.source.tasks ? this.source.tasks.stats().counts : null,
      schedules: this.schedules(),
    };
  }

  private schedules(): ScheduleInfo[] | null {
    const scheduler = this.source.schedules;
    if (!scheduler) return null;
    return scheduler
      .list()
      .slice(0, MAX_SCHEDULES)
      .map((record) => scheduleInfo(record, scheduler.nextDueAt(record)));
  }

  private tick(): void {
    const interval = this.metrics.takeInterval();
    let queued = 0;
    let oldest = 0;
    const now = performance.now();
    const queues: MethodQueuePoint[] = [];
    for (const [method, waiting] of this.source.waitingCalls()) {
      const ageSeconds = (now - waiting.oldestReceivedAt) / 1000;
      queued += waiting.count;
      oldest = Math.max(oldest, ageSeconds);
      if (waiting.count > 0) queues.push({ method, depth: waiting.count, oldestAgeSeconds: ageSeconds });
    }
    // Deepest first; equal depths by age, then name, so the choice is stable from point to point.
    queues.sort((a, b) => b.depth - a.depth || b.oldestAgeSeconds - a.oldestAgeSeconds || (a.method < b.method ? -1 : 1));
    const queuesLeftOut = Math.max(0, queues.length - MAX_QUEUES_PER_POINT);
    queues.length -= queuesLeftOut;
    const point: LivePoint = {
      t: Date.now(),
      calls: interval.calls,
      errors: interval.errors,
      p50Ms: interval.p50Seconds === undefined ? null : interval.p50Seconds * 1000,
      p99Ms: interval.p99Seconds === undefined ? null : interval.p99Seconds * 1000,
      queued,
      oldestAgeSeconds: oldest,
      queues,
      queuesLeftOut,
    };
    this.history.push(point);
    if (this.history.length > HISTORY_POINTS) this.history.shift();
    // Nobody watches: keep the history, skip building and encoding the snapshot.
    if (this.subscribers.size === 0) {
      this.last = undefined;
      return;
    }
    const snapshot = this.build(point);
    this.last = snapshot;
    this.broadcast(encoder.encode(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`));
  }

  private broadcast(bytes: Uint8Array): void {
    for (const controller of this.subscribers) {
      // desiredSize counts chunks against a high-water mark of 1: 1 - desiredSize are unread.
      if ((controller.desiredSize ?? 0) < 1 - MAX_UNREAD_EVENTS) {
        this.subscribers.delete(controller);
        try {
          controller.close();
        } catch {}
        continue;
      }
      try {
        controller.enqueue(bytes);
      } catch {
        // Closed or errored under us (the stream was torn down without cancel): forget it.
        this.subscribers.delete(controller);
      }
    }
  }
}
