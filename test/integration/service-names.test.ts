/**
 * A service's method names are the user's: names the dealer uses inside (run, reply, state, log,
 * socket...) work as service methods, and the few public members of ServiceDealer (start, stop,
 * ...) are refused with a clear error instead of silently breaking the dealer.
 *
 *   ./node_modules/.bin/bun test test/integration/service-names.test.ts
 */
import { afterEach, expect, test } from "bun:test";
import { ServiceDealer, type ServiceDealerOptions, serviceMethod, ValidationError } from "../../src/index.ts";
import { Cluster } from "../helpers/cluster.ts";

const cluster = new Cluster("tcp");
afterEach(() => cluster.dispose());

class Internals extends ServiceDealer {
  @serviceMethod run(x: number) {
    return `run ${x}`;
  }
  @serviceMethod reply() {
    return "reply";
  }
  @serviceMethod state() {
    return "state";
  }
  @serviceMethod log() {
    return "log";
  }
  @serviceMethod socket() {
    return "socket";
  }
  @serviceMethod onMessage() {
    return "onMessage";
  }
}

test("methods named like the dealer's internals are ordinary service methods", async () => {
  await cluster.router();
  await cluster.dealer((options) => new Internals(options));
  const client = await cluster.client();
  expect(await client.invoke("Internals.run", 7)).toBe("run 7");
  for (const name of ["reply", "state", "log", "socket", "onMessage"]) expect(await client.invoke(`Internals.${name}`)).toBe(name);
});

test("a service method named like a public ServiceDealer member is refused with a ValidationError", async () => {
  await cluster.router();
  class Stopper extends ServiceDealer {
    constructor(options: ServiceDealerOptions) {
      super(options);
    }
    @serviceMethod override async stop() {
      await super.stop();
    }
  }
  const dealer = cluster.dealerStopped((options) => new Stopper(options));
  const error = await dealer.start().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ValidationError);
  expect((error as Error).message).toContain('"stop" is a ServiceDealer member');
});
