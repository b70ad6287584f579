/** `voidrail dealer`: starts the ServiceDealer classes of a module, in this process or as N supervised instances each. */
import { defineCommand } from "citty";
import { CliError, runCli } from "../errors.ts";
import { runInProcess, runSupervised } from "../run-dealers.ts";
import {
  apiKeyArg,
  applyLogLevel,
  checkFlags,
  connectionArgs,
  curveClientArgs,
  curveClientFlags,
  logLevelArg,
  onShutdown,
  parsePositiveInteger,
  parseSeconds,
  routerEndpoint,
} from "./_shared.ts";

export const dealerArgs = {
  // Checked by dealerOptions rather than citty's `required`, which prints the whole usage with it.
  module: { type: "string", description: "ServiceDealer classes: a .ts or .js file, or myapp.services for myapp/services.ts (required)" },
  class: { type: "string", description: "Service class to start (repeatable; default: every exported ServiceDealer subclass)" },
  instances: {
    type: "string",
    description: "Processes per class (env VOIDRAIL_INSTANCES)",
    default: process.env.VOIDRAIL_INSTANCES || "1",
  },
  "max-concurrent": { type: "string", description: "Calls one instance runs at once (default: 1 in fifo, 100 in load_balance)" },
  "start-timeout": { type: "string", description: "Seconds to wait for the router before giving up", default: "30" },
  ...connectionArgs,
  ...apiKeyArg,
  ...curveClientArgs,
  ...logLevelArg,
} as const;

/** Parses the dealer flags shared by `dealer` and `serve`. */
export function dealerOptions(parsed: Record<string, unknown>, classNames: string[], routerAddress: string) {
  if (!parsed.module)
    throw new CliError("--module is required: the .ts or .js file (or dotted module path) that exports your ServiceDealer classes", 2);
  const maxConcurrent = parsed["max-concurrent"] as string | undefined;
  return {
    modulePath: parsed.module as string,
    classNames,
    instances: parsePositiveInteger(parsed.instances as string, "--instances", 256),
    routerAddress,
    ...(maxConcurrent !== undefined ? { maxConcurrent: parsePositiveInteger(maxConcurrent, "--max-concurrent", 65535) } : {}),
    apiKey: (parsed["api-key"] as string | undefined) ?? (process.env.VOIDRAIL_API_KEY || undefined),
    startTimeout: parseSeconds(parsed["start-timeout"] as string, "--start-timeout"),
    ...curveClientFlags(parsed),
  };
}

export default defineCommand({
  meta: { name: "dealer", description: "Load services from a module and run them (N instances each) against a router" },
  args: dealerArgs,
  run: ({ args: parsed, rawArgs }) =>
    runCli(async () => {
      const { class: classNames } = checkFlags(rawArgs, dealerArgs, ["class"]);
      applyLogLevel(parsed["log-level"], "info");
      const options = dealerOptions(parsed, classNames, routerEndpoint(parsed));
      const dealers = options.instances > 1 ? await runSupervised(options) : await runInProcess(options);
      onShutdown(
        async () => {
          await dealers.drain();
          console.error("voidrail: dealer shutdown complete");
          process.exit(0);
        },
        () => {
          dealers.kill();
          process.exit(130);
        },
      );
      process.exit(await dealers.finished);
    }),
});
