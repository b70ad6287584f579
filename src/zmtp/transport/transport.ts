/**
 * Owns the small seam between ZMTP and the operating system's sockets (the nats.js Transport idea):
 * connections see only this interface, so the same protocol code runs on Bun sockets and on node:net.
 */
import type { Buffer } from "node:buffer";
import { existsSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { type Endpoint, formatEndpoint } from "../endpoint.ts";
import { ZmtpError, ZmtpErrorCode } from "../errors.ts";

/** Callbacks a transport stream delivers to its owner. */
export interface StreamHandlers {
  data(chunk: Buffer): void;
  /** Everything written so far has been handed to the kernel. */
  drain(): void;
  /** The stream is closed; `error` when it failed rather than ended. Called once. */
  close(error?: Error): void;
}

export interface TransportStream {
  /**
   * Writes `data`. Returns false when some of it is held back (the kernel buffer is full); the
   * stream keeps it and sends it before anything written later, then calls `drain`.
   */
  write(data: Buffer): boolean;
  /** Closes after every held-back byte is written. */
  end(): void;
  /** Closes now, discarding held-back bytes. */
  destroy(): void;
  /** Stops reading from the kernel (receive backpressure); data already read may still arrive. */
  pause(): void;
  resume(): void;
  /** Human-readable peer address for logs. */
  readonly remoteAddress: string;
}

export interface TransportListener {
  /** The bound endpoint with the real port when port 0 was asked for. */
  readonly endpoint: Endpoint;
  close(): void;
}

export interface Transport {
  readonly name: "bun" | "node";
  /** `accept` is called for every new connection and returns that connection's handlers. */
  listen(endpoint: Endpoint, accept: (stream: TransportStream) => StreamHandlers): Promise<TransportListener>;
  /** Resolves once connected; `attach` is called with the stream before any data is delivered. */
  connect(endpoint: Endpoint, attach: (stream: TransportStream) => StreamHandlers): Promise<TransportStream>;
}

/** libzmq unlinks an existing socket file before binding an ipc endpoint, and so do we. */
export function removeStaleSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Nothing to remove.
  }
}

/**
 * The error for a failed bind, in words: Bun says only "Failed to listen at 127.0.0.1" and node
 * "listen EADDRINUSE: ...", neither of which names the endpoint or says plainly what is wrong.
 */
export function bindError(endpoint: Endpoint, cause: unknown): ZmtpError {
  const address = formatEndpoint(endpoint);
  const osCode = (cause as { code?: unknown } | null)?.code;
  let text: string;
  // Checked first: node reports a missing directory as EACCES, Bun as ENOENT.
  if (endpoint.transport === "ipc" && !existsSync(dirname(endpoint.path))) text = `cannot bind ${address}: its directory does not exist`;
  else if (osCode === "EADDRINUSE") text = `address ${address} is already in use`;
  else if (osCode === "EADDRNOTAVAIL") text = `cannot bind ${address}: not an address of this machine`;
  else if (osCode === "EACCES" || osCode === "EPERM") text = `cannot bind ${address}: permission denied`;
  else text = `cannot bind ${address}: ${(cause as Error)?.message ?? String(cause)}`;
  return new ZmtpError(ZmtpErrorCode.ADDRESS_IN_USE, text, { cause });
}
