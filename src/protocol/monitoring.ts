/**
 * Shapes of the INFO answers (the RESULT payload for each `InfoTopic`), as valibot schemas so a
 * client can check what it receives: `decodeJson(msg.payload, RouterInfoSchema)`.
 * docs/PROTOCOL.md "Monitoring payloads" is the normative description.
 *
 * Objects are non-strict: a router may add fields, and older clients drop them.
 */
import * as v from "valibot";
import { MethodInfoSchema } from "./messages.ts";

/** Dispatch strategies a router reports in `RouterInfo.mode`. Other values may appear later. */
export const RouterMode = { FIFO: "fifo", LOAD_BALANCE: "load_balance" } as const;
export type RouterMode = (typeof RouterMode)[keyof typeof RouterMode];

/**
 * A registered dealer's state, in `DealerInfo.state`: "active" as in the Python seed, whatever its
 * load (`DealerInfo.busy` and `load` say how busy it is), "setup" or "draining". Other values may appear later.
 */
export const DealerState = {
  /** Registered, running its `setup()` (loading a model): gets no requests until it is READY. */
  SETUP: "setup",
  /** Registered and live: gets requests while it has a free slot. */
  ACTIVE: "active",
  /** Sent DRAIN: finishing its work, gets no new requests. */
  DRAINING: "draining",
} as const;
export type DealerState = (typeof DealerState)[keyof typeof DealerState];

const Count = v.pipe(v.number(), v.safeInteger(), v.minValue(0));

/** topic "services": one entry per method any registered dealer offers, keyed `Service.method`. */
export const ServicesInfoSchema = v.record(
  v.string(),
  v.object({
    ...MethodInfoSchema.entries,
    /** How many registered dealers offer the method. */
    instances: Count,
  }),
);
export type ServicesInfo = v.InferOutput<typeof ServicesInfoSchema>;

/** One registered dealer instance. */
export const DealerInfoSchema = v.object({
  /** Router-assigned dealer id (WELCOME `dealerId`). */
  id: v.string(),
  service: v.string(),
  /** The dealer's own label from HELLO, if it sent one. */
  instanceId: v.optional(v.string()),
  /** The machine the dealer runs on (HELLO `host`), if it reported one. */
  host: v.optional(v.string()),
  /** The long-term CURVE public key (Z85) the dealer's connection used, when the router runs CURVE. */
  publicKey: v.optional(v.string()),
  /** Full names of the methods it registered. */
  methods: v.array(v.string()),
  /** `DealerState`: "setup", "active" or "draining"; a string so that later states do not break older clients. */
  state: v.string(),
  /** Its tags (HELLO `tags`), if it has any: what a call's `require` is matched against. */
  tags: v.optional(v.record(v.string(), v.string())),
  /** The devices it uses (HELLO `gpus`, its `CUDA_VISIBLE_DEVICES`), if it reported any. */
  gpus: v.optional(v.array(v.string())),
  /** At least one request in flight on it now. */
  busy: v.boolean(),
  /** Requests in flight on it now. */
  load: Count,
  maxConcurrent: Count,
  counts: v.object({
    /** Requests sent to it since it registered. */
    dispatched: Count,
    /** Requests it finished with RESULT or END. */
    succeeded: Count,
    /** Requests it finished with ERROR (cancellations included). */
    failed: Count,
  }),
  /** When the router last heard anything from it (ISO 8601, UTC). */
  lastHeartbeat: v.string(),
});
export type DealerInfo = v.InferOutput<typeof DealerInfoSchema>;

/** topic "clusters": every registered dealer, ordered by id. */
export const ClustersInfoSchema = v.array(DealerInfoSchema);
export type ClustersInfo = v.InferOutput<typeof ClustersInfoSchema>;

/** topic "router": the router's own state and counters. */
export const RouterInfoSchema = v.object({
  /** Dispatch strategy, `RouterMode`. */
  mode: v.string(),
  /** The endpoint it is bound to, e.g. `tcp://0.0.0.0:5555`. */
  address: v.string(),
  uptimeSeconds: v.pipe(v.number(), v.minValue(0)),
  /** Registered, live dealers, draining ones included: the seed's `active_services`. */
  activeServices: Count,
  /** The same count as `activeServices` (= busyDealers + idleDealers). */
  activeDealers: Count,
  /** Registered dealers with at least one request in flight. */
  busyDealers: Count,
  /** Registered dealers with nothing in flight. */
  idleDealers: Count,
  /** Requests accepted since start. */
  totalRequests: Count,
  /** Terminal replies (RESULT, END, ERROR with id) sent to clients since start. */
  totalResponses: Count,
  /** Requests waiting for a dealer now. */
  queuedRequests: Count,
  /** Requests running on a dealer now. */
  inProgressRequests: Count,
  requireDealerAuth: v.boolean(),
  requireClientAuth: v.boolean(),
});
export type RouterInfo = v.InferOutput<typeof RouterInfoSchema>;

/** topic "queues": one entry per method that is registered or has waiting requests. */
export const QueuesInfoSchema = v.record(
  v.string(),
  v.object({
    /** Requests waiting for a dealer. */
    queueLength: Count,
    /** Dealers offering the method with a free slot (draining ones excluded). */
    availableServices: Count,
    /** Dealers offering the method with no free slot (draining ones excluded). */
    busyServices: Count,
  }),
);
export type QueuesInfo = v.InferOutput<typeof QueuesInfoSchema>;

/** The schema of the answer to each INFO topic. */
export const InfoResultSchemas = {
  services: ServicesInfoSchema,
  clusters: ClustersInfoSchema,
  router: RouterInfoSchema,
  queues: QueuesInfoSchema,
} as const;
