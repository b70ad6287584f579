/**
 * With @opentelemetry/api and an SDK in each process: the client, the router and the dealer,
 * three processes, make spans of one trace for a call (client → router queue/route → dealer run
 * → the method's own spans) and for a task (submit → attempt).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { BUN, ROOT } from "../helpers/cluster.ts";
import { onLines } from "../helpers/lines.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

interface RecordedSpan {
  role: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  status: number;
  attributes: Record<string, unknown>;
  /** Epoch ms. */
  startMs: number;
  endMs: number;
}

// SpanKind values of @opentelemetry/api.
const INTERNAL = 0;
const SERVER = 1;
const CLIENT = 2;
const PRODUCER = 3;
const CONSUMER = 4;

/** A fixture process, its output lines and the spans it printed. */
class SpanProcess {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  private stderr = "";

  constructor(role: string, address: string) {
    this.child = spawn(BUN, [join(ROOT, "test/fixtures/otel-spans.ts"), role, address], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    onLines(this.child.stdout!, (line) => this.lines.push(line));
    this.child.stderr!.on("data", (chunk) => (this.stderr += chunk));
  }

  async line(text: string): Promise<void> {
    await waitFor(() => this.lines.includes(text), { timeoutMs: 20_000, message: `"${text}" from the fixture (stderr: ${this.stderr})` });
  }

  /** Asks for the spans (a line on stdin) and waits for them. */
  async spans(): Promise<RecordedSpan[]> {
    this.child.stdin!.write("dump\n");
    await this.line("end");
    return this.lines.filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as RecordedSpan);
  }
}

const started: SpanProcess[] = [];
afterEach(() => {
  for (const process of started.splice(0)) if (process.child.exitCode === null) process.child.kill("SIGKILL");
});

describe("OpenTelemetry spans across three processes", () => {
  test("one trace per call and per task: client, router and dealer spans, parent to child", async () => {
    // A fresh ipc path: all three know the address before the router binds (tcp port 0 would not do).
    const address = uniqueEndpoint("ipc");
    const router = new SpanProcess("router", address);
    started.push(router);
    await router.line("ready");
    const dealer = new SpanProcess("dealer", address);
    started.push(dealer);
    await dealer.line("ready");
    const client = new SpanProcess("client", address);
    started.push(client);
    const spans = [...(await client.spans()), ...(await dealer.spans()), ...(await router.spans())];

    const find = (traceId: string, role: string, kind: number, name?: string) => {
      const found = spans.filter(
        (s) => s.traceId === traceId && s.role === role && s.kind === kind && (name === undefined || s.name === name),
      );
      expect({ role, kind, name, count: found.length }).toEqual({ role, kind, name, count: 1 });
      return found[0];
    };

    const parentCall = spans.find((s) => s.name === "parent call")!;
    const call = parentCall.traceId;
    const clientSpan = find(call, "client", CLIENT, "Traced.work");
    expect(clientSpan.parentSpanId).toBe(parentCall.spanId);
    expect(clientSpan.attributes["rpc.system"]).toBe("voidrail");
    for (const name of ["Traced.work queue", "Traced.work dispatch", "Traced.work route"]) {
      expect(find(call, "router", INTERNAL, name).parentSpanId).toBe(clientSpan.spanId);
    }
    expect(find(call, "router", INTERNAL, "Traced.work route").attributes["voidrail.outcome"]).toBe("ok");
    // Queue wait, then the time on the dealer: the dispatch span starts where the queue span ends, inside the route span.
    const queueSpan = find(call, "router", INTERNAL, "Traced.work queue");
    const dispatchSpan = find(call, "router", INTERNAL, "Traced.work dispatch");
    const routeSpan = find(call, "router", INTERNAL, "Traced.work route");
    expect(dispatchSpan.attributes["voidrail.dealer_id"]).toBe(queueSpan.attributes["voidrail.dealer_id"]);
    expect(dispatchSpan.startMs).toBeGreaterThanOrEqual(queueSpan.endMs - 1);
    expect(dispatchSpan.endMs).toBeLessThanOrEqual(routeSpan.endMs + 1);
    // The router forwards the client's context untouched: the dealer's span is the client span's child.
    const run = find(call, "dealer", SERVER, "Traced.work");
    expect(run.parentSpanId).toBe(clientSpan.spanId);
    expect(find(call, "dealer", INTERNAL, "inner work").parentSpanId).toBe(run.spanId);

    const parentTask = spans.find((s) => s.name === "parent task")!;
    const task = parentTask.traceId;
    expect(task).not.toBe(call);
    const submit = find(task, "client", PRODUCER, "Traced.work submit");
    expect(submit.parentSpanId).toBe(parentTask.spanId);
    const attempt = find(task, "dealer", CONSUMER, "Traced.work");
    expect(attempt.parentSpanId).toBe(submit.spanId);
    expect(find(task, "router", INTERNAL, "Traced.work route").attributes["voidrail.task_id"]).toBe(submit.attributes["voidrail.task_id"]);
  }, 60_000);
});
