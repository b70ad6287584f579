/**
 * VoidRail message kinds, the core header schemas, and which side receives what.
 *
 * A VoidRail message is a multipart ZeroMQ message: protocol id, kind, JSON header and (for some
 * kinds) an opaque JSON payload. This module says which kinds exist, which side may receive each
 * one, and what a valid header looks like; `codec.ts` turns frames into checked messages and back.
 * docs/PROTOCOL.md is the normative description; keep the two in step.
 */
import * as v from "valibot";
import { BinarySlotsSchema } from "./binary-slots.ts";
import {
  ApiKeySchema,
  BEAT_TOKEN_PATTERN,
  CountSchema,
  CreditSchema,
  DurationMsSchema,
  ERROR_CODE_PATTERN,
  ID_PATTERN,
  HostSchema,
  IdStringSchema,
  jsonObjectSchema,
  jsonValueSchema,
  Limits,
  MethodNameSchema,
  PositiveDurationMsSchema,
  RequestIdSchema,
  ServiceNameSchema,
  TagsSchema,
  TraceContextSchema,
  VersionSchema,
} from "./fields.ts";
import { RateSchema } from "./rates.ts";
import {
  FlowHeaderSchema,
  type FlowHeader,
  SubmitHeaderSchema,
  type SubmitHeader,
  TaskHeaderSchema,
  type TaskHeader,
  TaskIdSchema,
  TaskOptionsSchema,
} from "./task-messages.ts";

export {
  BINARY_TYPES,
  BINARY_VIEW_TYPES,
  type BinaryFrames,
  type BinarySlot,
  BinarySlotsSchema,
  type BinaryType,
  MAX_BINARY_PATH_DEPTH,
  MAX_BINARY_SLOTS,
} from "./binary-slots.ts";

// The field schemas and the task kinds' headers live in their own files; re-exported so that
// `messages.ts` stays the one import for the whole header layer.
export {
  API_KEY_PATTERN,
  BEAT_TOKEN_PATTERN,
  describeBadMethodName,
  ERROR_CODE_PATTERN,
  HOST_PATTERN,
  ID_PATTERN,
  isWithinJsonDepth,
  jsonObjectSchema,
  jsonValueSchema,
  Limits,
  METHOD_NAME_PATTERN,
  MethodNameSchema,
  NAME_PATTERN,
  type RequestId,
  RequestIdSchema,
  TAG_NAME_PATTERN,
  TAG_VALUE_PATTERN,
  type Tags,
  TagsSchema,
  TRACEPARENT_PATTERN,
  type TraceContext,
  TraceContextSchema,
  TraceparentSchema,
  TracestateSchema,
} from "./fields.ts";
export {
  type FlowHeader,
  FlowHeaderSchema,
  MIN_SCHEDULE_EVERY_MS,
  SCHEDULE_NAME_PATTERN,
  type ScheduleWire,
  ScheduleWireSchema,
  type SubmitHeader,
  SubmitHeaderSchema,
  TASK_ID_PATTERN,
  TASK_STATE_NAMES,
  type TaskHeader,
  TaskHeaderSchema,
  type TaskOptionsWire,
  TaskOptionsSchema,
} from "./task-messages.ts";

/** Frame 0 of every message. Bumped ("VRP2") only for a change old peers cannot parse. */
export const PROTOCOL_ID = "VRP1";

/** The protocol revision this implementation speaks inside VRP1; sent in HELLO and WELCOME. 2 adds tasks (docs/PROTOCOL.md §15). */
export const PROTOCOL_VERSION = 4;

