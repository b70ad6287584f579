/**
 * Drains that lose nothing: a request that crossed a dealer's DRAIN, or that a drained dealer
 * still held when it said BYE, never ran, so it runs on another dealer (or fails saying no dealer
 * is left); a stopping router refuses a newly connecting client at once; `await using` closes
 * routers, dealers and clients.
 *
 *   ./node_modules/.bin/bun test test/integration/drain.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import {
  ClientDealer,
  NoSuchMethodError,
  ServiceRouter,
  ShuttingDownError,
  silentLogger,
  type ServiceDealerOptions,
} from "../../src/index.ts";
import { type DealerMessage, decodeMessage, encodeMessage, PROTOCOL_VERSION } from "../../src/protocol/index.ts";
import { Dealer, Router } from "../../src/zmtp/index.ts";
import { EchoService, GatedService, Probe } from "../fixtures/services.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const STEP_MS = 5_000;

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error as Error;
  }
}

/** A dealer speaking VoidRail by hand on a bare DEALER socket: it does exactly what a test says. */
class HandDealer {
  readonly received: DealerMessage[] = [];
  private readonly socket = new Dealer({ logger: null });
  private readonly wakers = new Set<() => void>();

  constructor(address: string) {
    this.socket.connect(address);
    void (async () => {
      for await (const frames of this.socket) {
        const message = decodeMessage(frames, "dealer");
        if (!message.ok) throw message.error;
        this.received.push(message);
        for (const wake of [...this.wakers]) wake();
      }
    })();
  }

  async register(service: string, methods: string[]): Promise<void> {
    const entries = Object.fromEntries(methods.map((m) => [`${service}.${m}`, { stream: false }]));
    await this.socket.send(encodeMessage("HELLO", { role: "dealer", version: PROTOCOL_VERSION, service, methods: entries }));
    await this.next("WELCOME");
  }

  /** The next message of `kind` not yet taken. */
  async next<K extends DealerMessage["kind"]>(kind: K): Promise<Extract<DealerMessage, { kind: K }>> {
    const take = () => {
      const index = this.received.findIndex((m) => m.kind === kind);
      return index < 0 ? undefined : (this.received.splice(index, 1)[0] as Extract<DealerMessage, { kind: K }>);
    };
    let found = take();
    if (found) return found;
    let wake = () => {};
    const arrived = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const waker = () => {
      found ??= take();
      if (found) wake();
    };
    this.wakers.add(waker);
    try {
      await waitFor(arrived, { timeoutMs: STEP_MS, message: `the router to send ${kind}` });
    } finally {
      this.wakers.delete(waker);
    }
    return found!;
  }

  send(frames: Uint8Array[]): Promise<void> {
    return this.socket.send(frames) as Promise<void>;
  }

  close(): void {
    this.socket.close();
  }
}

for (const transport of TRANSPORTS) {
  describe(`drains over ${transport}`, () => {
    const cluster = new Cluster(transport);
    const hands: HandDealer[] = [];
    afterEach(async () => {
      for (const hand of hands.splice(0)) hand.close();
      await cluster.dispose();
    });

    async function handDealer(): Promise<HandDealer> {
      const hand = new HandDealer(cluster.address);
      hands.push(hand);
      await hand.register("EchoService", ["echo"]);
      return hand;
    }

    test("a request a drained dealer still held at its BYE runs on another dealer, even with maxRedispatch 0", async () => {
      await cluster.router({ maxRedispatch: 0 });
      const leaving = await handDealer();
      const client = await cluster.client();
      const call = client.invoke("EchoService.echo", "square 3");
      await leaving.next("REQUEST");
      const stayer = await cluster.dealer((options) => new EchoService(options));
      await leaving.send(encodeMessage("DRAIN", {}));
      await leaving.send(encodeMessage("BYE", {}));
      expect(await waitFor(call, { timeoutMs: STEP_MS, message: "the call to finish on the other dealer" })).toBe("square 3");
      const clusters = await client.discoverClusters();
      expect(clusters.map((dealer) => [dealer.id, dealer.counts.dispatched])).toEqual([[stayer.dealerId!, 1]]);
    });

    test("a request refused with notStarted after DRAIN waits for the next dealer and is not reported lost", async () => {
      await cluster.router({ maxRedispatch: 0 });
      const draining = await handDealer();
      const client = await cluster.client();
      const call = client.invoke("EchoService.echo", "late");
      const request = await draining.next("REQUEST");
      await draining.send(encodeMessage("DRAIN", {}));
      await draining.send(
        encodeMessage("ERROR", {
          id: request.header.id,
          code: "SHUTTING_DOWN",
          message: "draining: not started",
          data: { notStarted: true },
        }),
      );
      await waitFor(async () => (await client.getQueueStatus())["EchoService.echo"]?.queueLength === 1, {
        timeoutMs: STEP_MS,
        message: "the refused request to wait in the queue again",
      });
      await cluster.dealer((options) => new EchoService(options));
      expect(await waitFor(call, { timeoutMs: STEP_MS, message: "the call to run on the new dealer" })).toBe("late");
      const [first] = await client.discoverClusters();
      expect(first).toMatchObject({ state: "draining", counts: { dispatched: 1, succeeded: 0, failed: 0 } });
    });

    test("when the drained dealer was the last one, the call fails saying no dealer is left, not DEALER_LOST", async () => {
      await cluster.router();
      const leaving = await handDealer();
      const client = await cluster.client();
      const call = client.invoke("EchoService.echo", "orphan");
      await leaving.next("REQUEST");
      await leaving.send(encodeMessage("DRAIN", {}));
      await leaving.send(encodeMessage("BYE", {}));
      const error = await waitFor(rejectionOf(call), { timeoutMs: STEP_MS, message: "the call to fail" });
      expect(error).toBeInstanceOf(NoSuchMethodError);
      expect(error.message).toContain("drained and left without starting the call");
    });

    test("a stopping router refuses a client that connects, at once, with SHUTTING_DOWN", async () => {
      const router = await cluster.router({ shutdownGrace: 30 });
      const gated = await cluster.dealer((options) => new GatedService(options));
      const first = await cluster.client();
      const held = first.invoke("GatedService.hold", "running");
      await waitFor(() => gated.probe.active === 1, { timeoutMs: STEP_MS, message: "the held call to start" });
      const stopped = router.stop();
      // Its timeout is 30 s: the refusal must come from the router, not from waiting.
      const late = cluster.clientUnconnected({ timeout: 30 });
      const error = await waitFor(rejectionOf(late.connect()), { timeoutMs: STEP_MS, message: "the late client to be refused" });
      expect(error).toBeInstanceOf(ShuttingDownError);
      gated.probe.gate.open();
      expect(await held).toMatchObject({ tag: "running" });
      await stopped;
    });
  });
}

