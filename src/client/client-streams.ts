/**
 * Streaming calls of ClientDealer: the REQUEST with `stream: true`, chunks in order, credit back
 * to the router as the consumer reads, and the end, error, timeout or cancel of a stream. The
 * connection is reached only through StreamConnection, so this file knows nothing of sockets,
 * reconnects or the WELCOME.
 */
import { type BinarySlot, CancelledError, encodeMessage, ProtocolError, TimeoutError, decodeValue } from "../protocol/index.ts";
import { Fifo } from "../util/fifo.ts";
import { type CallOptions, checkedRequire, checkMethodName, type EncodedArgs, MAX_TIMER_SECONDS } from "./call-options.ts";
import { traceOf } from "./call-tracing.ts";

/** A stream in the client's table of calls in flight: the connection feeds it what the router sends for its id. */
export interface StreamCall {
  kind: "stream";
  onChunk(seq: number, payload: Uint8Array, slots?: readonly BinarySlot[], binary?: readonly Uint8Array[]): void;
  onEnd(count: number): void;
  onError(error: Error): void;
}

/** What a stream needs of the client's connection. */
export interface StreamConnection {
  /** Chunks a stream may have in transit before it sends credit (ClientDealerOptions.streamWindow). */
  readonly streamWindow: number;
  /** Seconds to wait for each next chunk when the call gives no `timeout`; 0 = none. */
  readonly timeoutSeconds: number;
  /** Resolves once the router has welcomed this client; rejects as connect() does. */
  ready(): Promise<unknown>;
  /** A fresh call id. */
  nextId(): number;
  /** The arguments encoded as the connection allows (compression, the router's size limit); throws ValidationError. */
  encodeArgs(args: unknown[], compress: CallOptions["compress"]): EncodedArgs;
  /** Sends on the connection as it is now; dropped when closed (a later reconnect fails the stream anyway). */
  send(frames: Uint8Array[]): void;
  /** Tells the router to stop the call `id` (nothing for id 0: not sent yet). */
  cancel(id: number): void;
  /** Puts the stream in the table of calls in flight, so that its chunks reach it. */
  track(id: number, call: StreamCall): void;
  /** Takes the stream out of that table, if it is still there. */
  untrack(id: number, call: StreamCall): void;
}

/** Fails the stream once: later chunks for its id are ignored. */
function endStream(connection: StreamConnection, id: number, call: StreamCall, error: Error): void {
  connection.untrack(id, call);
  call.onError(error);
}

/**
 * Starts a streaming call and returns its iterator: the REQUEST goes out at once, chunks are
 * buffered until read, and credit for half the window goes back each time half is read.
 */
export function openStream<T>(connection: StreamConnection, method: string, args: unknown[], options: CallOptions): AsyncIterator<T> {
  const window = connection.streamWindow;
  const refill = Math.max(1, window >> 1);
  const timeoutSeconds = options.timeout ?? connection.timeoutSeconds;
  const trace = traceOf(options);
  const buffered = new Fifo<unknown>();
  let finished: { error?: Error } | undefined;
  let wake: (() => void) | undefined;
  let consumedSinceCredit = 0;
  let id = 0;
  let expectedSeq = 0;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const call: StreamCall = {
    kind: "stream",
    onChunk: (seq, payload, slots, binary) => {
      // A stream given up on here is cancelled too: otherwise its dealer would keep the slot,
      // waiting for credit that never comes.
      if (seq !== expectedSeq++) {
        connection.cancel(id);
        return endStream(
          connection,
          id,
          call,
          new ProtocolError(`stream chunk ${seq} arrived out of order`, { data: { reason: "SEQUENCE" } }),
        );
      }
      const decoded = decodeValue(payload, slots, binary);
      if (!decoded.ok) {
        connection.cancel(id);
        return endStream(connection, id, call, decoded.error);
      }
      buffered.push(decoded.value);
      notify();
    },
    onEnd: (count) => {
      if (count !== expectedSeq)
        finished = {
          error: new ProtocolError(`stream ended after ${count} chunks but ${expectedSeq} arrived`, { data: { reason: "COUNT" } }),
        };
      else finished = {};
      notify();
    },
    onError: (error) => {
      finished = { error };
      notify();
    },
  };
  const onAbort = () => {
    connection.cancel(id);
    // Cancelled means stop now: chunks already here are not handed out.
    buffered.drain();
    endStream(connection, id, call, new CancelledError("the stream was cancelled", { cause: options.signal?.reason }));
  };
  const started = (async () => {
    checkMethodName(method);
    const require = checkedRequire(options.require);
    await connection.ready();
    const encodedArgs = connection.encodeArgs(args, options.compress);
    id = connection.nextId();
    connection.track(id, call);
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const header = {
      id,
      method,
      stream: true,
      credit: window,
      ...(options.waitForDealer ? { waitForDealer: true } : {}),
      ...(encodedArgs.binary ? { binary: encodedArgs.binary.slots } : {}),
      ...(require !== undefined ? { require } : {}),
      ...(trace !== undefined ? { trace } : {}),
    };
    connection.send(encodeMessage("REQUEST", header, encodedArgs.json, encodedArgs.binary?.frames));
  })();
  const cleanup = () => options.signal?.removeEventListener("abort", onAbort);
  return {
    next: async (): Promise<IteratorResult<T>> => {
      await started;
      for (;;) {
        if (buffered.length > 0) {
          const value = buffered.shift() as T;
          if (++consumedSinceCredit >= refill && !finished) {
            consumedSinceCredit = 0;
            connection.send(encodeMessage("CREDIT", { id, n: refill }));
          }
          return { value, done: false };
        }
        if (finished) {
          cleanup();
          if (finished.error) throw finished.error;
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve, reject) => {
          wake = resolve;
          if (timeoutSeconds > 0) {
            const timer = setTimeout(() => {
              if (wake !== resolve) return;
              connection.cancel(id);
              endStream(
                connection,
                id,
                call,
                new TimeoutError(`no chunk of ${method} within ${timeoutSeconds} s`, { data: { timeoutMs: timeoutSeconds * 1000 } }),
              );
            }, Math.min(timeoutSeconds, MAX_TIMER_SECONDS) * 1000);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          }
          void reject;
        });
      }
    },
    return: async (): Promise<IteratorResult<T>> => {
      await started.catch(() => undefined);
      if (!finished) {
        connection.cancel(id);
        endStream(connection, id, call, new CancelledError("the consumer stopped reading"));
      }
      cleanup();
      return { value: undefined, done: true };
    },
  };
}
