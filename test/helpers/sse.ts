/**
 * A Server-Sent Events reader for tests: the messages of a byte stream (an /api/events response
 * body or a LiveFeed subscription), each with the time it arrived, read with deadlines.
 *
 * @example
 * const events = new SseReader(response.body!);
 * const first = await events.next({ timeoutMs: 5000, message: "the history event" });
 * expect(first.event).toBe("history");
 */
import { waitFor } from "./wait.ts";

/** One message of the stream: an event with its data, or a comment line (`: ...`). */
export interface SseMessage {
  /** The `event:` field; "message" when it has none; "comment" for a comment-only block. */
  event: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
  /** The comment lines' text (without the leading colon). */
  comments: string[];
  /** performance.now() when the block's last byte was read. */
  at: number;
}

export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffered = "";
  private readonly ready: SseMessage[] = [];
  private done = false;
  /** The read in progress: one at a time, and what it reads after a timed-out wait is kept for the next. */
  private pending: Promise<void> | undefined;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }

  /** The next message, or a rejection naming `message` once `timeoutMs` passed; null when the stream ended. */
  async next(opts: { timeoutMs: number; message: string }): Promise<SseMessage | null> {
    if (this.ready.length === 0 && !this.done) {
      this.pending ??= this.fill().finally(() => {
        this.pending = undefined;
      });
      await waitFor(this.pending, opts);
    }
    return this.ready.shift() ?? null;
  }

  /** Messages until `until` accepts one (it is included), or the deadline. */
  async collect(until: (message: SseMessage) => boolean, opts: { timeoutMs: number; message: string }): Promise<SseMessage[]> {
    const deadline = performance.now() + opts.timeoutMs;
    const seen: SseMessage[] = [];
    for (;;) {
      const left = Math.max(1, deadline - performance.now());
      const message = await this.next({ timeoutMs: left, message: opts.message });
      if (message === null) throw new Error(`the stream ended while waiting for: ${opts.message}`);
      seen.push(message);
      if (until(message)) return seen;
    }
  }

  /** Stops reading: the server sees the stream cancelled. */
  async cancel(): Promise<void> {
    await this.reader.cancel();
  }

  /** Reads until a whole message is buffered or the stream ends; consumes nothing, so a timed-out wait loses nothing. */
  private async fill(): Promise<void> {
    while (this.ready.length === 0 && !this.done) {
      const chunk = await this.reader.read();
      if (chunk.done) {
        this.done = true;
        return;
      }
      this.buffered += this.decoder.decode(chunk.value, { stream: true });
      const at = performance.now();
      let end = this.buffered.indexOf("\n\n");
      while (end >= 0) {
        this.ready.push(parseBlock(this.buffered.slice(0, end), at));
        this.buffered = this.buffered.slice(end + 2);
        end = this.buffered.indexOf("\n\n");
      }
    }
  }
}

function parseBlock(block: string, at: number): SseMessage {
  let event: string | undefined;
  const data: string[] = [];
  const comments: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) comments.push(line.slice(1).trim());
    else if (line.startsWith("event:")) event = line.slice("event:".length).trim();
    else if (line.startsWith("data:")) data.push(line.slice("data:".length).replace(/^ /, ""));
  }
  const kind = event ?? (data.length === 0 && comments.length > 0 ? "comment" : "message");
  return { event: kind, data: data.join("\n"), comments, at };
}
