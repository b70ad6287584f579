/**
 * Owns what VoidRail knows about GPUs: reading `nvidia-smi -L`, naming a model as a tag value,
 * and splitting devices between instances. The parsing and the split are pure; `listGpus` is the
 * one function that runs a program.
 */
import { spawnSync } from "node:child_process";

/** One device as `nvidia-smi -L` lists it: `GPU 0: NVIDIA H200 (UUID: GPU-5f1c…)`. */
export interface GpuDevice {
  /** Its index, as CUDA_VISIBLE_DEVICES takes it ("0"). */
  index: string;
  /** The model as printed ("NVIDIA H200"). */
  model: string;
  /** "GPU-…", when printed. */
  uuid?: string;
}

const GPU_LINE = /^GPU (\d+): (.+?)(?: \(UUID: ([^)]+)\))?\s*$/;

/** The GPUs in `nvidia-smi -L` output; other lines (MIG devices, warnings) are skipped. */
export function parseGpuList(output: string): GpuDevice[] {
  const devices: GpuDevice[] = [];
  for (const line of output.split(/\r?\n/)) {
    const match = GPU_LINE.exec(line.trim());
    if (match === null) continue;
    const device: GpuDevice = { index: match[1], model: match[2].trim() };
    if (match[3] !== undefined) device.uuid = match[3];
    devices.push(device);
  }
  return devices;
}

/**
 * A model as a tag value: lower case, without the vendor, words joined by "-".
 * @example gpuModelTag("NVIDIA H200") // "h200"
 * @example gpuModelTag("NVIDIA GeForce RTX 4090") // "geforce-rtx-4090"
 */
export function gpuModelTag(model: string): string {
  const tag = model
    .trim()
    .replace(/^nvidia\s+/i, "")
    .toLowerCase()
    .replace(/\s+/g, "-")
    .replace(/[^a-z0-9._+-]/g, "")
    .slice(0, 128);
  return tag.length > 0 ? tag : "unknown";
}

/** The `gpu` tag of an instance with `devices`: the model, or the models joined by "+" when they differ. */
export function gpuTagFor(devices: readonly string[], known: readonly GpuDevice[]): string | undefined {
  const models = new Set<string>();
  for (const id of devices) {
    const device = known.find((d) => d.index === id || d.uuid === id);
    if (device === undefined) return undefined;
    models.add(gpuModelTag(device.model));
  }
  return models.size > 0 ? [...models].join("+") : undefined;
}

export type GpuListing = { ok: true; devices: GpuDevice[] } | { ok: false; reason: string };

let cached: GpuListing | undefined;

/** Runs `nvidia-smi -L` (once per process; the answer is kept). */
export function listGpus(): GpuListing {
  if (cached !== undefined) return cached;
  const run = spawnSync("nvidia-smi", ["-L"], { encoding: "utf8", timeout: 15_000 });
  if (run.error !== undefined) {
    const missing = (run.error as NodeJS.ErrnoException).code === "ENOENT";
    cached = { ok: false, reason: missing ? "nvidia-smi was not found on PATH" : `nvidia-smi -L failed: ${run.error.message}` };
  } else if (run.status !== 0) {
    const said = `${run.stderr ?? ""}${run.stdout ?? ""}`.trim().split("\n")[0] ?? "";
    cached = { ok: false, reason: `nvidia-smi -L exited ${run.status}${said ? `: ${said}` : ""}` };
  } else {
    cached = { ok: true, devices: parseGpuList(run.stdout ?? "") };
  }
  return cached;
}

/**
 * The devices of each instance, round robin: instance k (numbered from 1) gets group
 * (k - 1) mod groups, where the devices are cut into groups of `perInstance` in the order given.
 * @example assignGpus(["0", "1"], 4, 1) // [["0"], ["1"], ["0"], ["1"]]: instances 1 and 3 share GPU 0
 * @example assignGpus(["0", "1", "2", "3"], 2, 2) // [["0", "1"], ["2", "3"]]
 */
export function assignGpus(devices: readonly string[], instances: number, perInstance: number): string[][] {
  const groups: string[][] = [];
  for (let i = 0; i + perInstance <= devices.length; i += perInstance) groups.push(devices.slice(i, i + perInstance));
  return Array.from({ length: instances }, (_, k) => groups[k % groups.length]);
}

/** "0,1" or ["0", "1"] → ["0", "1"]; empty entries dropped. */
export function gpuList(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  const items = typeof value === "string" ? value.split(",") : value;
  return items.map((item) => item.trim()).filter((item) => item.length > 0);
}
