import { existsSync, readFileSync, writeFileSync } from "node:fs";

/** Replaces the `## ` section that starts with `section`'s first line (or appends it); other sections stay. */
export function writeSection(docPath: string, section: string): void {
  const heading = section.split("\n", 1)[0];
  const header = "# Benchmarks\n\nOne section per benchmark; each benchmark script rewrites only its own section.\n\n";
  const text = existsSync(docPath) ? readFileSync(docPath, "utf8") : header;
  const lines = text.split("\n");
  const start = lines.indexOf(heading);
  let updated: string;
  if (start === -1) {
    updated = `${text.replace(/\n*$/, "\n\n")}${section}`;
  } else {
    let end = lines.findIndex((line, index) => index > start && line.startsWith("## "));
    if (end === -1) end = lines.length;
    const before = lines.slice(0, start).join("\n");
    const after = lines.slice(end).join("\n");
    updated = `${before.replace(/\n*$/, "\n\n")}${section}${after.length > 0 ? `\n${after}` : ""}`;
  }
  writeFileSync(docPath, updated.replace(/\n*$/, "\n"));
}

/** Date, CPU, cores and memory, for the heading line of a benchmark section. */
export function machineLine(): string {
  const os = require("node:os") as typeof import("node:os");
  const cpu = os.cpus()[0]?.model?.trim() ?? "unknown CPU";
  const date = new Date().toISOString().slice(0, 16).replace("T", " ");
  return `Measured ${date} UTC on ${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB memory; Bun ${Bun.version}.`;
}
