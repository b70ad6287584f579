/**
 * Owns the dashboard's live feed: once a second it takes one snapshot of the router (dealers,
 * queues, calls in the last second, task counts), keeps the last ten minutes of the numbers for
 * charts, and pushes the snapshot to every Server-Sent Events subscriber. One batch a second,
 * whatever happens in between (per-event pushes are what jammed Flower), and a comment line
 * every 15 s so that a proxy that buffers or drops idle connections keeps the stream open.
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

const HISTORY_POINTS = 600;
const HEARTBEAT_MS = 15_000;
const encoder = new TextEncoder();

export class LiveFeed {
  private readonly history: LivePoint[] = [];
  private readonly subscribers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private last: LiveSnapshot | undefined;

  constructor(
    private readonly source: LiveSource,
    private readonly metrics: RouterMetrics,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.metrics.takeInterval();
    this.tickTimer = setInterval(() => this.tick(), this.intervalMs);
    this.heartbeatTimer = setInterval(() => this.broadcast(encoder.encode(": keep-alive\n\n")), HEARTBEAT_MS);
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
    return { t: Date.now(), calls: 0, errors: 0, p50Ms: null, p99Ms: null, queued: 0, oldestAgeSeconds: 0 };
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
    for (const waiting of this.source.waitingCalls().values()) {
      queued += waiting.count;
      oldest = Math.max(oldest, (now - waiting.oldestReceivedAt) / 1000);
    }
    const point: LivePoint = {
      t: Date.now(),
      calls: interval.calls,
      errors: interval.errors,
      p50Ms: interval.p50Seconds === undefined ? null : interval.p50Seconds * 1000,
      p99Ms: interval.p99Seconds === undefined ? null : interval.p99Seconds * 1000,
      queued,
      oldestAgeSeconds: oldest,
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
      try {
        controller.enqueue(bytes);
      } catch {
        this.subscribers.delete(controller);
      }
    }
  }
}
