/**
 * `voidrail task watch ID`: the task's events until it ends, as one live line on a terminal and as
 * JSON lines when piped. Exit 0 when it succeeded, 1 otherwise.
 */
import { defineCommand } from "citty";
import { positional, runTaskCommand, taskConnectionArgs } from "./_client.ts";

const args = { ...taskConnectionArgs } as const;

/** `running 3/10 (30%)` from `{ current, total }` progress, or the progress as JSON. */
function describeProgress(progress: unknown): string {
  const p = progress as { current?: unknown; total?: unknown } | null;
  if (p && typeof p.current === "number" && typeof p.total === "number" && p.total > 0) {
    return `${p.current}/${p.total} (${Math.round((100 * p.current) / p.total)}%)`;
  }
  return JSON.stringify(progress);
}

export default defineCommand({
  meta: { name: "watch", description: "Follow a task's state and progress until it ends" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const taskId = positional(parsed, "task id");
      const live = process.stdout.isTTY === true && !parsed.json;
      let last = "";
      for await (const event of client.watchTask(taskId)) {
        last = event.state;
        if (!live) {
          console.log(JSON.stringify(event));
          continue;
        }
        const line = event.progress === undefined ? event.state : `${event.state} ${describeProgress(event.progress)}`;
        process.stdout.write(`\r\u001b[2K${taskId} ${line}`);
      }
      if (live) process.stdout.write("\n");
      if (last === "succeeded") return 0;
      const task = await client.getTask(taskId);
      console.error(`voidrail: task ${taskId} ended ${task.state}${task.error ? `: ${task.error.code}: ${task.error.message}` : ""}`);
      return 1;
    }),
});
