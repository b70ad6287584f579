/** Hidden: one supervised dealer instance. Prints {"event":"registered"} on stdout once it is. */
import { defineCommand } from "citty";
import { CliError, EXIT_STARTUP_FAILURE, runCli } from "../errors.ts";
import { loadServiceClasses } from "../load-services.ts";
import { apiKeyArg, applyLogLevel, logLevelArg, onShutdown, parsePositiveInteger, parseSeconds } from "./_shared.ts";

export default defineCommand({
  meta: { name: "dealer-child", description: "(internal) one instance started by `voidrail dealer --instances`", hidden: true },
  args: {
    module: { type: "string", required: true },
    class: { type: "string", required: true },
    address: { type: "string", required: true },
    "max-concurrent": { type: "string" },
    "start-timeout": { type: "string", default: "30" },
    ...apiKeyArg,
    ...logLevelArg,
  },
  run: ({ args }) =>
    runCli(async () => {
      applyLogLevel(args["log-level"], process.env.VOIDRAIL_LOG_LEVEL ?? "info");
      const classes = await loadServiceClasses(args.module, [args.class]);
      const cls = classes.get(args.class)!;
      const maxConcurrent = args["max-concurrent"];
      const service = new cls({
        routerAddress: args.address,
        apiKey: args["api-key"] ?? (process.env.VOIDRAIL_API_KEY || undefined),
        startTimeout: parseSeconds(args["start-timeout"], "--start-timeout"),
        ...(maxConcurrent !== undefined ? { maxConcurrent: parsePositiveInteger(maxConcurrent, "--max-concurrent", 65535) } : {}),
      });
      onShutdown(
        async () => {
          await service.stop();
          process.exit(0);
        },
        () => process.exit(130),
      );
      try {
        await service.start();
      } catch (error) {
        throw new CliError(`${args.class} could not start: ${(error as Error).message}`, EXIT_STARTUP_FAILURE);
      }
      console.log(JSON.stringify({ event: "registered", dealerId: service.dealerId, pid: process.pid }));
      await new Promise(() => {});
    }),
});
