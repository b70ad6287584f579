/**
 * Owns the CURVE mechanism (RFC 25 and 26, byte for byte as libzmq speaks it): the client and
 * server handshake state machines, the authenticator call, and the MESSAGE box handed to the
 * connection afterwards. The bytes themselves are built and checked in ../curve/handshake.ts.
 */
import { Buffer } from "node:buffer";
import { type Command, encodeCommand, encodeMetadata, parseErrorCommand, parseMetadata } from "../codec.ts";
import { ZmtpErrorCode, ZmtpProtocolError } from "../errors.ts";
import type { CurveAuthenticator } from "../curve/authenticator.ts";
import { generateKeyPair, publicKeyOf, randomBytes, sharedKey } from "../curve/box.ts";
import {
  CurveHandshakeError,
  encodeHello,
  encodeInitiate,
  encodeReady,
  encodeWelcome,
  helloKey,
  openHello,
  openInitiate,
  openReady,
  openWelcome,
} from "../curve/handshake.ts";
import { type CurveKey, formatCurveKey, parseCurveKey } from "../curve/keys.ts";
import { CurveMessageBox, MESSAGE_OVERHEAD } from "../curve/message-box.ts";
import type { HandshakeResult, Mechanism, MechanismSession, PeerTransportInfo } from "./mechanism.ts";

/** Options of a CURVE server: its long-term secret key and who it admits. */
export interface CurveServerOptions {
  secretKey: CurveKey;
  /** Decides per client; absent: every client with a valid vouch is admitted (libzmq without ZAP). */
  authenticator?: CurveAuthenticator;
}

/** Options of a CURVE client: the server's public key and our long-term key pair. */
export interface CurveClientOptions {
  serverKey: CurveKey;
  secretKey: CurveKey;
  /** Checked against secretKey when given; derived from it otherwise. */
  publicKey?: CurveKey;
}

/** The status libzmq sends (and ZAP names) for a refused client. */
const DENIED_STATUS = "400";

function handshakeFailure(error: unknown): ZmtpProtocolError {
  if (error instanceof CurveHandshakeError) {
    return new ZmtpProtocolError(
      `CURVE handshake failed: ${error.message}`,
      error.cryptographic ? ZmtpErrorCode.SECURITY : ZmtpErrorCode.PROTOCOL,
    );
  }
  return error instanceof ZmtpProtocolError ? error : new ZmtpProtocolError(`CURVE handshake failed: ${(error as Error).message}`);
}

/** A CURVE server mechanism; one instance serves every connection of a socket. */
export function curveServer(options: CurveServerOptions): Mechanism {
  const secretKey = parseCurveKey(options.secretKey, "curveSecretKey");
  const publicKey = publicKeyOf(secretKey);
  return {
    name: "CURVE",
    asServer: true,
    frameOverhead: MESSAGE_OVERHEAD,
    createSession: (metadata, peer) => new CurveServerSession(secretKey, publicKey, options, metadata, peer),
  };
}

/** A CURVE client mechanism. */
export function curveClient(options: CurveClientOptions): Mechanism {
  const serverKey = parseCurveKey(options.serverKey, "curveServerKey");
  const secretKey = parseCurveKey(options.secretKey, "curveSecretKey");
  const publicKey = publicKeyOf(secretKey);
  if (options.publicKey !== undefined && formatCurveKey(parseCurveKey(options.publicKey, "curvePublicKey")) !== formatCurveKey(publicKey)) {
    throw new RangeError("curvePublicKey does not belong to curveSecretKey");
  }
  return {
    name: "CURVE",
    asServer: false,
    frameOverhead: MESSAGE_OVERHEAD,
    createSession: (metadata) => new CurveClientSession(serverKey, secretKey, publicKey, metadata),
  };
}

enum ClientState {
  ExpectWelcome,
  ExpectReady,
  Done,
}

class CurveClientSession implements MechanismSession {
  private state = ClientState.ExpectWelcome;
  private readonly shortTerm = generateKeyPair();
  private shortTermKey: Uint8Array | null = null;
  private helloKey: Uint8Array | null = null;
  private sentHello = false;

  constructor(
    private readonly serverKey: Uint8Array,
    private readonly secretKey: Uint8Array,
    private readonly publicKey: Uint8Array,
    private readonly metadata: Record<string, Uint8Array | string>,
  ) {}

  start(): Buffer[] {
    this.sentHello = true;
    try {
      this.helloKey = helloKey(this.serverKey, this.shortTerm.secretKey, "curveServerKey");
      return [encodeHello(this.helloKey, this.shortTerm.publicKey, 1)];
    } catch (error) {
      throw handshakeFailure(error);
    }
  }

