/**
 * Owns the mechanism contract (RFC 23 "Mechanisms"): a mechanism runs the handshake that follows
 * the greeting and, where it encrypts (CURVE), boxes every frame after it. NULL (null.ts) and
 * CURVE (curve.ts) plug in here without touching the codec or the connection's framing.
 */
import type { Buffer } from "node:buffer";
import type { Command } from "../codec.ts";
import type { ZmtpError } from "../errors.ts";

/**
 * Encrypts and decrypts the frames of a connection once its handshake is done (CURVE's MESSAGE
 * command). A frame of `n` payload bytes travels as a body of `overhead + n` bytes.
 */
export interface MessageBox {
  /** Bytes a sealed body adds to its payload; the payload goes at this offset before seal(). */
  readonly overhead: number;
  /**
   * Seals one frame in place: `body` is `overhead + payload length` bytes with the payload at
   * offset `overhead`; `flags` are the frame's MORE/COMMAND bits, which travel inside the box.
   */
  seal(body: Uint8Array, flags: number): void;
  /**
   * Opens one received body. Returns the plaintext: flags byte first, then the payload. Throws
   * ZmtpProtocolError for a malformed body, a nonce that does not increase, or a failed MAC.
   */
  open(body: Buffer): Buffer;
}

/** What the handshake learnt about the peer, handed over once it is complete. */
export interface HandshakeResult {
  /** The peer's metadata (lower-cased property names). */
  peerMetadata: Map<string, Buffer>;
  /** Boxes every later frame; absent for mechanisms that send frames in clear (NULL). */
  box?: MessageBox;
  /** The peer's long-term public key in Z85 (CURVE); "" where the mechanism has none. */
  peerPublicKey?: string;
  /** What the server's authenticator said identifies the peer (ZAP's User-Id). */
  userId?: string;
}

/** What one side of a handshake does, for one connection. */
export interface MechanismSession {
  /** Command bodies to send once the peer's greeting has been read. */
  start(): Buffer[];
  /**
   * Handles one command received during the handshake. Returns the commands to send in answer
   * and, once the handshake is complete, `done`. With `refused`, the commands in `send` are
   * written and the connection then closed for that reason (CURVE: an ERROR to a denied client).
   * Throws ZmtpProtocolError when the peer breaks the mechanism's rules.
   */
  onCommand(command: Command): { send: Buffer[]; done?: HandshakeResult; refused?: ZmtpError };
  /**
   * Why the peer probably closed mid-handshake, when the mechanism can tell better than "closed"
   * (a CURVE server that cannot open our HELLO hangs up without a word: wrong server key).
   */
  describeClose?(): ZmtpError | undefined;
}

/** Who the peer is at the transport level, for authenticators. */
export interface PeerTransportInfo {
  remoteAddress: string;
}

/** Creates a session per connection; `metadata` is what we announce (Socket-Type, Identity). */
export interface Mechanism {
  /** Name as it appears in the greeting, e.g. "NULL". */
  readonly name: string;
  /** The greeting's as-server flag for this side. */
  readonly asServer: boolean;
  /** Bytes a boxed frame adds on the wire (0 for NULL), so maxMessageSize stays about payloads. */
  readonly frameOverhead: number;
  createSession(metadata: Record<string, Uint8Array | string>, peer: PeerTransportInfo): MechanismSession;
}