/** Every message kind. Frame 1 carries the name as ASCII. */
export const Kind = {
  /** Peer → router: first message on a connection; authenticates and, for dealers, registers. */
  HELLO: "HELLO",
  /** Router → peer: HELLO accepted. */
  WELCOME: "WELCOME",
  /** Client → router, router → dealer: call a method. Payload: JSON array of arguments. */
  REQUEST: "REQUEST",
  /** Dealer → router → client: the value of a unary call (or an INFO answer). Payload: JSON. */
  RESULT: "RESULT",
  /** Dealer → router → client: one item of a stream. Payload: JSON. */
  CHUNK: "CHUNK",
  /** Dealer → router → client: a stream finished normally. */
  END: "END",
  /** Any direction but client → router: a request (or, without id, the connection) failed. */
  ERROR: "ERROR",
  /** Client → router, router → dealer: abandon a request. */
  CANCEL: "CANCEL",
  /** Client → router, router → dealer: the client can take `n` more chunks of a stream. */
  CREDIT: "CREDIT",
  /** Client → router: ask for monitoring data; answered by RESULT. */
  INFO: "INFO",
  /** Dealer → router: stop sending me new work. Router → dealer: finish your work and leave (an operator's drain). */
  DRAIN: "DRAIN",
  /** Dealer → router: unregister me. */
  BYE: "BYE",
  /** Dealer → router: my `setup()` has finished (I registered with `state: "setup"`); send me work. */
  READY: "READY",
  /**
   * A dealer's heartbeat connection → router: the dealer holding this token is alive, whatever
   * its own connection is doing (a single-threaded dealer sends it from another thread).
   */
  BEAT: "BEAT",
  /** Client → router: store a background task (answered by RESULT with the task). Payload: JSON array of arguments. */
  SUBMIT: "SUBMIT",
  /** Client → router: read, wait for, watch, revoke or list tasks. */
  TASK: "TASK",
  /** Client → router: store a workflow (answered by RESULT with its root task). Payload: the JSON tree. */
  FLOW: "FLOW",
  /** Dealer → router: the running task's method reported progress. */
  PROGRESS: "PROGRESS",
  /**
   * Router → a dealer's heartbeat connection: end your process now (a revoke with terminate of a
   * method that ignores its cancellation; a supervisor starts a new instance).
   */
  TERMINATE: "TERMINATE",
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** Every kind name, in declaration order. */
export const KINDS: readonly Kind[] = Object.values(Kind);

/** Kinds whose message has a fourth frame: the JSON payload the router forwards without parsing. */
export const PAYLOAD_KINDS = [Kind.REQUEST, Kind.RESULT, Kind.CHUNK, Kind.SUBMIT, Kind.FLOW] as const;
export type PayloadKind = (typeof PAYLOAD_KINDS)[number];

/** The side that receives (and so decodes) a message; headers of the same kind differ per side. */
export const Receiver = { ROUTER: "router", DEALER: "dealer", CLIENT: "client" } as const;
export type Receiver = (typeof Receiver)[keyof typeof Receiver];

/** What a peer declares itself to be in HELLO. One role per connection. */
export const Role = { CLIENT: "client", DEALER: "dealer" } as const;
export type Role = (typeof Role)[keyof typeof Role];

/** What INFO may ask for; the answer shapes are in `monitoring.ts`. */
export const InfoTopic = { SERVICES: "services", CLUSTERS: "clusters", ROUTER: "router", QUEUES: "queues" } as const;
export type InfoTopic = (typeof InfoTopic)[keyof typeof InfoTopic];

// Header schemas. Objects are non-strict: unknown fields are dropped, so later revisions of VRP1
// can add optional fields without breaking older receivers.

/** Device ids a dealer reports (`CUDA_VISIBLE_DEVICES` entries: an index or a `GPU-…` UUID). */
export const GpusSchema = v.pipe(
  v.array(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_:.-]{1,128}$/, "Invalid GPU id"))),
  v.maxLength(Limits.MAX_GPUS),
);

/** A dealer's registration state in HELLO: "setup" = registered, but running its `setup()`; send nothing yet. */
export const DealerHelloState = { SETUP: "setup" } as const;

/** What a dealer says about one method when it registers. */
export const MethodInfoSchema = v.object({
  /** Human-readable description (from the method's TSDoc or options). */
  description: v.optional(v.pipe(v.string(), v.maxLength(Limits.MAX_DESCRIPTION_LENGTH))),
  /** JSON Schema of the argument list, if the dealer has one. */
  params: v.optional(jsonObjectSchema()),
  /** True when the method streams (CHUNK…END) instead of returning one RESULT. */
  stream: v.boolean(),
  /** Free-form JSON object shown by discovery. */
  metadata: v.optional(jsonObjectSchema(16)),
  /** Defaults for the method's tasks (`@serviceMethod({ task })`); a submit's options win. */
  task: v.optional(
    v.object({
      ...v.omit(TaskOptionsSchema, ["idempotencyKey", "etaMs", "rateKey", "rateKeyLimit", "concurrencyKey", "concurrencyLimit"]).entries,
      /** The method's rate limit ("10/m"), for every dealer together; the router's `rateLimits` option wins. */
      rateLimit: v.optional(RateSchema),
    }),
  ),
});
export type MethodInfo = v.InferOutput<typeof MethodInfoSchema>;

