#!/usr/bin/env bun
/**
 * The `voidrail` command. Subcommands load lazily, so `voidrail --version` imports almost nothing.
 */
// First: it must run before citty and consola load and decide on colour.
import "./plain-output-when-piped.ts";
import { defineCommand, renderUsage, runMain } from "citty";
import packageJson from "../../package.json" with { type: "json" };
import { subCommands } from "./commands/index.ts";

const main = defineCommand({
  meta: {
    name: "voidrail",
    version: packageJson.version,
    description: "Spread work over processes and machines: a router, services, clients (ZeroMQ on the wire)",
  },
  subCommands,
});

/**
 * citty answers an unknown command or top-level flag with the whole usage and a bare message;
 * say what was wrong in one line instead, as the subcommands do.
 */
function unknownFirstArgument(rawArgs: string[]): string | undefined {
  const first = rawArgs[0];
  if (first === undefined || ["--help", "-h", "--version", "-v"].includes(first)) return undefined;
  if (first.startsWith("-"))
    return `unknown option ${first.split("=")[0]}: put options after a command (${commands.join(", ")}); see voidrail --help`;
  if (!(first in subCommands)) return `unknown command "${first}" (commands: ${commands.join(", ")}); see voidrail --help`;
  return undefined;
}

const rawArgs = process.argv.slice(2);
const commands = Object.keys(subCommands).filter((name) => name !== "dealer-child");
if (rawArgs.length === 0) {
  // A wrong command line (exit 2, as the README says), but the usage is what helps here.
  console.error(`${await renderUsage(main)}\n`);
  console.error(`voidrail: no command given (commands: ${commands.join(", ")}); see voidrail --help`);
  process.exit(2);
}
const problem = unknownFirstArgument(rawArgs);
if (problem) {
  console.error(`voidrail: ${problem}`);
  process.exit(2);
}
void runMain(main);
