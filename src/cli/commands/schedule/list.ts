/** `voidrail schedule list`: every schedule with its next and last due time; a table on a terminal, JSON when piped. */
import { defineCommand } from "citty";
import { CliError } from "../../errors.ts";
import { runTaskCommand, taskConnectionArgs } from "../task/_client.ts";
import { printSchedules } from "./_print.ts";

const args = { ...taskConnectionArgs } as const;

export default defineCommand({
  meta: { name: "list", description: "List schedules" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      if (parsed._.length > 0) throw new CliError(`unexpected: ${parsed._.join(" ")}`, 2);
      printSchedules(parsed, await client.schedules.list());
      return 0;
    }),
});
