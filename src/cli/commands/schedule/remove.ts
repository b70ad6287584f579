/** `voidrail schedule remove NAME`: deletes a schedule (the tasks it fired stay); exit 1 when none has that name. */
import { defineCommand } from "citty";
import { positional, runTaskCommand, taskConnectionArgs } from "../task/_client.ts";

const args = { ...taskConnectionArgs } as const;

export default defineCommand({
  meta: { name: "remove", description: "Remove a schedule" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const name = positional(parsed, "schedule name");
      const removed = await client.schedules.remove(name);
      if (process.stdout.isTTY && !parsed.json) console.log(removed ? `removed ${name}` : `no schedule is named ${name}`);
      else console.log(JSON.stringify({ name, removed }));
      return removed ? 0 : 1;
    }),
});