const MethodsSchema = v.pipe(
  v.record(MethodNameSchema, MethodInfoSchema),
  v.check((methods) => {
    const count = Object.keys(methods).length;
    return count >= 1 && count <= Limits.MAX_METHODS;
  }, `Invalid methods: expected 1 to ${Limits.MAX_METHODS} entries`),
);

export const ClientHelloHeaderSchema = v.object({
  role: v.literal(Role.CLIENT),
  version: VersionSchema,
  apiKey: v.optional(ApiKeySchema),
});
export type ClientHelloHeader = v.InferOutput<typeof ClientHelloHeaderSchema>;

export const DealerHelloHeaderSchema = v.object({
  role: v.literal(Role.DEALER),
  version: VersionSchema,
  apiKey: v.optional(ApiKeySchema),
  /** Service (class) name; every key of `methods` starts with `${service}.`. */
  service: ServiceNameSchema,
  /** Dealer-chosen label for this instance (host, pid…); shown in monitoring. */
  instanceId: v.optional(IdStringSchema),
  /** The machine it runs on (its host name); shown in monitoring. */
  host: v.optional(HostSchema),
  /**
   * How many requests this dealer runs at once; the router never exceeds it. Absent: the
   * router's mode decides (fifo: 1, load_balance: 100), as the seed's defaults do.
   */
  maxConcurrent: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Limits.MAX_CONCURRENT))),
  methods: MethodsSchema,
  /** Labels calls can `require` (`{ gpu: "h200", region: "eu" }`); shown by discovery. */
  tags: v.optional(TagsSchema),
  /** The devices this instance uses (its `CUDA_VISIBLE_DEVICES`); shown by discovery. */
  gpus: v.optional(GpusSchema),
  /**
   * "setup": the dealer is running its `setup()`; the router registers it but sends it no work
   * until READY. Absent: it serves at once.
   */
  state: v.optional(v.picklist(Object.values(DealerHelloState))),
});
export type DealerHelloHeader = v.InferOutput<typeof DealerHelloHeaderSchema>;

export const HelloHeaderSchema = v.pipe(
  v.variant("role", [ClientHelloHeaderSchema, DealerHelloHeaderSchema]),
  v.check(
    (hello) => hello.role !== Role.DEALER || Object.keys(hello.methods).every((name) => name.startsWith(`${hello.service}.`)),
    "Invalid methods: every method name must start with the service name and a dot",
  ),
);
export type HelloHeader = v.InferOutput<typeof HelloHeaderSchema>;

export const ClientWelcomeHeaderSchema = v.object({
  role: v.literal(Role.CLIENT),
  /** The revision both sides now speak: min(peer's HELLO version, router's). */
  version: VersionSchema,
  /** How often the router sends ZMTP PING; 0 = it does not. */
  heartbeatIntervalMs: DurationMsSchema,
  /** Silence after which the router drops the connection; 0 = never. */
  heartbeatTimeoutMs: DurationMsSchema,
  /**
   * The largest message the router accepts, in bytes: a client refuses a call that would not fit
   * before sending it (the router would skip it and answer VALIDATION_ERROR).
   */
  maxMessageSize: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1024))),
});
export type ClientWelcomeHeader = v.InferOutput<typeof ClientWelcomeHeaderSchema>;

export const DealerWelcomeHeaderSchema = v.object({
  role: v.literal(Role.DEALER),
  version: VersionSchema,
  /** Router-assigned id of this dealer instance, as shown in monitoring. */
  dealerId: IdStringSchema,
  heartbeatIntervalMs: DurationMsSchema,
  heartbeatTimeoutMs: DurationMsSchema,
  /** Secret for BEAT messages vouching for this registration (absent: the router takes none). */
  beatToken: v.optional(v.pipe(v.string(), v.regex(BEAT_TOKEN_PATTERN))),
  /**
   * The largest message the router accepts, in bytes: a dealer answers a result that would not
   * fit with an ERROR for that request instead (the router would skip it and fail the call).
   */
  maxMessageSize: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1024))),
});
export type DealerWelcomeHeader = v.InferOutput<typeof DealerWelcomeHeaderSchema>;

