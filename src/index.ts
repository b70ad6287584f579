/**
 * VoidRail: spread work over processes and machines through a central router.
 * Services are TypeScript classes (ServiceDealer + @serviceMethod); clients call them
 * (ClientDealer); ServiceRouter queues and dispatches. ZeroMQ (ZMTP 3.1) on the wire.
 */
export { type HttpOptions, ServiceRouter, type ServiceRouterOptions } from "./http/http-router.ts";
export type { CallView, DealerView, RouterEventMap, RouterEventName, RouterEvents, RouterListener } from "./router/events.ts";
export { ApiKeyManager } from "./router/auth.ts";
export { type RecycleReason, ServiceDealer, type ServiceDealerOptions } from "./dealer/service-dealer.ts";
export { type CallContext, registerServiceMethod, serviceMethod, type ServiceMethodOptions } from "./dealer/service-method.ts";
export { type CallOptions, ClientDealer, type ClientDealerOptions } from "./client/client-dealer.ts";
export { createLogger, type Logger, silentLogger } from "./util/log.ts";
export {
  AuthError,
  CancelledError,
  ConnectionError,
  DealerLostError,
  ErrorCode,
  NoSuchMethodError,
  ProtocolError,
  QueueFullError,
  RemoteError,
  RouterMode,
  ShuttingDownError,
  TaskNotFoundError,
  ScheduleNotFoundError,
  TimeoutError,
  ValidationError,
  VoidRailError,
} from "./protocol/index.ts";
export type { CatchUpMode, ScheduleDefinition, ScheduleInfo } from "./protocol/index.ts";
export type { MethodTaskDefaults, SubmitOptions, TaskDefaults, TaskEvent, TaskInfo, TaskPage } from "./protocol/index.ts";
export type { CompressionCodec, CompressOption } from "./protocol/index.ts";
export type { FlowOptions, SubmitWithCallbacks, TaskListFilter } from "./client/task-verbs.ts";
export type { Schedules } from "./client/schedule-verbs.ts";
export {
  type ChainSignature,
  type ChordSignature,
  chain,
  chord,
  type FlowCallbacks,
  type FlowSignature,
  type GroupSignature,
  group,
  type TaskSignature,
  type TaskStepOptions,
  task,
} from "./client/flow-builders.ts";
export type { FlowFailure, FlowInfo, GroupJoin } from "./protocol/index.ts";
export { TaskStoreError, StoreFailure } from "./store/errors.ts";
export type { TaskStoreOption } from "./tasks/open-store.ts";
export type { ClustersInfo, DealerInfo, QueuesInfo, RouterInfo, ServicesInfo } from "./protocol/index.ts";
export { type CurveKeyPair, curveKeyPair, curvePublicKey, z85Decode, z85Encode } from "./zmtp/index.ts";