describe("a ServiceDealer draining", () => {
  test("refuses a request that crosses its DRAIN with SHUTTING_DOWN and notStarted, runs none of it, then says BYE", async () => {
    const router = new Router({ logger: null });
    await router.bind(uniqueEndpoint("tcp"));
    const inbox: { id: Buffer; message: ReturnType<typeof decodeMessage<"router">> }[] = [];
    const wakers = new Set<() => void>();
    void (async () => {
      for await (const [id, ...frames] of router) {
        inbox.push({ id, message: decodeMessage(frames, "router") });
        for (const wake of [...wakers]) wake();
      }
    })();
    const take = async (kind: string) => {
      await waitFor(() => inbox.some((entry) => entry.message.ok && entry.message.kind === kind), {
        timeoutMs: STEP_MS,
        message: `the dealer to send ${kind}`,
      });
      const index = inbox.findIndex((entry) => entry.message.ok && entry.message.kind === kind);
      return inbox.splice(index, 1)[0];
    };
    const probe = new Probe();
    const dealer = new GatedService(
      { routerAddress: router.lastEndpoint!, logger: silentLogger, startTimeout: 5 } as ServiceDealerOptions,
      probe,
    );
    const started = dealer.start();
    try {
      const hello = await take("HELLO");
      await router.send([
        hello.id,
        ...encodeMessage("WELCOME", {
          role: "dealer",
          version: PROTOCOL_VERSION,
          dealerId: "GatedService-1",
          heartbeatIntervalMs: 0,
          heartbeatTimeoutMs: 0,
        }),
      ]);
      await started;
      await router.send([hello.id, ...encodeMessage("REQUEST", { id: 1, method: "GatedService.hold" }, Buffer.from('["first"]'))]);
      await waitFor(() => probe.active === 1, { timeoutMs: STEP_MS, message: "the first request to start" });
      const stopped = dealer.stop();
      await take("DRAIN");
      await router.send([hello.id, ...encodeMessage("REQUEST", { id: 2, method: "GatedService.quick" }, Buffer.from('["second"]'))]);
      const refusal = await take("ERROR");
      expect(refusal.message.ok && refusal.message.header).toMatchObject({ id: 2, code: "SHUTTING_DOWN", data: { notStarted: true } });
      expect(probe.events).not.toContain("start:second");
      probe.gate.open();
      const result = await take("RESULT");
      expect(result.message.ok && result.message.header).toEqual({ id: 1 });
      await take("BYE");
      await stopped;
    } finally {
      probe.gate.open();
      await dealer.stop();
      router.close();
    }
  });
});

describe("await using", () => {
  test("closes the client, stops the dealer and then the router when the scope ends", async () => {
    const order: string[] = [];
    class TracedRouter extends ServiceRouter {
      override async stop() {
        order.push("router");
        await super.stop();
      }
    }
    class TracedEcho extends EchoService {
      override async stop() {
        order.push("dealer");
        await super.stop();
      }
    }
    class TracedClient extends ClientDealer {
      override async close() {
        order.push("client");
        await super.close();
      }
    }
    let address = "";
    {
      await using router = new TracedRouter({ address: "tcp://127.0.0.1:0", logger: silentLogger, shutdownGrace: 0.2 });
      await router.start();
      address = router.address;
      await using dealer = new TracedEcho({ routerAddress: address, logger: silentLogger, startTimeout: 5 });
      await dealer.start();
      await using scoped = new TracedClient({ routerAddress: address, logger: silentLogger, timeout: 5 });
      expect(await scoped.invoke(`${dealer.serviceName}.echo`, "inside")).toBe("inside");
    }
    expect(order).toEqual(["client", "dealer", "router"]);
    // The router's port is free again.
    const again = new ServiceRouter({ address, logger: silentLogger });
    await again.start();
    await again.stop();
  });
});
