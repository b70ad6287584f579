/**
 * `voidrail/zmtp`: ZeroMQ ROUTER and DEALER sockets in TypeScript (ZMTP 3.1, NULL and CURVE
 * mechanisms), for Bun and Node ≥ 20, interoperable with libzmq. The API follows zeromq.js v6.
 */
export { Dealer, type DealerOptions } from "./dealer.ts";
export { Router, type RouterOptions } from "./router.ts";
export { type MessageLike, SEND_DONE, type SocketEventMap, SocketEvents, type SocketOptions, type ZmtpLogger } from "./socket.ts";
export { ZmtpError, ZmtpErrorCode, ZmtpProtocolError } from "./errors.ts";
export { FrameParts } from "./codec.ts";
export type { HandshakeResult, Mechanism, MechanismSession, MessageBox, PeerTransportInfo } from "./mechanism/mechanism.ts";
export { nullMechanism } from "./mechanism/null.ts";
export { type CurveClientOptions, type CurveServerOptions, type CurveSocketOptions, curveClient, curveServer } from "./mechanism/curve.ts";
export { type CurveAuthenticator, type CurveAuthRequest, type CurveAuthResult, curveAllowList } from "./curve/authenticator.ts";
export { type CurveKey, type CurveKeyPair, curveKeyPair, curvePublicKey, parseCurveKey } from "./curve/keys.ts";
export { z85Decode, z85Encode } from "./curve/z85.ts";
export { type Endpoint, formatEndpoint, parseEndpoint } from "./endpoint.ts";
