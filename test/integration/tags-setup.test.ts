/**
 * Tags and requirements, setup()/teardown() and the recycling hook, in one process over real
 * sockets: a call that requires tags runs only on a dealer that has them, in FIFO order among
 * those, fails naming the requirement when none has them (or waits for one); a dealer in setup()
 * is registered but gets no work until setup() ends; teardown() runs once after the drain.
 *
 *   ./node_modules/.bin/bun test test/integration/tags-setup.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NoSuchMethodError, type RecycleReason, ServiceDealer, type ServiceDealerOptions, serviceMethod } from "../../src/index.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

const STEP_MS = 5_000;

/** Says which dealer ran a call (its tag `name`) and in which order it started calls there. */
class TaggedService extends ServiceDealer {
  started = 0;

  @serviceMethod
  async where(ms: number, label: string) {
    const order = ++this.started;
    await new Promise((resolve) => setTimeout(resolve, ms));
    return { name: this.tags.name, order, label };
  }
}

/** A setup() the test opens by hand, and a teardown() it counts. */
class ModelService extends ServiceDealer {
  static setupCalls = 0;
  static teardownCalls = 0;
  model: string | undefined;
  private release: (() => void) | undefined;
  readonly setupEntered: Promise<void>;
  private entered: () => void = () => {};

  constructor(
    options: ServiceDealerOptions,
    private readonly failWith?: string,
  ) {
    super(options);
    this.setupEntered = new Promise<void>((resolve) => {
      this.entered = resolve;
    });
  }

  /** Lets setup() finish. */
  finishSetup(): void {
    this.release?.();
  }

  override async setup() {
    ModelService.setupCalls++;
    await new Promise<void>((resolve) => {
      this.release = resolve;
      this.entered();
    });
    if (this.failWith) throw new Error(this.failWith);
    this.model = "loaded";
  }

  override async teardown() {
    ModelService.teardownCalls++;
    this.model = undefined;
  }

  @serviceMethod
  predict(x: number) {
    return { model: this.model, y: x * 2 };
  }
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error as Error;
  }
}

