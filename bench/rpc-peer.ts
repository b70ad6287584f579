/**
 * The other processes of bench/rpc.ts. Prints one line "ready <address>" once it can serve.
 *   bun bench/rpc-peer.ts router <mode> [http]   a ServiceRouter on an ephemeral port (http: with its HTTP
 *                                                server on too; the line is then "ready <address> <http url>")
 *   bun bench/rpc-peer.ts dealer <address> [inline]   a BenchService dealer (inline: no heartbeat thread)
 *   bun bench/rpc-peer.ts echo                   a bare ZMTP Router that echoes (the baseline)
 * With VOIDRAIL_CURVE_SECRET_KEY / VOIDRAIL_CURVE_SERVER_KEY set, every role runs CURVE.
 *   bun bench/rpc-peer.ts tcp-echo               a plain TCP server that echoes bytes (no ZMTP at all)
 */
import { RouterMode, ServiceDealer, ServiceRouter, serviceMethod, silentLogger } from "../src/index.ts";
import { Router } from "../src/zmtp/index.ts";

class BenchService extends ServiceDealer {
  @serviceMethod
  echo(value: unknown) {
    return value;
  }
}

const [role, argument] = process.argv.slice(2);
if (role === "router") {
  const router = new ServiceRouter({
    address: "tcp://127.0.0.1:0",
    routerMode: argument === "fifo" ? RouterMode.FIFO : RouterMode.LOAD_BALANCE,
    logger: silentLogger,
    ...(process.argv[4] === "http" ? { http: { port: 0 } } : {}),
  });
  await router.start();
  console.log(`ready ${router.address}${router.httpUrl ? ` ${router.httpUrl}` : ""}`);
  process.on("SIGINT", () => process.exit(0));
} else if (role === "dealer") {
  const heartbeatThread = process.argv[4] !== "inline";
  const service = new BenchService({ routerAddress: argument, logger: silentLogger, heartbeatThread });
  await service.start();
  console.log(`ready ${argument}`);
  process.on("SIGINT", () => process.exit(0));
} else if (role === "echo") {
  // CURVE when the benchmark set VOIDRAIL_CURVE_SECRET_KEY (ServiceRouter reads it by itself).
  const secret = process.env.VOIDRAIL_CURVE_SECRET_KEY;
  const router = new Router(secret ? { curveServer: true, curveSecretKey: secret } : {});
  await router.bind("tcp://127.0.0.1:0");
  console.log(`ready ${router.lastEndpoint}`);
  for await (const message of router) void router.send(message);
} else if (role === "tcp-echo") {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (socket, data) => void socket.write(data) } });
  console.log(`ready tcp://127.0.0.1:${server.port}`);
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
