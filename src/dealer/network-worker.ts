/** The worker side of ThreadedDealer: owns the ZMTP Dealer socket and relays messages. */
import { Dealer } from "../zmtp/dealer.ts";
import { SEND_DONE } from "../zmtp/socket.ts";
import { packMessages, unpackMessages } from "./message-pack.ts";
import { type FromNetwork, RELAY_BATCH_MESSAGES, type ToNetwork } from "./network-thread.ts";

declare const self: Worker;

let socket: Dealer | undefined;
let batch: Uint8Array[][] = [];
let acknowledged = 0;
let flushScheduled = false;

function post(message: FromNetwork): void {
  self.postMessage(message);
}

/**
 * Acknowledgements held back to ride on the next batch of messages. Waking the main thread only
 * to acknowledge costs as much as a message (each thread wake-up is ~20 µs of CPU on this kind of
 * machine), so a lone acknowledgement goes only once this many have piled up, well before the
 * main thread's limit of unacknowledged sends makes it wait.
 */
const ACKNOWLEDGE_ALONE_AT = 256;

// Relay per tick, not per message: one postMessage carries everything that arrived together
// (up to RELAY_BATCH_MESSAGES, so the main thread can start on a large arrival early).
function flushSoon(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    flush();
  });
}

function flush(): void {
  if (batch.length > 0) {
    const packed = packMessages(batch);
    batch = [];
    self.postMessage({ type: "messages", packed, sent: acknowledged } satisfies FromNetwork, [packed]);
    acknowledged = 0;
  } else if (acknowledged >= ACKNOWLEDGE_ALONE_AT) {
    post({ type: "sent", count: acknowledged });
    acknowledged = 0;
  }
}

self.onmessage = (event: MessageEvent<ToNetwork>) => {
  const message = event.data;
  switch (message.type) {
    case "open": {
      const { helloMessage, ...options } = message.options;
      socket = new Dealer({ ...options, helloMessage, logger: { warn: (text) => post({ type: "log", message: text }) } });
      socket.events.on("disconnect", () => post({ type: "event", name: "disconnect" }));
      socket.events.on("handshake", () => post({ type: "event", name: "handshake" }));
      const current = socket;
      void (async () => {
        const relay = (frames: Uint8Array[]) => {
          if (batch.push(frames) >= RELAY_BATCH_MESSAGES) flush();
          else flushSoon();
        };
        for await (const frames of current) {
          relay(frames);
          for (let more = current.tryReceive(); more !== undefined; more = current.tryReceive()) relay(more);
        }
      })();
      return;
    }
    case "connect":
      socket?.connect(message.endpoint);
      return;
    case "send": {
      const acknowledge = () => {
        if (++acknowledged >= ACKNOWLEDGE_ALONE_AT) flushSoon();
      };
      for (const frames of unpackMessages(message.packed)) {
        if (!socket) continue;
        const sent = socket.send(frames);
        if (sent === SEND_DONE) acknowledge();
        else sent.then(acknowledge, acknowledge);
      }
      return;
    }
    case "close":
      socket?.close();
      setImmediate(() => post({ type: "closed" }));
      return;
  }
};
