/**
 * ZMTP 3.1 wire codec (RFC 23 and RFC 37): greeting, frames, commands and metadata.
 * Pure functions over bytes; no sockets, no timers. Everything here is unit-tested byte by byte.
 */
import { Buffer, constants as bufferConstants } from "node:buffer";
import { ZmtpErrorCode, ZmtpProtocolError } from "./errors.ts";

export const GREETING_SIZE = 64;
const SIGNATURE_SIZE = 10;
const MECHANISM_OFFSET = 12;
const MECHANISM_SIZE = 20;
const AS_SERVER_OFFSET = 32;

/** Bits of the first byte of every frame. The upper five bits are reserved and must be zero. */
export const FrameFlag = { MORE: 0x01, LONG: 0x02, COMMAND: 0x04 } as const;
const RESERVED_FLAG_BITS = 0xf8;

/** Frames at or below this size use the one-byte length form. */
export const SHORT_FRAME_MAX = 255;

/**
 * Bodies larger than this that arrive split across reads are assembled into a buffer of their
 * exact size instead of by re-concatenating chunks, which would be quadratic for 64 MiB frames.
 */
const ASSEMBLE_THRESHOLD = 1024;

export interface Greeting {
  major: number;
  minor: number;
  mechanism: string;
  asServer: boolean;
}

export interface Frame {
  more: boolean;
  command: boolean;
  body: Buffer;
}

/**
 * A large frame body kept as the pieces of the received chunks it arrived in, not copied into one
 * buffer (Decoder's `keepPartsAbove`): for relays, which send it on without reading it. Sending
 * it writes the pieces as they are; `toBuffer()` copies them into one Buffer for a reader.
 */
export class FrameParts {
  /** Throws RangeError when `byteLength` is not the parts' total: the frame header would lie. */
  constructor(
    /** The body's bytes, in order: views into received chunks. */
    readonly parts: readonly Buffer[],
    /** Total bytes of the body. */
    readonly byteLength: number,
  ) {
    let total = 0;
    for (const part of parts) total += part.byteLength;
    if (total !== byteLength) throw new RangeError(`FrameParts of ${total} bytes announced as ${byteLength}`);
  }

  /** The body as one Buffer (a copy). */
  toBuffer(): Buffer {
    return Buffer.concat(this.parts as Buffer[], this.byteLength);
  }
}

export type DecodedItem =
  | { kind: "greeting"; greeting: Greeting }
  | { kind: "frame"; frame: Frame }
  /** With `keepPartsAbove`: a frame above that size that arrived in several chunks. */
  | { kind: "parts"; more: boolean; parts: FrameParts }
  /**
   * With `discardAbove`: the message whose frames together passed that bound has ended. Its frames
   * from the one that passed it on were skipped as they arrived (never held); those before it
   * were returned as frames. `size` is the whole message's body bytes.
   */
  | { kind: "discarded"; size: number };

/** The 64-byte ZMTP 3.1 greeting we send. Padding carries the ZMTP 1.0 length byte, as libzmq does. */
export function encodeGreeting(mechanism: string, asServer: boolean, minor = 1): Buffer {
  const greeting = Buffer.alloc(GREETING_SIZE);
  greeting[0] = 0xff;
  greeting[8] = 0x01;
  greeting[9] = 0x7f;
  greeting[10] = 3;
  greeting[11] = minor;
  greeting.write(mechanism, MECHANISM_OFFSET, MECHANISM_SIZE, "ascii");
  greeting[AS_SERVER_OFFSET] = asServer ? 1 : 0;
  return greeting;
}

