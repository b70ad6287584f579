/** Owns the ZMTP layer's errors: ZmtpError with a stable code per failure, and ZmtpProtocolError for a peer breaking the wire protocol. */

/** Stable codes for every ZMTP-level failure, close to libzmq's errno names where one exists. */
export const ZmtpErrorCode = {
  /** The peer broke the wire protocol (bad signature, bad flags, bad command). */
  PROTOCOL: "EPROTO",
  /** A frame or message exceeded `maxMessageSize`. */
  MESSAGE_TOO_LARGE: "EMSGSIZE",
  /**
   * The security handshake failed: a key does not match (wrong server key, forged box), or the
   * server's authenticator refused this client's key.
   */
  SECURITY: "EACCES",
  /** The handshake did not finish within `handshakeInterval`. */
  HANDSHAKE_TIMEOUT: "ETIMEDOUT",
  /** The peer's socket type cannot talk to ours (e.g. DEALER to PUB). */
  INCOMPATIBLE_SOCKET: "ESOCKTNOSUPPORT",
  /** A send or receive did not complete within its timeout. */
  AGAIN: "EAGAIN",
  /** The message could not be routed (Router with `mandatory`). */
  HOST_UNREACHABLE: "EHOSTUNREACH",
  /** The connection was reset or failed underneath us. */
  CONNECTION_RESET: "ECONNRESET",
  /** The socket is closed. */
  CLOSED: "ENOTSOCK",
  /** The endpoint string cannot be parsed or is not supported. */
  BAD_ENDPOINT: "EINVAL",
  /** bind() failed: the address is in use or not available. */
  ADDRESS_IN_USE: "EADDRINUSE",
} as const;
export type ZmtpErrorCode = (typeof ZmtpErrorCode)[keyof typeof ZmtpErrorCode];

/** Base class of every error the ZMTP layer raises; `code` is stable and safe to branch on. */
export class ZmtpError extends Error {
  readonly code: ZmtpErrorCode;
  constructor(code: ZmtpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ZmtpError";
    this.code = code;
  }
}

/** The peer sent bytes that violate ZMTP; the connection is closed with this as the reason. */
export class ZmtpProtocolError extends ZmtpError {
  constructor(message: string, code: ZmtpErrorCode = ZmtpErrorCode.PROTOCOL) {
    super(code, message);
    this.name = "ZmtpProtocolError";
  }
}
