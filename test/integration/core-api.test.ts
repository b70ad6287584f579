/**
 * The seed's API end to end, over tcp and ipc: discovery, unary calls, streams, monitoring, and
 * the ways of declaring service methods (decorators, inheritance, serviceName, plain JS,
 * keyword arguments, validated parameters).
 *
 *   ./node_modules/.bin/bun test test/integration/core-api.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { RouterMode, ValidationError } from "../../src/index.ts";
import { BaseGreeter, EchoService, InheritingService, PlainService } from "../fixtures/services.ts";
import { CURVE_TCP, Cluster, TRANSPORTS } from "../helpers/cluster.ts";

// Once more with CURVE on every connection (issue 13): the same API, encrypted.
for (const transport of [...TRANSPORTS, CURVE_TCP]) {
  describe(`core API over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("discoverServices lists every method with its description, params schema and stream flag", async () => {
      await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      const services = await client.discoverServices();

      expect(Object.keys(services).sort()).toEqual([
        "EchoService.add",
        "EchoService.asyncEcho",
        "EchoService.countDown",
        "EchoService.createUser",
        "EchoService.echo",
        "EchoService.greet",
        "EchoService.square",
        "EchoService.streamNumbers",
      ]);
      expect(services["EchoService.echo"]).toEqual({ description: "Returns its argument", stream: false, instances: 2 });
      expect(services["EchoService.add"].description).toBe("Add two numbers");
      expect(services["EchoService.add"].stream).toBe(false);
      expect(services["EchoService.add"].params).toMatchObject({
        type: "array",
        items: [{ type: "number" }, { type: "number" }],
        minItems: 2,
      });
      expect(services["EchoService.createUser"].params).toMatchObject({
        type: "array",
        items: [
          {
            type: "object",
            properties: { name: { type: "string", minLength: 1 }, age: { type: "integer", minimum: 0 } },
            required: ["name", "age"],
          },
        ],
        minItems: 1,
      });
      expect(services["EchoService.streamNumbers"]).toMatchObject({ description: "Counts from start to end", stream: true });
      expect(services["EchoService.countDown"].stream).toBe(true);
      expect(services["EchoService.asyncEcho"].stream).toBe(false);
    });

    test("discoverClusters has one entry per dealer instance", async () => {
      await cluster.router();
      const first = await cluster.dealer((options) => new EchoService(options), { instanceId: "echo-a" });
      const second = await cluster.dealer((options) => new EchoService(options), { instanceId: "echo-b" });
      await cluster.dealer((options) => new PlainService(options), { instanceId: "plain-a" });
      const client = await cluster.client();

      const clusters = await client.discoverClusters();

      expect(clusters.map((dealer) => dealer.instanceId).sort()).toEqual(["echo-a", "echo-b", "plain-a"]);
      expect(new Set(clusters.map((dealer) => dealer.id)).size).toBe(3);
      const echoA = clusters.find((dealer) => dealer.instanceId === "echo-a")!;
      expect(echoA).toMatchObject({ id: first.dealerId, service: "EchoService", state: "active", busy: false, load: 0, maxConcurrent: 1 });
      expect(echoA.methods).toContain("EchoService.echo");
      expect(echoA.counts).toEqual({ dispatched: 0, succeeded: 0, failed: 0 });
      expect(Number.isNaN(Date.parse(echoA.lastHeartbeat))).toBe(false);
      expect(clusters.find((dealer) => dealer.instanceId === "echo-b")!.id).toBe(second.dealerId!);
      expect(clusters.find((dealer) => dealer.instanceId === "plain-a")!.service).toBe("PlainService");
    });

    test("invoke calls sync and async methods and returns their results", async () => {
      await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      expect(await client.invoke("EchoService.echo", "Hello World")).toBe("Hello World");
      expect(await client.invoke("EchoService.asyncEcho", { nested: [1, "two", null] })).toEqual({ nested: [1, "two", null] });
      expect(await client.invoke("EchoService.add", 5, 3)).toBe(8);
      expect(await client.call("EchoService.square", [7])).toEqual({ n: 7, square: 49 });
    });

    test("an async-generator method streams its chunks in order", async () => {
      await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      const chunks: number[] = [];
      for await (const n of client.stream<number>("EchoService.streamNumbers", 0, 200)) chunks.push(n);

      expect(chunks).toEqual(Array.from({ length: 200 }, (_, i) => i));
    });

    test("a sync-generator method streams its chunks in order", async () => {
      await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      const chunks: number[] = [];
      for await (const n of client.stream<number>("EchoService.countDown", 5)) chunks.push(n);

      expect(chunks).toEqual([5, 4, 3, 2, 1]);
    });

    test("getRouterInfo reports mode, address, uptime, counts and auth requirements", async () => {
      const router = await cluster.router({ routerMode: RouterMode.LOAD_BALANCE });
      await cluster.dealer((options) => new EchoService(options));
      await cluster.dealer((options) => new PlainService(options));
      const client = await cluster.client();
      await client.invoke("EchoService.echo", 1);
      await client.invoke("PlainService.double", 2);

      const info = await client.getRouterInfo();

      expect(info).toMatchObject({
        mode: "load_balance",
        address: router.address,
        activeServices: 2,
        activeDealers: 2,
        busyDealers: 0,
        idleDealers: 2,
        totalRequests: 2,
        queuedRequests: 0,
        inProgressRequests: 0,
        requireDealerAuth: false,
        requireClientAuth: false,
      });
      expect(info.totalResponses).toBeGreaterThanOrEqual(2);
      expect(info.uptimeSeconds).toBeGreaterThanOrEqual(0);
      expect(info.uptimeSeconds).toBeLessThan(60);
      expect(info.address).toStartWith(`${transport === CURVE_TCP ? "tcp" : transport}://`);
      if (transport === "tcp") expect(info.address).not.toEndWith(":0");
    });

    test("getRouterInfo reports fifo mode by default", async () => {
      await cluster.router();
      const client = await cluster.client();
      expect((await client.getRouterInfo()).mode).toBe("fifo");
    });

    test("getQueueStatus has an entry per registered method", async () => {
      await cluster.router();
      await cluster.dealer((options) => new PlainService(options));
      await cluster.dealer((options) => new PlainService(options));
      const client = await cluster.client();

      const queues = await client.getQueueStatus();

      expect(queues).toEqual({
        "PlainService.double": { queueLength: 0, availableServices: 2, busyServices: 0 },
        "PlainService.letters": { queueLength: 0, availableServices: 2, busyServices: 0 },
      });
    });

    test("a subclass offers its parent's service methods, overrides included", async () => {
      await cluster.router();
      await cluster.dealer((options) => new InheritingService(options));
      const client = await cluster.client();

      const services = await client.discoverServices();

      expect(Object.keys(services).sort()).toEqual(["InheritingService.extra", "InheritingService.hello", "InheritingService.overridden"]);
      expect(services["InheritingService.hello"].description).toBe("Inherited from BaseGreeter");
      expect(await client.invoke("InheritingService.hello", "Ann")).toBe("hello Ann from child");
      expect(await client.invoke("InheritingService.overridden")).toBe("child");
      expect(await client.invoke("InheritingService.extra")).toBe("extra");
    });

    test("the serviceName option replaces the class name in method names", async () => {
      await cluster.router();
      await cluster.dealer((options) => new BaseGreeter(options), { serviceName: "Greeter" });
      const client = await cluster.client();

      expect(Object.keys(await client.discoverServices()).sort()).toEqual(["Greeter.hello", "Greeter.overridden"]);
      expect(await client.invoke("Greeter.hello", "Bo")).toBe("hello Bo from base");
      expect((await client.discoverClusters())[0].service).toBe("Greeter");
    });

    test("registerServiceMethod exposes plain JavaScript methods, and only those", async () => {
      await cluster.router();
      await cluster.dealer((options) => new PlainService(options));
      const client = await cluster.client();

      const services = await client.discoverServices();

      expect(Object.keys(services).sort()).toEqual(["PlainService.double", "PlainService.letters"]);
      expect(services["PlainService.double"]).toMatchObject({ description: "Doubles a number", stream: false });
      expect(services["PlainService.letters"].stream).toBe(true);
      expect(await client.invoke("PlainService.double", 21)).toBe(42);
      const letters: string[] = [];
      for await (const letter of client.stream<string>("PlainService.letters", "abc")) letters.push(letter);
      expect(letters).toEqual(["a", "b", "c"]);
    });

    test("a method taking one object (keyword style) receives it as one object", async () => {
      await cluster.router();
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      const reply = await client.invoke<{ received: unknown; text: string; argumentCount: number }>("EchoService.greet", {
        name: "John",
        greeting: "Hi",
      });

      expect(reply).toEqual({ received: { name: "John", greeting: "Hi" }, text: "Hi, John!", argumentCount: 1 });
    });

    test("arguments failing the method's params schema are a ValidationError naming the path", async () => {
      await cluster.router();
      const echo = await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      const wrongType = await client.invoke("EchoService.createUser", { name: "Ann", age: "old" }).catch((error: unknown) => error);
      expect(wrongType).toBeInstanceOf(ValidationError);
      expect((wrongType as ValidationError).path).toBe("args.0.age");
      expect((wrongType as ValidationError).data).toMatchObject({ path: "args.0.age", issues: [{ path: "args.0.age" }] });

      const emptyName = await client.invoke("EchoService.createUser", { name: "", age: 3 }).catch((error: unknown) => error);
      expect(emptyName).toBeInstanceOf(ValidationError);
      expect((emptyName as ValidationError).path).toBe("args.0.name");

      const notANumber = await client.invoke("EchoService.add", 1, "2").catch((error: unknown) => error);
      expect(notANumber).toBeInstanceOf(ValidationError);
      expect((notANumber as ValidationError).path).toBe("args.1");

      expect(await client.invoke("EchoService.createUser", { name: "Ann", age: 30 })).toEqual({ id: 1, name: "Ann", age: 30 });
      expect(echo.registered).toBe(true);
    });
  });
}
