/**
 * Example services for `voidrail dealer --module examples/services.ts` and `npm run demo`.
 * The module imports "voidrail": the binary provides its own copy, no install needed beside it.
 */
import * as v from "valibot";
import { type CallContext, ServiceDealer, serviceMethod } from "voidrail";

export class EchoService extends ServiceDealer {
  @serviceMethod({ description: "Returns its argument" })
  echo(message: unknown) {
    return message;
  }

  @serviceMethod({ description: "Greets a person given as one object", params: v.tuple([v.object({ name: v.string() })]) })
  hello(person: { name: string }) {
    return `Hello, ${person.name}!`;
  }

  @serviceMethod({ description: "Returns its argument after 100 ms" })
  async asyncEcho(message: unknown) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return message;
  }

  @serviceMethod({ description: "Adds two numbers", params: v.tuple([v.number(), v.number()]) })
  add(a: number, b: number) {
    return a + b;
  }

  @serviceMethod({ description: "Streams the integers from start to end (exclusive)" })
  async *streamNumbers(start: number, end: number) {
    for (let i = start; i < end; i++) {
      yield i;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  @serviceMethod({ description: "CPU-heavy: counts primes below n the slow way; reports which process did it" })
  countPrimes(n: number) {
    let count = 0;
    for (let candidate = 2; candidate < n; candidate++) {
      let prime = true;
      for (let divisor = 2; divisor * divisor <= candidate; divisor++) {
        if (candidate % divisor === 0) {
          prime = false;
          break;
        }
      }
      if (prime) count++;
    }
    return { n, primes: count, pid: process.pid };
  }

  @serviceMethod({ description: "Counts primes below n in ten steps, reporting progress: made for `voidrail task`", context: true })
  async countPrimesInSteps(n: number, context: CallContext) {
    const steps = 10;
    let count = 0;
    for (let step = 0; step < steps; step++) {
      const from = Math.max(2, Math.floor((n * step) / steps));
      const to = Math.floor((n * (step + 1)) / steps);
      for (let candidate = from; candidate < to; candidate++) {
        let prime = true;
        for (let divisor = 2; divisor * divisor <= candidate; divisor++) {
          if (candidate % divisor === 0) {
            prime = false;
            break;
          }
        }
        if (prime) count++;
      }
      context.progress({ current: step + 1, total: steps });
      // Let a revoke (context.signal) and heartbeats in between steps.
      await new Promise((resolve) => setImmediate(resolve));
      if (context.signal.aborted) throw context.signal.reason;
    }
    return { n, primes: count, taskId: context.taskId, attempt: context.attempt };
  }
}
