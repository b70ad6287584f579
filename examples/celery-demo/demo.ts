/**
 * The Celery demo's tasks (../shared/seeds: `add`, `process_data`, `save_result`, ...) as one
 * VoidRail service, and a router, its dealers and a client in one process for the examples
 * beside this file. In production each part is its own process: `voidrail router`,
 * `voidrail dealer demo.ts --instances 4`, and clients anywhere.
 */
import {
  type CallContext,
  ClientDealer,
  type FlowFailure,
  RouterMode,
  ServiceDealer,
  ServiceRouter,
  serviceMethod,
  silentLogger,
} from "voidrail";

/** What the callbacks and the flaky task saw, printed by the examples. */
export const log: string[] = [];

export class DemoTasks extends ServiceDealer {
  @serviceMethod
  add(x: number, y: number) {
    return x + y;
  }

  @serviceMethod
  processData(data: string) {
    return `processed(${data})`;
  }

  @serviceMethod
  validateData(data: string) {
    return `valid(${data})`;
  }

  @serviceMethod
  saveResult(result: unknown) {
    return `saved ${JSON.stringify(result)}`;
  }

  @serviceMethod
  combineResults(results: string[]) {
    return results.join(" + ");
  }

  @serviceMethod
  sendNotification(summary: string) {
    return `notified: ${summary}`;
  }

  @serviceMethod
  importantTask() {
    return "important task done";
  }

  @serviceMethod
  failingTask() {
    throw new RangeError("the input was out of range");
  }

  /** Celery's `link`: gets the task's result first. */
  @serviceMethod
  successCallback(result: unknown, label: string) {
    log.push(`on_success(${label}): ${JSON.stringify(result)}`);
    return "noted";
  }

  /** Celery's `link_error`: gets `{ code, name, message }` first. */
  @serviceMethod
  failureCallback(error: FlowFailure, label: string) {
    log.push(`on_failure(${label}): ${error.name}: ${error.message}`);
    return "noted";
  }

  /** Fails twice, then answers (autoretry_for with backoff). */
  @serviceMethod({ context: true })
  fetchUrl(url: string, context: CallContext) {
    log.push(`fetchUrl attempt ${context.attempt}`);
    if ((context.attempt ?? 1) < 3) throw new Error(`connection reset fetching ${url}`);
    return { url, status: 200 };
  }

  /** Runs until it is revoked (or `seconds` pass). */
  @serviceMethod({ context: true })
  async slowTask(seconds: number, context: CallContext) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      context.signal.addEventListener("abort", () => resolve(clearTimeout(timer)), { once: true });
    });
    if (context.signal.aborted) throw context.signal.reason;
    return `slept ${seconds} s`;
  }
}

/** Starts a router (on a free port) and a DemoTasks dealer; returns a connected client and a stop function. */
export async function startDemo(): Promise<{ router: ServiceRouter; client: ClientDealer; stop: () => Promise<void> }> {
  const router = new ServiceRouter({ address: "tcp://127.0.0.1:0", routerMode: RouterMode.LOAD_BALANCE, logger: silentLogger });
  await router.start();
  const dealer = new DemoTasks({ routerAddress: router.address, maxConcurrent: 8, logger: silentLogger });
  await dealer.start();
  const client = new ClientDealer({ routerAddress: router.address, timeout: 30, logger: silentLogger });
  await client.connect();
  return {
    router,
    client,
    stop: async () => {
      await client.close();
      await dealer.stop();
      await router.stop();
    },
  };
}
