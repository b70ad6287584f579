/** `voidrail schedule pause NAME`: pause a schedule: it fires nothing until resumed. */
import { defineCommand } from "citty";
import { positional, runTaskCommand, taskConnectionArgs } from "../task/_client.ts";
import { printSchedules } from "./_print.ts";

const args = { ...taskConnectionArgs } as const;

export default defineCommand({
  meta: { name: "pause", description: "Pause a schedule: it fires nothing until resumed" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      printSchedules(parsed, [await client.schedules.pause(positional(parsed, "schedule name"))], true);
      return 0;
    }),
});