export const WelcomeHeaderSchema = v.variant("role", [ClientWelcomeHeaderSchema, DealerWelcomeHeaderSchema]);
export type WelcomeHeader = v.InferOutput<typeof WelcomeHeaderSchema>;

/** REQUEST as a client sends it to the router. */
export const ClientRequestHeaderSchema = v.object({
  id: RequestIdSchema,
  method: MethodNameSchema,
  /** Ask for a stream (CHUNK…END); must match the method's registration. Default false. */
  stream: v.optional(v.boolean()),
  /** Give up after this long, queueing included; absent = the router's default (if any). */
  timeoutMs: v.optional(PositiveDurationMsSchema),
  /** If no dealer offers the method yet, queue instead of failing NO_SUCH_METHOD. Default false. */
  waitForDealer: v.optional(v.boolean()),
  /** Safe to run twice: the router may retry it on another dealer if its dealer is lost. */
  idempotent: v.optional(v.boolean()),
  /** Streams: chunks the client can take before its first CREDIT; absent = no flow control. */
  credit: v.optional(CreditSchema),
  /** Binary values of the arguments, one frame each after the payload (revision 3). */
  binary: v.optional(BinarySlotsSchema),
  /** Run only on a dealer whose tags include all of these (`{ gpu: "h200" }`). */
  require: v.optional(TagsSchema),
  /** The caller's W3C trace context, forwarded untouched to the dealer. */
  trace: v.optional(TraceContextSchema),
});
export type ClientRequestHeader = v.InferOutput<typeof ClientRequestHeaderSchema>;

/** REQUEST as the router dispatches it to a dealer (ids are the router's). */
export const DealerRequestHeaderSchema = v.object({
  id: RequestIdSchema,
  method: MethodNameSchema,
  stream: v.optional(v.boolean()),
  credit: v.optional(CreditSchema),
  /** Time left (ms, relative: clocks differ) before the router gives up on this request. */
  deadlineMs: v.optional(PositiveDurationMsSchema),
  /** Present when the request is an attempt of a background task. */
  task: v.optional(v.object({ id: TaskIdSchema, attempt: v.pipe(v.number(), v.integer(), v.minValue(1)) })),
  /** Binary values of the arguments, one frame each after the payload (revision 3). */
  binary: v.optional(BinarySlotsSchema),
  /** The caller's W3C trace context, as the client (or the task's submit) gave it. */
  trace: v.optional(TraceContextSchema),
});
export type DealerRequestHeader = v.InferOutput<typeof DealerRequestHeaderSchema>;

export const ResultHeaderSchema = v.object({
  id: RequestIdSchema,
  /** Binary values of the result, one frame each after the payload (revision 3). */
  binary: v.optional(BinarySlotsSchema),
});
export type ResultHeader = v.InferOutput<typeof ResultHeaderSchema>;

export const ChunkHeaderSchema = v.object({
  id: RequestIdSchema,
  /** 0 for the first chunk of a request, then +1 per chunk. */
  seq: CountSchema,
  /** Binary values of the chunk, one frame each after the payload (revision 3). */
  binary: v.optional(BinarySlotsSchema),
});
export type ChunkHeader = v.InferOutput<typeof ChunkHeaderSchema>;

export const EndHeaderSchema = v.object({
  id: RequestIdSchema,
  /** Chunks sent for this request (last seq + 1). */
  count: CountSchema,
});
export type EndHeader = v.InferOutput<typeof EndHeaderSchema>;

export const ErrorHeaderSchema = v.object({
  /** The failed request; absent when the error concerns the connection (HELLO, bad frames). */
  id: v.optional(RequestIdSchema),
  code: v.pipe(v.string(), v.maxLength(64), v.regex(ERROR_CODE_PATTERN)),
  message: v.pipe(v.string(), v.maxLength(Limits.MAX_ERROR_MESSAGE_LENGTH)),
  data: v.optional(jsonValueSchema()),
});
export type ErrorHeader = v.InferOutput<typeof ErrorHeaderSchema>;

export const CancelHeaderSchema = v.object({ id: RequestIdSchema });
export type CancelHeader = v.InferOutput<typeof CancelHeaderSchema>;

