/**
 * The other processes of bench/tasks.ts. Prints one line "ready <address>" once it can serve.
 *   bun bench/tasks-peer.ts router <store>      a load_balance ServiceRouter on an ephemeral port;
 *                                               <store> is "memory" or a SQLite file path
 *   bun bench/tasks-peer.ts dealer <address> [hold]   a BenchTasks dealer (add); with "hold" it
 *                                               prints "loaded" and connects only when a line
 *                                               arrives on stdin (so a backlog's clock starts at
 *                                               the connect, not at the process start)
 * The dealer prints "served <n>" every 200 ms while it serves, so the benchmark can follow a
 * backlog's drain rate without asking the router (which would cost the router CPU).
 */
import { RouterMode, ServiceDealer, ServiceRouter, serviceMethod, silentLogger } from "../src/index.ts";

let served = 0;

class BenchTasks extends ServiceDealer {
  /** A chord's callback in the workflow benchmark. */
  @serviceMethod
  sum(values: number[]) {
    return values.reduce((total, value) => total + value, 0);
  }

  @serviceMethod
  add(a: number, b: number) {
    served++;
    return a + b;
  }
}

const [role, argument] = process.argv.slice(2);
if (role === "router") {
  const router = new ServiceRouter({
    address: "tcp://127.0.0.1:0",
    routerMode: RouterMode.LOAD_BALANCE,
    taskStore: argument,
    logger: silentLogger,
  });
  await router.start();
  console.log(`ready ${router.address}`);
  // SIGINT lets `bun --cpu-prof` write its profile on the way out.
  process.on("SIGINT", () => void router.stop().finally(() => process.exit(0)));
} else if (role === "dealer") {
  if (process.argv[4] === "hold") {
    console.log("loaded");
    for await (const _ of console) break;
  }
  const service = new BenchTasks({ routerAddress: argument, logger: silentLogger });
  await service.start();
  console.log(`ready ${argument}`);
  let reported = -1;
  setInterval(() => {
    if (served === reported) return;
    reported = served;
    console.log(`served ${served}`);
  }, 200);
  process.on("SIGINT", () => process.exit(0));
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
