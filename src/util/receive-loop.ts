/**
 * Owns the receive loop: feeds every message of an async-iterable socket to a handler, taking
 * what has already arrived without a promise per message, and yielding to the event loop now
 * and then so one busy peer cannot hold the process.
 */
/** A socket to read from: it waits for messages, and hands over those already here at once. */
export interface MessageSource<T> extends AsyncIterable<T> {
  tryReceive(): T | undefined;
}

/**
 * Feeds every message of `source` to `handle` until the source ends. A throw from `handle` is a
 * bug in our code, not the peer's: it is logged loudly and the loop goes on.
 */
export async function consumeMessages<T>(
  source: MessageSource<T>,
  handle: (message: T) => void,
  log: { error(message: string): void },
  who: string,
): Promise<void> {
  const handleSafely = (message: T) => {
    try {
      handle(message);
    } catch (error) {
      log.error(`${who} failed on a message: ${(error as Error).stack ?? error}`);
    }
  };
  const waiting = source[Symbol.asyncIterator]();
  for (;;) {
    const next = await waiting.next();
    if (next.done) return;
    handleSafely(next.value);
    // Then whatever else has arrived, without a promise per message.
    let handled = 1;
    for (let message = source.tryReceive(); message !== undefined; message = source.tryReceive()) {
      handleSafely(message);
      if (++handled >= MESSAGES_PER_TURN) {
        handled = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }
}

/**
 * Messages handled before the receive loop lets the event loop turn. Handling runs in
 * microtasks, which the runtime drains before it reads sockets or runs timers: without a pause,
 * one peer that keeps sending holds the whole process (measured: a 100,000-call burst from one
 * client kept a router from reading any other connection, or sending heartbeats, for 0.7 s).
 */
const MESSAGES_PER_TURN = 256;
