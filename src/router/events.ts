/**
 * Owns the router's typed events: what happens to calls and dealers, told to whoever listens
 * (metrics, the task layer, tests). The router never imports those listeners; they subscribe here.
 *
 * The call path is hot: an event is emitted only when a listener for it exists (one property
 * read otherwise), and payloads are the router's own objects, seen through read-only views, so
 * emitting allocates nothing.
 */
import type { MethodInfo } from "../protocol/index.ts";

/** A call as listeners see it. Read it during the callback; the router keeps changing it. */
export interface CallView {
  /** Arrival order across all methods. */
  readonly seq: number;
  readonly method: string;
  /** The id its client gave it. */
  readonly clientId: number;
  readonly stream: boolean;
  readonly state: string;
  /** The id it runs under on its dealer (0 before its first dispatch). */
  readonly routerId: number;
  /** The dealer running it, if any. */
  readonly dealer: { readonly id: string } | null;
  /** How it ended, once it did: "RESULT", "END" or an error code. */
  readonly outcome: string | undefined;
  /** performance.now() when it arrived at the router. */
  readonly receivedAt: number;
  /** Set when the call is an attempt of a background task. */
  readonly task: { readonly id: string; readonly attempt: number } | undefined;
  /** The caller's W3C trace context, when it gave one. */
  readonly trace: { readonly traceparent: string; readonly tracestate?: string } | undefined;
}

/** A registered dealer as listeners see it. */
export interface DealerView {
  readonly id: string;
  readonly service: string;
  readonly instanceId: string | undefined;
  readonly methods: ReadonlyMap<string, MethodInfo>;
  readonly maxConcurrent: number;
  readonly draining: boolean;
  /** Registered with `state: "setup"`: running its setup(), no work until READY. */
  readonly settingUp: boolean;
  /** Its tags (empty when none). */
  readonly tags: Readonly<Record<string, string>>;
}

/** Every router event and its payload. */
export interface RouterEventMap {
  /** A call waits in its method's queue (a new one, or one re-queued after its dealer was lost). */
  "call.queued": CallView;
  /** A call was sent to a dealer. */
  "call.dispatched": CallView;
  /** A call ended for its client (`outcome` says how). Not emitted for calls whose client left. */
  "call.finished": CallView;
  /** A dealer said HELLO and was welcomed. */
  "dealer.registered": DealerView;
  /** A dealer that registered in setup sent READY: it takes work now. */
  "dealer.ready": DealerView;
  /** A dealer sent DRAIN: it finishes its work and takes no more. */
  "dealer.draining": DealerView;
  /**
   * A dealer has a free slot and no call waits for any of its methods: work from elsewhere (the
   * task layer's queued tasks) may go to it now.
   */
  "dealer.free": DealerView;
  /** A dealer is gone (BYE, disconnect, heartbeat timeout); `reason` says which. */
  "dealer.lost": { readonly dealer: DealerView; readonly reason: string };
}

export type RouterEventName = keyof RouterEventMap;
export type RouterListener<K extends RouterEventName> = (payload: RouterEventMap[K]) => void;

/**
 * Subscriptions to router events. A listener that throws is logged and does not disturb the router.
 *
 * @example
 * router.events.on("call.finished", (call) => metrics.count(call.method, call.outcome));
 */
export class RouterEvents {
  private readonly listeners: { [K in RouterEventName]?: RouterListener<K>[] } = {};

  constructor(private readonly onListenerError: (name: string, error: unknown) => void = () => {}) {}

  /** Calls `listener` on every `name` event until `off`. Returns a function that unsubscribes. */
  on<K extends RouterEventName>(name: K, listener: RouterListener<K>): () => void {
    const list = this.listeners[name] ?? [];
    this.listeners[name] = [...list, listener] as (typeof this.listeners)[K];
    return () => this.off(name, listener);
  }

  off<K extends RouterEventName>(name: K, listener: RouterListener<K>): void {
    const list = this.listeners[name];
    if (list === undefined) return;
    const rest = list.filter((other) => other !== listener);
    // No listener left: back to the one-read fast path.
    this.listeners[name] = (rest.length > 0 ? rest : undefined) as (typeof this.listeners)[K];
  }

  /** Whether anyone listens to `name` (to skip building a payload nobody reads). */
  has(name: RouterEventName): boolean {
    return this.listeners[name] !== undefined;
  }

  /** @internal Tells the listeners of `name`, if any. */
  emit<K extends RouterEventName>(name: K, payload: RouterEventMap[K]): void {
    const list = this.listeners[name];
    if (list === undefined) return;
    // The list is replaced, never mutated, on subscribe: a listener that unsubscribes is safe here.
    for (const listener of list) {
      try {
        listener(payload);
      } catch (error) {
        this.onListenerError(name, error);
      }
    }
  }
}
