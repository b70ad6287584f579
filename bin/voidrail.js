#!/usr/bin/env node
/**
 * The `voidrail` command of the npm package. The CLI (src/cli/main.ts) is TypeScript that runs on
 * Bun, so this launcher, plain JavaScript that runs on Node too, finds a Bun and hands it the CLI
 * with the same arguments, stdio, signals and exit code. Bun is looked for on PATH, then as the
 * npm package `bun` installed beside this one. Without one it says in one line how to get the
 * standalone binary or Bun, and exits 1.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { isatty } from "node:tty";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));

if (process.versions.bun) {
  // Already on Bun (bunx voidrail): run the CLI in this process rather than start a second one.
  await import(cli);
} else {
  const bun = findBun();
  if (!bun) {
    console.error(
      "voidrail: the voidrail command needs Bun, found neither on PATH nor in node_modules: install it (npm install -g bun), or build the standalone binary from a checkout (npm run build → dist/voidrail)",
    );
    process.exit(1);
  }
  runWith(bun);
}

/** An executable Bun: on PATH first, then the `bun` npm package (its binary, not its placeholder). */
function findBun() {
  const name = process.platform === "win32" ? "bun.exe" : "bun";
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return bunFromPackage();
}

/**
 * The `bun` package ships `bin/bun.exe` as a small placeholder that its postinstall script replaces
 * with the real binary (from `@oven/bun-<os>-<cpu>`); npm ≥ 11 skips that script unless it is
 * approved, so look in the platform package too, and take only a file big enough to be Bun.
 */
function bunFromPackage() {
  const require = createRequire(import.meta.url);
  let packageDir;
  try {
    packageDir = dirname(require.resolve("bun/package.json"));
  } catch {
    return undefined;
  }
  const candidates = [join(packageDir, readBinField(packageDir) ?? "bin/bun.exe")];
  const base = `@oven/bun-${process.platform === "win32" ? "windows" : process.platform}-${process.arch === "arm64" ? "aarch64" : process.arch}`;
  for (const variant of [base, `${base}-musl`, `${base}-baseline`, `${base}-musl-baseline`]) {
    try {
      const platformDir = dirname(createRequire(join(packageDir, "package.json")).resolve(`${variant}/package.json`));
      candidates.push(join(platformDir, "bin", process.platform === "win32" ? "bun.exe" : "bun"));
    } catch {
      // Not this variant.
    }
  }
  return candidates.find((path) => isExecutable(path) && statSync(path).size > 1024 * 1024);
}

function readBinField(packageDir) {
  try {
    const bin = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")).bin;
    return typeof bin === "string" ? bin : bin?.bun;
  } catch {
    return undefined;
  }
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function runWith(bun) {
  const child = spawn(bun, [cli, ...process.argv.slice(2)], { stdio: "inherit" });
  // Forward the signals that stop the CLI (it drains on the first and stops at once on the
  // second). Ctrl-C in a terminal already reaches the child, which is in this process group;
  // forwarding that SIGINT as well would count as a second one, so it is forwarded only when
  // there is no terminal (a supervisor or a test sending it to this process alone).
  const forwarded = ["SIGTERM", "SIGHUP", "SIGINT"];
  const handlers = new Map();
  for (const signal of forwarded) {
    const handler = () => {
      // isatty, not process.stdin: creating a stdin stream here could take input from the CLI.
      if (signal === "SIGINT" && isatty(0)) return;
      child.kill(signal);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  child.once("error", (error) => {
    console.error(`voidrail: cannot run ${bun}: ${error.message}`);
    process.exit(1);
  });
  child.once("exit", (code, signal) => {
    for (const [name, handler] of handlers) process.off(name, handler);
    if (signal) {
      // Die of the same signal, so that whoever started us sees what happened to the CLI.
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
}