  onCommand(command: Command): { send: Buffer[]; done?: HandshakeResult } {
    try {
      if (command.name === "ERROR") {
        const reason = parseErrorCommand(command.data);
        throw new ZmtpProtocolError(
          `the server refused the CURVE handshake (ERROR ${JSON.stringify(reason)}): ${reason === DENIED_STATUS ? "it does not admit this client's public key" : "check curveServerKey and the keys the server allows"}`,
          ZmtpErrorCode.SECURITY,
        );
      }
      if (this.state === ClientState.ExpectWelcome && command.name === "WELCOME") {
        const welcome = openWelcome(command.data, this.helloKey!);
        const key = sharedKey(welcome.serverShortPublic, this.shortTerm.secretKey);
        if (key === null) throw new CurveHandshakeError("the server's short-term key is not a usable public key", true);
        this.shortTermKey = key;
        this.state = ClientState.ExpectReady;
        return {
          send: [
            encodeInitiate({
              cookie: welcome.cookie,
              counter: 2,
              serverKey: this.serverKey,
              clientPublic: this.publicKey,
              clientSecret: this.secretKey,
              clientShortPublic: this.shortTerm.publicKey,
              shortTermKey: key,
              serverShortPublic: welcome.serverShortPublic,
              metadata: encodeMetadata(this.metadata),
            }),
          ],
        };
      }
      if (this.state === ClientState.ExpectReady && command.name === "READY") {
        const ready = openReady(command.data, this.shortTermKey!);
        this.state = ClientState.Done;
        return {
          send: [],
          done: {
            peerMetadata: parseMetadata(ready.metadata),
            // Our HELLO and INITIATE used nonces 1 and 2; the server's READY used its own.
            box: new CurveMessageBox(this.shortTermKey!, false, 3, ready.counter),
            peerPublicKey: formatCurveKey(this.serverKey),
          },
        };
      }
      throw new ZmtpProtocolError(`unexpected ${command.name} command in the CURVE handshake (client ${ClientState[this.state]})`);
    } catch (error) {
      throw handshakeFailure(error);
    }
  }

  describeClose(): ZmtpProtocolError | undefined {
    if (!this.sentHello || this.state !== ClientState.ExpectWelcome) return undefined;
    return new ZmtpProtocolError(
      "the server closed the connection after our CURVE HELLO without a WELCOME: the handshake was refused; check the server key (curveServerKey) and that the server uses CURVE",
      ZmtpErrorCode.SECURITY,
    );
  }
}

enum ServerState {
  ExpectHello,
  ExpectInitiate,
  Done,
}

class CurveServerSession implements MechanismSession {
  private state = ServerState.ExpectHello;
  private readonly shortTerm = generateKeyPair();
  /** The cookie key lives only as long as this connection: a replayed INITIATE cannot open elsewhere. */
  private readonly cookieKey = randomBytes(32);
  private clientShortPublic: Uint8Array | null = null;
  private lastClientCounter = 0;

  constructor(
    private readonly secretKey: Uint8Array,
    private readonly publicKey: Uint8Array,
    private readonly options: CurveServerOptions,
    private readonly metadata: Record<string, Uint8Array | string>,
    private readonly peer: PeerTransportInfo,
  ) {}

  start(): Buffer[] {
    return [];
  }