/** Parses a complete 64-byte greeting; throws ZmtpProtocolError on anything that is not ZMTP 3.x. */
export function parseGreeting(bytes: Uint8Array): Greeting {
  if (bytes.length < GREETING_SIZE) throw new ZmtpProtocolError(`greeting truncated: ${bytes.length} of ${GREETING_SIZE} bytes`);
  checkSignaturePrefix(bytes, GREETING_SIZE);
  const mechanismBytes = bytes.subarray(MECHANISM_OFFSET, MECHANISM_OFFSET + MECHANISM_SIZE);
  const end = mechanismBytes.indexOf(0);
  const mechanismEnd = end === -1 ? MECHANISM_SIZE : end;
  for (let i = 0; i < mechanismEnd; i++) {
    const c = mechanismBytes[i];
    // RFC 23: mechanism names are uppercase letters, digits, '-', '_', '.', '+'.
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2e || c === 0x2b)) {
      throw new ZmtpProtocolError("greeting has an invalid mechanism name");
    }
  }
  for (let i = mechanismEnd; i < MECHANISM_SIZE; i++) {
    if (mechanismBytes[i] !== 0) throw new ZmtpProtocolError("greeting mechanism is not null-padded");
  }
  const asServer = bytes[AS_SERVER_OFFSET];
  if (asServer > 1) throw new ZmtpProtocolError("greeting as-server flag is not 0 or 1");
  return {
    major: bytes[10],
    minor: bytes[11],
    mechanism: Buffer.from(mechanismBytes.subarray(0, mechanismEnd)).toString("ascii"),
    asServer: asServer === 1,
  };
}

/** Validates as much of the signature and version as `available` bytes allow, so garbage fails fast. */
function checkSignaturePrefix(bytes: Uint8Array, available: number): void {
  if (available >= 1 && bytes[0] !== 0xff) throw new ZmtpProtocolError("bad greeting signature: first byte is not 0xFF");
  if (available >= SIGNATURE_SIZE && bytes[9] !== 0x7f) throw new ZmtpProtocolError("bad greeting signature: tenth byte is not 0x7F");
  if (available >= 11 && bytes[10] < 3) throw new ZmtpProtocolError(`unsupported ZMTP version ${bytes[10]}: only 3.x is spoken`);
}

/** Size of the header (flags + length) that precedes a body of `size` bytes. */
export function frameHeaderSize(size: number): number {
  return size > SHORT_FRAME_MAX ? 9 : 2;
}

/** Writes a frame header for a body of `size` bytes at `offset`; returns the offset after it. */
export function writeFrameHeader(target: Uint8Array, offset: number, size: number, flags: number): number {
  if (size > SHORT_FRAME_MAX) {
    target[offset] = flags | FrameFlag.LONG;
    // 64-bit big-endian length; bodies are below 2^53, so the high word is size / 2^32.
    const high = Math.floor(size / 0x1_0000_0000);
    const low = size >>> 0;
    target[offset + 1] = high >>> 24;
    target[offset + 2] = (high >>> 16) & 0xff;
    target[offset + 3] = (high >>> 8) & 0xff;
    target[offset + 4] = high & 0xff;
    target[offset + 5] = low >>> 24;
    target[offset + 6] = (low >>> 16) & 0xff;
    target[offset + 7] = (low >>> 8) & 0xff;
    target[offset + 8] = low & 0xff;
    return offset + 9;
  }
  target[offset] = flags;
  target[offset + 1] = size;
  return offset + 2;
}

/** One whole frame (header and body) as a new buffer. Convenient for commands and tests. */
export function encodeFrame(body: Uint8Array, flags: { more?: boolean; command?: boolean } = {}): Buffer {
  const flagBits = (flags.more ? FrameFlag.MORE : 0) | (flags.command ? FrameFlag.COMMAND : 0);
  const out = Buffer.allocUnsafe(frameHeaderSize(body.length) + body.length);
  const offset = writeFrameHeader(out, 0, body.length, flagBits);
  out.set(body, offset);
  return out;
}

/** Body of a command frame: name length, name, data (RFC 37 section "Commands"). */
export function encodeCommand(name: string, data: Uint8Array = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(1 + name.length + data.length);
  out[0] = name.length;
  out.write(name, 1, "ascii");
  out.set(data, 1 + name.length);
  return out;
}

export interface Command {
  name: string;
  data: Buffer;
}

export function parseCommand(body: Buffer): Command {
  if (body.length < 1) throw new ZmtpProtocolError("empty command frame");
  const nameLength = body[0];
  if (nameLength === 0 || 1 + nameLength > body.length) throw new ZmtpProtocolError("command name length out of bounds");
  return { name: body.toString("latin1", 1, 1 + nameLength), data: body.subarray(1 + nameLength) };
}

