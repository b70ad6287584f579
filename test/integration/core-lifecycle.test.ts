/**
 * Dealers and routers coming and going, over tcp and ipc: a router restart (dealers re-register
 * by themselves), a draining dealer stop, a dealer process killed mid-request (re-dispatch, or
 * DealerLostError for a stream under way), and a frozen dealer declared dead by heartbeat.
 *
 *   ./node_modules/.bin/bun test test/integration/core-lifecycle.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ClientDealer, DealerLostError, NoSuchMethodError, RouterMode, silentLogger, TimeoutError } from "../../src/index.ts";
import { type ClientMessage, decodeMessage, encodeJsonOrThrow, encodeMessage } from "../../src/protocol/index.ts";
import { Dealer } from "../../src/zmtp/index.ts";
import { CrashService, EchoService, GatedService, Probe } from "../fixtures/services.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { RECONNECT_MAX_INTERVAL_MS } from "../../src/options.ts";
import { RawPeer } from "../helpers/raw-peer.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error as Error;
  }
}

/**
 * A client speaking VoidRail on a bare DEALER socket, so a test sees every message the router
 * sends it, duplicates included (ClientDealer drops replies for ids it no longer waits on).
 */
class RawClient {
  readonly received: ClientMessage[] = [];
  private readonly socket = new Dealer({ logger: null });
  private readonly wakers = new Set<() => void>();

  constructor(address: string) {
    this.socket.connect(address);
    void (async () => {
      for await (const frames of this.socket) {
        const message = decodeMessage(frames, "client");
        if (!message.ok) throw message.error;
        this.received.push(message);
        for (const wake of [...this.wakers]) wake();
      }
    })();
  }

  request(id: number, method: string, args: unknown[], timeoutMs: number): void {
    void this.socket.send(encodeMessage("REQUEST", { id, method, timeoutMs }, encodeJsonOrThrow(args)));
  }

  info(id: number, topic: "router" | "services" | "clusters" | "queues"): void {
    void this.socket.send(encodeMessage("INFO", { id, topic }));
  }

  /** Messages carrying `id`. */
  about(id: number): ClientMessage[] {
    return this.received.filter((message) => (message.header as { id?: number }).id === id);
  }

  /** Waits for the first message carrying `id`. */
  reply(id: number, timeoutMs: number): Promise<ClientMessage> {
    return waitFor(
      new Promise<ClientMessage>((resolve) => {
        const check = () => {
          const found = this.about(id)[0];
          if (!found) return;
          this.wakers.delete(check);
          resolve(found);
        };
        this.wakers.add(check);
        check();
      }),
      { timeoutMs, message: `a reply for request ${id}` },
    );
  }

  close(): void {
    this.socket.close();
  }
}

function payloadOf(message: ClientMessage): unknown {
  if (message.kind !== "RESULT") throw new Error(`expected RESULT, got ${message.kind} ${JSON.stringify(message.header)}`);
  return JSON.parse(new TextDecoder().decode(message.payload));
}