export const CreditHeaderSchema = v.object({
  id: RequestIdSchema,
  n: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Limits.MAX_CREDIT)),
});
export type CreditHeader = v.InferOutput<typeof CreditHeaderSchema>;

export const InfoHeaderSchema = v.object({
  id: RequestIdSchema,
  topic: v.picklist(Object.values(InfoTopic)),
});
export type InfoHeader = v.InferOutput<typeof InfoHeaderSchema>;

/**
 * DRAIN. From a dealer, and to a dealer: `{}`. From a client (an operator's drain): `{id, dealerId}`,
 * answered by RESULT `{dealerId, draining: true}` or ERROR.
 */
export const DrainHeaderSchema = v.pipe(
  v.object({
    id: v.optional(RequestIdSchema),
    dealerId: v.optional(v.pipe(v.string(), v.regex(ID_PATTERN, "Invalid dealer id"))),
  }),
  v.check((header) => (header.id === undefined) === (header.dealerId === undefined), "a client's DRAIN needs both id and dealerId"),
);
export type DrainHeader = v.InferOutput<typeof DrainHeaderSchema>;

export const ByeHeaderSchema = v.object({});
export type ByeHeader = v.InferOutput<typeof ByeHeaderSchema>;

export const ReadyHeaderSchema = v.object({});
export type ReadyHeader = v.InferOutput<typeof ReadyHeaderSchema>;

/** TERMINATE: the registration (by its beat token) whose process is to end, and why. */
export const TerminateHeaderSchema = v.object({
  token: v.pipe(v.string(), v.regex(BEAT_TOKEN_PATTERN, "Invalid heartbeat token")),
  reason: v.pipe(v.string(), v.maxLength(1024)),
});
export type TerminateHeader = v.InferOutput<typeof TerminateHeaderSchema>;

/** PROGRESS: the latest progress value of the task attempt running as request `id`. */
export const ProgressHeaderSchema = v.object({ id: RequestIdSchema, value: jsonValueSchema(16) });
export type ProgressHeader = v.InferOutput<typeof ProgressHeaderSchema>;

// Custom message: valibot's default quotes the received value, which would put tokens in logs.
export const BeatHeaderSchema = v.object({ token: v.pipe(v.string(), v.regex(BEAT_TOKEN_PATTERN, "Invalid heartbeat token")) });
export type BeatHeader = v.InferOutput<typeof BeatHeaderSchema>;

// ---------------------------------------------------------------------------------------------
// Which kinds each side receives, and with which header

/** Messages the router receives, from clients and dealers alike. */
export interface RouterInbound {
  HELLO: HelloHeader;
  REQUEST: ClientRequestHeader;
  CANCEL: CancelHeader;
  CREDIT: CreditHeader;
  INFO: InfoHeader;
  RESULT: ResultHeader;
  CHUNK: ChunkHeader;
  END: EndHeader;
  ERROR: ErrorHeader;
  DRAIN: DrainHeader;
  BYE: ByeHeader;
  READY: ReadyHeader;
  BEAT: BeatHeader;
  SUBMIT: SubmitHeader;
  TASK: TaskHeader;
  FLOW: FlowHeader;
  PROGRESS: ProgressHeader;
}

/** Messages a dealer (service) receives from the router. */
export interface DealerInbound {
  WELCOME: DealerWelcomeHeader;
  REQUEST: DealerRequestHeader;
  CANCEL: CancelHeader;
  CREDIT: CreditHeader;
  ERROR: ErrorHeader;
  /** On the heartbeat connection only. */
  TERMINATE: TerminateHeader;
  /** An operator drained this dealer: finish what runs, then BYE. */
  DRAIN: DrainHeader;
}

/** Messages a client receives from the router. */
export interface ClientInbound {
  WELCOME: ClientWelcomeHeader;
  RESULT: ResultHeader;
  CHUNK: ChunkHeader;
  END: EndHeader;
  ERROR: ErrorHeader;
}

export interface InboundByReceiver {
  router: RouterInbound;
  dealer: DealerInbound;
  client: ClientInbound;
}

/** A decoded message: kind, header and, for payload kinds, the raw payload frame. */
export type MessageOf<M> = {
  [K in keyof M & Kind]: K extends PayloadKind
    ? { kind: K; header: M[K]; payload: Uint8Array /** Frames of `header.binary`, in its order. */; binary?: Uint8Array[] }
    : { kind: K; header: M[K]; payload?: undefined };
}[keyof M & Kind];

