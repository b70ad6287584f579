/**
 * What one chaos run starts — router and dealer processes, clients in this process — so it can
 * all be torn down at the end whatever happened, and the router's log read back.
 */
import { ClientDealer, type ClientDealerOptions, silentLogger } from "../../../src/index.ts";
import { waitFor } from "../../helpers/wait.ts";
import type { ChaosServiceName, DealerChildOptions } from "../fixtures/services.ts";
import { DealerChild, type JsonChild, killAll, RouterProcess, type RouterChildOptions } from "./processes.ts";

export class Stage {
  readonly children = new Set<JsonChild>();
  readonly clients: ClientDealer[] = [];

  async router(options: RouterChildOptions = {}): Promise<RouterProcess> {
    const router = await RouterProcess.start(options);
    this.children.add(router);
    return router;
  }

  async dealer(address: string, service: ChaosServiceName, options: DealerChildOptions = {}): Promise<DealerChild> {
    const child = DealerChild.spawn(address, service, options);
    this.children.add(child);
    await child.registered(15_000);
    return child;
  }

  /** Spawns a dealer without waiting for its registration. */
  spawnDealer(address: string, service: ChaosServiceName, options: DealerChildOptions = {}, keepEvents = true): DealerChild {
    const child = DealerChild.spawn(address, service, options, keepEvents);
    this.children.add(child);
    return child;
  }

  /** A client that the router has welcomed. */
  async client(address: string, options: ClientDealerOptions = {}): Promise<ClientDealer> {
    const client = new ClientDealer({ routerAddress: address, logger: silentLogger, timeout: 30, ...options });
    this.clients.push(client);
    await waitFor(client.connect(), { timeoutMs: 10_000, message: "the client to be welcomed by the router" });
    return client;
  }

  /** Forgets a child that has exited (so cleanup does not wait for it again). */
  forget(child: JsonChild): void {
    this.children.delete(child);
  }

  async dispose(): Promise<void> {
    const clients = this.clients.splice(0);
    await Promise.all(clients.map((client) => waitFor(client.close(), { timeoutMs: 5_000, message: "a client to close" })));
    await killAll(this.children);
    this.children.clear();
  }
}

/** Numbers from the router's own log: what it re-dispatched and what it held when dealers left. */
export function routerLogFigures(router: RouterProcess): { redispatched: number; dealersLost: number; inFlightAtLoss: number } {
  let redispatched = 0;
  let dealersLost = 0;
  let inFlightAtLoss = 0;
  for (const event of router.events) {
    if (event.event !== "log") continue;
    const message = event.message as string;
    if (message.startsWith("re-dispatching ")) redispatched++;
    const left = /^dealer \S+ left \(.*\) with (\d+) request\(s\) in flight$/.exec(message);
    if (left && !message.includes("(unregistered)")) {
      dealersLost++;
      inFlightAtLoss += Number(left[1]);
    }
  }
  return { redispatched, dealersLost, inFlightAtLoss };
}
