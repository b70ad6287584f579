/** What every `voidrail task` subcommand shares: the connection flags and a client run around its body. */
import type { ArgsDef } from "citty";
import type { ClientDealer } from "../../../index.ts";
import { CliError, describeCodedError, isAuthFailure, refusedKeyHint, runCli } from "../../errors.ts";
import { apiKeyArg, applyLogLevel, checkFlags, connectionArgs, logLevelArg, parseSeconds, routerEndpoint } from "../_shared.ts";

export const taskConnectionArgs = {
  "connect-timeout": { type: "string", description: "Seconds to wait for the router", default: "5" },
  json: { type: "boolean", description: "Print JSON even on a terminal" },
  ...connectionArgs,
  ...apiKeyArg,
  ...logLevelArg,
} as const satisfies ArgsDef;

type ConnectionFlags = {
  host?: string;
  port?: string;
  address?: string;
  "api-key"?: string;
  "connect-timeout": string;
  "log-level"?: string;
};

/** Checks the flags, connects, runs `body`, closes; errors become one line and an exit code. */
export function runTaskCommand<A extends ArgsDef>(
  rawArgs: string[],
  definition: A,
  parsed: ConnectionFlags,
  body: (client: ClientDealer) => Promise<number | undefined>,
): Promise<void> {
  return runCli(async () => {
    checkFlags(rawArgs, definition);
    applyLogLevel(parsed["log-level"], "warn");
    const { ClientDealer, silentLogger } = await import("../../../index.ts");
    const client = new ClientDealer({
      routerAddress: routerEndpoint(parsed),
      connectTimeout: parseSeconds(parsed["connect-timeout"], "--connect-timeout"),
      apiKey: parsed["api-key"] ?? (process.env.VOIDRAIL_API_KEY || undefined),
      logger: process.env.VOIDRAIL_LOG_LEVEL === "debug" ? undefined : silentLogger,
    });
    let code: number | undefined;
    try {
      await client.connect();
      code = await body(client);
    } catch (error) {
      if (isAuthFailure(error)) throw new CliError(`${describeCodedError(error)}${refusedKeyHint(error, "client")}`);
      throw error;
    } finally {
      await client.close();
    }
    process.exit(code ?? 0);
  });
}

/** The one positional argument, or a usage error naming it. */
export function positional(parsed: { _: string[] }, name: string): string {
  const [value, ...rest] = parsed._;
  if (value === undefined) throw new CliError(`give the ${name}`, 2);
  if (rest.length > 0) throw new CliError(`one ${name} only; unexpected: ${rest.join(" ")}`, 2);
  return value;
}

/** Tables on a terminal, JSON when piped (or with --json). */
export function asTable(parsed: { json?: boolean }): boolean {
  return process.stdout.isTTY === true && !parsed.json;
}
