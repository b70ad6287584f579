/** The worker side of ThreadedDealer: owns the ZMTP Dealer socket and relays messages. */
import { Dealer } from "../zmtp/dealer.ts";
import { packMessages, unpackMessages } from "./message-pack.ts";
import type { FromNetwork, ToNetwork } from "./network-thread.ts";

declare const self: Worker;

let socket: Dealer | undefined;
let batch: Uint8Array[][] = [];
let acknowledged = 0;
let flushScheduled = false;

function post(message: FromNetwork): void {
  self.postMessage(message);
}

// Relay per tick, not per message: one postMessage carries everything that arrived together.
function flushSoon(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    if (batch.length > 0) {
      const packed = packMessages(batch);
      batch = [];
      self.postMessage({ type: "messages", packed } satisfies FromNetwork, [packed]);
    }
    if (acknowledged > 0) {
      post({ type: "sent", count: acknowledged });
      acknowledged = 0;
    }
  });
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
        for await (const frames of current) {
          batch.push(frames);
          flushSoon();
        }
      })();
      return;
    }
    case "connect":
      socket?.connect(message.endpoint);
      return;
    case "send": {
      const acknowledge = () => {
        acknowledged++;
        flushSoon();
      };
      for (const frames of unpackMessages(message.packed)) socket?.send(frames).then(acknowledge, acknowledge);
      return;
    }
    case "close":
      socket?.close();
      setImmediate(() => post({ type: "closed" }));
      return;
  }
};
