/** `voidrail task status ID`: the task's state, progress, result or error, attempts and times. */
import { defineCommand } from "citty";
import { printTable } from "../../table.ts";
import { asTable, positional, runTaskCommand, taskConnectionArgs } from "./_client.ts";

const args = { ...taskConnectionArgs } as const;

export default defineCommand({
  meta: { name: "status", description: "Show a task: state, progress, result or error, attempts, times" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const task = await client.getTask(positional(parsed, "task id"));
      if (!asTable(parsed)) console.log(JSON.stringify(task, null, 2));
      else
        printTable(
          ["field", "value"],
          Object.entries(task).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]),
        );
      return 0;
    }),
});
