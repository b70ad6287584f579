/** `voidrail task revoke ID`: a task that has not started never will; a running one is cancelled. */
import { defineCommand } from "citty";
import { positional, runTaskCommand, taskConnectionArgs } from "./_client.ts";

const args = {
  terminate: {
    type: "boolean",
    description: "Also stop a method that ignores its cancellation: its instance is ended (and restarted by its supervisor)",
  },
  ...taskConnectionArgs,
} as const;

export default defineCommand({
  meta: { name: "revoke", description: "Revoke a task" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const task = await client.revokeTask(positional(parsed, "task id"), { terminate: parsed.terminate === true });
      console.log(process.stdout.isTTY && !parsed.json ? `${task.id} ${task.state}` : JSON.stringify(task));
      return 0;
    }),
});
