/**
 * Owns how a VoidRail dealer or client uses CURVE: the socket options its keys make (a fresh key
 * pair when it has only the router's key) and the AuthError it raises when the router refuses
 * the handshake, naming the likely cause.
 */
import { curveKeyPair } from "../zmtp/index.ts";
import { AuthError, AuthFailure } from "./errors.ts";

/** CURVE client socket options; empty (NULL) without keys. */
export function curveSocketOptions(keys: { serverKey: string; secretKey: string | undefined } | undefined): {
  curveServerKey?: string;
  curveSecretKey?: string;
} {
  if (keys === undefined) return {};
  return { curveServerKey: keys.serverKey, curveSecretKey: keys.secretKey ?? curveKeyPair().secretKey };
}

/**
 * The error for a CURVE handshake the router refused (`detail` is the ZMTP layer's reason): a
 * wrong server key, or a key the router does not list, or a router without CURVE.
 */
export function curveRefusal(detail: string, routerAddress: string): AuthError {
  return new AuthError(
    `the CURVE handshake with the router at ${routerAddress} was refused: check the server key (curveServerKey) and that the router allows this key (${detail})`,
    { data: { reason: AuthFailure.CURVE_REFUSED } },
  );
}
