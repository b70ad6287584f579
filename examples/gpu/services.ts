/**
 * A GPU service: each instance loads its model once, in setup(), on the one GPU the supervisor
 * gave it, and serves it until it is drained; teardown() frees it.
 *
 *   voidrail router
 *   voidrail dealer --module examples/gpu/services.ts --instances 4 --gpus all
 *
 * Each instance sees one device (CUDA_VISIBLE_DEVICES, set before this file loads) and
 * registers with the tag gpu=<model> (e.g. gpu=h200), so a caller can ask for it:
 *
 *   await client.call("Embedder.embed", ["a red bicycle"], { require: { gpu: "h200" } })
 *
 * The "model" here is a random-projection text embedder in plain TypeScript, so the example runs
 * anywhere, GPU or not. With a real model, setup() is where it loads, e.g. with onnxruntime-node:
 *
 *   const ort = await import("onnxruntime-node");
 *   this.session = await ort.InferenceSession.create("model.onnx", {
 *     executionProviders: process.env.VOIDRAIL_GPU ? ["cuda", "cpu"] : ["cpu"],
 *   });
 *
 * (import it inside setup(), not at the top, so that only instances load it, after their device
 * is set). Recycle instances whose native library leaks: --max-memory-per-instance 8192.
 */
import { ServiceDealer, serviceMethod } from "voidrail";

/** Features of the hashed bag of words, and size of an embedding. */
const FEATURES = 4096;
const DIMENSIONS = 64;

/** The weights of the toy model: what a real service reads from disk onto its GPU. */
interface Model {
  projection: Float32Array;
  device: string;
  loadedInMs: number;
}

/** A seeded generator (mulberry32): every instance builds the same weights. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a word: its feature index. */
function featureOf(word: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) hash = Math.imul(hash ^ word.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % FEATURES;
}

export class Embedder extends ServiceDealer {
  private model: Model | undefined;

  /** Loads the model once per instance, before the instance takes any call. */
  override async setup() {
    const started = performance.now();
    const random = seeded(12);
    const projection = new Float32Array(FEATURES * DIMENSIONS);
    // Gaussian weights scaled by 1/sqrt(d): random projection keeps cosine similarity roughly.
    for (let i = 0; i < projection.length; i++) {
      const gaussian = Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
      projection[i] = gaussian / Math.sqrt(DIMENSIONS);
    }
    const device = process.env.VOIDRAIL_GPU ? `cuda (GPU ${process.env.VOIDRAIL_GPU})` : "cpu";
    this.model = { projection, device, loadedInMs: Math.round(performance.now() - started) };
    console.log(`Embedder model loaded on ${device} in ${this.model.loadedInMs} ms`);
  }

  /** Frees the model after the instance drained. */
  override async teardown() {
    this.model = undefined;
  }

  @serviceMethod({ description: "The text's embedding: 64 floats, unit length (a Float32Array)" })
  embed(text: string): Float32Array {
    const model = this.model!;
    const vector = new Float32Array(DIMENSIONS);
    for (const word of String(text).toLowerCase().split(/\W+/)) {
      if (word.length === 0) continue;
      const row = featureOf(word) * DIMENSIONS;
      for (let d = 0; d < DIMENSIONS; d++) vector[d] += model.projection[row + d];
    }
    let norm = 0;
    for (let d = 0; d < DIMENSIONS; d++) norm += vector[d] * vector[d];
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < DIMENSIONS; d++) vector[d] /= norm;
    return vector;
  }

  @serviceMethod({ description: "Cosine similarity of two texts, -1 … 1" })
  similarity(a: string, b: string): number {
    const x = this.embed(a);
    const y = this.embed(b);
    let dot = 0;
    for (let d = 0; d < DIMENSIONS; d++) dot += x[d] * y[d];
    return Math.round(dot * 1e4) / 1e4;
  }

  @serviceMethod({ description: "Where this instance runs its model" })
  device() {
    return { pid: process.pid, device: this.model?.device, cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null, tags: this.tags };
  }
}
