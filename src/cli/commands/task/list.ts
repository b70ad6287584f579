/** `voidrail task list [--state --method --limit]`: tasks newest first, a table on a terminal, JSON when piped. */
import { defineCommand } from "citty";
import { CliError } from "../../errors.ts";
import { printTable } from "../../table.ts";
import { parsePositiveInteger } from "../_shared.ts";
import { asTable, runTaskCommand, taskConnectionArgs } from "./_client.ts";

const STATES = ["blocked", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "revoked", "expired"] as const;

const args = {
  state: { type: "string", description: `Only tasks in this state: ${STATES.join(", ")}` },
  method: { type: "string", description: "Only tasks of this method (Service.method)" },
  limit: { type: "string", description: "At most this many (1..1000, default 50)" },
  cursor: { type: "string", description: "Continue after a previous page (its cursor)" },
  ...taskConnectionArgs,
} as const;

export default defineCommand({
  meta: { name: "list", description: "List tasks, newest first" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const state = parsed.state;
      if (state !== undefined && !(STATES as readonly string[]).includes(state))
        throw new CliError(`--state must be one of ${STATES.join(", ")}, got "${state}"`, 2);
      const page = await client.listTasks({
        ...(state !== undefined ? { state: state as (typeof STATES)[number] } : {}),
        ...(parsed.method !== undefined ? { method: parsed.method } : {}),
        ...(parsed.limit !== undefined ? { limit: parsePositiveInteger(parsed.limit, "--limit", 1000) } : {}),
        ...(parsed.cursor !== undefined ? { cursor: parsed.cursor } : {}),
      });
      if (!asTable(parsed)) {
        console.log(JSON.stringify(page, null, 2));
        return 0;
      }
      printTable(
        ["id", "method", "state", "attempts", "priority", "created"],
        page.tasks.map((t) => [t.id, t.method, t.state, String(t.attempts), String(t.priority), t.createdAt]),
      );
      if (page.cursor) console.log(`more: --cursor ${page.cursor}`);
      return 0;
    }),
});