for (const transport of TRANSPORTS) {
  describe(`router restart and dealer stop over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("after a router restart on the same address the dealer re-registers by itself and calls work again", async () => {
      const first = await cluster.router();
      const lines: string[] = [];
      const logger = {
        error: (message: string) => lines.push(`error: ${message}`),
        warn: (message: string) => lines.push(`warn: ${message}`),
        info: (message: string) => lines.push(`info: ${message}`),
      };
      const dealer = await cluster.dealer((options) => new EchoService(options), { logger });
      const client = await cluster.client();
      expect(await client.invoke("EchoService.echo", "before")).toBe("before");
      const address = first.address;

      await first.stop();
      await waitFor(() => !dealer.registered, { timeoutMs: 5_000, message: "the dealer to notice the router is gone" });
      await cluster.router({ address });

      await waitFor(() => dealer.registered, { timeoutMs: 10_000, message: "the dealer to re-register with the new router" });
      await waitFor(async () => "EchoService.echo" in (await client.discoverServices()), {
        timeoutMs: 10_000,
        message: "discovery to list EchoService.echo again",
      });
      expect(await client.invoke("EchoService.echo", "after")).toBe("after");
      const clusters = await client.discoverClusters();
      expect(clusters).toHaveLength(1);
      expect(clusters[0].id).toBe(dealer.dealerId!);
      // The log says it was lost, and then that it is back (not merely "registered" once more).
      // Only the registration story: the heartbeat connection may warn about its own reconnects.
      expect(lines.filter((line) => /registered|lost the router|reconnected/.test(line))).toEqual([
        expect.stringMatching(/^info: EchoService registered as EchoService-\d+ \(.+:\d+\) with \d+ method\(s\)$/),
        "warn: EchoService lost the router; reconnecting",
        expect.stringMatching(
          new RegExp(
            `^info: EchoService reconnected to the router after \\d+\\.\\d s; registered as ${dealer.dealerId} \\(.+:\\d+\\) with \\d+ method\\(s\\)$`,
          ),
        ),
      ]);
    });

    test("after a router restart, a dealer's late answer to a request of the old router does not answer a new request", async () => {
      const first = await cluster.router();
      const probe = new Probe();
      const dealer = await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();
      // Held until the gate opens, whatever happens to the connection (hold ignores aborts).
      const old = client.invoke("GatedService.hold", "old").catch((error: Error) => error);
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the old call to run" });
      const address = first.address;
      await first.stop();
      await waitFor(() => !dealer.registered, { timeoutMs: 5_000, message: "the dealer to notice the router is gone" });
      await cluster.router({ address });
      await waitFor(() => dealer.registered, { timeoutMs: 10_000, message: "the dealer to re-register with the new router" });

      const fresh = client.invoke("GatedService.hold", "new");
      await waitFor(() => probe.active === 2, { timeoutMs: 5_000, message: "the new call to run beside the old one" });
      // The old call answers first, to a request id of the old router.
      probe.gate.open();
      expect(await waitFor(fresh, { timeoutMs: 5_000, message: "the new call's answer" })).toEqual({ tag: "new", by: "gated" });
      expect(await old).toBeInstanceOf(Error);
    });

    test("while the router is away, dealers and clients try again at least once a second, so they are back within 2 s of its return", async () => {
      // Stand-ins that refuse every connection at once: each attempt fails, so the reconnect
      // delay grows to its cap (100, 200, 400, 800 ms, then the cap).
      const forDealer = await RawPeer.listen(uniqueEndpoint(transport));
      const forClient = await RawPeer.listen(uniqueEndpoint(transport));
      const dealer = new EchoService({ routerAddress: forDealer.endpoint, startTimeout: 0, logger: silentLogger });
      const client = new ClientDealer({ routerAddress: forClient.endpoint, connectTimeout: 0, logger: silentLogger });
      try {
        void dealer.start().catch(() => {});
        void client.connect().catch(() => {});
        // The gaps between attempts 5, 6 and 7, once the delay is at its cap: about
        // RECONNECT_MAX_INTERVAL_MS each, where an uncapped doubling would give 1.6 s and 3.2 s.
        // The smaller of the two must be within the cap and a scheduling slack: one late timer on
        // a loaded machine does not fail the test, a missing cap always does.
        const cappedGap = async (server: typeof forDealer) => {
          const attempts: number[] = [];
          for (let index = 0; index < 7; index++) {
            const peer = await server.accepted(5_000, index);
            attempts.push(Date.now());
            peer.destroy();
          }
          return Math.min(attempts[5] - attempts[4], attempts[6] - attempts[5]);
        };
        const [dealerGap, clientGap] = await Promise.all([cappedGap(forDealer), cappedGap(forClient)]);
        expect(dealerGap).toBeLessThanOrEqual(RECONNECT_MAX_INTERVAL_MS + 500);
        expect(clientGap).toBeLessThanOrEqual(RECONNECT_MAX_INTERVAL_MS + 500);
      } finally {
        await Promise.all([dealer.stop(), client.close()]);
        forDealer.close();
        forClient.close();
      }
    }, 20_000);

    test("dealer stop() drains: the call in flight finishes, new calls go elsewhere, then the dealer is gone", async () => {
      await cluster.router();
      const probe = new Probe();
      const leaving = await cluster.dealer((options) => new GatedService(options, probe, "leaving"), { instanceId: "leaving" });
      const client = await cluster.client();
      const inFlight = client.invoke("GatedService.hold", "in-flight");
      await waitFor(() => probe.active === 1, { timeoutMs: 5_000, message: "the call to run on the leaving dealer" });
      await cluster.dealer((options) => new GatedService(options, new Probe(), "staying"), { instanceId: "staying" });

      const stopped = leaving.stop();
      await waitFor(async () => (await client.discoverClusters()).some((dealer) => dealer.state === "draining"), {
        timeoutMs: 5_000,
        message: "the leaving dealer to be draining",
      });
      expect(await client.invoke("GatedService.quick", "meanwhile")).toEqual({ tag: "meanwhile", by: "staying" });

      probe.gate.open();
      expect(await inFlight).toEqual({ tag: "in-flight", by: "leaving" });
      await waitFor(stopped, { timeoutMs: 5_000, message: "stop() to resolve" });
      expect(leaving.registered).toBe(false);
      await waitFor(async () => (await client.discoverClusters()).length === 1, {
        timeoutMs: 5_000,
        message: "the leaving dealer to be unregistered",
      });
      expect((await client.discoverClusters())[0].instanceId).toBe("staying");
    });
  });

  describe(`dealer death over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("a dealer process killed mid-request: the request completes on another dealer", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO });
      const child = await cluster.spawnDealer("CrashService");
      const client = await cluster.client();

      const call = client.invoke<{ tag: string; pid: number }>("CrashService.slow", "job-1");
      await child.event((event) => event.event === "started" && event.tag === "job-1", 10_000, "the child to start job-1");
      await cluster.dealer((options) => new CrashService(options));
      child.kill("SIGKILL");

      expect(await waitFor(call, { timeoutMs: 10_000, message: "job-1 to complete on the in-process dealer" })).toEqual({
        tag: "job-1",
        pid: process.pid,
      });
      const clusters = await client.discoverClusters();
      expect(clusters).toHaveLength(1);
      expect(clusters[0].counts).toMatchObject({ dispatched: 1, succeeded: 1 });
    });

    test("the only dealer killed mid-request: the call fails at once instead of waiting for its timeout", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO });
      const child = await cluster.spawnDealer("CrashService");
      const client = await cluster.client({ timeout: 10 });

      const call = client.invoke("CrashService.slow", "orphan");
      await child.event((event) => event.event === "started" && event.tag === "orphan", 10_000, "the child to start the call");
      child.kill("SIGKILL");

      // The call did not ask to wait for a dealer (waitForDealer), and no dealer offers the method any more:
      // it must not sit in the queue until its 10 s timeout.
      const outcome = await waitFor(
        call.then(
          (value) => ({ value, error: undefined }),
          (error: Error) => ({ value: undefined, error }),
        ),
        {
          timeoutMs: 3_000,
          message: "the call to fail after its only dealer died (not waiting for a dealer: it did not set waitForDealer)",
        },
      );
      expect(outcome.error).toBeDefined();
      expect(outcome.error).not.toBeInstanceOf(TimeoutError);
      // DealerLostError says best what happened; NoSuchMethodError (PROTOCOL.md §7.1) is acceptable too.
      expect(outcome.error instanceof DealerLostError || outcome.error instanceof NoSuchMethodError).toBe(true);
    });

    test("the only dealer killed mid-request of a waitForDealer call: the call completes on the next dealer to register", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO });
      const child = await cluster.spawnDealer("CrashService");
      const client = await cluster.client({ timeout: 10 });

      const call = client.call<{ tag: string; pid: number }>("CrashService.slow", ["patient"], { waitForDealer: true });
      await child.event((event) => event.event === "started" && event.tag === "patient", 10_000, "the child to start the call");
      child.kill("SIGKILL");
      await waitFor(async () => (await client.discoverClusters()).length === 0, {
        timeoutMs: 5_000,
        message: "the killed dealer to be gone",
      });
      await cluster.dealer((options) => new CrashService(options));

      expect(await waitFor(call, { timeoutMs: 5_000, message: "the call to complete on the new dealer" })).toEqual({
        tag: "patient",
        pid: process.pid,
      });
    });

    test("a dealer process killed during a stream that already sent chunks: DealerLostError", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO });
      const child = await cluster.spawnDealer("CrashService");
      const client = await cluster.client();

      const stream = client.stream<number>("CrashService.slowStream", 2)[Symbol.asyncIterator]();
      expect((await stream.next()).value).toBe(0);
      expect((await stream.next()).value).toBe(1);
      await child.event((event) => event.event === "streamed", 10_000, "the child to finish its chunks");
      await cluster.dealer((options) => new CrashService(options));
      child.kill("SIGKILL");

      const error = await rejectionOf(waitFor(stream.next(), { timeoutMs: 10_000, message: "the stream to fail" }));
      expect(error).toBeInstanceOf(DealerLostError);
      expect((error as DealerLostError).data).toEqual({ dealerId: child.dealerId });
    });
  });

  describe(`heartbeat over ${transport}`, () => {
    const cluster = new Cluster(transport);
    let raw: RawClient | undefined;
    afterEach(async () => {
      raw?.close();
      raw = undefined;
      await cluster.dispose();
    });

    test("a frozen dealer is declared dead after heartbeatTimeout; its request completes elsewhere, and only once", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO, heartbeatTimeout: 1 });
      const child = await cluster.spawnDealer("CrashService");
      raw = new RawClient(cluster.address);

      raw.request(1, "CrashService.slow", ["frozen"], 20_000);
      await child.event((event) => event.event === "started" && event.tag === "frozen", 10_000, "the child to start the call");
      await cluster.dealer((options) => new CrashService(options));
      child.kill("SIGSTOP");
      const frozenAt = performance.now();

      const reply = await raw.reply(1, 10_000);
      const deadAfterMs = performance.now() - frozenAt;
      expect(payloadOf(reply)).toEqual({ tag: "frozen", pid: process.pid });
      // Not before the timeout's worth of silence, and long before the 30 s default.
      expect(deadAfterMs).toBeGreaterThanOrEqual(500);
      expect(deadAfterMs).toBeLessThan(5_000);

      // Thaw it: it notices the lost connection, ends the old call, answers it, and registers again.
      child.kill("SIGCONT");
      await child.event((event) => event.event === "finished" && event.tag === "frozen", 10_000, "the thawed child to end the old call");
      await child.event(
        (event) => event.event === "registered" && event.dealerId !== child.dealerId,
        10_000,
        "the thawed child to register again",
      );
      // A call on the thawed child's new connection: its stale reply went to the router before this answer.
      const client = await cluster.client();
      await waitFor(async () => (await client.invoke("CrashService.whoami")) === child.pid, {
        timeoutMs: 10_000,
        message: "a call to run on the thawed child",
      });
      // Whatever the router sent the raw client before this answer has arrived by now.
      raw.info(2, "router");
      await raw.reply(2, 5_000);

      expect(raw.about(1)).toHaveLength(1);
    });
  });
}
