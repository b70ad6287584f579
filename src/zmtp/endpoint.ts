/** Owns endpoint strings: parsing tcp://host:port, tcp://*:port, tcp://[::1]:port and ipc:///path, and formatting them back. */
import { ZmtpError, ZmtpErrorCode } from "./errors.ts";

/** A parsed endpoint: a TCP host and port, or a Unix-domain socket path. */
export type Endpoint = { transport: "tcp"; host: string; port: number } | { transport: "ipc"; path: string };

/**
 * Parses `tcp://host:port`, `tcp://*:port`, `tcp://[::1]:port`, `tcp://host:0` or `tcp://host:*`
 * (ephemeral port) and `ipc:///absolute/or/relative/path`. Throws ZmtpError(EINVAL) otherwise.
 */
export function parseEndpoint(endpoint: string): Endpoint {
  const bad = (why: string) => new ZmtpError(ZmtpErrorCode.BAD_ENDPOINT, `invalid endpoint "${endpoint}": ${why}`);
  const separator = endpoint.indexOf("://");
  if (separator <= 0) throw bad("expected tcp://host:port or ipc://path");
  const scheme = endpoint.slice(0, separator);
  const address = endpoint.slice(separator + 3);
  if (scheme === "ipc") {
    if (address.length === 0) throw bad("empty path");
    return { transport: "ipc", path: address };
  }
  if (scheme !== "tcp") throw bad(`transport "${scheme}" is not supported (tcp, ipc)`);
  const colon = address.lastIndexOf(":");
  if (colon <= 0) throw bad("missing port");
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith("[")) {
    if (!host.endsWith("]")) throw bad("unterminated IPv6 address");
    host = host.slice(1, -1);
  }
  if (host === "*") host = "0.0.0.0";
  if (host.length === 0) throw bad("empty host");
  const port = portText === "*" ? 0 : Number(portText);
  if (!/^\d+$/.test(portText) && portText !== "*") throw bad("port is not a number");
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad("port out of range");
  return { transport: "tcp", host, port };
}

/** The canonical string for an endpoint, with IPv6 hosts in brackets. */
export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.transport === "ipc") return `ipc://${endpoint.path}`;
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
  return `tcp://${host}:${endpoint.port}`;
}
