/**
 * Owns the HTTP server's options (`ServiceRouter({ http: { port, host, token } })`), their
 * check, the VOIDRAIL_HTTP_* environment variables and the loopback rule: without a token the
 * server binds only a loopback address, so metrics and actions are never open to a network.
 */
import * as v from "valibot";
import { checkOptions } from "../options.ts";
import { ValidationError } from "../protocol/index.ts";

/** The dashboard, /metrics and /api served by the router (off unless a port is given). */
export interface HttpOptions {
  /** TCP port; 0 picks a free one (see `ServiceRouter.httpUrl`). Env VOIDRAIL_HTTP_PORT. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1; a non-loopback address needs a token. */
  host?: string;
  /**
   * Secret every route but /healthz then needs: `Authorization: Bearer <token>`, the cookie the
   * login form or a `?token=` link sets. Env VOIDRAIL_HTTP_TOKEN. Default: none (loopback only).
   */
  token?: string;
}

/** The options after checks and environment. */
export interface HttpConfig {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
}

const TOKEN_PATTERN = /^[\x21-\x7e]{8,512}$/;

const HttpOptionsSchema = v.object({
  port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535))),
  host: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9.:_-]{1,253}$/, "must be a host name or address"))),
  token: v.optional(v.pipe(v.string(), v.regex(TOKEN_PATTERN, "must be 8-512 printable ASCII characters without spaces"))),
});

/** Whether `host` is a loopback address (or the name localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The HTTP config, or undefined when the server is off (no `http` option and no
 * VOIDRAIL_HTTP_PORT). Throws ValidationError for bad values and for a non-loopback host
 * without a token.
 */
export function resolveHttpConfig(options: HttpOptions | undefined, env: Record<string, string | undefined>): HttpConfig | undefined {
  const envPort = env.VOIDRAIL_HTTP_PORT?.trim() ? env.VOIDRAIL_HTTP_PORT.trim() : undefined;
  if (options === undefined && envPort === undefined) return undefined;
  checkOptions(HttpOptionsSchema, options ?? {}, "http");
  let port = options?.port;
  if (port === undefined) {
    if (envPort === undefined || !/^\d{1,5}$/.test(envPort) || Number(envPort) > 65535)
      throw new ValidationError(`VOIDRAIL_HTTP_PORT must be a port number (0-65535), got "${envPort ?? ""}"`, {
        data: { path: "http.port" },
      });
    port = Number(envPort);
  }
  const envToken = env.VOIDRAIL_HTTP_TOKEN?.trim() ? env.VOIDRAIL_HTTP_TOKEN.trim() : undefined;
  const token = options?.token ?? envToken;
  if (token !== undefined && !TOKEN_PATTERN.test(token))
    throw new ValidationError("VOIDRAIL_HTTP_TOKEN must be 8-512 printable ASCII characters without spaces", {
      data: { path: "http.token" },
    });
  const host = options?.host ?? "127.0.0.1";
  if (token === undefined && !isLoopback(host)) {
    throw new ValidationError(
      `refusing to serve HTTP on ${host} without a token: give http.token (--http-token, VOIDRAIL_HTTP_TOKEN) or bind 127.0.0.1`,
      {
        data: { path: "http.host" },
      },
    );
  }
  return { port, host, token };
}
