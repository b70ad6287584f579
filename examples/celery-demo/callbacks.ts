/**
 * The Celery demo's callbacks in VoidRail: `link` / `link_error` (§"任务回调") and a custom task
 * class's `on_success` / `on_failure` (§"自定义任务类"). VoidRail has no task base class: the
 * callbacks are tasks of their own that the router runs, exactly once, after the task ends; the
 * success callback gets the result first, the failure callback `{ code, name, message }`.
 * Run: bun examples/celery-demo/callbacks.ts
 */
import { type ClientDealer, chain, task } from "voidrail";
import { log, startDemo } from "./demo.ts";

const { client, stop } = await startDemo();

/** Waits for the callbacks a task or flow carries (they run after it ends). */
async function callbacksOf(client: ClientDealer, id: string): Promise<void> {
  const tree = await client.getFlow(id);
  for (const callback of [tree.onSuccess, tree.onFailure]) {
    if (callback) await client.waitTask(callback.id).catch(() => undefined); // the one not needed is revoked
  }
}

// add.apply_async((2, 2), link=success_callback.s())
const linked = await client.submit("DemoTasks.add", [2, 2], { onSuccess: task("DemoTasks.successCallback", ["link"]) });
console.log("add:", await client.waitTask(linked.id));
await callbacksOf(client, linked.id);

// failing.apply_async(link_error=failure_callback.s())
const failing = await client.submit("DemoTasks.failingTask", [], { onFailure: task("DemoTasks.failureCallback", ["link_error"]) });
console.log("failingTask:", await client.waitTask(failing.id).catch((error: Error) => `${error.name}: ${error.message}`));
await callbacksOf(client, failing.id);

// @app.task(base=CallbackTask) def important_task(): on_success / on_failure for every submit of it.
const callbacks = {
  onSuccess: task("DemoTasks.successCallback", ["CallbackTask"]),
  onFailure: task("DemoTasks.failureCallback", ["CallbackTask"]),
};
const important = await client.submit("DemoTasks.importantTask", [], callbacks);
await client.waitTask(important.id);
await callbacksOf(client, important.id);

// On a whole flow: the callback follows the flow's outcome.
const flow = await client.submitFlow(
  chain(task("DemoTasks.add", [1, 2]), task("DemoTasks.failingTask", [], { immutable: true })),
  callbacks,
);
await client.waitTask(flow.id).catch(() => undefined);
await callbacksOf(client, flow.id);

for (const line of log) console.log(line);
await stop();
