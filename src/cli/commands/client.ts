/** `voidrail client`: calls a method, or lists services, dealers, queues and the router's state (tables on a terminal, JSON in a pipe). */
import { defineCommand, type ParsedArgs } from "citty";
import type { CallOptions, ClientDealer } from "../../index.ts";
import { CliError, describeCodedError, isAuthFailure, refusedKeyHint, runCli } from "../errors.ts";
import { printTable } from "../table.ts";
import {
  apiKeyArg,
  applyLogLevel,
  checkFlags,
  connectionArgs,
  curveClientArgs,
  curveClientFlags,
  logLevelArg,
  parseSeconds,
  routerEndpoint,
} from "./_shared.ts";

const args = {
  list: { type: "boolean", description: "List the methods services offer" },
  clusters: { type: "boolean", description: "List every dealer instance with its state and counts" },
  "router-info": { type: "boolean", description: "Show the router's mode, dealers and request counts" },
  "queue-status": { type: "boolean", description: "Show each method's queue length and free/busy dealers" },
  call: { type: "string", description: "Method to call, e.g. EchoService.echo" },
  drain: { type: "string", description: "Drain the dealer with this id (see --clusters): it takes no new calls, finishes and leaves" },
  args: { type: "string", description: `Arguments as JSON: '"text"', '42', '[5, 3]' (two arguments), '{"name":"John"}' (one object)` },
  timeout: { type: "string", description: "Seconds before the call fails", default: "30" },
  require: { type: "string", description: "With --call: name=value the dealer must have, e.g. --require gpu=h200 (repeatable)" },
  "connect-timeout": { type: "string", description: "Seconds to wait for the router", default: "5" },
  json: { type: "boolean", description: "Print JSON even on a terminal" },
  ...connectionArgs,
  ...apiKeyArg,
  ...curveClientArgs,
  ...logLevelArg,
} as const;

/**
 * Parses --args. A JSON array is the argument list; any other JSON value is the one argument.
 * Non-JSON gets an error showing the shell quoting that works.
 */
export function parseCallArguments(text: string | undefined): unknown[] {
  if (text === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // One line that shows the quoting to use, with the user's own text where that is safe.
    const asString = text.includes("'") ? `'"John"'` : `'${JSON.stringify(text)}'`;
    throw new CliError(
      `--args is not JSON: ${text.replace(/\s+/g, " ")}. For a string use --args ${asString}; ` +
        `a number --args '42', two arguments --args '[5, 3]', one object --args '{"name":"John"}'`,
      2,
    );
  }
  return Array.isArray(value) ? value : [value];
}

export default defineCommand({
  meta: {
    name: "client",
    description: "Call a method, drain a dealer, or look at the router (--list, --clusters, --router-info, --queue-status)",
  },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runCli(async () => {
      const { require: requireFlags } = checkFlags(rawArgs, args, ["require"]);
      applyLogLevel(parsed["log-level"], "warn");
      const actions = (["list", "clusters", "router-info", "queue-status"] as const).filter((name) => parsed[name]);
      if (parsed.call !== undefined) actions.push("call" as never);
      if (parsed.drain !== undefined) actions.push("drain" as never);
      if (actions.length !== 1) throw new CliError("choose one of --call, --list, --clusters, --router-info, --queue-status, --drain", 2);
      if (parsed.args !== undefined && parsed.call === undefined) throw new CliError("--args goes with --call", 2);
      const callArguments = parseCallArguments(parsed.args);
      if (requireFlags.length > 0 && parsed.call === undefined) throw new CliError("--require goes with --call", 2);
      // Loaded only when used: the client's start-up stays lean.
      const require = requireFlags.length > 0 ? (await import("../tag-flags.ts")).parseTags(requireFlags, "--require") : {};
      const timeout = parseSeconds(parsed.timeout, "--timeout");
      const [{ ClientDealer, silentLogger }, { describeBadMethodName }] = await Promise.all([
        import("../../index.ts"),
        import("../../protocol/index.ts"),
      ]);
      // Checked here, before connecting: a usage mistake, not something for the router to refuse.
      const badMethod = parsed.call === undefined ? undefined : describeBadMethodName(parsed.call);
      if (badMethod !== undefined) throw new CliError(`--call ${badMethod}`, 2);
      const client = new ClientDealer({
        routerAddress: routerEndpoint(parsed),
        timeout,
        connectTimeout: parseSeconds(parsed["connect-timeout"], "--connect-timeout"),
        apiKey: parsed["api-key"] ?? (process.env.VOIDRAIL_API_KEY || undefined),
        ...curveClientFlags(parsed),
        logger: process.env.VOIDRAIL_LOG_LEVEL === "debug" ? undefined : silentLogger,
      });
      const asTable = process.stdout.isTTY === true && !parsed.json;
      try {
        await runAction(client, parsed, callArguments, asTable, Object.keys(require).length > 0 ? { require } : {});
      } catch (error) {
        if (isAuthFailure(error)) throw new CliError(`${describeCodedError(error)}${refusedKeyHint(error, "client")}`);
        throw error;
      } finally {
        await client.close();
      }
      process.exit(0);
    }),
});

