/**
 * Owns the router's Prometheus metrics: counters and histograms fed by router events (a Map
 * lookup and a few increments per call, nothing when metrics are off), and gauges read from the
 * router's state at scrape time (dealers, slots, queues, tasks), so a dealer the registry has
 * dropped (BYE, disconnect, heartbeat timeout) is gone from the next scrape.
 *
 * Labels come from bounded sets only: methods some dealer registered (capped; anything else is
 * counted as "other"), services (capped the same way), fixed outcome, state and reason names.
 * Never task ids, client ids, host names or error text.
 */
import type { ClustersInfo, RouterInfo } from "../protocol/index.ts";
import type { CallView, RouterEvents } from "../router/events.ts";
import type { RateLimitStat } from "../router/rate-limits.ts";
import { ExpositionWriter, Histogram, SECONDS_BUCKETS, TASK_SECONDS_BUCKETS } from "./exposition.ts";
import { writeProcessMetrics } from "./process-metrics.ts";

/** What the metrics read from a router (a ServiceRouter with its task layer fits). */
export interface MetricsSource {
  readonly events: RouterEvents;
  info(topic: "clusters" | "router"): unknown;
  /** Methods with calls waiting: how many, and performance.now() of the oldest's arrival. */
  waitingCalls(): ReadonlyMap<string, { count: number; oldestReceivedAt: number }>;
  /** The rate-limited methods (ServiceRouter.rateLimitStats). */
  rateLimitStats?(): readonly RateLimitStat[];
  /** What a dealer registered for `method`, if one offers it now. */
  offeredMethod(method: string): unknown;
  readonly tasks?: { stats(): { counts: Readonly<Record<string, number>>; parked?: number } } | undefined;
  /** The schedules, once the task layer runs. */
  readonly schedules?: { list(): readonly { paused: boolean }[] } | undefined;
}

export interface RouterMetricsOptions {
  /** Most distinct method (and service) label values; the rest are counted as "other". Default 200. */
  maxLabelValues?: number;
  /** The `version` label of voidrail_build_info. */
  version: string;
}

/** The label value that stands for every method or service past the cap, or never registered. */
export const OTHER = "other";

/** How a call ended, as a bounded label: RESULT/END and the router's own error codes. */
export function outcomeOf(code: string | undefined): string {
  switch (code) {
    case "RESULT":
    case "END":
      return "ok";
    case "TIMEOUT":
      return "timeout";
    case "CANCELLED":
      return "cancelled";
    case "NO_SUCH_METHOD":
      return "no_dealer";
    case "QUEUE_FULL":
      return "rejected";
    case "DEALER_LOST":
      return "dealer_lost";
    case "SHUTTING_DOWN":
      return "shutting_down";
    default:
      // Dealers send any error code (their methods' own): one bucket for all of them.
      return "error";
  }
}

/** Why a dealer left, as a bounded label. */
export function lossReasonOf(why: string): string {
  if (why === "unregistered") return "bye";
  if (why === "disconnected") return "disconnect";
  if (why.startsWith("heartbeat timeout") || why.includes("silent for")) return "heartbeat_timeout";
  return "error";
}

/** Per-method series of calls. */
class MethodSeries {
  /** Calls that ended well: the common case, a plain field instead of a Map entry. */
  ok = 0;
  /** Calls that ended otherwise, by outcome label. */
  readonly failures = new Map<string, number>();
  readonly duration = new Histogram(SECONDS_BUCKETS);
  readonly dispatchWait = new Histogram(SECONDS_BUCKETS);
  redispatches = 0;
  taskRetries = 0;
  readonly taskRuntime = new Histogram(TASK_SECONDS_BUCKETS);
  readonly taskWait = new Histogram(TASK_SECONDS_BUCKETS);
}

/**
 * Listens to a router's events and writes the exposition text on demand.
 *
 * @example
 * const metrics = new RouterMetrics(router, { version: "0.1.0" });
 * metrics.attach();
 * const text = metrics.scrape();
 */
