/** `voidrail task submit METHOD --args JSON [options]`: stores a background task and prints its id. */
import { defineCommand } from "citty";
import type { SubmitOptions } from "../../../index.ts";
import { CliError } from "../../errors.ts";
import { parseCallArguments } from "../client.ts";
import { checkFlags, parseSeconds } from "../_shared.ts";
import { positional, runTaskCommand, taskConnectionArgs } from "./_client.ts";

const args = {
  args: { type: "string", description: `Arguments as JSON, as for client --call: '"text"', '[5, 3]', '{"name":"John"}'` },
  priority: { type: "string", description: "0..9, higher first (default 5)" },
  countdown: { type: "string", description: "Seconds before it may start" },
  eta: { type: "string", description: "When it may start, ISO 8601 (instead of --countdown)" },
  expires: { type: "string", description: "Seconds after submit: not started by then, it expires" },
  "time-limit": { type: "string", description: "Seconds one attempt may run" },
  retries: { type: "string", description: "Further attempts after a failure (default 0)" },
  "retry-delay": { type: "string", description: "Seconds before the first retry (default 1)" },
  backoff: { type: "string", description: "fixed (default) or exponential" },
  "retry-on": { type: "string", description: "Comma-separated error codes or names that are retried, e.g. TimeoutError,ECONNRESET" },
  "idempotency-key": { type: "string", description: "The same key gives the same task, not a second run" },
  "wait-for-dealer": { type: "boolean", description: "Store it even if no service offers the method yet" },
  require: { type: "string", description: "name=value the dealer of every attempt must have, e.g. --require gpu=h200 (repeatable)" },
  ...taskConnectionArgs,
} as const;

export default defineCommand({
  meta: { name: "submit", description: "Submit a background task; prints its id" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runTaskCommand(rawArgs, args, parsed, async (client) => {
      const method = positional(parsed, "method (Service.method)");
      const { describeBadMethodName } = await import("../../../protocol/index.ts");
      const bad = describeBadMethodName(method);
      if (bad !== undefined) throw new CliError(bad, 2);
      const seconds = (flag: "countdown" | "expires" | "time-limit" | "retry-delay") =>
        parsed[flag] === undefined ? undefined : parseSeconds(parsed[flag], `--${flag}`);
      const whole = (flag: "priority" | "retries") => {
        const text = parsed[flag];
        if (text === undefined) return undefined;
        if (!/^\d+$/.test(text)) throw new CliError(`--${flag} must be a whole number, got "${text}"`, 2);
        return Number(text);
      };
      const backoff = parsed.backoff;
      if (backoff !== undefined && backoff !== "fixed" && backoff !== "exponential")
        throw new CliError(`--backoff must be fixed or exponential, got "${backoff}"`, 2);
      // Every --require given (citty keeps only the last); loaded only when used.
      const requireFlags = checkFlags(rawArgs, args, ["require"]).require;
      const require = requireFlags.length > 0 ? (await import("../../tag-flags.ts")).parseTags(requireFlags, "--require") : undefined;
      const options: SubmitOptions = {
        priority: whole("priority"),
        countdown: seconds("countdown"),
        eta: parsed.eta,
        expires: seconds("expires"),
        timeLimit: seconds("time-limit"),
        retries: whole("retries"),
        retryDelay: seconds("retry-delay"),
        backoff,
        retryOn: parsed["retry-on"]
          ?.split(",")
          .map((s) => s.trim())
          .filter(Boolean),
        idempotencyKey: parsed["idempotency-key"],
        waitForDealer: parsed["wait-for-dealer"],
        require,
      };
      for (const key of Object.keys(options) as (keyof SubmitOptions)[]) if (options[key] === undefined) delete options[key];
      const task = await client.submit(method, parseCallArguments(parsed.args), options);
      console.log(task.id);
      return 0;
    }),
});
