/** `voidrail serve`: a router and the dealers of a module in one command, drained together on shutdown. */
import { defineCommand } from "citty";
import { CliError, runCli } from "../errors.ts";
import { needsSupervisor, type RunningDealers, runInProcess, runSupervised } from "../run-dealers.ts";
import { dealerArgs, dealerOptions } from "./dealer.ts";
import {
  applyLogLevel,
  checkFlags,
  EXIT_STORE_UNUSABLE,
  onShutdown,
  parseRateLimits,
  parseSeconds,
  rateLimitArg,
  readCurveSecretKeyFile,
  routerEndpoint,
  storeArg,
  taskStorePath,
  httpArgs,
  httpOptions,
} from "./_shared.ts";

const args = {
  ...dealerArgs,
  mode: {
    type: "string",
    description: "fifo or load_balance (env VOIDRAIL_ROUTER_MODE)",
    default: process.env.VOIDRAIL_ROUTER_MODE || "fifo",
  },
  "heartbeat-timeout": {
    type: "string",
    description: "Seconds of silence after which a dealer is gone (env VOIDRAIL_HEARTBEAT_TIMEOUT)",
    default: process.env.VOIDRAIL_HEARTBEAT_TIMEOUT || "30",
  },
  ...storeArg,
  ...rateLimitArg,
  ...httpArgs,
} as const;

export default defineCommand({
  meta: { name: "serve", description: "Run a router and the services of a module in one command (local use, demos)" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runCli(async () => {
      const { class: classNames, tag, "rate-limit": rateLimitFlags } = checkFlags(rawArgs, args, ["class", "tag", "rate-limit"]);
      const rateLimits = parseRateLimits(rateLimitFlags);
      applyLogLevel(parsed["log-level"], "info");
      if (parsed.mode !== "fifo" && parsed.mode !== "load_balance")
        throw new CliError(`--mode must be fifo or load_balance, got "${parsed.mode}"`, 2);
      // Here --curve-secret-key-file is the router's key; the dealers connect with its public key.
      if (parsed["curve-server-key"] !== undefined)
        throw new CliError(
          "serve derives the dealers' --curve-server-key from --curve-secret-key-file (the router's key): leave it out",
          2,
        );
      const routerSecretFile = parsed["curve-secret-key-file"];
      const curveSecretKey =
        routerSecretFile === undefined ? undefined : readCurveSecretKeyFile(routerSecretFile, "--curve-secret-key-file");
      // Flags are checked before the router starts; its address is known once it listens.
      const dealerFlags = dealerOptions({ ...parsed, "curve-secret-key-file": undefined }, classNames, "", tag);
      const http = httpOptions(parsed);
      const { ServiceRouter, curvePublicKey } = await import("../../index.ts");
      const router = new ServiceRouter({
        ...(curveSecretKey !== undefined ? { curveSecretKey } : {}),
        address: routerEndpoint(parsed),
        routerMode: parsed.mode,
        heartbeatTimeout: parseSeconds(parsed["heartbeat-timeout"], "--heartbeat-timeout"),
        taskStore: taskStorePath(parsed.store),
        ...(rateLimits !== undefined ? { rateLimits } : {}),
        ...(http !== undefined ? { http } : {}),
      });
      // Signals are handled from before the start: a Ctrl-C during start-up drains what has started.
      let starting: Promise<RunningDealers | undefined> = Promise.resolve(undefined);
      let running: RunningDealers | undefined;
      onShutdown(
        async () => {
          const dealers = await starting.catch(() => undefined);
          await dealers?.drain();
          await router.stop();
          console.error("voidrail: shutdown complete");
          process.exit(0);
        },
        () => {
          running?.kill();
          process.exit(130);
        },
      );
      try {
        await router.start();
      } catch (error) {
        const unusableStore = (error as { code?: unknown }).code === "STORE_ERROR";
        throw new CliError(`cannot start the router: ${(error as Error).message}`, unusableStore ? EXIT_STORE_UNUSABLE : 1);
      }
      const options = {
        ...dealerFlags,
        routerAddress: router.address,
        ...(curveSecretKey !== undefined ? { curveServerKey: curvePublicKey(curveSecretKey) } : {}),
      };
      starting = needsSupervisor(options) ? runSupervised(options) : runInProcess(options, false);
      const dealers = await starting.catch(async (error) => {
        await router.stop();
        throw error;
      });
      if (!dealers) throw new CliError("the services did not start");
      running = dealers;
      const code = await dealers.finished;
      await router.stop();
      process.exit(code);
    }),
});
