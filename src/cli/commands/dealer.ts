/** `voidrail dealer`: starts the ServiceDealer classes of a module, in this process or as N supervised instances each. */
import { defineCommand } from "citty";
import { CliError, runCli } from "../errors.ts";
import { planInstances } from "../instance-flags.ts";
import { parseTags } from "../tag-flags.ts";
import { type DealerRunOptions, needsSupervisor, runInProcess, runSupervised } from "../run-dealers.ts";
import {
  apiKeyArg,
  applyLogLevel,
  checkFlags,
  connectionArgs,
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
  gpus: {
    type: "string",
    description: "GPUs to share out, one per instance round robin (CUDA_VISIBLE_DEVICES): 0,1 or all (found with nvidia-smi -L)",
  },
  "gpus-per-instance": { type: "string", description: "GPUs each instance gets from --gpus (default 1)" },
  tag: { type: "string", description: "name=value a call can require, e.g. --tag region=eu (repeatable; --gpus adds gpu=<model>)" },
  "max-calls-per-instance": { type: "string", description: "Replace an instance after it has served this many calls" },
  "max-memory-per-instance": { type: "string", description: "Replace an instance once its RSS passes this many MiB" },
  ...connectionArgs,
  ...apiKeyArg,
  ...logLevelArg,
} as const;

/** Parses the dealer flags shared by `dealer` and `serve`; `tagFlags` are every --tag given. */
export function dealerOptions(
  parsed: Record<string, unknown>,
  classNames: string[],
  routerAddress: string,
  tagFlags: string[] = [],
): DealerRunOptions {
  if (!parsed.module)
    throw new CliError("--module is required: the .ts or .js file (or dotted module path) that exports your ServiceDealer classes", 2);
  const maxConcurrent = parsed["max-concurrent"] as string | undefined;
  const instances = parsePositiveInteger(parsed.instances as string, "--instances", 256);
  const optional = (flag: string, max?: number) => {
    const text = parsed[flag] as string | undefined;
    return text === undefined ? undefined : parsePositiveInteger(text, `--${flag}`, max);
  };
  const perInstance = optional("gpus-per-instance", 64);
  const maxCalls = optional("max-calls-per-instance");
  const maxMemory = optional("max-memory-per-instance", 16 * 1024 * 1024);
  return {
    modulePath: parsed.module as string,
    classNames,
    instances,
    plan: planInstances(instances, parsed.gpus as string | undefined, perInstance, parseTags(tagFlags)),
    ...(maxCalls !== undefined ? { maxCallsPerInstance: maxCalls } : {}),
    ...(maxMemory !== undefined ? { maxMemoryPerInstance: maxMemory } : {}),
    routerAddress,
    ...(maxConcurrent !== undefined ? { maxConcurrent: parsePositiveInteger(maxConcurrent, "--max-concurrent", 65535) } : {}),
    apiKey: (parsed["api-key"] as string | undefined) ?? (process.env.VOIDRAIL_API_KEY || undefined),
    startTimeout: parseSeconds(parsed["start-timeout"] as string, "--start-timeout"),
  };
}

export default defineCommand({
  meta: { name: "dealer", description: "Load services from a module and run them (N instances each) against a router" },
  args: dealerArgs,
  run: ({ args: parsed, rawArgs }) =>
    runCli(async () => {
      const { class: classNames, tag } = checkFlags(rawArgs, dealerArgs, ["class", "tag"]);
      applyLogLevel(parsed["log-level"], "info");
      const options = dealerOptions(parsed, classNames, routerEndpoint(parsed), tag);
      const dealers = needsSupervisor(options) ? await runSupervised(options) : await runInProcess(options);
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
