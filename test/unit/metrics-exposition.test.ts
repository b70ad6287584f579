import { describe, expect, test } from "bun:test";
import { escapeHelp, escapeLabelValue, ExpositionWriter, formatValue, Histogram } from "../../src/observability/exposition.ts";
import { lossReasonOf, outcomeOf } from "../../src/observability/router-metrics.ts";

describe("Prometheus text exposition", () => {
  test("label values escape backslash, double quote and line feed; nothing else", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue("Math.add é {}")).toBe("Math.add é {}");
  });

  test("HELP escapes backslash and line feed but keeps quotes", () => {
    expect(escapeHelp('say "hi"\\\nnext')).toBe('say "hi"\\\\\\nnext');
  });

  test("values: integers plain, NaN and infinities in the format's spelling", () => {
    expect(formatValue(3)).toBe("3");
    expect(formatValue(0.25)).toBe("0.25");
    expect(formatValue(Number.NaN)).toBe("NaN");
    expect(formatValue(Number.POSITIVE_INFINITY)).toBe("+Inf");
    expect(formatValue(Number.NEGATIVE_INFINITY)).toBe("-Inf");
  });

  test("a family has HELP and TYPE lines, then its samples with labels", () => {
    const out = new ExpositionWriter();
    out.family("voidrail_requests_total", "counter", "Calls.\nTwo lines.");
    out.sample("voidrail_requests_total", 2, { method: 'M."x', outcome: "ok" });
    expect(out.text()).toBe(
      '# HELP voidrail_requests_total Calls.\\nTwo lines.\n# TYPE voidrail_requests_total counter\nvoidrail_requests_total{method="M.\\"x",outcome="ok"} 2\n',
    );
  });

  test("a histogram writes cumulative buckets with le, +Inf, then _sum and _count", () => {
    const histogram = new Histogram([0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 3]) histogram.observe(v);
    const out = new ExpositionWriter().family("x_seconds", "histogram", "X.").histogram("x_seconds", histogram, { method: "A.b" });
    expect(out.text().split("\n").slice(2, -1)).toEqual([
      'x_seconds_bucket{method="A.b",le="0.1"} 2',
      'x_seconds_bucket{method="A.b",le="1"} 3',
      'x_seconds_bucket{method="A.b",le="+Inf"} 4',
      'x_seconds_sum{method="A.b"} 3.65',
      'x_seconds_count{method="A.b"} 4',
    ]);
  });

  test("a value on a bucket's bound counts in that bucket (le is inclusive)", () => {
    const histogram = new Histogram([1, 2]);
    histogram.observe(1);
    histogram.observe(2);
    expect([...histogram.counts]).toEqual([1, 1, 0]);
  });

  test("quantiles interpolate inside the bucket, as histogram_quantile does", () => {
    const histogram = new Histogram([1, 2, 4]);
    for (let i = 0; i < 10; i++) histogram.observe(1.5);
    expect(histogram.quantile(0.5)).toBeCloseTo(1.5, 5);
    expect(new Histogram([1]).quantile(0.5)).toBeUndefined();
  });

  test("bad names and counters without _total are refused (bugs, found at once)", () => {
    expect(() => new ExpositionWriter().family("1bad", "gauge", "x")).toThrow("invalid metric name");
    expect(() => new ExpositionWriter().family("voidrail_requests", "counter", "x")).toThrow("_total");
    expect(() => new ExpositionWriter().family("a", "gauge", "x").family("a", "gauge", "x")).toThrow("twice");
    expect(() => new ExpositionWriter().sample("a", 1, { "bad-label": "x" })).toThrow("invalid label name");
    expect(() => new Histogram([2, 1])).toThrow("ascend");
  });

  test("outcomes and loss reasons map onto bounded label sets", () => {
    expect(outcomeOf("RESULT")).toBe("ok");
    expect(outcomeOf("END")).toBe("ok");
    expect(outcomeOf("TIMEOUT")).toBe("timeout");
    expect(outcomeOf("NO_SUCH_METHOD")).toBe("no_dealer");
    expect(outcomeOf("QUEUE_FULL")).toBe("rejected");
    expect(outcomeOf("MY_OWN_APP_ERROR_42")).toBe("error");
    expect(lossReasonOf("unregistered")).toBe("bye");
    expect(lossReasonOf("disconnected")).toBe("disconnect");
    expect(lossReasonOf("heartbeat timeout: no answer to a PING within 300 ms (peer silent for 301 ms)")).toBe("heartbeat_timeout");
    expect(lossReasonOf("some socket error text with a host name")).toBe("error");
  });
});
