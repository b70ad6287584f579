/**
 * Owns who may use the HTTP server: with a token configured, a request must carry it as
 * `Authorization: Bearer <token>`, as the `voidrail_token` cookie (set by the login form or by a
 * `?token=` link, as Jupyter's links do), or as `?token=` itself. Comparison is constant-time.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export const TOKEN_COOKIE = "voidrail_token";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** How a request proved the token, or null when it did not. */
export type AuthResult = { via: "none" | "header" | "cookie" | "query" } | null;

export class HttpAuth {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token === undefined ? undefined : digest(token);
  }

  get required(): boolean {
    return this.expected !== undefined;
  }

  matches(candidate: string | null | undefined): boolean {
    if (this.expected === undefined) return true;
    if (candidate === null || candidate === undefined || candidate.length === 0 || candidate.length > 512) return false;
    return timingSafeEqual(digest(candidate), this.expected);
  }

  check(request: Request, url: URL): AuthResult {
    if (this.expected === undefined) return { via: "none" };
    const header = request.headers.get("authorization");
    if (header !== null) {
      const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
      // A wrong header is a wrong answer, even with a right cookie beside it.
      return match && this.matches(match[1]) ? { via: "header" } : null;
    }
    const query = url.searchParams.get("token");
    if (query !== null) return this.matches(query) ? { via: "query" } : null;
    return this.matches(cookieValue(request.headers.get("cookie"), TOKEN_COOKIE)) ? { via: "cookie" } : null;
  }

  /** The Set-Cookie header that keeps a browser signed in (HttpOnly, SameSite=Strict). */
  cookie(token: string): string {
    return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000`;
  }
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const at = part.indexOf("=");
    if (at < 0 || part.slice(0, at).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(at + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
