/**
 * W3C trace context through real sockets: the traceparent and tracestate a caller gives travel
 * with a call, a stream and a task's every attempt to the dealer, untouched by the router, and
 * the method reads them from its CallContext; a task shows them when read back.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CallContext, ServiceDealer, serviceMethod, ValidationError } from "../../src/index.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";

class TraceEcho extends ServiceDealer {
  @serviceMethod({ context: true })
  seen(context: CallContext) {
    return { traceparent: context.traceparent ?? null, tracestate: context.tracestate ?? null, attempt: context.attempt ?? null };
  }

  @serviceMethod({ context: true })
  *seenStream(count: number, context: CallContext) {
    for (let i = 0; i < count; i++) yield context.traceparent ?? null;
  }

  private failures = 0;

  /** Fails its first attempt, so a task's retry shows the trace again. */
  @serviceMethod({ context: true })
  flaky(context: CallContext) {
    if (this.failures++ === 0) throw new Error("first attempt fails");
    return { traceparent: context.traceparent ?? null, attempt: context.attempt ?? null };
  }
}

for (const transport of TRANSPORTS) {
  describe(`trace context (${transport})`, () => {
    let cluster = new Cluster(transport);
    afterEach(async () => {
      await cluster.dispose();
      cluster = new Cluster(transport);
    });

    test("a call's traceparent and tracestate reach the method as given; none given, none seen", async () => {
      await cluster.router();
      await cluster.dealer((options) => new TraceEcho(options));
      const client = await cluster.client();
      expect(await client.call("TraceEcho.seen", [], { traceparent: TRACEPARENT, tracestate: TRACESTATE })).toEqual({
        traceparent: TRACEPARENT,
        tracestate: TRACESTATE,
        attempt: null,
      });
      expect(await client.call("TraceEcho.seen", [])).toEqual({ traceparent: null, tracestate: null, attempt: null });
      const chunks: unknown[] = [];
      for await (const chunk of client.callStream("TraceEcho.seenStream", [2], { traceparent: TRACEPARENT })) chunks.push(chunk);
      expect(chunks).toEqual([TRACEPARENT, TRACEPARENT]);
    }, 30_000);

    test("a task carries its trace context to every attempt, and shows it when read back", async () => {
      await cluster.router();
      await cluster.dealer((options) => new TraceEcho(options));
      const client = await cluster.client();
      const task = await client.submit("TraceEcho.flaky", [], {
        traceparent: TRACEPARENT,
        tracestate: TRACESTATE,
        retries: 1,
        retryDelay: 0,
      });
      expect(task.traceparent).toBe(TRACEPARENT);
      expect(await client.waitTask(task.id, { timeout: 10 })).toEqual({ traceparent: TRACEPARENT, attempt: 2 });
      const info = await client.getTask(task.id);
      expect(info.traceparent).toBe(TRACEPARENT);
      expect(info.tracestate).toBe(TRACESTATE);
    }, 30_000);

    test("a task's trace context survives a router restart on a SQLite store", async () => {
      const file = join(mkdtempSync(join(tmpdir(), "voidrail-trace-")), "tasks.db");
      const router = await cluster.router({ taskStore: file });
      const client = await cluster.client();
      const task = await client.submit("TraceEcho.seen", [], { traceparent: TRACEPARENT, waitForDealer: true });
      await router.stop();
      await cluster.router({ taskStore: file, address: router.address });
      await cluster.dealer((options) => new TraceEcho(options));
      const again = await cluster.client();
      expect(await again.waitTask(task.id, { timeout: 10 })).toEqual({ traceparent: TRACEPARENT, tracestate: null, attempt: 1 });
    }, 30_000);

    test("a malformed traceparent is refused before anything is sent", async () => {
      await cluster.router();
      await cluster.dealer((options) => new TraceEcho(options));
      const client = await cluster.client();
      for (const bad of [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "garbage",
      ]) {
        await expect(client.call("TraceEcho.seen", [], { traceparent: bad })).rejects.toBeInstanceOf(ValidationError);
        await expect(client.submit("TraceEcho.seen", [], { traceparent: bad })).rejects.toBeInstanceOf(ValidationError);
      }
      await expect(client.call("TraceEcho.seen", [], { tracestate: "a=b" })).rejects.toBeInstanceOf(ValidationError);
      // Still fine afterwards.
      expect(await client.call("TraceEcho.seen", [], { traceparent: TRACEPARENT })).toMatchObject({ traceparent: TRACEPARENT });
    }, 30_000);
  });
}
