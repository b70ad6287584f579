import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Checks API keys in constant time: every configured key is compared (no early exit) as a
 * SHA-256 digest, so neither the key's length nor its matching prefix shows in the timing.
 */
export class KeyChecker {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get size(): number {
    return this.digests.length;
  }

  matches(presented: string | undefined): boolean {
    const candidate = digest(presented ?? "");
    let found = false;
    for (const known of this.digests) found = timingSafeEqual(known, candidate) || found;
    return found && presented !== undefined;
  }
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/** Generates API keys in the seed's format. */
export const ApiKeyManager = {
  /**
   * Returns `<prefix>_<yymmdd>_<random>`: 24 random bytes (192 bits) in base64url.
   * @example ApiKeyManager.generateKey("dealer") // "dealer_261125_3q2-7wZ..."
   */
  generateKey(prefix = "key"): string {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(prefix)) throw new TypeError("key prefix must be 1-64 letters, digits, '_' or '-'");
    const now = new Date();
    const date = `${String(now.getUTCFullYear() % 100).padStart(2, "0")}${String(now.getUTCMonth() + 1).padStart(2, "0")}${String(now.getUTCDate()).padStart(2, "0")}`;
    return `${prefix}_${date}_${randomBytes(24).toString("base64url")}`;
  },
};
