/**
 * Loads a user's module of services. Its `import ... from "voidrail"` must get this process's
 * own copy of VoidRail (one ServiceDealer class, one registry), even inside the compiled binary
 * where no voidrail package exists on disk: the module is registered with Bun's plugin API.
 * valibot is provided the same way. Other imports resolve from the module's own node_modules.
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import * as voidrail from "../index.ts";
import { ServiceDealer } from "../index.ts";
import * as zmtp from "../zmtp/index.ts";
import * as valibot from "valibot";
import { CliError, EXIT_STARTUP_FAILURE } from "./errors.ts";

export type ServiceClass = new (options: ConstructorParameters<typeof ServiceDealer>[0]) => ServiceDealer;

let registered = false;

function registerEmbeddedVoidrail(): void {
  if (registered || typeof Bun === "undefined") return;
  registered = true;
  Bun.plugin({
    name: "voidrail-embedded",
    setup(build) {
      build.module("voidrail", () => ({ exports: voidrail as Record<string, unknown>, loader: "object" }));
      build.module("voidrail/zmtp", () => ({ exports: zmtp as Record<string, unknown>, loader: "object" }));
      // Service modules declare params with valibot; the binary carries it, so they need no install.
      build.module("valibot", () => ({ exports: valibot as Record<string, unknown>, loader: "object" }));
    },
  });
}

/**
 * Imports `modulePath` and returns the ServiceDealer subclasses it exports, or those named in
 * `classNames`. Every failure is a CliError saying what is wrong with the module.
 */
export async function loadServiceClasses(modulePath: string, classNames: string[]): Promise<Map<string, ServiceClass>> {
  const absolute = resolve(modulePath);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) throw new CliError(`module not found: ${modulePath}`, EXIT_STARTUP_FAILURE);
  if (!/\.(ts|js|mjs|mts|tsx|jsx)$/.test(absolute))
    throw new CliError(`--module must be a .ts or .js file: ${modulePath}`, EXIT_STARTUP_FAILURE);
  registerEmbeddedVoidrail();
  let exports: Record<string, unknown>;
  try {
    exports = await import(absolute);
  } catch (error) {
    const message = (error as Error)?.message ?? String(error);
    // Bun's syntax errors (BuildMessage) carry where they are; the message alone does not say.
    const position = (error as { position?: { file?: string; line?: number; column?: number } | null })?.position;
    const where = position?.line ? ` (${position.file === absolute ? modulePath : position.file}:${position.line}:${position.column})` : "";
    throw new CliError(`cannot load ${modulePath}: ${message.split("\n")[0]}${where}`, EXIT_STARTUP_FAILURE);
  }
  const found = new Map<string, ServiceClass>();
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value === "function" && value.prototype instanceof ServiceDealer)
      found.set(name === "default" ? value.name : name, value as ServiceClass);
  }
  if (found.size === 0) {
    throw new CliError(
      `${modulePath} exports no ServiceDealer subclass (export your service classes, e.g. "export class EchoService extends ServiceDealer")`,
      EXIT_STARTUP_FAILURE,
    );
  }
  if (classNames.length === 0) return found;
  const chosen = new Map<string, ServiceClass>();
  for (const name of classNames) {
    const cls = found.get(name);
    if (!cls)
      throw new CliError(
        `${modulePath} exports no service class "${name}" (it exports: ${[...found.keys()].join(", ")})`,
        EXIT_STARTUP_FAILURE,
      );
    chosen.set(name, cls);
  }
  return chosen;
}
