/** `voidrail schedule resume NAME`: resume a paused schedule: it fires from now on. */
import { defineCommand } from "citty";
import { positional, runTaskCommand, taskConnectionArgs } from "../task/_client.ts";
import { printSchedules } from "./_print.ts";

const args = { ...taskConnectionArgs } as const;

export default defineCommand({
  meta: { name: "resume", description: "Resume a paused schedule: it fires from now on" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      printSchedules(parsed, [await client.schedules.resume(positional(parsed, "schedule name"))], true);
      return 0;
    }),
});
