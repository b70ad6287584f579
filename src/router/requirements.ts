/**
 * Owns the matching of a call's `require` against a dealer's tags: a dealer qualifies when its
 * tags hold every required name with the same value (extra tags do not matter). Pure.
 */
import type { Tags } from "../protocol/index.ts";

/** Tags of no dealer: shared, so a dealer without tags costs no object. */
export const NO_TAGS: Readonly<Tags> = Object.freeze({});

/** Whether `tags` has every entry of `require`; an absent requirement is met by any dealer. */
export function meetsRequirement(tags: Readonly<Tags>, require: Readonly<Tags> | undefined): boolean {
  if (require === undefined) return true;
  for (const name in require) if (tags[name] !== require[name]) return false;
  return true;
}

/** `gpu=h200, region=eu`: how messages name a requirement. */
export function describeRequirement(require: Readonly<Tags>): string {
  return Object.entries(require)
    .map(([name, value]) => `${name}=${value}`)
    .join(", ");
}

/** A requirement with no entries is no requirement: undefined, so the fast paths see it as absent. */
export function normalizeRequirement(require: Readonly<Tags> | undefined): Readonly<Tags> | undefined {
  if (require === undefined) return undefined;
  for (const _ in require) return require;
  return undefined;
}
