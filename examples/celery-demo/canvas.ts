/**
 * The Celery demo's canvas (§4 and "Canvas 进阶") in VoidRail: group, chain, chord, and the
 * nested workflow `group(chain(process, validate) × 3) | combine | notify`.
 * Run: bun examples/celery-demo/canvas.ts
 */
import { chain, chord, group, task } from "voidrail";
import { startDemo } from "./demo.ts";

const { client, stop } = await startDemo();

// group([add.s(2, 2), add.s(4, 4), add.s(8, 8)]).apply_async().get()
const sums = await client.submitFlow(group([task("DemoTasks.add", [2, 2]), task("DemoTasks.add", [4, 4]), task("DemoTasks.add", [8, 8])]));
console.log("group:", JSON.stringify(await client.waitTask(sums.id)));

// chain(process_data.s("hello"), save_result.s()): each step gets the previous result first.
const saved = await client.submitFlow(chain(task("DemoTasks.processData", ["hello"]), task("DemoTasks.saveResult")));
console.log("chain:", await client.waitTask(saved.id));

// chord([process_data.s("data1"), ...])(save_result.s()): the callback runs once with the array.
const gathered = await client.submitFlow(
  chord(
    ["data1", "data2", "data3"].map((data) => task("DemoTasks.processData", [data])),
    task("DemoTasks.saveResult"),
  ),
);
console.log("chord:", await client.waitTask(gathered.id));

// (group([chain(process_data.s(f"batch_{i}"), validate_data.s()) for i in range(3)]) | combine_results.s() | send_notification.s())
const workflow = await client.submitFlow(
  chain(
    group([0, 1, 2].map((i) => chain(task("DemoTasks.processData", [`batch_${i}`]), task("DemoTasks.validateData")))),
    task("DemoTasks.combineResults"),
    task("DemoTasks.sendNotification"),
  ),
);
console.log("canvas:", await client.waitTask(workflow.id));
const tree = await client.getFlow(workflow.id);
console.log(`canvas tree: ${tree.kind} of ${tree.steps?.map((step) => `${step.kind}:${step.state}`).join(", ")}`);

// A group with join "settled" keeps going past a failure and reports each member.
const settled = await client.submitFlow(group([task("DemoTasks.add", [1, 1]), task("DemoTasks.failingTask")], { join: "settled" }));
console.log("settled:", JSON.stringify(await client.waitTask(settled.id)));

await stop();