/** Metadata properties (READY, INITIATE): name-size, name, 4-byte value-size, value. */
export function encodeMetadata(properties: Record<string, Uint8Array | string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(properties)) {
    if (name.length === 0 || name.length > 255) throw new RangeError(`metadata name length must be 1..255: ${name}`);
    const valueBytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    const head = Buffer.allocUnsafe(1 + name.length + 4);
    head[0] = name.length;
    head.write(name, 1, "ascii");
    head.writeUInt32BE(valueBytes.length, 1 + name.length);
    parts.push(head, Buffer.from(valueBytes.buffer, valueBytes.byteOffset, valueBytes.byteLength));
  }
  return Buffer.concat(parts);
}

/** Property names are case-insensitive (RFC 37), so keys come back lower-cased. */
export function parseMetadata(data: Buffer): Map<string, Buffer> {
  const properties = new Map<string, Buffer>();
  let offset = 0;
  while (offset < data.length) {
    const nameLength = data[offset];
    if (nameLength === 0) throw new ZmtpProtocolError("metadata property with an empty name");
    if (offset + 1 + nameLength + 4 > data.length) throw new ZmtpProtocolError("metadata property truncated");
    const name = data.toString("latin1", offset + 1, offset + 1 + nameLength).toLowerCase();
    offset += 1 + nameLength;
    const valueLength = data.readUInt32BE(offset);
    offset += 4;
    if (offset + valueLength > data.length) throw new ZmtpProtocolError("metadata value truncated");
    properties.set(name, data.subarray(offset, offset + valueLength));
    offset += valueLength;
  }
  return properties;
}

/** PING body data: 2-byte TTL in deciseconds, then up to 16 bytes of context. */
export function encodePing(ttlDeciseconds: number, context: Uint8Array = EMPTY): Buffer {
  const data = Buffer.allocUnsafe(2 + context.length);
  data.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.round(ttlDeciseconds))), 0);
  data.set(context, 2);
  return encodeCommand("PING", data);
}

export function parsePing(data: Buffer): { ttlDeciseconds: number; context: Buffer } {
  if (data.length < 2) throw new ZmtpProtocolError("PING command without a TTL");
  if (data.length > 2 + 16) throw new ZmtpProtocolError("PING context longer than 16 bytes");
  return { ttlDeciseconds: data.readUInt16BE(0), context: data.subarray(2) };
}

/** ERROR command data: one-byte reason length, reason. */
export function encodeErrorCommand(reason: string): Buffer {
  const reasonBytes = Buffer.from(reason.slice(0, 255), "latin1");
  const data = Buffer.allocUnsafe(1 + reasonBytes.length);
  data[0] = reasonBytes.length;
  reasonBytes.copy(data, 1);
  return encodeCommand("ERROR", data);
}

export function parseErrorCommand(data: Buffer): string {
  if (data.length < 1) return "";
  return data.toString("latin1", 1, Math.min(data.length, 1 + data[0]));
}

const EMPTY = Buffer.alloc(0);
/** nextItem() skipped a frame of a discarded message: look again. */
const SKIPPED = Symbol("skipped");
const MAX_BUFFER_LENGTH = bufferConstants.MAX_LENGTH;
enum State {
  Greeting,
  FrameHeader,
}

/**
 * Streaming decoder: push() raw bytes as they arrive, then call next() until it returns undefined.
 * Throws ZmtpProtocolError on the first violation; the caller closes the connection then.
 * Frame bodies point into the pushed chunks where they fit in one, so small frames cost no copy.
 */
export class Decoder {
  private state: State;
  private buffer: Buffer = EMPTY;
  private position = 0;
  private assembling: Buffer | null = null;
  private assembled = 0;
  private assemblingFlags = 0;
  private readonly maxFrameSize: number;
  private readonly discardAbove: number;
  private readonly keepPartsAbove: number;
  /** The pieces of a frame above keepPartsAbove collected so far (null: none being collected). */
  private collecting: Buffer[] | null = null;
  private collectingSize = 0;
  private collected = 0;
  private collectingFlags = 0;
  /** Body bytes of the message being read, its frames so far (the current one included). */
  private messageBytes = 0;
  /** The message being read passed `discardAbove`: its remaining frames are skipped. */
  private discarding = false;
  /** Body bytes of the frame being skipped that have not arrived yet. */
  private skipRemaining = 0;
  /** The frame being skipped is the message's last. */
  private skippingLast = false;
  /** `messageBytes` when the discarding began (the bytes of the frames returned before it). */
  private discardedFrom = 0;

