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

/** What a `--module` value names: the file, and whether it came from a dotted module path. */
export interface ResolvedModule {
  /** As given, or the file the module path resolved to (relative to the working directory). */
  file: string;
  /** True when `file` came from a module path such as `myapp.services`. */
  fromModulePath: boolean;
}

const MODULE_EXTENSIONS = /\.(ts|js|mjs|mts|cjs|cts|tsx|jsx)$/;
/** `myapp.services` or `services`: Python-style module paths, as the seed's `--module` takes. */
const MODULE_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * Resolves `--module`. A path that exists as given wins. Otherwise a dotted module path, as the
 * seed's `--module myapp.services`, names `myapp/services.ts` or `myapp/services.js` from the
 * working directory (or `myapp/services/index.ts`/`.js`, like a Python package's __init__).
 * Anything else that does not exist is a CliError saying what was looked for.
 */
export function resolveServiceModule(modulePath: string): ResolvedModule {
  const isFile = (path: string) => existsSync(resolve(path)) && statSync(resolve(path)).isFile();
  if (isFile(modulePath)) return { file: modulePath, fromModulePath: false };
  if (!MODULE_PATH.test(modulePath) || MODULE_EXTENSIONS.test(modulePath))
    throw new CliError(`module not found: ${modulePath}`, EXIT_STARTUP_FAILURE);
  const base = modulePath.replaceAll(".", "/");
  const candidates = [`${base}.ts`, `${base}.js`, `${base}/index.ts`, `${base}/index.js`];
  const found = candidates.find(isFile);
  if (found === undefined)
    throw new CliError(
      `module not found: ${modulePath} (looked for ${candidates.slice(0, -1).join(", ")} and ${candidates.at(-1)} in ${process.cwd()})`,
      EXIT_STARTUP_FAILURE,
    );
  return { file: found, fromModulePath: true };
}

/**
 * Imports `modulePath` and returns the ServiceDealer subclasses it exports, or those named in
 * `classNames`. Every failure is a CliError saying what is wrong with the module.
 */
export async function loadServiceClasses(modulePath: string, classNames: string[]): Promise<Map<string, ServiceClass>> {
  const absolute = resolve(modulePath);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) throw new CliError(`module not found: ${modulePath}`, EXIT_STARTUP_FAILURE);
  if (!MODULE_EXTENSIONS.test(absolute)) throw new CliError(`--module must be a .ts or .js file: ${modulePath}`, EXIT_STARTUP_FAILURE);
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