/** Runs the one action the flags chose and prints its result. */
async function runAction(
  client: ClientDealer,
  parsed: ParsedArgs<typeof args>,
  callArguments: unknown[],
  asTable: boolean,
  callOptions: CallOptions,
): Promise<void> {
  await client.connect();
  if (parsed.drain !== undefined) {
    const drained = await client.drainDealer(parsed.drain);
    console.log(asTable ? `${drained.dealerId} is draining: it finishes its calls and leaves` : JSON.stringify(drained));
  } else if (parsed.call !== undefined) {
    const services = await client.discoverServices();
    if (services[parsed.call]?.stream) {
      for await (const chunk of client.callStream(parsed.call, callArguments, callOptions)) console.log(JSON.stringify(chunk));
    } else {
      console.log(JSON.stringify(await client.call(parsed.call, callArguments, callOptions), null, asTable ? 2 : undefined));
    }
  } else if (parsed.list) {
    const services = await client.discoverServices();
    if (!asTable) console.log(JSON.stringify(services, null, 2));
    else
      printTable(
        ["method", "kind", "instances", "description"],
        Object.entries(services).map(([name, info]) => [
          name,
          info.stream ? "stream" : "unary",
          String(info.instances),
          info.description ?? "",
        ]),
      );
  } else if (parsed.clusters) {
    const clusters = await client.discoverClusters();
    if (!asTable) console.log(JSON.stringify(clusters, null, 2));
    else {
      // Devices and tags get columns only when some dealer has them: most clusters have none.
      const withGpus = clusters.some((c) => (c.gpus?.length ?? 0) > 0);
      const withTags = clusters.some((c) => Object.keys(c.tags ?? {}).length > 0);
      printTable(
        [
          "id",
          "instance",
          "state",
          "busy",
          "load",
          "dispatched",
          "succeeded",
          "failed",
          ...(withGpus ? ["gpus"] : []),
          ...(withTags ? ["tags"] : []),
        ],
        clusters.map((c) => [
          c.id,
          c.instanceId ?? "",
          c.state,
          c.busy ? "yes" : "no",
          `${c.load}/${c.maxConcurrent}`,
          String(c.counts.dispatched),
          String(c.counts.succeeded),
          String(c.counts.failed),
          ...(withGpus ? [(c.gpus ?? []).join(",")] : []),
          ...(withTags
            ? [
                Object.entries(c.tags ?? {})
                  .map(([name, value]) => `${name}=${value}`)
                  .join(" "),
              ]
            : []),
        ]),
      );
    }
  } else if (parsed["router-info"]) {
    const info = await client.getRouterInfo();
    if (!asTable) console.log(JSON.stringify(info, null, 2));
    else
      printTable(
        ["field", "value"],
        Object.entries(info).map(([key, value]) => [key, String(value)]),
      );
  } else {
    const queues = await client.getQueueStatus();
    if (!asTable) console.log(JSON.stringify(queues, null, 2));
    else
      printTable(
        ["method", "queued", "available", "busy"],
        Object.entries(queues).map(([name, q]) => [name, String(q.queueLength), String(q.availableServices), String(q.busyServices)]),
      );
  }
}
