/**
 * The rest of the Celery demo, mapped to what VoidRail already has: priority, expires,
 * autoretry_for with backoff, task_routes to dedicated workers, `inspect active` /
 * `inspect registered`, and `control revoke`.
 * Run: bun examples/celery-demo/options.ts
 */
import { ServiceDealer, serviceMethod, silentLogger } from "voidrail";
import { log, startDemo } from "./demo.ts";

const { router, client, stop } = await startDemo();

// add.apply_async((2, 2), priority=9): 0..9, higher first (FIFO among equals).
const urgent = await client.submit("DemoTasks.add", [2, 2], { priority: 9 });
console.log("priority:", (await client.getTask(urgent.id)).priority, "->", await client.waitTask(urgent.id));

// add.apply_async((2, 2), expires=now + 10 s): not started by then, it ends "expired".
const expiring = await client.submit("DemoTasks.add", [2, 2], { expires: 10 });
await client.waitTask(expiring.id);
console.log("expires:", (await client.getTask(expiring.id)).expiresAt !== undefined ? "set" : "missing");

// @app.task(autoretry_for=(Exception,), retry_kwargs={'max_retries': 3, 'countdown': 5}) with backoff:
// retryOn absent retries any failure a retry can fix (retryOn: ["TimeoutError", "ECONNRESET"] narrows it).
const fetched = await client.submit("DemoTasks.fetchUrl", ["https://example.com"], {
  retries: 3,
  retryDelay: 0.05,
  backoff: "exponential",
});
console.log(
  "autoretry:",
  JSON.stringify(await client.waitTask(fetched.id)),
  `after ${(await client.getTask(fetched.id)).attempts} attempts`,
);

// task_routes = {'tasks.slow_task': {'queue': 'slow_queue'}} + `celery worker --queues=slow_queue`:
// in VoidRail a method belongs to a service, and a service's dealers are its dedicated workers.
class SlowQueue extends ServiceDealer {
  @serviceMethod
  slowTask(n: number) {
    return `slow worker ${process.pid} did ${n}`;
  }
}
const slowWorker = new SlowQueue({ routerAddress: router.address, instanceId: "slow-worker-1", logger: silentLogger });
await slowWorker.start();
const routed = await client.submit("SlowQueue.slowTask", [7]);
console.log("task_routes:", (await client.waitTask<string>(routed.id)).replace(String(process.pid), "PID"));
const clusters = await client.discoverClusters();
console.log(
  "dedicated workers:",
  JSON.stringify(
    Object.values(clusters)
      .flat()
      .filter((d) => d.instanceId === "slow-worker-1").length,
  ),
);

// celery inspect registered: the methods the router's dealers offer.
const registered = Object.keys(await client.discoverServices()).sort();
console.log("inspect registered:", registered.filter((name) => name.startsWith("SlowQueue.") || name === "DemoTasks.add").join(", "));

// celery inspect active + celery control revoke: running tasks, then revoke one (its AbortSignal fires).
const slow = await client.submit("DemoTasks.slowTask", [60]);
for await (const event of client.watchTask(slow.id)) if (event.state === "running") break;
const active = await client.listTasks({ state: "running" });
console.log("inspect active:", active.tasks.map((t) => t.method).join(", "));
const revoked = await client.revokeTask(slow.id, { terminate: true });
console.log("control revoke:", revoked.state);

console.log(`fetchUrl log: ${log.join("; ")}`);
await slowWorker.stop();
await stop();
