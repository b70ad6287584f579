/**
 * Owns authentication: which API keys each role must present, their constant-time check, the
 * AUTH_FAILED errors, and the generator of keys in the seed's format.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { AuthError, AuthFailure, ValidationError } from "../protocol/index.ts";

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

/** Who must authenticate, and with which keys. */
export class Authenticator {
  private readonly dealerKeys: KeyChecker;
  private readonly clientKeys: KeyChecker;

  constructor(
    dealerApiKeys: readonly string[],
    clientApiKeys: readonly string[],
    /** Dealers must present one of `dealerApiKeys` in HELLO. */
    readonly requireDealerAuth: boolean,
    /** Clients must present one of `clientApiKeys` in HELLO before anything else. */
    readonly requireClientAuth: boolean,
  ) {
    this.dealerKeys = new KeyChecker(dealerApiKeys);
    this.clientKeys = new KeyChecker(clientApiKeys);
  }

  /** Whether a dealer HELLO with `apiKey` may register. */
  dealerMayRegister(apiKey: string | undefined): boolean {
    return !this.requireDealerAuth || this.dealerKeys.matches(apiKey);
  }

  /** Whether a client HELLO with `apiKey` is welcomed. */
  clientMayConnect(apiKey: string | undefined): boolean {
    return !this.requireClientAuth || this.clientKeys.matches(apiKey);
  }
}

/** The AUTH_FAILED error for `reason`. */
export function authError(reason: AuthFailure): AuthError {
  const text = reason === AuthFailure.NOT_AUTHENTICATED ? "authenticate with HELLO and an API key first" : "authentication failed";
  return new AuthError(text, { data: { reason } });
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
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(prefix))
      throw new ValidationError("key prefix must be 1-64 letters, digits, '_' or '-'", { data: { path: "prefix" } });
    const now = new Date();
    const date = `${String(now.getUTCFullYear() % 100).padStart(2, "0")}${String(now.getUTCMonth() + 1).padStart(2, "0")}${String(now.getUTCDate()).padStart(2, "0")}`;
    return `${prefix}_${date}_${randomBytes(24).toString("base64url")}`;
  },
};
