/** `voidrail task retry ID`: a failed, revoked or expired task runs again as a new task; prints the new task. */
import { defineCommand } from "citty";
import { positional, runTaskCommand, taskConnectionArgs } from "./_client.ts";

const args = { ...taskConnectionArgs } as const;

export default defineCommand({
  meta: { name: "retry", description: "Run a failed, revoked or expired task again, as a new task" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const id = positional(parsed, "task id");
      const task = await client.retryTask(id);
      console.log(process.stdout.isTTY && !parsed.json ? `${id} retried as ${task.id} ${task.state}` : JSON.stringify(task));
      return 0;
    }),
});
