/**
 * With @opentelemetry/api and an SDK: the client, the router and the dealer make spans of one
 * trace for a call (client → router queue/route → dealer run → the method's own spans) and for a
 * task (submit → attempt). The spans are recorded in a child process (the SDK is global).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, ROOT } from "../helpers/cluster.ts";
import { uniqueEndpoint } from "../helpers/wait.ts";

interface RecordedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  status: number;
  attributes: Record<string, unknown>;
  startMs: number;
  endMs: number;
}

// SpanKind values of @opentelemetry/api.
const INTERNAL = 0;
const SERVER = 1;
const CLIENT = 2;
const PRODUCER = 3;
const CONSUMER = 4;

async function recordSpans(): Promise<RecordedSpan[]> {
  const child = Bun.spawn([BUN, join(ROOT, "test/fixtures/otel-spans.ts"), uniqueEndpoint("tcp")], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill(), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`otel-spans.ts exited ${code}\n${stderr}`);
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as RecordedSpan);
}

describe("OpenTelemetry spans", () => {
  test("one trace per call and per task across client, router and dealer", async () => {
    const spans = await recordSpans();
    const byName = (name: string) => spans.filter((span) => span.name === name);
    const one = (name: string, traceId: string) => {
      const found = byName(name).filter((span) => span.traceId === traceId);
      expect({ name, count: found.length }).toEqual({ name, count: 1 });
      return found[0];
    };

    const [parentCall] = byName("parent call");
    const call = parentCall.traceId;
    const client = spans.filter((span) => span.traceId === call && span.kind === CLIENT)[0];
    expect(client.name).toBe("Traced.work");
    expect(client.kind).toBe(CLIENT);
    expect(client.parentSpanId).toBe(parentCall.spanId);
    expect(client.attributes["rpc.system"]).toBe("voidrail");
    const queue = one("Traced.work queue", call);
    const route = one("Traced.work route", call);
    for (const span of [queue, route]) {
      expect(span.kind).toBe(INTERNAL);
      expect(span.parentSpanId).toBe(client.spanId);
    }
    expect(route.attributes["voidrail.outcome"]).toBe("ok");
    const run = spans.find((span) => span.traceId === call && span.kind === SERVER)!;
    expect(run.name).toBe("Traced.work");
    // The router forwards the client's context untouched: the dealer's span is the client span's child.
    expect(run.parentSpanId).toBe(client.spanId);
    const inner = spans.filter((span) => span.name === "inner work" && span.traceId === call);
    expect(inner.length).toBe(1);
    expect(inner[0].parentSpanId).toBe(run.spanId);
    expect(client.startMs).toBeLessThanOrEqual(run.startMs);
    expect(client.endMs).toBeGreaterThanOrEqual(run.endMs);

    const [parentTask] = byName("parent task");
    const taskTrace = parentTask.traceId;
    expect(taskTrace).not.toBe(call);
    const submit = one("Traced.work submit", taskTrace);
    expect(submit.kind).toBe(PRODUCER);
    expect(submit.parentSpanId).toBe(parentTask.spanId);
    const attempt = spans.find((span) => span.traceId === taskTrace && span.kind === CONSUMER)!;
    expect(attempt.name).toBe("Traced.work");
    expect(attempt.parentSpanId).toBe(submit.spanId);
    expect(one("Traced.work route", taskTrace).attributes["voidrail.task_id"]).toBe(submit.attributes["voidrail.task_id"]);
  }, 40_000);
});