export type RouterMessage = MessageOf<RouterInbound>;
export type DealerMessage = MessageOf<DealerInbound>;
export type ClientMessage = MessageOf<ClientInbound>;
export type InboundMessage<R extends Receiver> = MessageOf<InboundByReceiver[R]>;

/** The header a sender may write for `K`: the union of what every receiver of `K` accepts. */
export type HeaderOf<K extends Kind> = {
  [R in Receiver]: K extends keyof InboundByReceiver[R] ? InboundByReceiver[R][K] : never;
}[Receiver];

/** How one receiver checks one kind. */
export interface KindRule {
  readonly kind: Kind;
  readonly schema: v.GenericSchema<unknown, unknown>;
  readonly hasPayload: boolean;
  readonly maxHeaderBytes: number;
}

function rule(kind: Kind, schema: v.GenericSchema<unknown, unknown>): KindRule {
  return {
    kind,
    schema,
    hasPayload: (PAYLOAD_KINDS as readonly Kind[]).includes(kind),
    maxHeaderBytes: kind === Kind.HELLO ? Limits.MAX_HELLO_HEADER_BYTES : Limits.MAX_HEADER_BYTES,
  };
}

/** Per receiver, the rule for every kind it accepts. Kinds missing here are UNEXPECTED_KIND. */
export const RULES: Readonly<Record<Receiver, ReadonlyMap<Kind, KindRule>>> = {
  router: new Map([
    [Kind.HELLO, rule(Kind.HELLO, HelloHeaderSchema)],
    [Kind.REQUEST, rule(Kind.REQUEST, ClientRequestHeaderSchema)],
    [Kind.CANCEL, rule(Kind.CANCEL, CancelHeaderSchema)],
    [Kind.CREDIT, rule(Kind.CREDIT, CreditHeaderSchema)],
    [Kind.INFO, rule(Kind.INFO, InfoHeaderSchema)],
    [Kind.RESULT, rule(Kind.RESULT, ResultHeaderSchema)],
    [Kind.CHUNK, rule(Kind.CHUNK, ChunkHeaderSchema)],
    [Kind.END, rule(Kind.END, EndHeaderSchema)],
    [Kind.ERROR, rule(Kind.ERROR, ErrorHeaderSchema)],
    [Kind.DRAIN, rule(Kind.DRAIN, DrainHeaderSchema)],
    [Kind.BYE, rule(Kind.BYE, ByeHeaderSchema)],
    [Kind.READY, rule(Kind.READY, ReadyHeaderSchema)],
    [Kind.BEAT, rule(Kind.BEAT, BeatHeaderSchema)],
    [Kind.SUBMIT, rule(Kind.SUBMIT, SubmitHeaderSchema)],
    [Kind.TASK, rule(Kind.TASK, TaskHeaderSchema)],
    [Kind.FLOW, rule(Kind.FLOW, FlowHeaderSchema)],
    [Kind.PROGRESS, rule(Kind.PROGRESS, ProgressHeaderSchema)],
  ]),
  dealer: new Map([
    [Kind.WELCOME, rule(Kind.WELCOME, DealerWelcomeHeaderSchema)],
    [Kind.REQUEST, rule(Kind.REQUEST, DealerRequestHeaderSchema)],
    [Kind.CANCEL, rule(Kind.CANCEL, CancelHeaderSchema)],
    [Kind.CREDIT, rule(Kind.CREDIT, CreditHeaderSchema)],
    [Kind.ERROR, rule(Kind.ERROR, ErrorHeaderSchema)],
    [Kind.TERMINATE, rule(Kind.TERMINATE, TerminateHeaderSchema)],
    [Kind.DRAIN, rule(Kind.DRAIN, DrainHeaderSchema)],
  ]),
  client: new Map([
    [Kind.WELCOME, rule(Kind.WELCOME, ClientWelcomeHeaderSchema)],
    [Kind.RESULT, rule(Kind.RESULT, ResultHeaderSchema)],
    [Kind.CHUNK, rule(Kind.CHUNK, ChunkHeaderSchema)],
    [Kind.END, rule(Kind.END, EndHeaderSchema)],
    [Kind.ERROR, rule(Kind.ERROR, ErrorHeaderSchema)],
  ]),
};
