/**
 * The seed README's quick start in TypeScript: a router, an echo service and a client in one
 * process. Run: bun examples/quickstart.ts
 */
import * as v from "valibot";
import { ClientDealer, RouterMode, ServiceDealer, ServiceRouter, serviceMethod } from "voidrail";

const address = process.argv[2] ?? "tcp://127.0.0.1:5555";

// 1. The router (central exchange)
const router = new ServiceRouter({ address, routerMode: RouterMode.FIFO, heartbeatTimeout: 5 });
await router.start();

// 2. A service (dealer)
class EchoService extends ServiceDealer {
  @serviceMethod
  echo(message: string) {
    return message;
  }

  @serviceMethod
  async asyncEcho(message: string) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return message;
  }

  @serviceMethod
  async *streamNumbers(start: number, end: number) {
    for (let i = start; i < end; i++) {
      yield i;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  @serviceMethod({ description: "Add two numbers", params: v.tuple([v.number(), v.number()]) })
  add(a: number, b: number) {
    return a + b;
  }
}
const service = new EchoService({ routerAddress: router.address });
await service.start();

// 3. A client
const client = new ClientDealer({ routerAddress: router.address, timeout: 30 });
await client.connect();
console.log("methods:", Object.keys(await client.discoverServices()).join(", "));
console.log("echo:", await client.invoke("EchoService.echo", "Hello World"));
console.log("asyncEcho:", await client.invoke("EchoService.asyncEcho", "Hello again"));
console.log("add:", await client.invoke("EchoService.add", 5, 3));
const numbers: number[] = [];
for await (const n of client.stream<number>("EchoService.streamNumbers", 0, 5)) numbers.push(n);
console.log("stream:", numbers.join(" "));
const info = await client.getRouterInfo();
console.log(`router: mode ${info.mode}, ${info.activeServices} active service instance(s)`);
console.log("queues:", JSON.stringify(await client.getQueueStatus()));

await client.close();
await service.stop();
await router.stop();