export class RouterMetrics {
  private readonly byMethod = new Map<string, MethodSeries>();
  private readonly losses = new Map<string, Map<string, number>>();
  private readonly maxLabelValues: number;
  private readonly services = new Set<string>();
  /** Per-bucket counts over all methods and the failures at the last takeInterval. */
  private lastCounts = new Float64Array(SECONDS_BUCKETS.length + 1);
  private lastFailures = 0;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly source: MetricsSource,
    private readonly options: RouterMetricsOptions,
  ) {
    this.maxLabelValues = options.maxLabelValues ?? 200;
  }

  /** Starts listening; `detach` stops. */
  attach(): void {
    const events = this.source.events;
    this.unsubscribe.push(
      events.on("call.finished", this.onFinished),
      events.on("call.dispatched", this.onDispatched),
      events.on("call.queued", this.onQueued),
      events.on("dealer.lost", ({ dealer, reason }) => {
        const service = this.serviceLabel(dealer.service);
        let reasons = this.losses.get(service);
        if (!reasons) this.losses.set(service, (reasons = new Map()));
        const label = lossReasonOf(reason);
        reasons.set(label, (reasons.get(label) ?? 0) + 1);
      }),
      events.on("dealer.registered", (dealer) => {
        if (this.services.size < this.maxLabelValues) this.services.add(dealer.service);
      }),
    );
  }

  detach(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** A task attempt started `waitMs` after the task was due (TaskManager.attemptStarted). */
  taskAttemptStarted(method: string, waitMs: number): void {
    this.series(method).taskWait.observe(Math.max(0, waitMs) / 1000);
  }

  private readonly onFinished = (call: CallView): void => {
    const series = this.series(call.method);
    const code = call.outcome;
    if (code === "RESULT" || code === "END") series.ok++;
    else {
      const outcome = outcomeOf(code);
      series.failures.set(outcome, (series.failures.get(outcome) ?? 0) + 1);
    }
    const seconds = (performance.now() - call.receivedAt) / 1000;
    series.duration.observe(seconds);
    if (call.task !== undefined) series.taskRuntime.observe(seconds);
  };

  private readonly onDispatched = (call: CallView): void => {
    const series = this.series(call.method);
    series.dispatchWait.observe((performance.now() - call.receivedAt) / 1000);
    if (call.task !== undefined && call.task.attempt > 1) series.taskRetries++;
  };

  private readonly onQueued = (call: CallView): void => {
    // Dispatched before: its dealer was lost and it waits to run again elsewhere.
    if (call.routerId !== 0) this.series(call.method).redispatches++;
  };

  /** The series of `method`, or of "other" for a method nobody registered or past the cap. */
  private series(method: string): MethodSeries {
    let series = this.byMethod.get(method);
    if (series !== undefined) return series;
    const label = this.byMethod.size < this.maxLabelValues && this.source.offeredMethod(method) !== undefined ? method : OTHER;
    series = this.byMethod.get(label);
    if (series === undefined) this.byMethod.set(label, (series = new MethodSeries()));
    return series;
  }

  private serviceLabel(service: string): string {
    return this.services.has(service) ? service : OTHER;
  }

  /**
   * Calls that ended since the previous call of this method, and their latency quantiles: the
   * difference of the per-method histograms, summed, so the call path counts each call once.
   */
  takeInterval(): { calls: number; errors: number; p50Seconds: number | undefined; p99Seconds: number | undefined } {
    const counts = new Float64Array(SECONDS_BUCKETS.length + 1);
    let failures = 0;
    for (const series of this.byMethod.values()) {
      const c = series.duration.counts;
      for (let i = 0; i < c.length; i++) counts[i] += c[i];
      for (const n of series.failures.values()) failures += n;
    }
    const interval = new Histogram(SECONDS_BUCKETS);
    for (let i = 0; i < counts.length; i++) {
      interval.counts[i] = Math.max(0, counts[i] - this.lastCounts[i]);
      interval.count += interval.counts[i];
    }
    const errors = Math.max(0, failures - this.lastFailures);
    this.lastCounts = counts;
    this.lastFailures = failures;
    return { calls: interval.count, errors, p50Seconds: interval.quantile(0.5), p99Seconds: interval.quantile(0.99) };
  }

  /** The exposition text of every metric, gauges read now. */
  scrape(): string {
    const out = new ExpositionWriter();
    out.family("voidrail_build_info", "gauge", "Always 1; the version of the router.").sample("voidrail_build_info", 1, {
      version: this.options.version,
    });
    writeProcessMetrics(out);
    this.writeCalls(out);
    this.writeDealers(out);
    this.writeQueues(out);
    this.writeRateLimits(out);
    this.writeTasks(out);
    return out.text();
  }

  private writeCalls(out: ExpositionWriter): void {
    const methods = [...this.byMethod.keys()].sort();
    out.family(
      "voidrail_requests_total",
      "counter",
      "Calls that ended, by method and outcome (ok, error, timeout, cancelled, no_dealer, rejected, dealer_lost, shutting_down).",
    );
    for (const method of methods) {
      const series = this.byMethod.get(method)!;
      if (series.ok > 0) out.sample("voidrail_requests_total", series.ok, { method, outcome: "ok" });
      for (const [outcome, n] of series.failures) out.sample("voidrail_requests_total", n, { method, outcome });
    }
    out.family("voidrail_request_duration_seconds", "histogram", "Time from a call's arrival at the router to its end, queueing included.");
    for (const method of methods) out.histogram("voidrail_request_duration_seconds", this.byMethod.get(method)!.duration, { method });
    out.family("voidrail_dispatch_wait_seconds", "histogram", "Time from a call's arrival to its dispatch to a dealer.");
    for (const method of methods) out.histogram("voidrail_dispatch_wait_seconds", this.byMethod.get(method)!.dispatchWait, { method });
    out.family("voidrail_requests_inflight", "gauge", "Calls on dealers now (running, or cancelled and not yet answered).");
    out.sample("voidrail_requests_inflight", (this.source.info("router") as RouterInfo).inProgressRequests);
    out.family("voidrail_redispatches_total", "counter", "Calls queued again after their dealer was lost before replying.");
    for (const method of methods) out.sample("voidrail_redispatches_total", this.byMethod.get(method)!.redispatches, { method });
  }

  private writeDealers(out: ExpositionWriter): void {
    const byService = new Map<string, { setup: number; active: number; draining: number; slots: number; busy: number }>();
    for (const dealer of this.source.info("clusters") as ClustersInfo) {
      const service = this.serviceLabel(dealer.service);
      let entry = byService.get(service);
      if (!entry) byService.set(service, (entry = { setup: 0, active: 0, draining: 0, slots: 0, busy: 0 }));
      if (dealer.state === "draining") entry.draining++;
      else if (dealer.state === "setup") entry.setup++;
      else entry.active++;
      entry.slots += dealer.maxConcurrent;
      entry.busy += Math.min(dealer.load, dealer.maxConcurrent);
    }
    const services = [...byService.keys()].sort();
    out.family("voidrail_dealers", "gauge", "Registered dealers, by service and state (setup, active, draining).");
    for (const service of services) {
      const entry = byService.get(service)!;
      out.sample("voidrail_dealers", entry.setup, { service, state: "setup" });
      out.sample("voidrail_dealers", entry.active, { service, state: "active" });
      out.sample("voidrail_dealers", entry.draining, { service, state: "draining" });
    }
    out.family("voidrail_dealer_slots", "gauge", "Concurrent calls the registered dealers of a service accept.");
    for (const service of services) out.sample("voidrail_dealer_slots", byService.get(service)!.slots, { service });
    out.family("voidrail_dealer_busy_slots", "gauge", "Slots holding a call now.");
    for (const service of services) out.sample("voidrail_dealer_busy_slots", byService.get(service)!.busy, { service });
    out.family(
      "voidrail_dealer_losses_total",
      "counter",
      "Dealers that left, by service and reason (bye, disconnect, heartbeat_timeout, error).",
    );
    for (const service of [...this.losses.keys()].sort()) {
      for (const [reason, n] of this.losses.get(service)!) out.sample("voidrail_dealer_losses_total", n, { service, reason });
    }
  }

  private writeQueues(out: ExpositionWriter): void {
    const now = performance.now();
    const depth = new Map<string, { count: number; oldestAgeSeconds: number }>();
    for (const [method, waiting] of this.source.waitingCalls()) {
      const label = this.byMethod.has(method) || this.source.offeredMethod(method) !== undefined ? method : OTHER;
      const entry = depth.get(label) ?? { count: 0, oldestAgeSeconds: 0 };
      entry.count += waiting.count;
      entry.oldestAgeSeconds = Math.max(entry.oldestAgeSeconds, (now - waiting.oldestReceivedAt) / 1000);
      depth.set(label, entry);
    }
    // Methods seen before but with nothing waiting now report 0, so a drained queue's series goes to 0, not away.
    for (const method of this.byMethod.keys()) if (!depth.has(method)) depth.set(method, { count: 0, oldestAgeSeconds: 0 });
    const methods = [...depth.keys()].sort();
    out.family("voidrail_queue_depth", "gauge", "Calls waiting in the router for a free dealer slot, by method.");
    for (const method of methods) out.sample("voidrail_queue_depth", depth.get(method)!.count, { method });
    out.family("voidrail_queue_oldest_age_seconds", "gauge", "How long the oldest waiting call of a method has waited (0: none waits).");
    for (const method of methods) out.sample("voidrail_queue_oldest_age_seconds", depth.get(method)!.oldestAgeSeconds, { method });
  }

  private writeRateLimits(out: ExpositionWriter): void {
    const stats = this.source.rateLimitStats?.();
    if (stats === undefined || stats.length === 0) return;
    // Methods come from the router's options and from dealers' registrations: the same cap as the call series.
    const shown = [...stats].sort((a, b) => (a.method < b.method ? -1 : 1)).slice(0, this.maxLabelValues);
    out.family("voidrail_rate_limit_per_second", "gauge", "The rate limit in force, by method, in calls per second.");
    for (const stat of shown) out.sample("voidrail_rate_limit_per_second", stat.perSecond, { method: stat.method });
    out.family(
      "voidrail_rate_limit_waiting",
      "gauge",
      "1 while calls or tasks of the method wait for its rate limit's next token, else 0.",
    );
    for (const stat of shown) out.sample("voidrail_rate_limit_waiting", stat.waiting ? 1 : 0, { method: stat.method });
    out.family(
      "voidrail_rate_limit_holds_total",
      "counter",
      "Times a method's calls or tasks had to wait for its rate limit's next token.",
    );
    for (const stat of shown) out.sample("voidrail_rate_limit_holds_total", stat.holds, { method: stat.method });
  }

  private writeTasks(out: ExpositionWriter): void {
    const tasks = this.source.tasks;
    if (tasks === undefined) return;
    const stats = tasks.stats();
    const counts = stats.counts;
    out.family("voidrail_tasks", "gauge", "Stored background tasks, by state (blocked: a workflow node waiting for its turn).");
    for (const state of Object.keys(counts).sort()) out.sample("voidrail_tasks", counts[state], { state });
    if (stats.parked !== undefined) {
      out.family("voidrail_tasks_parked", "gauge", "Queued tasks held back by their concurrency key or rate key.");
      out.sample("voidrail_tasks_parked", stats.parked);
    }
    const schedules = this.source.schedules?.list();
    if (schedules !== undefined) {
      let paused = 0;
      for (const schedule of schedules) if (schedule.paused) paused++;
      out.family("voidrail_schedules", "gauge", "Schedules the router keeps, by state (active, paused).");
      out.sample("voidrail_schedules", schedules.length - paused, { state: "active" });
      out.sample("voidrail_schedules", paused, { state: "paused" });
    }
    const methods = [...this.byMethod.keys()].sort();
    out.family("voidrail_task_retries_total", "counter", "Task attempts after the first (retries and re-runs after a lost dealer).");
    for (const method of methods) out.sample("voidrail_task_retries_total", this.byMethod.get(method)!.taskRetries, { method });
    out.family("voidrail_task_runtime_seconds", "histogram", "How long task attempts ran.");
    for (const method of methods) out.histogram("voidrail_task_runtime_seconds", this.byMethod.get(method)!.taskRuntime, { method });
    out.family("voidrail_task_wait_seconds", "histogram", "Time from a task being due to its attempt starting.");
    for (const method of methods) out.histogram("voidrail_task_wait_seconds", this.byMethod.get(method)!.taskWait, { method });
  }
}