for (const transport of TRANSPORTS) {
  describe(`tags and requirements (${transport})`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("a call that requires tags runs only on a dealer that has them; without a requirement any dealer serves", async () => {
      await cluster.router({ routerMode: "load_balance" });
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "a", gpu: "h200", region: "eu" } });
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "b", gpu: "a100", region: "eu" } });
      const client = await cluster.client();
      const h200 = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          client.call<{ name: string }>("TaggedService.where", [1, `h${i}`], { require: { gpu: "h200" } }),
        ),
      );
      expect(new Set(h200.map((r) => r.name))).toEqual(new Set(["a"]));
      const both = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          client.call<{ name: string }>("TaggedService.where", [1, `e${i}`], { require: { region: "eu", gpu: "a100" } }),
        ),
      );
      expect(new Set(both.map((r) => r.name))).toEqual(new Set(["b"]));
      const any = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client.call<{ name: string }>("TaggedService.where", [20, `x${i}`])),
      );
      expect(new Set(any.map((r) => r.name))).toEqual(new Set(["a", "b"]));
      // Streams take the option too, and discovery shows the tags.
      const clusters = await client.discoverClusters();
      expect(clusters.map((c) => c.tags?.name).sort()).toEqual(["a", "b"]);
    });

    test("no dealer has the tags: NoSuchMethodError naming the requirement; with waitForDealer the call waits for one", async () => {
      await cluster.router();
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "a", gpu: "a100" } });
      const client = await cluster.client();
      const error = await rejectionOf(client.call("TaggedService.where", [1, "x"], { require: { gpu: "h200" } }));
      expect(error).toBeInstanceOf(NoSuchMethodError);
      expect(error.message).toContain("gpu=h200");
      expect((error as NoSuchMethodError).data).toEqual({ method: "TaggedService.where", require: { gpu: "h200" } });
      const waiting = client.call<{ name: string }>("TaggedService.where", [1, "w"], { require: { gpu: "h200" }, waitForDealer: true });
      // A call any dealer may run is not held up by the one that waits for an h200.
      expect((await client.call<{ name: string }>("TaggedService.where", [1, "free"])).name).toBe("a");
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "c", gpu: "h200" } });
      expect((await waitFor(waiting, { timeoutMs: STEP_MS, message: "the waiting call" })).name).toBe("c");
    });

    test("calls that require tags keep FIFO order among the dealers that have them", async () => {
      await cluster.router({ routerMode: "fifo" });
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "a", gpu: "h200" } });
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "b", gpu: "a100" } });
      const client = await cluster.client();
      const calls = Array.from({ length: 6 }, (_, i) =>
        client.call<{ name: string; order: number; label: string }>("TaggedService.where", [30, `q${i}`], { require: { gpu: "h200" } }),
      );
      const results = await Promise.all(calls);
      expect(results.map((r) => r.name)).toEqual(Array(6).fill("a"));
      expect(results.map((r) => r.order)).toEqual([1, 2, 3, 4, 5, 6]);
    });

    test("a waiting call whose only matching dealer leaves fails naming the requirement", async () => {
      await cluster.router({ routerMode: "fifo" });
      const h200 = await cluster.dealer((o) => new TaggedService(o), { tags: { name: "a", gpu: "h200" } });
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "b", gpu: "a100" } });
      const client = await cluster.client();
      const running = client.call("TaggedService.where", [300, "r"], { require: { gpu: "h200" } });
      const queued = rejectionOf(client.call("TaggedService.where", [1, "q"], { require: { gpu: "h200" } }));
      await waitFor(async () => (await client.getQueueStatus())["TaggedService.where"]?.queueLength === 1, {
        timeoutMs: STEP_MS,
        message: "the second call to wait",
      });
      await h200.stop();
      expect(await running).toMatchObject({ label: "r" });
      const error = await queued;
      expect(error).toBeInstanceOf(NoSuchMethodError);
      expect(error.message).toContain("gpu=h200");
    });

    test("a task that requires tags runs on a dealer that has them; none: NoSuchMethodError naming the requirement", async () => {
      await cluster.router({ taskStore: "memory" });
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "a", gpu: "a100" } });
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "b", gpu: "h200" } });
      const client = await cluster.client();
      const tasks = await Promise.all(
        Array.from({ length: 4 }, (_, i) => client.submit("TaggedService.where", [1, `t${i}`], { require: { gpu: "h200" } })),
      );
      for (const task of tasks) {
        const result = await client.waitTask<{ name: string }>(task.id, { timeout: 5 });
        expect(result.name).toBe("b");
      }
      const error = await rejectionOf(client.submit("TaggedService.where", [1, "x"], { require: { gpu: "b200" } }));
      expect(error).toBeInstanceOf(NoSuchMethodError);
      expect(error.message).toContain("gpu=b200");
    });

    test("bad tags or requirements are refused with a ValidationError naming the field", async () => {
      await cluster.router();
      expect(() => new TaggedService({ tags: { "bad name": "x" } })).toThrow(/tags/);
      await cluster.dealer((o) => new TaggedService(o), { tags: { name: "a" } });
      const client = await cluster.client();
      const error = await rejectionOf(client.call("TaggedService.where", [1, "x"], { require: { gpu: "has space" } }));
      expect(error.name).toBe("ValidationError");
      expect(error.message).toContain("require");
    });
  });

  describe(`setup() and teardown() (${transport})`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("a dealer in setup() is shown as setup and takes no work; a call made meanwhile waits and runs once setup() ends", async () => {
      await cluster.router();
      const client = await cluster.client();
      const service = cluster.dealerStopped((o) => new ModelService(o));
      const started = service.start();
      await waitFor(service.setupEntered, { timeoutMs: STEP_MS, message: "setup() to begin" });
      const [info] = await client.discoverClusters();
      expect(info.state).toBe("setup");
      expect((await client.getQueueStatus())["ModelService.predict"]).toMatchObject({ availableServices: 0 });
      const call = client.call<{ model: string; y: number }>("ModelService.predict", [21]);
      await waitFor(async () => (await client.getQueueStatus())["ModelService.predict"]?.queueLength === 1, {
        timeoutMs: STEP_MS,
        message: "the call to wait at the router",
      });
      expect(service.registered).toBe(false);
      service.finishSetup();
      await waitFor(started, { timeoutMs: STEP_MS, message: "start() to resolve after setup()" });
      expect(await call).toEqual({ model: "loaded", y: 42 });
      expect((await client.discoverClusters())[0].state).toBe("active");
      const teardownsBefore = ModelService.teardownCalls;
      await service.stop();
      await service.stop();
      expect(ModelService.teardownCalls).toBe(teardownsBefore + 1);
    });

    test("a setup() that throws: start() rejects with it, the dealer leaves, teardown() does not run", async () => {
      await cluster.router();
      const client = await cluster.client();
      const service = cluster.dealerStopped((o) => new ModelService(o, "no model file"));
      const started = service.start();
      await waitFor(service.setupEntered, { timeoutMs: STEP_MS, message: "setup() to begin" });
      const teardownsBefore = ModelService.teardownCalls;
      service.finishSetup();
      const error = await rejectionOf(started);
      expect(error.message).toBe("setup() failed: no model file");
      await waitFor(async () => (await client.discoverClusters()).length === 0, { timeoutMs: STEP_MS, message: "the dealer to leave" });
      await service.stop();
      expect(ModelService.teardownCalls).toBe(teardownsBefore);
    });

    test("stop() during setup(): it waits for setup() to end, leaves without taking work, and runs teardown() once", async () => {
      await cluster.router();
      const client = await cluster.client();
      const service = cluster.dealerStopped((o) => new ModelService(o));
      const started = service.start();
      await waitFor(service.setupEntered, { timeoutMs: STEP_MS, message: "setup() to begin" });
      const teardownsBefore = ModelService.teardownCalls;
      const stopped = service.stop();
      service.finishSetup();
      await waitFor(Promise.all([started, stopped]), { timeoutMs: STEP_MS, message: "start() and stop() to end" });
      expect(ModelService.teardownCalls).toBe(teardownsBefore + 1);
      expect(await client.discoverClusters()).toEqual([]);
    });

    test("maxCalls: the hook hears once that the limit passed; without a hook the dealer drains and stops", async () => {
      await cluster.router();
      const heard: RecycleReason[] = [];
      await cluster.dealer((o) => new TaggedService(o), { maxCalls: 3, onRecycle: (reason) => heard.push(reason) });
      const client = await cluster.client();
      for (let i = 0; i < 5; i++) await client.call("TaggedService.where", [1, `c${i}`]);
      expect(heard).toHaveLength(1);
      expect(heard[0]).toMatchObject({ limit: "maxCalls", calls: 3, message: "served 3 calls (maxCalls 3)" });
      const alone = await cluster.dealer((o) => new TaggedService(o), { maxCalls: 2, tags: { name: "self" } });
      await client.call("TaggedService.where", [1, "s1"], { require: { name: "self" } });
      await client.call("TaggedService.where", [1, "s2"], { require: { name: "self" } });
      await waitFor(() => !alone.registered, { timeoutMs: STEP_MS, message: "the dealer to stop itself after 2 calls" });
    });
  });
}

