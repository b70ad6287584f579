/**
 * Failures a caller sees, over tcp and ipc: remote exceptions, unknown methods, waiting for a
 * dealer, full queues, timeouts and cancellation (queued and running).
 *
 *   ./node_modules/.bin/bun test test/integration/core-errors.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import {
  CancelledError,
  type ClientDealer,
  NoSuchMethodError,
  QueueFullError,
  RemoteError,
  RouterMode,
  TimeoutError,
  ValidationError,
} from "../../src/index.ts";
import { CancellableService, EchoService, FailingService, FloodProbe, FloodService, GatedService, Probe } from "../fixtures/services.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

function queueLengthReaches(client: ClientDealer, method: string, length: number): Promise<void> {
  return waitFor(async () => ((await client.getQueueStatus())[method]?.queueLength ?? 0) === length, {
    timeoutMs: 5_000,
    message: `${length} request(s) queued for ${method}`,
  });
}

/** The rejection of `promise`, failing the test if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error as Error;
  }
}

for (const transport of TRANSPORTS) {
  describe(`errors over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("a method that throws: RemoteError with the original name, message and stack", async () => {
      await cluster.router();
      await cluster.dealer((options) => new FailingService(options));
      const client = await cluster.client();

      const error = await rejectionOf(client.invoke("FailingService.explode", "widget"));

      expect(error).toBeInstanceOf(RemoteError);
      const remote = error as RemoteError;
      expect(remote.code).toBe("REMOTE_ERROR");
      expect(remote.message).toBe("widget is out of stock");
      expect(remote.remote?.name).toBe("InventoryError");
      expect(remote.remote?.message).toBe("widget is out of stock");
      expect(remote.remote?.stack).toContain("throwInventoryError");
      expect(remote.data).toEqual(remote.remote);
      // The dealer survives and keeps serving.
      expect(await rejectionOf(client.invoke("FailingService.explode", "gadget"))).toBeInstanceOf(RemoteError);
    });

    test("a stream that throws after some chunks: the chunks arrive, then RemoteError", async () => {
      await cluster.router();
      await cluster.dealer((options) => new FailingService(options));
      const client = await cluster.client();

      const chunks: number[] = [];
      const error = await rejectionOf(
        (async () => {
          for await (const chunk of client.stream<number>("FailingService.failAfter", 3)) chunks.push(chunk);
        })(),
      );

      expect(chunks).toEqual([0, 1, 2]);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as RemoteError).remote).toMatchObject({ name: "InventoryError", message: "stream broke after 3" });
    });

    test("an unknown method fails at once with NoSuchMethodError", async () => {
      await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client({ timeout: 20 });

      const startedAt = performance.now();
      const unknownService = await rejectionOf(client.invoke("NoService.nothing"));
      const unknownMethod = await rejectionOf(client.invoke("EchoService.nothing"));
      const elapsedMs = performance.now() - startedAt;

      expect(unknownService).toBeInstanceOf(NoSuchMethodError);
      expect((unknownService as NoSuchMethodError).data).toEqual({ method: "NoService.nothing" });
      expect(unknownMethod).toBeInstanceOf(NoSuchMethodError);
      // "At once": nowhere near the 20 s call timeout (the bound is half of it, for a loaded machine).
      expect(elapsedMs).toBeLessThan(10_000);
    });

    test("a malformed method name is a ValidationError on `method` before anything is sent; the router sees nothing", async () => {
      const routerWarnings: string[] = [];
      const quiet = () => {};
      await cluster.router({ logger: { error: quiet, info: quiet, warn: (message: string) => routerWarnings.push(message) } });
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      for (const name of ["echo", "EchoService.", ".echo", "EchoService.echo.twice", "Echo Service.echo", "EchoService.1echo"]) {
        const unary = await rejectionOf(client.invoke(name, "x"));
        expect(unary).toBeInstanceOf(ValidationError);
        expect((unary as ValidationError).path).toBe("method");
        expect(unary.message).toStartWith(`${JSON.stringify(name)} is not a method name: expected Service.method`);
        const stream = await rejectionOf(
          (async () => {
            for await (const _ of client.stream(name)) void _;
          })(),
        );
        expect(stream).toBeInstanceOf(ValidationError);
      }
      expect((await rejectionOf(client.invoke("echo"))).message).toBe(
        '"echo" is not a method name: expected Service.method, e.g. EchoService.echo',
      );
      // Nothing reached the router (it warns about every malformed message), and the connection still serves.
      expect(await client.invoke("EchoService.echo", "still fine")).toBe("still fine");
      expect(routerWarnings).toEqual([]);
    });

    test("calling a streaming method with invoke (or a unary one with stream) is a ValidationError on `stream`", async () => {
      await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      const unaryCall = await rejectionOf(client.invoke("EchoService.streamNumbers", 0, 3));
      expect(unaryCall).toBeInstanceOf(ValidationError);
      expect((unaryCall as ValidationError).path).toBe("stream");
      const streamCall = await rejectionOf(
        (async () => {
          for await (const _ of client.stream("EchoService.echo", 1)) void _;
        })(),
      );
      expect(streamCall).toBeInstanceOf(ValidationError);
    });

    test("waitForDealer: the call waits in the queue until a dealer registers", async () => {
      await cluster.router();
      const client = await cluster.client();

      const call = client.call("EchoService.echo", ["patience"], { waitForDealer: true });
      await queueLengthReaches(client, "EchoService.echo", 1);
      await cluster.dealer((options) => new EchoService(options));

      expect(await call).toBe("patience");
      expect((await client.getQueueStatus())["EchoService.echo"].queueLength).toBe(0);
    });

    test("QueueFullError when a method's queue is at the router's maxQueueLength", async () => {
      await cluster.router({ maxQueueLength: 2 });
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const running = client.invoke("GatedService.hold", "running");
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the first call to run" });
      const queued = [client.invoke("GatedService.hold", "queued-1"), client.invoke("GatedService.hold", "queued-2")];
      await queueLengthReaches(client, "GatedService.hold", 2);

      const error = await rejectionOf(client.invoke("GatedService.hold", "one-too-many"));
      expect(error).toBeInstanceOf(QueueFullError);
      expect((error as QueueFullError).data).toEqual({ method: "GatedService.hold", queueLength: 2 });

      probe.gate.open();
      await Promise.all([running, ...queued]);
      expect(probe.events).not.toContain("start:one-too-many");
    });

    test("a refused call does not free a place in the queue: the next one is refused too, and the queue keeps its length", async () => {
      await cluster.router({ maxQueueLength: 2 });
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const running = client.invoke("GatedService.hold", "running");
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the first call to run" });
      const queued = [client.invoke("GatedService.hold", "queued-1"), client.invoke("GatedService.hold", "queued-2")];
      await queueLengthReaches(client, "GatedService.hold", 2);

      for (const tag of ["refused-1", "refused-2", "refused-3"]) {
        expect(await rejectionOf(client.invoke("GatedService.hold", tag))).toBeInstanceOf(QueueFullError);
      }
      expect((await client.getQueueStatus())["GatedService.hold"].queueLength).toBe(2);
      expect((await client.getRouterInfo()).queuedRequests).toBe(2);

      probe.gate.open();
      await Promise.all([running, ...queued]);
      expect(probe.matching("start:refused")).toEqual([]);
    });

    test("when the last dealer of a method leaves, the queue keeps counting the calls that wait for a dealer", async () => {
      await cluster.router({ maxQueueLength: 3 });
      const probe = new Probe();
      const dealer = await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const running = client.invoke("GatedService.hold", "running").catch((error: Error) => error);
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the first call to run" });
      const plain = [client.invoke("GatedService.hold", "plain-1"), client.invoke("GatedService.hold", "plain-2")].map((call) =>
        call.catch((error: Error) => error),
      );
      const patient = client.call("GatedService.hold", ["patient"], { waitForDealer: true });
      await queueLengthReaches(client, "GatedService.hold", 3);

      const stopping = dealer.stop();
      probe.gate.open();
      await waitFor(stopping, { timeoutMs: 5_000, message: "the only dealer to stop" });
      for (const error of await Promise.all(plain)) expect(error).toBeInstanceOf(NoSuchMethodError);
      // One call still waits for a dealer: the queue has room for exactly two more.
      expect((await client.getQueueStatus())["GatedService.hold"].queueLength).toBe(1);
      const more = [
        client.call("GatedService.hold", ["more-1"], { waitForDealer: true }),
        client.call("GatedService.hold", ["more-2"], { waitForDealer: true }),
      ];
      await queueLengthReaches(client, "GatedService.hold", 3);
      expect(await rejectionOf(client.call("GatedService.hold", ["more-3"], { waitForDealer: true }))).toBeInstanceOf(QueueFullError);

      // Its gate is open by now: the waiting calls run straight through on the next dealer.
      await cluster.dealer((options) => new GatedService(options, probe));
      expect(await Promise.all([patient, ...more])).toHaveLength(3);
      await running;
    });

    test("QueueFullError from a per-method queueLimits entry; other methods keep the default", async () => {
      await cluster.router({ queueLimits: { "GatedService.hold": 1 } });
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const running = client.invoke("GatedService.hold", "running");
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the first call to run" });
      const queuedHold = client.invoke("GatedService.hold", "queued");
      await queueLengthReaches(client, "GatedService.hold", 1);
      const queuedQuick = [client.invoke("GatedService.quick", "q1"), client.invoke("GatedService.quick", "q2")];
      await queueLengthReaches(client, "GatedService.quick", 2);

      const error = await rejectionOf(client.invoke("GatedService.hold", "refused"));
      expect(error).toBeInstanceOf(QueueFullError);
      expect((error as QueueFullError).data).toEqual({ method: "GatedService.hold", queueLength: 1 });

      probe.gate.open();
      await Promise.all([running, queuedHold, ...queuedQuick]);
    });

    test("a call over its timeout fails with TimeoutError", async () => {
      await cluster.router();
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client({ timeout: 20 });

      const error = await rejectionOf(client.call("GatedService.hold", ["forever"], { timeout: 0.3 }));

      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as TimeoutError).data).toEqual({ timeoutMs: 300 });
    });

    test("a call that times out while running: TimeoutError, and the method's context.signal aborts", async () => {
      await cluster.router();
      const probe = new Probe();
      await cluster.dealer((options) => new CancellableService(options, probe));
      const client = await cluster.client({ timeout: 20 });

      const error = await rejectionOf(client.call("CancellableService.waitForCancel", ["slowpoke"], { timeout: 0.3 }));

      expect(error).toBeInstanceOf(TimeoutError);
      await waitFor(() => probe.events.some((event) => event.startsWith("aborted:slowpoke:")), {
        timeoutMs: 5_000,
        message: "the method to see its signal aborted",
      });
      await waitFor(async () => !(await client.discoverClusters())[0].busy, {
        timeoutMs: 5_000,
        message: "the dealer to be idle again",
      });
    });

    test("a call that times out while queued leaves the queue", async () => {
      await cluster.router();
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const running = client.invoke("GatedService.hold", "running");
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the first call to run" });
      const error = await rejectionOf(client.call("GatedService.quick", ["late"], { timeout: 0.2 }));

      expect(error).toBeInstanceOf(TimeoutError);
      expect((await client.getQueueStatus())["GatedService.quick"].queueLength).toBe(0);
      probe.gate.open();
      await running;
      expect(probe.events).not.toContain("start:late");
    });

    test("cancel while queued: CancelledError, and the request leaves the queue", async () => {
      await cluster.router();
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const running = client.invoke("GatedService.hold", "running");
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the first call to run" });
      const controller = new AbortController();
      const cancelled = client.call("GatedService.quick", ["cancelled"], { signal: controller.signal });
      const kept = client.invoke("GatedService.quick", "kept");
      await queueLengthReaches(client, "GatedService.quick", 2);

      controller.abort();
      expect(await rejectionOf(cancelled)).toBeInstanceOf(CancelledError);
      await queueLengthReaches(client, "GatedService.quick", 1);

      probe.gate.open();
      expect(await running).toEqual({ tag: "running", by: "gated" });
      expect(await kept).toEqual({ tag: "kept", by: "gated" });
      expect(probe.events).not.toContain("start:cancelled");
      expect((await client.getRouterInfo()).queuedRequests).toBe(0);
    });

    test("cancel while running: CancelledError, and the method sees context.signal aborted", async () => {
      await cluster.router();
      const probe = new Probe();
      await cluster.dealer((options) => new CancellableService(options, probe));
      const client = await cluster.client();

      const controller = new AbortController();
      const call = client.call("CancellableService.waitForCancel", ["job"], { signal: controller.signal });
      await waitFor(() => probe.events.includes("start:job"), { timeoutMs: 5_000, message: "the method to start" });

      controller.abort();
      expect(await rejectionOf(call)).toBeInstanceOf(CancelledError);
      await waitFor(() => probe.events.some((event) => event.startsWith("aborted:job")), {
        timeoutMs: 5_000,
        message: "the method to see its signal aborted",
      });
      expect(probe.events).toContain("aborted:job:CancelledError");

      // The dealer's slot is free again once it has answered the cancel.
      await waitFor(async () => !(await client.discoverClusters())[0].busy, {
        timeoutMs: 5_000,
        message: "the dealer to be idle",
      });
      const [dealer] = await client.discoverClusters();
      expect(dealer.counts).toMatchObject({ dispatched: 1, failed: 1 });
    });

    test("cancel a stream through its AbortSignal: CancelledError, and the producer stops", async () => {
      await cluster.router();
      const flood = new FloodProbe();
      await cluster.dealer((options) => new FloodService(options, flood));
      const client = await cluster.client();
      const controller = new AbortController();

      const stream = client.callStream<number>("FloodService.flow", [1_000_000], { signal: controller.signal })[Symbol.asyncIterator]();
      expect((await stream.next()).value).toBe(0);
      controller.abort();

      // Chunks already buffered may still come out (at most a window's worth), then the cancellation.
      let extraChunks = 0;
      const error = await rejectionOf(
        (async () => {
          while (!(await stream.next()).done) extraChunks++;
        })(),
      );
      expect(error).toBeInstanceOf(CancelledError);
      expect(extraChunks).toBeLessThanOrEqual(64);
      await waitFor(async () => !(await client.discoverClusters())[0].busy, {
        timeoutMs: 5_000,
        message: "the dealer to stop the stream",
      });
      expect(flood.produced).toBeLessThan(1_000);
    });

    test("cancel a running call in load_balance mode frees the slot for the next call", async () => {
      await cluster.router({ routerMode: RouterMode.LOAD_BALANCE });
      const probe = new Probe();
      await cluster.dealer((options) => new CancellableService(options, probe), { maxConcurrent: 1 });
      const client = await cluster.client();

      const controller = new AbortController();
      const first = client.call("CancellableService.waitForCancel", ["first"], { signal: controller.signal });
      await waitFor(() => probe.events.includes("start:first"), { timeoutMs: 5_000, message: "the first call to start" });
      const secondController = new AbortController();
      const second = client.call("CancellableService.waitForCancel", ["second"], { signal: secondController.signal });
      await queueLengthReaches(client, "CancellableService.waitForCancel", 1);

      controller.abort();
      expect(await rejectionOf(first)).toBeInstanceOf(CancelledError);
      await waitFor(() => probe.events.includes("start:second"), {
        timeoutMs: 5_000,
        message: "the second call to start after the cancel",
      });
      secondController.abort();
      expect(await rejectionOf(second)).toBeInstanceOf(CancelledError);
    });
  });
}
