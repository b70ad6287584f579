/**
 * The GPUs and tags a dealer registers with, resolved once in its constructor from its options,
 * VOIDRAIL_GPU and `nvidia-smi -L`.
 */
import { gpuList, gpuTagFor, listGpus } from "./gpus.ts";

/** What a dealer reports about itself beyond its methods. */
export interface DealerIdentity {
  /** Its GPUs (indices or UUIDs); empty when it has none. */
  gpus: string[];
  /** Its tags, a copy; undefined when there are none. */
  tags: Record<string, string> | undefined;
}

/**
 * Resolves the `gpus` and `tags` options. Explicit `gpus` also set CUDA_VISIBLE_DEVICES and
 * VOIDRAIL_GPU in `env`, and add a `gpu` tag with their model unless `tags` has one; GPUs taken
 * from VOIDRAIL_GPU are only reported (whoever set it, `voidrail dealer --gpus`, set the rest).
 * @example resolveIdentity({ gpus: "0" }) // { gpus: ["0"], tags: { gpu: "h200" } } on an H200
 */
export function resolveIdentity(
  options: { gpus?: string | string[]; tags?: Record<string, string> },
  env: NodeJS.ProcessEnv = process.env,
): DealerIdentity {
  const explicitGpus = options.gpus !== undefined;
  const gpus = gpuList(options.gpus ?? env.VOIDRAIL_GPU);
  if (explicitGpus && gpus.length > 0) {
    // Before setup() loads a model: CUDA reads the variable when it initialises.
    env.CUDA_VISIBLE_DEVICES = gpus.join(",");
    env.VOIDRAIL_GPU = gpus.join(",");
  }
  let tags = options.tags;
  if (explicitGpus && gpus.length > 0 && tags?.gpu === undefined) {
    const listing = listGpus();
    const model = listing.ok ? gpuTagFor(gpus, listing.devices) : undefined;
    if (model !== undefined) tags = { ...tags, gpu: model };
  }
  return { gpus, tags: tags !== undefined && Object.keys(tags).length > 0 ? { ...tags } : undefined };
}
