/** `voidrail task wait ID`: waits for the task and prints its result (exit codes as `client --call`). */
import { defineCommand } from "citty";
import { parseSeconds } from "../_shared.ts";
import { positional, runTaskCommand, taskConnectionArgs } from "./_client.ts";

const args = {
  timeout: { type: "string", description: "Seconds to wait; then exit 1 with TIMEOUT (the task goes on)", default: "30" },
  ...taskConnectionArgs,
} as const;

export default defineCommand({
  meta: { name: "wait", description: "Wait for a task to finish and print its result" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const taskId = positional(parsed, "task id");
      const result = await client.waitTask(taskId, { timeout: parseSeconds(parsed.timeout, "--timeout") });
      console.log(JSON.stringify(result, null, process.stdout.isTTY ? 2 : undefined));
      return 0;
    }),
});
