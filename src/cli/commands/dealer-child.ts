/**
 * Hidden: one instance started by `voidrail dealer --instances N` (run-dealers.ts).
 *
 * With --supervised (what the supervisor passes) the instance talks to its supervisor on stdout,
 * one JSON event per line: `{"event":"registered",...}` once registered, and
 * `{"event":"startup-failed","message":...}` before exiting 78 when it cannot start (a bad module,
 * a setup() that threw), `{"event":"recycle","limit":...}` when it passed --max-calls or
 * --max-memory (it serves on until the supervisor drains it), so that the
 * supervisor reports a startup failure once instead of every instance printing it. The supervisor
 * also owns shutdown:
 * - SIGTERM drains. SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and
 *   the supervisor already turns it into a SIGTERM for each instance; counting both as two signals
 *   would force an exit in the middle of a call.
 * - stdin is a pipe from the supervisor. Its end means the supervisor is gone (killed), and the
 *   instance drains and exits instead of running on as an orphan. The supervisor writes one
 *   command per line on it: "hold" (drain now, and after the drain and teardown() stay
 *   registered and say `{"event":"released"}`) and "leave" (unregister now). "hold" starts the
 *   drain itself: were it a line followed by a SIGTERM, the signal could overtake the line and
 *   the instance would leave before its replacement is up (calls failing NO_SUCH_METHOD).
 */
import { defineCommand, type ParsedArgs } from "citty";
import { CliError, EXIT_STARTUP_FAILURE, runCli, startupFailure } from "../errors.ts";
import { loadServiceClasses } from "../load-services.ts";
import type { RecycleReason } from "../../dealer/service-dealer.ts";
import { apiKeyArg, applyLogLevel, logLevelArg, onShutdown, parsePositiveInteger, parseSeconds } from "./_shared.ts";

/** `--tags '{"gpu":"h200"}'` (what the supervisor passes) → tags; the ServiceDealer checks them. */
function parseTagsJson(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value as Record<string, string>;
  } catch {
    // Reported below.
  }
  throw new CliError(`--tags must be a JSON object, got ${text}`, 2);
}

const childArgs = {
  module: { type: "string", required: true },
  class: { type: "string", required: true },
  address: { type: "string", required: true },
  "max-concurrent": { type: "string" },
  "start-timeout": { type: "string", default: "30" },
  supervised: { type: "boolean", description: "Started by a supervisor: events on stdout, stdin is its lifeline" },
  tags: { type: "string", description: "The instance's tags as a JSON object" },
  "max-calls": { type: "string" },
  "max-memory": { type: "string", description: "MiB" },
  ...apiKeyArg,
  ...logLevelArg,
} as const;

export default defineCommand({
  meta: { name: "dealer-child", description: "(internal) one instance started by `voidrail dealer --instances`", hidden: true },
  args: childArgs,
  run: ({ args }) =>
    runCli(async () => {
      const supervised = args.supervised === true;
      try {
        await runInstance(args, supervised);
      } catch (error) {
        if (!supervised || !(error instanceof CliError)) throw error;
        console.log(JSON.stringify({ event: "startup-failed", message: error.message }));
        process.exit(EXIT_STARTUP_FAILURE);
      }
    }),
});

async function runInstance(args: ParsedArgs<typeof childArgs>, supervised: boolean): Promise<void> {
  applyLogLevel(args["log-level"], process.env.VOIDRAIL_LOG_LEVEL ?? "info");
  const className = args.class;
  const classes = await loadServiceClasses(args.module, [className]);
  const cls = classes.get(className)!;
  const maxConcurrent = args["max-concurrent"];
  const tags = parseTagsJson(args.tags);
  const maxCalls = args["max-calls"];
  const maxMemory = args["max-memory"];
  // The supervisor may ask (a "hold" line on stdin, which also starts the drain) that this instance
  // stays registered after its drain and teardown() until its replacement has registered ("leave").
  let holding = false;
  let leave: () => void = () => {};
  const mayLeave = new Promise<void>((resolve) => {
    leave = resolve;
  });
  const beforeLeave = async () => {
    if (!holding) return;
    console.log(JSON.stringify({ event: "released", pid: process.pid }));
    await mayLeave;
  };
  const service = new cls({
    routerAddress: args.address,
    apiKey: args["api-key"] ?? (process.env.VOIDRAIL_API_KEY || undefined),
    startTimeout: parseSeconds(args["start-timeout"], "--start-timeout"),
    ...(maxConcurrent !== undefined ? { maxConcurrent: parsePositiveInteger(maxConcurrent, "--max-concurrent", 65535) } : {}),
    ...(tags !== undefined ? { tags } : {}),
    ...(maxCalls !== undefined ? { maxCalls: parsePositiveInteger(maxCalls, "--max-calls") } : {}),
    ...(maxMemory !== undefined ? { maxMemory: parsePositiveInteger(maxMemory, "--max-memory") } : {}),
    // Under a supervisor a limit is its business: it starts a replacement, then drains this one.
    ...(supervised
      ? { onRecycle: (reason: RecycleReason) => console.log(JSON.stringify({ event: "recycle", ...reason })), beforeLeave }
      : {}),
  });
  if (supervised) process.on("SIGINT", () => {});
  const shutdown = onShutdown(
    async () => {
      await service.stop();
      process.exit(0);
    },
    () => process.exit(130),
    supervised ? ["SIGTERM"] : ["SIGINT", "SIGTERM"],
  );
  if (supervised) {
    void (async () => {
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of process.stdin) {
        buffered += typeof chunk === "string" ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const command = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (command === "hold") {
            holding = true;
            shutdown("hold");
          } else if (command === "leave") leave();
        }
      }
      leave();
      shutdown("supervisor gone");
    })();
  }
  try {
    await service.start();
  } catch (error) {
    throw startupFailure(className, error);
  }
  console.log(JSON.stringify({ event: "registered", dealerId: service.dealerId, pid: process.pid }));
  await new Promise(() => {});
}
