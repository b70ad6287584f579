/**
 * Owns the per-connection sessions: which role each connection has (a client, a registered
 * dealer, or nothing yet), the HELLO exchange that gives it one, who may send what, and what
 * happens to a session's calls or registration when its connection goes.
 *
 * A client session is the reply sink of its calls: replies for them go out on its connection.
 */
import type { Buffer } from "node:buffer";
import {
  AuthFailure,
  type BinaryFrames,
  errorToWire,
  type HelloHeader,
  PROTOCOL_VERSION,
  ProtocolFailure,
  ShuttingDownError,
  type WireError,
} from "../protocol/index.ts";
import type { Logger } from "../util/log.ts";
import { type Authenticator, authError } from "./auth.ts";
import type { Call, CallTable, ReplySink } from "./calls.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { HelloDeadline } from "./hello-deadline.ts";
import type { OutboundPort } from "./outbound.ts";
import type { ClientAnswers, ClientExtension } from "./extension.ts";
import type { DealerRegistry, RegisteredDealer } from "./registry.ts";

/** A client connection: its requests still waiting for a terminal reply, and where replies go. */
export class ClientSession implements ReplySink, ClientAnswers {
  authenticated = false;
  /** Calls of this connection without a terminal reply yet, by client id. */
  readonly outstanding = new Map<number, Call>();

  constructor(
    readonly routingId: Buffer,
    private readonly outbound: OutboundPort,
  ) {}

  chunk(call: Call, seq: number, payload: Uint8Array, binary?: BinaryFrames): void {
    this.outbound.chunk(this.routingId, call.clientId, seq, payload, binary);
  }

  result(call: Call, payload: Uint8Array, binary?: BinaryFrames): void {
    this.outstanding.delete(call.clientId);
    this.outbound.result(this.routingId, call.clientId, payload, binary);
  }

  end(call: Call, count: number): void {
    this.outstanding.delete(call.clientId);
    this.outbound.end(this.routingId, call.clientId, count);
  }

  error(call: Call, error: WireError): void {
    this.outstanding.delete(call.clientId);
    this.outbound.error(this.routingId, call.clientId, error);
  }

  // Answers to requests that are not calls (task operations, served by a ClientExtension).

  answer(id: number, payload: Uint8Array): void {
    this.outbound.result(this.routingId, id, payload);
  }

  answerChunk(id: number, seq: number, payload: Uint8Array): void {
    this.outbound.chunk(this.routingId, id, seq, payload);
  }

  answerEnd(id: number, count: number): void {
    this.outbound.end(this.routingId, id, count);
  }

  answerError(id: number, error: WireError): void {
    this.outbound.error(this.routingId, id, error);
  }
}

export type Session = { role: "client"; client: ClientSession } | { role: "dealer"; dealer: RegisteredDealer };

/** "dealer Echo-1" or "client 0a1b…" for log lines. */
export function describePeer(routingId: Buffer, session: Session | undefined): string {
  if (session?.role === "dealer") return `dealer ${session.dealer.id}`;
  return `${session?.role ?? "peer"} ${routingId.toString("hex")}`;
}

export interface SessionsContext {
  auth: Authenticator;
  registry: DealerRegistry;
  dispatcher: Dispatcher;
  calls: CallTable;
  outbound: OutboundPort;
  log: Logger;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** The largest message the router accepts (told to dealers in WELCOME). */
  maxMessageSize: number;
  isStopping(): boolean;
  /** The layer above that serves SUBMIT and TASK, if one is attached. */
  extension(): ClientExtension | undefined;
  /** The running socket's HELLO deadline (only when client keys are required). */
  hello(): HelloDeadline | null;
  /** The CURVE public key (Z85) of the connection with this routing id; "" without CURVE. */
  publicKeyOf(routingId: Buffer): string;
}

export class Sessions {
  private readonly byKey = new Map<string, Session>();

  constructor(private readonly context: SessionsContext) {}

  /** The session of the connection with routing key `key`. */
  get(key: string): Session | undefined {
    return this.byKey.get(key);
  }

