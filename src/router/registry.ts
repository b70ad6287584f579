/**
 * Owns the registered dealers: who offers which method, their slots and counters, liveness (when
 * each was last heard from, and the BEAT tokens of their heartbeat connections), drain, and
 * removal. Removing a dealer settles every call it held: re-queued at the front when it may run
 * again (at most `maxRedispatch` times, never after a CHUNK), failed with DEALER_LOST otherwise.
 *
 * Deciding that a connection is dead is the ZMTP socket's job (PING/PONG, heartbeat timeout);
 * the registry is told through `lost()`.
 */
import type { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import {
  type DealerHelloHeader,
  DealerHelloState,
  DealerLostError,
  type MethodInfo,
  NoSuchMethodError,
  type Tags,
} from "../protocol/index.ts";
import type { Logger } from "../util/log.ts";
import type { Call, CallHost, CallTable } from "./calls.ts";
import type { DealerView, RouterEvents } from "./events.ts";
import type { Queues } from "./queues.ts";
import { describeRequirement, meetsRequirement, NO_TAGS } from "./requirements.ts";

/** One registered dealer connection. */
export class RegisteredDealer implements CallHost, DealerView {
  readonly methods: Map<string, MethodInfo>;
  readonly inFlight = new Map<number, Call>();
  private drainingNow = false;
  private settingUpNow: boolean;
  /** Neither draining nor setting up: one flag, so the hot `hasFreeSlot` reads one field. */
  private accepting: boolean;
  /** What a call's `require` is matched against; NO_TAGS when it has none. */
  readonly tags: Readonly<Tags>;
  /** The devices it reported (HELLO `gpus`); empty when none. */
  readonly gpus: readonly string[];
  /** The machine it runs on (HELLO `host`), if it said. */
  readonly host: string | undefined;
  dispatched = 0;
  succeeded = 0;
  failed = 0;
  lastDispatch = 0;
  /** Epoch ms when anything (a message, or a BEAT on its heartbeat connection) last came from it. */
  lastSeen: number;
  /** The routing id its BEATs come from: where TERMINATE goes (a blocked main thread reads nothing). */
  beatRoutingId: Buffer | undefined = undefined;

  constructor(
    /** Router-assigned, `<service>-<n>`. */
    readonly id: string,
    readonly routingId: Buffer,
    readonly service: string,
    readonly instanceId: string | undefined,
    methods: Record<string, MethodInfo>,
    readonly maxConcurrent: number,
    /** Secret its heartbeat connection sends in BEAT (see DealerRegistry.beat). */
    readonly beatToken: string,
    now: number,
    extra: { tags?: Tags; gpus?: string[]; settingUp?: boolean; host?: string } = {},
    /** The CURVE public key (Z85) its connection used; "" without CURVE. */
    readonly publicKey = "",
  ) {
    this.methods = new Map(Object.entries(methods));
    this.lastSeen = now;
    this.tags = extra.tags !== undefined && Object.keys(extra.tags).length > 0 ? extra.tags : NO_TAGS;
    this.gpus = extra.gpus ?? [];
    this.host = extra.host;
    this.settingUpNow = extra.settingUp ?? false;
    this.accepting = !this.settingUpNow;
  }

  /** It sent DRAIN: it finishes its work and takes no more. */
  get draining(): boolean {
    return this.drainingNow;
  }

  /** Registered with `state: "setup"` and not READY yet: it gets no work. */
  get settingUp(): boolean {
    return this.settingUpNow;
  }

  /** It sent DRAIN: no new work from now on. */
  markDraining(): void {
    this.drainingNow = true;
    this.accepting = false;
  }

  /** It sent READY: its setup() finished, it takes work (unless it drains already). */
  markReady(): void {
    this.settingUpNow = false;
    this.accepting = !this.drainingNow;
  }

  /** Calls in flight on it, orphans included. */
  get load(): number {
    return this.inFlight.size;
  }

  get hasFreeSlot(): boolean {
    return this.accepting && this.inFlight.size < this.maxConcurrent;
  }
}

/** What removal needs of dispatch: put a call back at the head of its line, serve a method. */
export interface Redispatch {
  requeue(call: Call): void;
  serveMethod(method: string): void;
}

export interface RegistryOptions {
  /** Slots of a dealer whose HELLO names none (the dispatch strategy's default). */
  defaultMaxConcurrent: number;
  /** Whether the router is stopping (no call is re-dispatched then). */
  isStopping(): boolean;
  /** Epoch ms now; a fake in tests. */
  now?: () => number;
}

export class DealerRegistry {
  /** Every registered dealer, in registration order. */
  readonly dealers = new Set<RegisteredDealer>();
  private readonly byMethod = new Map<string, Set<RegisteredDealer>>();
  private readonly byBeatToken = new Map<string, RegisteredDealer>();
  private nextDealerNumber = 1;
  private readonly now: () => number;

  constructor(
    private readonly calls: CallTable,
    private readonly queues: Queues<Call>,
    private readonly dispatch: Redispatch,
    private readonly events: RouterEvents,
    private readonly log: Logger,
    private readonly options: RegistryOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The dealers offering `method`, if any ever registered it and one is still here. */
  offering(method: string): ReadonlySet<RegisteredDealer> | undefined {
    return this.byMethod.get(method);
  }

  /** Whether some registered dealer offering `method` has every tag of `require` (any dealer, without one). */
  offeredWith(method: string, require: Readonly<Tags> | undefined): boolean {
    const dealers = this.byMethod.get(method);
    if (dealers === undefined) return false;
    if (require === undefined) return dealers.size > 0;
    for (const dealer of dealers) if (meetsRequirement(dealer.tags, require)) return true;
    return false;
  }

  /** Methods some registered dealer offers, in order of first registration. */
  methods(): IterableIterator<[string, ReadonlySet<RegisteredDealer>]> {
    return this.byMethod.entries();
  }

  /** Registers the connection `routingId` as a dealer with the methods of its HELLO. */
  register(routingId: Buffer, hello: DealerHelloHeader, publicKey = ""): RegisteredDealer {
    const dealer = new RegisteredDealer(
      `${hello.service}-${this.nextDealerNumber++}`,
      routingId,
      hello.service,
      hello.instanceId,
      hello.methods,
      hello.maxConcurrent ?? this.options.defaultMaxConcurrent,
      randomBytes(16).toString("base64url"),
      this.now(),
      { tags: hello.tags, gpus: hello.gpus, settingUp: hello.state === DealerHelloState.SETUP, host: hello.host },
      publicKey,
    );
    for (const method of dealer.methods.keys()) {
      let set = this.byMethod.get(method);
      if (!set) this.byMethod.set(method, (set = new Set()));
      set.add(dealer);
    }
    this.byBeatToken.set(dealer.beatToken, dealer);
    this.dealers.add(dealer);
    const tags = dealer.tags === NO_TAGS ? "" : ` [${describeRequirement(dealer.tags)}]`;
    this.log.info(
      `dealer ${dealer.id} registered${dealer.instanceId ? ` (${dealer.instanceId})` : ""}${tags}: ${[...dealer.methods.keys()].join(", ")}${dealer.settingUp ? " (running its setup)" : ""}`,
    );
    this.events.emit("dealer.registered", dealer);
    return dealer;
  }

  /** Something came from the dealer's own connection. */
  heard(dealer: RegisteredDealer): void {
    dealer.lastSeen = this.now();
  }

  /**
   * A BEAT from a heartbeat connection: the dealer it names counts as heard from, so one whose
   * event loop is busy in a long synchronous method is not declared lost. The token (128 random
   * bits, given only in that dealer's WELCOME) is the authority. Returns the dealer, or undefined
   * for a token of a registration that ended (ignored: a BEAT is never answered).
   */
  beat(token: string, from?: Buffer): RegisteredDealer | undefined {
    const dealer = this.byBeatToken.get(token);
    if (dealer !== undefined) {
      dealer.lastSeen = this.now();
      if (from !== undefined) dealer.beatRoutingId = from;
    }
    return dealer;
  }

  /** The registered dealer with router-assigned id `id`, if it is still here. */
  byId(id: string): RegisteredDealer | undefined {
    for (const dealer of this.dealers) if (dealer.id === id) return dealer;
    return undefined;
  }

  /** The dealer sent DRAIN: it gets no new calls, and what waited for it may go to others. */
  drain(dealer: RegisteredDealer): void {
    dealer.markDraining();
    this.log.info(`dealer ${dealer.id} is draining`);
    this.events.emit("dealer.draining", dealer);
    for (const method of dealer.methods.keys()) this.dispatch.serveMethod(method);
  }

  /** The dealer sent READY: its setup() finished; the caller serves it (Dispatcher.serveDealer). */
  ready(dealer: RegisteredDealer): void {
    if (!dealer.settingUp) return;
    dealer.markReady();
    this.log.info(`dealer ${dealer.id} finished its setup and is serving`);
    this.events.emit("dealer.ready", dealer);
  }

  /**
   * The dealer is gone (BYE, disconnect, heartbeat timeout: `why`). Its methods lose it (calls
   * waiting for a method nobody offers any more fail with NO_SUCH_METHOD unless they wait for a
   * dealer), and each call it held is re-queued or fails with DEALER_LOST.
   */
  lost(dealer: RegisteredDealer, why: string): void {
    if (!this.dealers.delete(dealer)) return;
    this.byBeatToken.delete(dealer.beatToken);
    for (const method of dealer.methods.keys()) {
      const set = this.byMethod.get(method);
      set?.delete(dealer);
      if (set?.size === 0) {
        this.byMethod.delete(method);
        this.failWaitingWithoutDealer(method);
      } else if (dealer.tags !== NO_TAGS) this.failWaitingUnmet(method);
    }
    const held = [...dealer.inFlight.values()];
    const note = `dealer ${dealer.id} left (${why}) with ${held.length} request(s) in flight`;
    if (held.length > 0) this.log.warn(note);
    else this.log.info(note);
    this.events.emit("dealer.lost", { dealer, reason: why });
    // A dealer that drained and said BYE finished everything it started and refused the rest
    // (notStarted): what it still holds never ran, so it runs elsewhere without using a redispatch.
    const leftCleanly = dealer.draining && why === "unregistered";
    const stopping = this.options.isStopping();
    for (const call of held) {
      if (call.state === "orphaned") {
        this.calls.released(call);
        continue;
      }
      const neverStarted = leftCleanly && !call.forwarded;
      // Re-queue only if someone can still run it; otherwise fail now rather than at its timeout.
      const someoneCanRunIt = call.waitForDealer || this.offeredWith(call.method, call.require);
      if (!call.forwarded && (neverStarted || call.redispatchesLeft > 0) && !stopping && someoneCanRunIt) {
        if (!neverStarted) call.redispatchesLeft--;
        this.log.info(`re-dispatching ${call.method} (client id ${call.clientId}) after losing ${dealer.id}`);
        this.dispatch.requeue(call);
      } else if (neverStarted && !stopping) {
        this.calls.lost(
          call,
          new NoSuchMethodError(`no service offers ${call.method} any more: ${dealer.id} drained and left without starting the call`, {
            data: { method: call.method, dealerId: dealer.id },
          }),
        );
      } else {
        this.calls.lost(
          call,
          new DealerLostError(`dealer ${dealer.id} was lost while running ${call.method}`, { data: { dealerId: dealer.id } }),
        );
      }
    }
    for (const method of dealer.methods.keys()) this.dispatch.serveMethod(method);
  }

  /** Forgets every dealer (the router stopped); their calls are settled by the caller. */
  clear(): void {
    this.dealers.clear();
    this.byMethod.clear();
    this.byBeatToken.clear();
  }

  private failWaitingWithoutDealer(method: string): void {
    const queue = this.queues.get(method);
    if (!queue) return;
    for (const call of queue.snapshot()) if (!call.waitForDealer) this.calls.finished(call, noSuchMethod(method));
    queue.compact();
  }

  /** Waiting calls whose requirement no dealer left meets fail, unless they wait for a dealer. */
  private failWaitingUnmet(method: string): void {
    const queue = this.queues.get(method);
    if (!queue || queue.restricted === 0) return;
    for (const call of queue.snapshot()) {
      if (call.require !== undefined && !call.waitForDealer && !this.offeredWith(method, call.require))
        this.calls.finished(call, noSuchMethod(method, call.require));
    }
    queue.compact();
  }
}

/** NO_SUCH_METHOD for `method`, naming the requirement no dealer meets when there is one. */
export function noSuchMethod(method: string, require?: Readonly<Tags>): NoSuchMethodError {
  if (require === undefined) return new NoSuchMethodError(`no service offers ${method}`, { data: { method } });
  return new NoSuchMethodError(`no service offers ${method} with ${describeRequirement(require)}`, {
    data: { method, require: { ...require } },
  });
}