describe("the gpus option (library users)", () => {
  const cluster = new Cluster("tcp");
  const saved = { path: process.env.PATH, cuda: process.env.CUDA_VISIBLE_DEVICES, gpu: process.env.VOIDRAIL_GPU };
  let fakeBin = "";
  afterEach(async () => {
    await cluster.dispose();
    process.env.PATH = saved.path;
    for (const [name, value] of [
      ["CUDA_VISIBLE_DEVICES", saved.cuda],
      ["VOIDRAIL_GPU", saved.gpu],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    if (fakeBin) rmSync(fakeBin, { recursive: true, force: true });
  });

  test("gpus sets CUDA_VISIBLE_DEVICES and VOIDRAIL_GPU before setup(), shows in discovery, and tags the model from nvidia-smi -L", async () => {
    fakeBin = mkdtempSync(join(tmpdir(), "voidrail-fake-smi-"));
    writeFileSync(
      join(fakeBin, "nvidia-smi"),
      "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-00000000-0000-0000-0000-000000000000)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-11111111-1111-1111-1111-111111111111)'\n",
    );
    chmodSync(join(fakeBin, "nvidia-smi"), 0o755);
    process.env.PATH = `${fakeBin}:${saved.path ?? "/usr/bin:/bin"}`;
    await cluster.router();
    const dealer = await cluster.dealer((o) => new TaggedService(o), { gpus: "1", tags: { name: "lib" } });
    expect(process.env.CUDA_VISIBLE_DEVICES).toBe("1");
    expect(process.env.VOIDRAIL_GPU).toBe("1");
    expect(dealer.gpus).toEqual(["1"]);
    const client = await cluster.client();
    const [info] = await client.discoverClusters();
    expect(info.gpus).toEqual(["1"]);
    expect(info.tags).toEqual({ name: "lib", gpu: "h200" });
  });
});
