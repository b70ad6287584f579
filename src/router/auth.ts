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

/**
 * Which CURVE public keys (Z85) may take each role. An absent list leaves that role open to any
 * key the CURVE handshake admitted; a list, even empty, restricts it to its keys.
 */
export interface CurveRoleKeys {
  dealers?: readonly string[];
  clients?: readonly string[];
}

/** Who must authenticate, and with which keys: API keys in HELLO, CURVE keys on the connection, or both. */
export class Authenticator {
  private readonly dealerKeys: KeyChecker;
  private readonly clientKeys: KeyChecker;
  private readonly dealerCurveKeys: ReadonlySet<string> | undefined;
  private readonly clientCurveKeys: ReadonlySet<string> | undefined;

  constructor(
    dealerApiKeys: readonly string[],
    clientApiKeys: readonly string[],
    /** Dealers must present one of `dealerApiKeys` in HELLO. */
    readonly requireDealerAuth: boolean,
    /** Clients must present one of `clientApiKeys` in HELLO before anything else. */
    readonly requireClientAuth: boolean,
    curveRoles: CurveRoleKeys = {},
  ) {
    this.dealerKeys = new KeyChecker(dealerApiKeys);
    this.clientKeys = new KeyChecker(clientApiKeys);
    this.dealerCurveKeys = curveRoles.dealers ? new Set(curveRoles.dealers) : undefined;
    this.clientCurveKeys = curveRoles.clients ? new Set(curveRoles.clients) : undefined;
  }

  /** Whether a client role depends on the connection's CURVE key (a list of client keys is set). */
  get restrictsClientKeys(): boolean {
    return this.clientCurveKeys !== undefined;
  }

  /** Whether a dealer HELLO with `apiKey`, on a connection with CURVE key `publicKey` ("" without), may register. */
  dealerMayRegister(apiKey: string | undefined, publicKey = ""): boolean {
    if (this.dealerCurveKeys !== undefined && !this.dealerCurveKeys.has(publicKey)) return false;
    return !this.requireDealerAuth || this.dealerKeys.matches(apiKey);
  }

  /** Whether a client HELLO with `apiKey` is welcomed. */
  clientMayConnect(apiKey: string | undefined, publicKey = ""): boolean {
    if (!this.clientKeyAllowed(publicKey)) return false;
    return !this.requireClientAuth || this.clientKeys.matches(apiKey);
  }

  /** Whether a connection with CURVE key `publicKey` may act as a client at all. */
  clientKeyAllowed(publicKey: string): boolean {
    return this.clientCurveKeys === undefined || this.clientCurveKeys.has(publicKey);
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
