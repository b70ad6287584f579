/**
 * `voidrail/zmtp`: ZeroMQ ROUTER and DEALER sockets in TypeScript (ZMTP 3.1, NULL mechanism),
 * for Bun and Node ≥ 20, interoperable with libzmq. The API follows zeromq.js v6.
 */
export { Dealer, type DealerOptions } from "./dealer.ts";
export { Router, type RouterOptions } from "./router.ts";
export { type MessageLike, SEND_DONE, type SocketEventMap, SocketEvents, type SocketOptions, type ZmtpLogger } from "./socket.ts";
export { ZmtpError, ZmtpErrorCode, ZmtpProtocolError } from "./errors.ts";
export { FrameParts } from "./codec.ts";
export type { Mechanism, MechanismSession } from "./mechanism/mechanism.ts";
export { nullMechanism } from "./mechanism/null.ts";
export { type Endpoint, formatEndpoint, parseEndpoint } from "./endpoint.ts";
