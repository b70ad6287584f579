/**
 * Runs a chaos scenario with CURVE on every connection, through the environment every part
 * reads: the router (its own process) takes VOIDRAIL_CURVE_SECRET_KEY, dealer processes and
 * in-process clients take VOIDRAIL_CURVE_SERVER_KEY (and the same secret as their identity).
 */
import { curveKeyPair } from "../../../src/index.ts";

const NAMES = ["VOIDRAIL_CURVE_SECRET_KEY", "VOIDRAIL_CURVE_SERVER_KEY"] as const;

export async function withCurveEverywhere<T>(run: () => Promise<T>): Promise<T> {
  const saved = NAMES.map((name) => process.env[name]);
  const keys = curveKeyPair();
  process.env.VOIDRAIL_CURVE_SECRET_KEY = keys.secretKey;
  process.env.VOIDRAIL_CURVE_SERVER_KEY = keys.publicKey;
  try {
    return await run();
  } finally {
    NAMES.forEach((name, i) => {
      if (saved[i] === undefined) delete process.env[name];
      else process.env[name] = saved[i];
    });
  }
}
