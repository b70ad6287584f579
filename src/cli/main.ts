#!/usr/bin/env bun
/**
 * The `voidrail` command. Subcommands load lazily, so `voidrail --version` imports almost nothing.
 */
import { defineCommand, runMain } from "citty";
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

void runMain(main);