  /**
   * HELLO: welcomes a client (again, if it says HELLO twice: one queued during a reconnect
   * arrives twice) or registers a dealer; refuses a bad key, a second dealer HELLO, a client with
   * requests outstanding turning dealer, and everyone while the router stops.
   */
  hello(routingId: Buffer, key: string, session: Session | undefined, hello: HelloHeader): void {
    const { auth, outbound, log } = this.context;
    if (session?.role === "dealer") {
      outbound.protocolError(
        routingId,
        describePeer(routingId, session),
        ProtocolFailure.ALREADY_HELLO,
        "HELLO on a connection that already registered as a dealer",
      );
      return;
    }
    if (this.context.isStopping()) {
      outbound.error(routingId, undefined, errorToWire(new ShuttingDownError("the router is stopping")));
      return;
    }
    const welcome = {
      version: Math.min(hello.version, PROTOCOL_VERSION),
      heartbeatIntervalMs: this.context.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.context.heartbeatTimeoutMs,
    };
    if (hello.role === "client") {
      const publicKey = this.context.publicKeyOf(routingId);
      if (!auth.clientMayConnect(hello.apiKey, publicKey)) {
        log.warn(`client ${routingId.toString("hex")}${publicKey ? ` (CURVE key ${publicKey})` : ""} failed authentication`);
        outbound.error(routingId, undefined, errorToWire(authError(AuthFailure.BAD_KEY)));
        return;
      }
      const client = session?.role === "client" ? session.client : new ClientSession(routingId, outbound);
      client.authenticated = true;
      this.context.hello()?.met(key);
      this.byKey.set(key, { role: "client", client });
      outbound.welcome(routingId, { role: "client", maxMessageSize: this.context.maxMessageSize, ...welcome });
      return;
    }
    const publicKey = this.context.publicKeyOf(routingId);
    if (!auth.dealerMayRegister(hello.apiKey, publicKey)) {
      log.warn(
        `dealer ${hello.service} (${routingId.toString("hex")}${publicKey ? `, CURVE key ${publicKey}` : ""}) failed authentication`,
      );
      outbound.error(routingId, undefined, errorToWire(authError(AuthFailure.BAD_KEY)));
      return;
    }
    if (session?.role === "client" && session.client.outstanding.size > 0) {
      outbound.protocolError(
        routingId,
        describePeer(routingId, session),
        ProtocolFailure.WRONG_ROLE,
        "a connection with client requests outstanding cannot register as a dealer",
      );
      return;
    }
    const dealer = this.context.registry.register(routingId, hello, publicKey);
    this.context.hello()?.met(key);
    this.byKey.set(key, { role: "dealer", dealer });
    outbound.welcome(routingId, {
      role: "dealer",
      dealerId: dealer.id,
      beatToken: dealer.beatToken,
      maxMessageSize: this.context.maxMessageSize,
      ...welcome,
    });
    this.context.dispatcher.serveDealer(dealer);
  }

  /**
   * The client session for a client-only message (REQUEST, INFO, CANCEL, CREDIT), created on
   * first use when clients need no key; undefined after answering why not (a dealer sent it, or
   * the connection has not authenticated). `id` is the message's request id, if it has one.
   */
  clientFor(routingId: Buffer, key: string, session: Session | undefined, kind: string, id: number | undefined): ClientSession | undefined {
    const { outbound } = this.context;
    if (session?.role === "dealer") {
      outbound.protocolError(routingId, describePeer(routingId, session), ProtocolFailure.WRONG_ROLE, `${kind} from a registered dealer`);
      return undefined;
    }
    if (this.context.auth.requireClientAuth && !(session?.role === "client" && session.client.authenticated)) {
      this.context.log.warn(`refused ${kind} from ${describePeer(routingId, session)}: not authenticated`);
      const answerId = kind === "REQUEST" || kind === "INFO" ? id : undefined;
      outbound.error(routingId, answerId, errorToWire(authError(AuthFailure.NOT_AUTHENTICATED)));
      return undefined;
    }
    if (session?.role === "client") return session.client;
    // Checked once per connection (its first client message): its key cannot change.
    if (this.context.auth.restrictsClientKeys && !this.context.auth.clientKeyAllowed(this.context.publicKeyOf(routingId))) {
      this.context.log.warn(
        `refused ${kind} from ${describePeer(routingId, session)}: its CURVE key ${this.context.publicKeyOf(routingId)} is not a client key`,
      );
      const answerId = kind === "REQUEST" || kind === "INFO" ? id : undefined;
      outbound.error(routingId, answerId, errorToWire(authError(AuthFailure.BAD_KEY)));
      return undefined;
    }
    const client = new ClientSession(routingId, outbound);
    this.byKey.set(key, { role: "client", client });
    return client;
  }

  /** A dealer said BYE: the connection stays, the registration ends. */
  unregistered(key: string, dealer: RegisteredDealer): void {
    this.byKey.delete(key);
    this.context.registry.lost(dealer, "unregistered");
  }

  /** The connection is gone: a client's calls are abandoned, a dealer's registration ends. */
  gone(routingId: Buffer, why: string | undefined): void {
    const key = routingId.toString("latin1");
    this.context.hello()?.met(key);
    const session = this.byKey.get(key);
    if (!session) return;
    this.byKey.delete(key);
    if (session.role === "client") {
      for (const call of session.client.outstanding.values()) this.context.calls.abandoned(call, "client disconnected");
      session.client.outstanding.clear();
      this.context.extension()?.gone(session.client);
      return;
    }
    this.context.registry.lost(session.dealer, why ?? "disconnected");
  }

  clear(): void {
    this.byKey.clear();
  }
}
