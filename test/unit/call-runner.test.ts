/**
 * CallRunner driven by a fake host, no sockets: replies, refusals, cancellation, stream credit,
 * idle and the finished-call count, as ServiceDealer relies on them.
 */
import { expect, test } from "bun:test";
import { CallRunner, type CallRunnerHost, type RequestMessage } from "../../src/dealer/call-runner.ts";
import { type CallContext, collectMethods, serviceMethod } from "../../src/dealer/service-method.ts";
import { decodeJson, decodeMessage, type DealerRequestHeader, encodeJsonOrThrow, encodeMessage } from "../../src/protocol/index.ts";
import { waitFor } from "../helpers/wait.ts";

class Sample {
  factor = 10;
  @serviceMethod times(n: number) {
    return n * this.factor;
  }
  @serviceMethod({ context: true })
  async waitForCancel(context: CallContext) {
    await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
    return "not reached";
  }
  @serviceMethod *count(n: number) {
    for (let i = 0; i < n; i++) yield i;
  }
}

interface Sent {
  kind: string;
  header: Record<string, unknown>;
  value?: unknown;
}

function fakeHost(notStarting: () => "setup" | "draining" | undefined = () => undefined) {
  const target = new Sample();
  const methods = new Map(collectMethods(target).map((definition) => [definition.name, definition]));
  const sent: Sent[] = [];
  let finished = 0;
  const host: CallRunnerHost = {
    serviceName: () => "Sample",
    target,
    methods: () => methods,
    notStarting,
    send: (frames) => {
      const message = decodeMessage(frames, "router");
      if (!message.ok) throw message.error;
      const payload = "payload" in message ? (message.payload as Uint8Array | undefined) : undefined;
      const value = payload === undefined ? undefined : decodeJson(payload);
      sent.push({ kind: message.kind, header: message.header as Record<string, unknown>, value: value?.ok ? value.value : undefined });
      return Promise.resolve();
    },
    warn: () => {},
    callFinished: () => finished++,
  };
  return { host, sent, finished: () => finished };
}

function request(header: DealerRequestHeader, args: unknown[]): RequestMessage {
  const message = decodeMessage(encodeMessage("REQUEST", header, encodeJsonOrThrow(args)), "dealer");
  if (!message.ok || message.kind !== "REQUEST") throw new Error("not a REQUEST");
  return message;
}

test("a call runs on the host's target and its RESULT goes back; the finished call is counted", async () => {
  const { host, sent, finished } = fakeHost();
  const runner = new CallRunner(host);
  await runner.run(request({ id: 1, method: "Sample.times" }, [4]));
  expect(sent).toEqual([{ kind: "RESULT", header: { id: 1 }, value: 40 }]);
  expect(finished()).toBe(1);
  expect(runner.load).toBe(0);
});

test("while the host drains or runs setup(), a request is refused untouched (notStarted) and never counted", async () => {
  let phase: "setup" | "draining" | undefined = "setup";
  const { host, sent, finished } = fakeHost(() => phase);
  const runner = new CallRunner(host);
  await runner.run(request({ id: 1, method: "Sample.times" }, [1]));
  phase = "draining";
  await runner.run(request({ id: 2, method: "Sample.times" }, [1]));
  expect(sent.map((m) => [m.kind, m.header.id, m.header.code, (m.header.data as { notStarted?: boolean })?.notStarted])).toEqual([
    ["ERROR", 1, "SHUTTING_DOWN", true],
    ["ERROR", 2, "SHUTTING_DOWN", true],
  ]);
  expect(finished()).toBe(0);
});

test("an unknown method is a validation ERROR", async () => {
  const { host, sent } = fakeHost();
  await new CallRunner(host).run(request({ id: 3, method: "Sample.nope" }, []));
  expect(sent[0]?.kind).toBe("ERROR");
  expect(sent[0]?.header.code).toBe("VALIDATION_ERROR");
});

test("CANCEL aborts the call's signal: it answers CANCELLED, and whenIdle resolves once it is gone", async () => {
  const { host, sent } = fakeHost();
  const runner = new CallRunner(host);
  const running = runner.run(request({ id: 5, method: "Sample.waitForCancel" }, []));
  expect(runner.load).toBe(1);
  const idle = runner.whenIdle();
  runner.cancel(5);
  await waitFor(idle, { timeoutMs: 2000, message: "the runner to be idle after CANCEL" });
  await running;
  expect(sent.map((m) => [m.kind, m.header.code])).toEqual([["ERROR", "CANCELLED"]]);
});

test("a stream sends no more CHUNKs than its credit until CREDIT comes, then END", async () => {
  const { host, sent } = fakeHost();
  const runner = new CallRunner(host);
  const running = runner.run(request({ id: 7, method: "Sample.count", stream: true, credit: 2 }, [4]));
  await waitFor(() => sent.length === 2, { timeoutMs: 2000, message: "the first two chunks" });
  // The producer waits for credit: nothing more comes until CREDIT.
  await Promise.resolve();
  expect(sent.length).toBe(2);
  runner.credit(7, 5);
  await waitFor(running, { timeoutMs: 2000, message: "the stream to end" });
  expect(sent.map((m) => [m.kind, m.value ?? m.header.count])).toEqual([
    ["CHUNK", 0],
    ["CHUNK", 1],
    ["CHUNK", 2],
    ["CHUNK", 3],
    ["END", 4],
  ]);
});
