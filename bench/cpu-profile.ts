/**
 * Reads a `.cpuprofile` (Chrome's format, as `bun --cpu-prof` writes it) and says where the
 * samples landed: self time by function and by area of the code base, as shares of all samples.
 *
 *   bun bench/cpu-profile.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
}

export interface ProfileSummary {
  samples: number;
  /** Self samples by "function (file:line)", largest first. */
  functions: { name: string; share: number }[];
  /** Self samples by area (src/store, src/tasks, src/router, src/zmtp, ..., native), largest first. */
  areas: { area: string; share: number }[];
}

/** Which part of the code a frame belongs to, for a coarse picture. */
function areaOf(url: string, functionName: string): string {
  const match = /\/(src\/[a-z]+|bench|node_modules\/[^/]+)\//.exec(url);
  if (match) return match[1];
  if (functionName === "(garbage collector)") return "garbage collector";
  if (functionName === "(idle)" || functionName === "(program)") return functionName;
  if (url === "") return "native (Bun, JSC, SQLite, I/O)";
  return url.replace(/^.*\/node_modules\//, "");
}

function shortFile(url: string): string {
  return url.replace(/^.*\/(src|bench|node_modules)\//, "$1/");
}

export function summarizeProfile(path: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const self = new Map<number, number>();
  if (profile.samples && profile.samples.length > 0) {
    for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1);
  } else {
    for (const node of profile.nodes) self.set(node.id, node.hitCount ?? 0);
  }
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
  /** A native frame is named with its nearest JavaScript caller: "write" alone says nothing. */
  const callerOf = (node: ProfileNode): string => {
    for (let up = parent.get(node.id); up; up = parent.get(up.id)) {
      if (up.callFrame.url !== "")
        return ` ← ${up.callFrame.functionName || "(anonymous)"} (${shortFile(up.callFrame.url)}:${up.callFrame.lineNumber + 1})`;
    }
    return "";
  };
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = self.get(node.id) ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") continue;
    total += hits;
    const name = url
      ? `${functionName || "(anonymous)"} (${shortFile(url)}:${lineNumber + 1})`
      : `${functionName || "(anonymous)"} [native]${callerOf(node)}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
    const area = areaOf(url, functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + hits);
  }
  const ranked = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  return {
    samples: total,
    functions: ranked(byFunction)
      .slice(0, top)
      .map(([name, hits]) => ({ name, share: hits / total })),
    areas: ranked(byArea).map(([area, hits]) => ({ area, share: hits / total })),
  };
}

if (import.meta.main) {
  const path = process.argv[2];
  if (!path) throw new Error("usage: bun bench/cpu-profile.ts <file.cpuprofile> [--top N]");
  const topIndex = process.argv.indexOf("--top");
  const summary = summarizeProfile(path, topIndex > 0 ? Number(process.argv[topIndex + 1]) : 25);
  console.log(`${summary.samples} samples (idle excluded)`);
  for (const { area, share } of summary.areas) console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${area}`);
  console.log("");
  for (const { name, share } of summary.functions) console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${name}`);
}