  onCommand(command: Command): { send: Buffer[]; done?: HandshakeResult; refused?: ZmtpProtocolError } {
    try {
      if (this.state === ServerState.ExpectHello && command.name === "HELLO") {
        const hello = openHello(command.data, this.secretKey);
        this.clientShortPublic = hello.clientShortPublic;
        this.lastClientCounter = hello.counter;
        this.state = ServerState.ExpectInitiate;
        return {
          send: [encodeWelcome(hello.key, hello.clientShortPublic, this.shortTerm.publicKey, this.shortTerm.secretKey, this.cookieKey)],
        };
      }
      if (this.state === ServerState.ExpectInitiate && command.name === "INITIATE") {
        const key = sharedKey(this.clientShortPublic!, this.shortTerm.secretKey);
        if (key === null) throw new CurveHandshakeError("the client's short-term key is not a usable public key", true);
        const initiate = openInitiate(command.data, {
          cookieKey: this.cookieKey,
          clientShortPublic: this.clientShortPublic!,
          serverPublic: this.publicKey,
          serverShortSecret: this.shortTerm.secretKey,
          shortTermKey: key,
          lastCounter: this.lastClientCounter,
        });
        const peerMetadata = parseMetadata(initiate.metadata);
        const clientKey = formatCurveKey(initiate.clientPublic);
        this.state = ServerState.Done;
        let userId: string | undefined;
        if (this.options.authenticator) {
          const verdict = this.options.authenticator({
            publicKey: clientKey,
            publicKeyBytes: initiate.clientPublic,
            address: this.peer.remoteAddress,
            routingId: peerMetadata.get("identity") ?? EMPTY,
          });
          const allowed = typeof verdict === "boolean" ? verdict : verdict.allow === true;
          if (!allowed) {
            const reason =
              typeof verdict === "object" && verdict.allow === false && verdict.reason ? verdict.reason : "denied by the authenticator";
            return {
              send: [encodeCommand("ERROR", errorData(DENIED_STATUS))],
              refused: new ZmtpProtocolError(
                `CURVE client ${clientKey} from ${this.peer.remoteAddress} refused: ${reason}`,
                ZmtpErrorCode.SECURITY,
              ),
            };
          }
          if (typeof verdict === "object" && verdict.allow === true) userId = verdict.userId;
        }
        return {
          send: [encodeReady(key, 1, encodeMetadata(this.metadata))],
          // READY used our nonce 1; the client's INITIATE used its last handshake nonce.
          done: { peerMetadata, box: new CurveMessageBox(key, true, 2, initiate.counter), peerPublicKey: clientKey, userId },
        };
      }
      throw new ZmtpProtocolError(`unexpected ${command.name} command in the CURVE handshake (server ${ServerState[this.state]})`);
    } catch (error) {
      throw handshakeFailure(error);
    }
  }
}

const EMPTY = Buffer.alloc(0);

function errorData(reason: string): Uint8Array {
  const data = new Uint8Array(1 + reason.length);
  data[0] = reason.length;
  for (let i = 0; i < reason.length; i++) data[1 + i] = reason.charCodeAt(i);
  return data;
}

/** The CURVE socket options, named as zeromq.js names them. */
export interface CurveSocketOptions {
  /** Act as the CURVE server: needs `curveSecretKey` [ZMQ_CURVE_SERVER]. */
  curveServer?: boolean;
  /** Our long-term secret key [ZMQ_CURVE_SECRETKEY]: 40 Z85 characters or 32 bytes. */
  curveSecretKey?: CurveKey;
  /** Our long-term public key [ZMQ_CURVE_PUBLICKEY]; derived from the secret key when omitted. */
  curvePublicKey?: CurveKey;
  /** A client's view of the server's public key [ZMQ_CURVE_SERVERKEY]; setting it makes us a CURVE client. */
  curveServerKey?: CurveKey;
  /** Server only: decides per client (after its vouch is verified). Default: admit every valid client. */
  curveAuthenticator?: CurveAuthenticator;
}

/**
 * The mechanism the CURVE options ask for, or undefined when none is set. Throws a one-line
 * TypeError/RangeError for a contradictory or incomplete set.
 */
export function curveMechanismFromOptions(options: CurveSocketOptions): Mechanism | undefined {
  const { curveServer: asServer, curveSecretKey, curvePublicKey, curveServerKey, curveAuthenticator } = options;
  if (asServer === undefined && curveSecretKey === undefined && curvePublicKey === undefined && curveServerKey === undefined) {
    if (curveAuthenticator !== undefined) throw new TypeError("curveAuthenticator needs curveServer: true and curveSecretKey");
    return undefined;
  }
  if (asServer !== undefined && typeof asServer !== "boolean") throw new TypeError("curveServer must be true or false");
  if (curveSecretKey === undefined) throw new TypeError("CURVE needs curveSecretKey");
  if (asServer === true) {
    if (curveServerKey !== undefined)
      throw new TypeError("a CURVE server takes no curveServerKey (that is the client's view of the server)");
    if (
      curvePublicKey !== undefined &&
      formatCurveKey(parseCurveKey(curvePublicKey, "curvePublicKey")) !==
        formatCurveKey(publicKeyOf(parseCurveKey(curveSecretKey, "curveSecretKey")))
    ) {
      throw new RangeError("curvePublicKey does not belong to curveSecretKey");
    }
    return curveServer({ secretKey: curveSecretKey, authenticator: curveAuthenticator });
  }
  if (curveAuthenticator !== undefined) throw new TypeError("curveAuthenticator is for CURVE servers (curveServer: true)");
  if (curveServerKey === undefined) throw new TypeError("a CURVE client needs curveServerKey (or set curveServer: true for a server)");
  return curveClient({ serverKey: curveServerKey, secretKey: curveSecretKey, publicKey: curvePublicKey });
}
