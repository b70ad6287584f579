/**
 * The Celery demo's beat schedule in VoidRail:
 *
 *   beat_schedule = {
 *       'daily-report': {'task': 'tasks.generate_report', 'schedule': timedelta(days=1)},
 *       'every-minute': {'task': 'tasks.check_system', 'schedule': 60.0},
 *   }
 *
 * No separate beat process: the router keeps schedules in its task store and fires each due time
 * once (an idempotency key per schedule and due time), also across restarts; two beats cannot
 * run the same schedule twice. A cron rule takes a time zone; `catchUp` says what happens to due
 * times missed while the router was down.
 * Run: bun examples/celery-demo/schedule-beat.ts
 */
import { ClientDealer, ServiceDealer, ServiceRouter, serviceMethod } from "voidrail";

const router = new ServiceRouter({ address: process.argv[2] ?? "tcp://127.0.0.1:0", taskStore: "memory" });
await router.start();

class Tasks extends ServiceDealer {
  @serviceMethod
  generate_report(kind: string) {
    return `${kind} report`;
  }

  @serviceMethod
  check_system() {
    return "ok";
  }
}
const worker = new Tasks({ routerAddress: router.address });
await worker.start();
const client = new ClientDealer({ routerAddress: router.address });
await client.connect();

// timedelta(days=1) and 60.0 seconds, as in the demo.
await client.schedules.set({ name: "daily-report", every: 86_400, method: "Tasks.generate_report", args: ["daily"] });
await client.schedules.set({ name: "every-minute", every: 60, method: "Tasks.check_system" });
// Or at a wall-clock time in a zone, what celery's crontab(hour=3, minute=0) does:
await client.schedules.set({
  name: "nightly",
  cron: "0 3 * * *",
  timezone: "Europe/Berlin",
  method: "Tasks.generate_report",
  args: ["nightly"],
});
for (const schedule of await client.schedules.list()) {
  console.log(`${schedule.name}: ${schedule.cron ?? `every ${schedule.every} s`} -> ${schedule.method}, next ${schedule.nextDueAt}`);
}

// A one-second schedule shows a firing without waiting a minute.
await client.schedules.set({ name: "demo-tick", every: 1, method: "Tasks.check_system" });
let fired: Awaited<ReturnType<typeof client.getTask>> | undefined;
while (!fired) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  fired = (await client.listTasks()).tasks.find((task) => task.schedule?.name === "demo-tick");
}
console.log(`demo-tick fired for ${fired.schedule!.dueAt}: ${await client.waitTask(fired.id, { timeout: 30 })}`);
await client.schedules.pause("every-minute");
await client.schedules.remove("demo-tick");

await client.close();
await worker.stop();
await router.stop();
