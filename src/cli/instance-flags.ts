/**
 * Parses the flags that give each supervised instance its devices and tags: `--gpus`,
 * `--gpus-per-instance`, and the tags of `--tag` (tag-flags.ts). A mistake is a CliError (exit 2, one line), found before anything starts.
 */
import { assignGpus, type GpuDevice, gpuList, gpuTagFor, listGpus } from "../dealer/gpus.ts";
import { createLogger } from "../util/log.ts";
import { CliError } from "./errors.ts";

/** What each instance of a class gets: devices and tags, by instance number (index 0 = instance 1). */
export interface InstancePlan {
  /** Devices per instance (CUDA_VISIBLE_DEVICES), or undefined without --gpus. */
  gpus?: string[][];
  /** Tags per instance: the --tag flags, plus `gpu` (the model) when --gpus is used and none is given. */
  tags: Record<string, string>[];
}

const GPU_ID = /^(\d{1,3}|GPU-[0-9A-Fa-f-]{1,64}|MIG-[0-9A-Za-z/-]{1,96})$/;

/**
 * The devices `--gpus` names: "all" (from `nvidia-smi -L`: missing is an error) or a list of
 * indices/UUIDs (checked against `nvidia-smi -L` when it runs; without it, taken as given).
 * Also returns what nvidia-smi listed, for the model tag.
 */
export function resolveGpus(flag: string): { devices: string[]; known: GpuDevice[] } {
  const text = flag.trim();
  if (text === "all") {
    const listing = listGpus();
    if (!listing.ok) throw new CliError(`--gpus all needs nvidia-smi to find the GPUs: ${listing.reason} (or name them: --gpus 0,1)`, 2);
    if (listing.devices.length === 0) throw new CliError("--gpus all: nvidia-smi -L lists no GPU", 2);
    return { devices: listing.devices.map((device) => device.index), known: listing.devices };
  }
  const devices = gpuList(text);
  if (devices.length === 0) throw new CliError(`--gpus must be all or a list of GPU indices or UUIDs (e.g. 0,1), got "${flag}"`, 2);
  for (const id of devices) if (!GPU_ID.test(id)) throw new CliError(`--gpus: "${id}" is not a GPU index or UUID`, 2);
  if (new Set(devices).size !== devices.length) throw new CliError(`--gpus names a device twice: ${text}`, 2);
  const listing = listGpus();
  if (!listing.ok) {
    createLogger("dealer").warn(`${listing.reason}: the GPUs are used as given, and instances get no gpu tag`);
    return { devices, known: [] };
  }
  const missing = devices.filter((id) => !listing.devices.some((device) => device.index === id || device.uuid === id));
  if (missing.length > 0) {
    const listed = listing.devices.map((device) => device.index).join(", ") || "none";
    throw new CliError(`--gpus: ${missing.join(", ")} not among the GPUs nvidia-smi -L lists (${listed})`, 2);
  }
  return { devices, known: listing.devices };
}

/** Devices and tags of each of `instances` instances. */
export function planInstances(
  instances: number,
  gpusFlag: string | undefined,
  perInstanceFlag: number | undefined,
  tags: Record<string, string>,
): InstancePlan {
  if (gpusFlag === undefined) {
    if (perInstanceFlag !== undefined) throw new CliError("--gpus-per-instance goes with --gpus", 2);
    return { tags: Array.from({ length: instances }, () => tags) };
  }
  const { devices, known } = resolveGpus(gpusFlag);
  const perInstance = perInstanceFlag ?? 1;
  if (perInstance > devices.length)
    throw new CliError(`--gpus-per-instance ${perInstance} is more than the ${devices.length} GPU(s) of --gpus (${devices.join(",")})`, 2);
  if (devices.length % perInstance !== 0)
    throw new CliError(`--gpus-per-instance ${perInstance} does not divide the ${devices.length} GPUs of --gpus (${devices.join(",")})`, 2);
  const gpus = assignGpus(devices, instances, perInstance);
  return {
    gpus,
    tags: gpus.map((group) => {
      if (tags.gpu !== undefined) return tags;
      const model = gpuTagFor(group, known);
      return model === undefined ? tags : { ...tags, gpu: model };
    }),
  };
}
