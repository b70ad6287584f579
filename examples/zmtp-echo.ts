/**
 * The README's `voidrail/zmtp` example: a Router that echoes, a Dealer that asks once.
 *
 *   ./node_modules/.bin/bun examples/zmtp-echo.ts
 */
import { Dealer, Router } from "voidrail/zmtp";

const router = new Router();
await router.bind("tcp://127.0.0.1:0"); // port 0: any free port; lastEndpoint has the real one
void (async () => {
  for await (const [id, ...frames] of router) await router.send([id, "echo:", ...frames]);
})();

const dealer = new Dealer({ routingId: "client-1" });
dealer.connect(router.lastEndpoint!); // returns at once; connects and reconnects in the background
await dealer.send(["hello", "world"]);
const reply = await dealer.receive(); // Buffer[]
console.log(reply.map((frame) => frame.toString()).join(" ")); // echo: hello world

dealer.close();
router.close();
