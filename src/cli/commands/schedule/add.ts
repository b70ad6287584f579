/**
 * `voidrail schedule add NAME --method M (--cron EXPR [--timezone TZ] | --every SECONDS) [--args JSON]
 * [--catch-up none|last|all] [--options JSON] [--paused]`: stores (or replaces) a schedule.
 */
import { defineCommand } from "citty";
import type { ScheduleDefinition } from "../../../index.ts";
import { CliError } from "../../errors.ts";
import { parseCallArguments } from "../client.ts";
import { parseSeconds } from "../_shared.ts";
import { positional, runTaskCommand, taskConnectionArgs } from "../task/_client.ts";
import { printSchedules } from "./_print.ts";

const args = {
  method: { type: "string", description: "The method each firing submits as a task (Service.method)" },
  cron: { type: "string", description: 'A cron expression: "0 3 * * *" (5 fields, or 6 with seconds first), "@daily"' },
  timezone: { type: "string", description: "IANA time zone of --cron, e.g. Europe/Berlin (default UTC)" },
  every: { type: "string", description: "Instead of --cron: every this many seconds (at least 1)" },
  args: { type: "string", description: `The task's arguments as JSON, as for task submit: '"text"', '[5, 3]'` },
  "catch-up": { type: "string", description: "Due times missed while the router was down: none, last (default) or all" },
  options: { type: "string", description: `Task options as JSON, as submit takes them: '{"priority": 8, "retries": 3, "expires": 600}'` },
  paused: { type: "boolean", description: "Store it paused" },
  ...taskConnectionArgs,
} as const;

export default defineCommand({
  meta: { name: "add", description: "Add (or replace) a schedule" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const name = positional(parsed, "schedule name");
      if (parsed.method === undefined) throw new CliError("give --method Service.method", 2);
      if ((parsed.cron === undefined) === (parsed.every === undefined)) throw new CliError("give --cron or --every, one of them", 2);
      const catchUp = parsed["catch-up"];
      if (catchUp !== undefined && catchUp !== "none" && catchUp !== "last" && catchUp !== "all")
        throw new CliError(`--catch-up must be none, last or all, got "${catchUp}"`, 2);
      let options: ScheduleDefinition["options"];
      if (parsed.options !== undefined) {
        try {
          options = JSON.parse(parsed.options);
        } catch {
          throw new CliError(`--options is not JSON: ${parsed.options}`, 2);
        }
        if (options === null || typeof options !== "object" || Array.isArray(options))
          throw new CliError(`--options must be a JSON object, e.g. '{"priority": 8}'`, 2);
      }
      const definition: ScheduleDefinition = {
        name,
        method: parsed.method,
        args: parseCallArguments(parsed.args),
        ...(parsed.cron !== undefined ? { cron: parsed.cron } : {}),
        ...(parsed.timezone !== undefined ? { timezone: parsed.timezone } : {}),
        ...(parsed.every !== undefined ? { every: parseSeconds(parsed.every, "--every") } : {}),
        ...(catchUp !== undefined ? { catchUp } : {}),
        ...(options !== undefined ? { options } : {}),
        ...(parsed.paused ? { paused: true } : {}),
      };
      printSchedules(parsed, [await client.schedules.set(definition)], true);
      return 0;
    }),
});
