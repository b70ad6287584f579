/**
 * The Celery demo's rate limit in VoidRail:
 *
 *   @app.task
 *   def limited_task(data): ...
 *   task_annotations = {'tasks.limited_task': {'rate_limit': '10/m'}}
 *
 * Celery applies it per worker; VoidRail's router holds one bucket for every dealer of the method,
 * so two dealers together still start at most ten a minute. Tasks over the rate wait in the queue
 * (none is refused) and keep their order; here the second starts about six seconds after the first.
 * A tenant's own limits ride on the submit: `concurrencyKey` + `concurrencyLimit`, `rateKey` + `rateKeyLimit`.
 * Run: bun examples/celery-demo/rate-limit-limited-task.ts
 */
import { ClientDealer, type ServiceDealerOptions, ServiceDealer, ServiceRouter, serviceMethod } from "voidrail";

const router = new ServiceRouter({ address: process.argv[2] ?? "tcp://127.0.0.1:0", routerMode: "load_balance" });
// The router's own setting would win over the dealer's: new ServiceRouter({ rateLimits: { "Tasks.limited_task": "10/m" } })
// or `voidrail router --rate-limit Tasks.limited_task=10/m`.
await router.start();

class Tasks extends ServiceDealer {
  constructor(
    options: ServiceDealerOptions,
    readonly label: string,
  ) {
    super(options);
  }

  @serviceMethod({ task: { rateLimit: "10/m" } })
  limited_task(data: string) {
    return `processed ${data} on ${this.label}`;
  }
}

const workers = [new Tasks({ routerAddress: router.address }, "worker-1"), new Tasks({ routerAddress: router.address }, "worker-2")];
for (const worker of workers) await worker.start();
const client = new ClientDealer({ routerAddress: router.address });
await client.connect();

const first = await client.submit("Tasks.limited_task", ["a"]);
const second = await client.submit("Tasks.limited_task", ["b"]);
console.log(await client.waitTask(first.id, { timeout: 30 }));
console.log(await client.waitTask(second.id, { timeout: 30 }));
const [a, b] = await Promise.all([client.getTask(first.id), client.getTask(second.id)]);
const gapSeconds = (Date.parse(b.startedAt!) - Date.parse(a.startedAt!)) / 1000;
console.log(`10/m across both workers: the second started ${gapSeconds.toFixed(1)} s after the first`);

// Per tenant: at most two of tenant-7's reports run at once, whatever else waits.
const report = await client.submit("Tasks.limited_task", ["tenant-7 report"], { concurrencyKey: "tenant-7", concurrencyLimit: 2 });
console.log(`tenant-7's task is ${report.state}: it waits for its key and for the method's rate`);
await client.revokeTask(report.id);

await client.close();
for (const worker of workers) await worker.stop();
await router.stop();