  /**
   * @param options.maxFrameSize largest accepted frame body in bytes; -1 (default) for no limit.
   * @param options.expectGreeting start by reading the 64-byte greeting (default true).
   * @param options.discardAbove a message whose frames together pass this many bytes is skipped
   *   from the frame that passes it to its end, without holding those bytes, and reported as one
   *   `discarded` item, instead of failing the stream; -1 (default) for no such bound.
   * @param options.keepPartsAbove a message frame larger than this that arrives in several chunks
   *   is returned as FrameParts (views of the chunks, no copy) instead of being assembled into one
   *   buffer; -1 (default) assembles every frame.
   */
  constructor(options: { maxFrameSize?: number; expectGreeting?: boolean; discardAbove?: number; keepPartsAbove?: number } = {}) {
    this.maxFrameSize = options.maxFrameSize === undefined || options.maxFrameSize < 0 ? Number.MAX_SAFE_INTEGER : options.maxFrameSize;
    this.discardAbove = options.discardAbove === undefined || options.discardAbove < 0 ? -1 : options.discardAbove;
    this.keepPartsAbove = options.keepPartsAbove === undefined || options.keepPartsAbove < 0 ? -1 : options.keepPartsAbove;
    this.state = options.expectGreeting === false ? State.FrameHeader : State.Greeting;
  }

  /** Bytes received but not yet returned as part of an item, the skipped ones of a discarded message included. */
  get bufferedBytes(): number {
    const skipped = this.discarding ? this.messageBytes - this.discardedFrom - this.skipRemaining : 0;
    return this.buffer.length - this.position + this.assembled + this.collected + skipped;
  }

