/**
 * Owns CurveZMQ's MESSAGE command (RFC 26 §"MESSAGE", as libzmq's curve_mechanism_base.cpp
 * sends it): every frame after the handshake travels as `\x07MESSAGE`, an 8-byte nonce counter
 * and a box of [flags byte + payload]. Nonces must strictly increase. Pure: no I/O.
 */
import { Buffer } from "node:buffer";
import { ZmtpProtocolError } from "../errors.ts";
import type { MessageBox } from "../mechanism/mechanism.ts";
import { MAC_SIZE, PrefixedBoxStream } from "./box.ts";
import { nonceWithPrefix, readCounter, writeCounter } from "./nonce.ts";

const MESSAGE_NAME = Buffer.from("\x07MESSAGE", "latin1");
/** Name (8) + nonce (8) + MAC (16) + flags (1): what a MESSAGE adds to a frame's payload. */
export const MESSAGE_OVERHEAD = 8 + 8 + MAC_SIZE + 1;
const BOX_OFFSET = 16;
/** The wire's COMMAND bit is 0x04; libzmq's msg_t::command (what goes in the box) is 0x02. */
const WIRE_COMMAND = 0x04;
const BOX_COMMAND = 0x02;

/** The MESSAGE box of one connection direction pair, created when the handshake completes. */
export class CurveMessageBox implements MessageBox {
  readonly overhead = MESSAGE_OVERHEAD;
  private readonly sendNonce: Uint8Array;
  private readonly receiveNonce: Uint8Array;
  private readonly sender: PrefixedBoxStream;
  private readonly receiver: PrefixedBoxStream;
  private nextSendCounter: number;
  private lastReceivedCounter: number;

  /**
   * @param key the precomputed key of the short-term pair (crypto_box_beforenm(C', s')).
   * @param asServer the server sends "CurveZMQMESSAGES" nonces and reads "...C" ones.
   * @param nextSendCounter our next nonce (the handshake used the ones before it).
   * @param lastReceivedCounter the peer's last handshake nonce; its MESSAGEs must be above it.
   */
  constructor(key: Uint8Array, asServer: boolean, nextSendCounter: number, lastReceivedCounter: number) {
    this.sendNonce = nonceWithPrefix(asServer ? "CurveZMQMESSAGES" : "CurveZMQMESSAGEC");
    this.receiveNonce = nonceWithPrefix(asServer ? "CurveZMQMESSAGEC" : "CurveZMQMESSAGES");
    this.nextSendCounter = nextSendCounter;
    this.lastReceivedCounter = lastReceivedCounter;
    this.sender = new PrefixedBoxStream(key, this.sendNonce.subarray(0, 16));
    this.receiver = new PrefixedBoxStream(key, this.receiveNonce.subarray(0, 16));
  }

  seal(body: Uint8Array, flags: number): void {
    // libzmq's in-box flags use msg_t's bits: 0x01 MORE, 0x02 COMMAND.
    body[MESSAGE_OVERHEAD - 1] = (flags & 0x01) | ((flags & WIRE_COMMAND) !== 0 ? BOX_COMMAND : 0);
    const counter = this.nextSendCounter++;
    // The region starts 16 bytes before the MAC: scratch for the Poly1305 key.
    writeCounter(this.sendNonce, 16, counter);
    this.sender.seal(this.sendNonce.subarray(16), body);
    for (let i = 0; i < 8; i++) body[i] = MESSAGE_NAME[i];
    writeCounter(body, 8, counter);
  }

  open(body: Buffer): Buffer {
    if (body.length < MESSAGE_NAME.length || !startsWithName(body)) {
      throw new ZmtpProtocolError("expected a CURVE MESSAGE command after the handshake");
    }
    if (body.length < MESSAGE_OVERHEAD)
      throw new ZmtpProtocolError(`CURVE MESSAGE of ${body.length} bytes is shorter than ${MESSAGE_OVERHEAD}`);
    const counter = readCounter(body, 8);
    if (counter <= this.lastReceivedCounter) {
      throw new ZmtpProtocolError(
        `CURVE MESSAGE nonce ${counter} is not above the last one (${this.lastReceivedCounter}): replayed or reordered`,
      );
    }
    const boxLength = body.length - BOX_OFFSET;
    const region = Buffer.allocUnsafe(boxLength + 16);
    if (!this.receiver.open(body.subarray(8, 16), body.subarray(BOX_OFFSET), region)) {
      throw new ZmtpProtocolError("CURVE MESSAGE box does not open (corrupted or forged)");
    }
    this.lastReceivedCounter = counter;
    const plaintext = region.subarray(32);
    const boxFlags = plaintext[0];
    plaintext[0] = (boxFlags & 0x01) | ((boxFlags & BOX_COMMAND) !== 0 ? WIRE_COMMAND : 0);
    return plaintext;
  }
}

function startsWithName(body: Buffer): boolean {
  for (let i = 0; i < MESSAGE_NAME.length; i++) if (body[i] !== MESSAGE_NAME[i]) return false;
  return true;
}
