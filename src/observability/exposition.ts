/**
 * Owns the Prometheus text exposition format (version 0.0.4): metric families with their HELP
 * and TYPE lines, samples with escaped label values, and histograms as cumulative `_bucket`
 * series with `_sum` and `_count`. Pure: it builds text and does no I/O.
 *
 * Names are checked when a family is declared (a bad name is a bug here, not bad input), label
 * values are escaped (they may come from peers: service and method names).
 */

/** The content type a scrape answer carries. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type MetricType = "counter" | "gauge" | "histogram";

export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value with `\`, `"` and line feeds escaped, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text with `\` and line feeds escaped (quotes stay as they are there). */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value: integers as they are, others in shortest form, and the format's NaN/±Inf. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const parts: string[] = [];
  if (labels !== undefined) {
    for (const name in labels) {
      if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(name)}`);
      parts.push(`${name}="${escapeLabelValue(labels[name])}"`);
    }
  }
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/**
 * Counts observations into fixed buckets. `observe` is a binary search over the bounds (about
 * four comparisons for eighteen): cheap enough for the call path.
 */
export class Histogram {
  /** Observations per bucket, not cumulative; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  /** `bounds`: upper bounds, ascending, finite (+Inf is implied). */
  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i] > bounds[i - 1])) throw new Error("histogram bounds must ascend");
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    // Binary search for the first bound >= value (le is inclusive); past the last: +Inf.
    const bounds = this.bounds;
    let low = 0;
    let high = bounds.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (value > bounds[mid]) low = mid + 1;
      else high = mid;
    }
    this.counts[low]++;
    this.sum += value;
    this.count++;
  }

  /**
   * The value below which `q` (0..1) of the observations fall, interpolated inside its bucket as
   * Prometheus' histogram_quantile does; undefined when nothing was observed.
   */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = q * this.count;
    let below = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const inBucket = this.counts[i];
      if (below + inBucket >= rank && inBucket > 0) {
        if (i === this.bounds.length) return this.bounds[this.bounds.length - 1];
        const lower = i === 0 ? 0 : this.bounds[i - 1];
        return lower + (this.bounds[i] - lower) * ((rank - below) / inBucket);
      }
      below += inBucket;
    }
    return this.bounds[this.bounds.length - 1];
  }
}

/** Latency bounds in seconds, from 100 µs to 60 s. */
export const SECONDS_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Task run and wait bounds in seconds, from 10 ms to an hour. */
export const TASK_SECONDS_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

/**
 * Builds one exposition text. Declare each family once with `family`, then add its samples.
 *
 * @example
 * const out = new ExpositionWriter();
 * out.family("voidrail_requests_total", "counter", "Requests that ended, by outcome.");
 * out.sample("voidrail_requests_total", 12, { method: "Math.add", outcome: "ok" });
 * out.text(); // "# HELP voidrail_requests_total ...\n# TYPE ...\nvoidrail_requests_total{...} 12\n"
 */
export class ExpositionWriter {
  private readonly lines: string[] = [];
  private readonly declared = new Set<string>();

  family(name: string, type: MetricType, help: string): this {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    if (type === "counter" && !name.endsWith("_total")) throw new Error(`counter ${name} must end in _total`);
    if (this.declared.has(name)) throw new Error(`metric ${name} declared twice`);
    this.declared.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels?: Labels): this {
    this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** `_bucket` series (cumulative, with `le`), then `_sum` and `_count`. */
  histogram(name: string, histogram: Histogram, labels?: Labels): this {
    let cumulative = 0;
    const { bounds, counts } = histogram;
    for (let i = 0; i <= bounds.length; i++) {
      cumulative += counts[i];
      const le = i < bounds.length ? formatValue(bounds[i]) : "+Inf";
      this.lines.push(`${name}_bucket${formatLabels(labels, ["le", le])} ${formatValue(cumulative)}`);
    }
    this.lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(histogram.sum)}`);
    this.lines.push(`${name}_count${formatLabels(labels)} ${formatValue(histogram.count)}`);
    return this;
  }

  text(): string {
    return this.lines.length === 0 ? "" : `${this.lines.join("\n")}\n`;
  }
}