  push(chunk: Uint8Array): void {
    let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.skipRemaining > 0) {
      const skip = Math.min(this.skipRemaining, bytes.length);
      this.skipRemaining -= skip;
      bytes = bytes.subarray(skip);
      if (bytes.length === 0) return;
    }
    if (this.collecting !== null) {
      const take = Math.min(this.collectingSize - this.collected, bytes.length);
      if (take > 0) this.collecting.push(take === bytes.length ? bytes : bytes.subarray(0, take));
      this.collected += take;
      bytes = bytes.subarray(take);
      if (bytes.length === 0) return;
    }
    if (this.assembling !== null) {
      const take = Math.min(this.assembling.length - this.assembled, bytes.length);
      bytes.copy(this.assembling, this.assembled, 0, take);
      this.assembled += take;
      bytes = bytes.subarray(take);
      if (bytes.length === 0) return;
    }
    if (this.position >= this.buffer.length) {
      this.buffer = bytes;
    } else {
      this.buffer = Buffer.concat([this.buffer.subarray(this.position), bytes]);
    }
    this.position = 0;
  }

  next(): DecodedItem | undefined {
    for (;;) {
      if (this.skipRemaining > 0) return undefined;
      if (this.discarding && this.skippingLast) {
        // The last frame of a discarded message has been skipped whole.
        const size = this.messageBytes;
        this.discarding = false;
        this.skippingLast = false;
        this.messageBytes = 0;
        this.discardedFrom = 0;
        return { kind: "discarded", size };
      }
      const item = this.nextItem();
      if (item !== SKIPPED) return item;
    }
  }

  private nextItem(): DecodedItem | undefined | typeof SKIPPED {
    if (this.collecting !== null) {
      if (this.collected < this.collectingSize) return undefined;
      const parts = new FrameParts(this.collecting, this.collectingSize);
      const more = (this.collectingFlags & FrameFlag.MORE) !== 0;
      this.collecting = null;
      this.collected = 0;
      this.messageBytes = more ? this.messageBytes + parts.byteLength : 0;
      return { kind: "parts", more, parts };
    }
    if (this.assembling !== null) {
      if (this.assembled < this.assembling.length) return undefined;
      const body = this.assembling;
      const flags = this.assemblingFlags;
      this.assembling = null;
      this.assembled = 0;
      return this.frameItem(flags, body);
    }
    const buffer = this.buffer;
    const start = this.position;
    const available = buffer.length - start;
    if (this.state === State.Greeting) {
      checkSignaturePrefix(available > 0 ? buffer.subarray(start) : EMPTY, Math.min(available, GREETING_SIZE));
      if (available < GREETING_SIZE) return undefined;
      const greeting = parseGreeting(buffer.subarray(start, start + GREETING_SIZE));
      this.consume(GREETING_SIZE);
      this.state = State.FrameHeader;
      return { kind: "greeting", greeting };
    }
    if (available < 1) return undefined;
    const flags = buffer[start];
    if ((flags & RESERVED_FLAG_BITS) !== 0) throw new ZmtpProtocolError(`frame flags 0x${flags.toString(16)} use reserved bits`);
    if ((flags & FrameFlag.COMMAND) !== 0 && (flags & FrameFlag.MORE) !== 0)
      throw new ZmtpProtocolError("command frame with the MORE flag");
    let headerSize: number;
    let size: number;
    if ((flags & FrameFlag.LONG) !== 0) {
      headerSize = 9;
      if (available < headerSize) return undefined;
      const high = buffer.readUInt32BE(start + 1);
      const low = buffer.readUInt32BE(start + 5);
      if (high > 0x1fffff) throw new ZmtpProtocolError("frame size beyond 2^53 bytes", ZmtpErrorCode.MESSAGE_TOO_LARGE);
      size = high * 0x1_0000_0000 + low;
    } else {
      headerSize = 2;
      if (available < headerSize) return undefined;
      size = buffer[start + 1];
    }
    if (this.discardAbove >= 0 && (flags & FrameFlag.COMMAND) === 0) {
      if (this.discarding || this.messageBytes + size > this.discardAbove) return this.skipFrame(flags, headerSize, size);
    }
    if (size > this.maxFrameSize) {
      throw new ZmtpProtocolError(`frame of ${size} bytes exceeds maxMessageSize ${this.maxFrameSize}`, ZmtpErrorCode.MESSAGE_TOO_LARGE);
    }
    if (size > MAX_BUFFER_LENGTH) {
      throw new ZmtpProtocolError(`frame of ${size} bytes is larger than this runtime can hold`, ZmtpErrorCode.MESSAGE_TOO_LARGE);
    }
    const bodyStart = start + headerSize;
    if (available - headerSize >= size) {
      this.consume(headerSize + size);
      return this.frameItem(flags, buffer.subarray(bodyStart, bodyStart + size));
    }
    if (this.keepPartsAbove >= 0 && size > this.keepPartsAbove && (flags & FrameFlag.COMMAND) === 0) {
      const here = buffer.subarray(bodyStart);
      this.collecting = here.length > 0 ? [here] : [];
      this.collectingSize = size;
      this.collected = here.length;
      this.collectingFlags = flags;
      this.buffer = EMPTY;
      this.position = 0;
      return undefined;
    }
    if (size > ASSEMBLE_THRESHOLD) {
      let body: Buffer;
      try {
        body = Buffer.allocUnsafe(size);
      } catch {
        throw new ZmtpProtocolError(`cannot allocate ${size} bytes for a frame`, ZmtpErrorCode.MESSAGE_TOO_LARGE);
      }
      buffer.copy(body, 0, bodyStart);
      this.assembling = body;
      this.assembled = buffer.length - bodyStart;
      this.assemblingFlags = flags;
      this.buffer = EMPTY;
      this.position = 0;
    }
    return undefined;
  }

  private frameItem(flags: number, body: Buffer): DecodedItem {
    const more = (flags & FrameFlag.MORE) !== 0;
    const command = (flags & FrameFlag.COMMAND) !== 0;
    if (!command) this.messageBytes = more ? this.messageBytes + body.length : 0;
    return { kind: "frame", frame: { more, command, body } };
  }

  /** Skips the body of a frame of a message past `discardAbove`, as much as has arrived now. */
  private skipFrame(flags: number, headerSize: number, size: number): typeof SKIPPED {
    if (!this.discarding) this.discardedFrom = this.messageBytes;
    this.discarding = true;
    this.messageBytes += size;
    this.consume(headerSize);
    const here = Math.min(size, this.buffer.length - this.position);
    this.consume(here);
    this.skipRemaining = size - here;
    if ((flags & FrameFlag.MORE) === 0) this.skippingLast = true;
    return SKIPPED;
  }

  private consume(count: number): void {
    this.position += count;
    if (this.position >= this.buffer.length) {
      this.buffer = EMPTY;
      this.position = 0;
    }
  }
}
