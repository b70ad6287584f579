/**
 * Owns the INFO answers: each topic built from the router's state as the typed shape that
 * protocol/monitoring.ts defines (and clients check): ServicesInfo, ClustersInfo, RouterInfo,
 * QueuesInfo. Read-only over the registry, the queues and the call table.
 */
import {
  type ClustersInfo,
  DealerState,
  type InfoTopic,
  type QueuesInfo,
  type RouterInfo,
  type RouterMode,
  type ServicesInfo,
} from "../protocol/index.ts";
import type { Call, CallTable } from "./calls.ts";
import type { Queues } from "./queues.ts";
import type { DealerRegistry } from "./registry.ts";

/** The answer of each topic. */
export interface InfoByTopic {
  services: ServicesInfo;
  clusters: ClustersInfo;
  router: RouterInfo;
  queues: QueuesInfo;
}

export interface InfoSources {
  registry: DealerRegistry;
  queues: Queues<Call>;
  calls: CallTable;
  mode: RouterMode;
  address(): string;
  /** Epoch ms of start, 0 before. */
  startedAt(): number;
  requireDealerAuth: boolean;
  requireClientAuth: boolean;
}

export class RouterInfoBuilder {
  constructor(private readonly sources: InfoSources) {}

  /** The answer to `topic`; an unknown topic (only reachable in-process) answers `{}`. */
  topic<T extends InfoTopic>(topic: T): InfoByTopic[T];
  topic(topic: string): unknown;
  topic(topic: string): unknown {
    switch (topic) {
      case "services":
        return this.services();
      case "clusters":
        return this.clusters();
      case "router":
        return this.router();
      case "queues":
        return this.queues();
      default:
        return {};
    }
  }

  services(): ServicesInfo {
    const result: ServicesInfo = {};
    for (const [method, dealers] of this.sources.registry.methods()) {
      if (dealers.size === 0) continue;
      const info = dealers.values().next().value!.methods.get(method)!;
      result[method] = { ...info, instances: dealers.size };
    }
    return result;
  }

  clusters(): ClustersInfo {
    const dealers = [...this.sources.registry.dealers];
    dealers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return dealers.map((dealer) => ({
      id: dealer.id,
      service: dealer.service,
      ...(dealer.instanceId ? { instanceId: dealer.instanceId } : {}),
      ...(dealer.host ? { host: dealer.host } : {}),
      ...(dealer.publicKey ? { publicKey: dealer.publicKey } : {}),
      methods: [...dealer.methods.keys()].sort(),
      state: dealer.draining ? DealerState.DRAINING : dealer.settingUp ? DealerState.SETUP : DealerState.ACTIVE,
      ...(Object.keys(dealer.tags).length > 0 ? { tags: { ...dealer.tags } } : {}),
      ...(dealer.gpus.length > 0 ? { gpus: [...dealer.gpus] } : {}),
      busy: dealer.load > 0,
      load: dealer.load,
      maxConcurrent: dealer.maxConcurrent,
      counts: { dispatched: dealer.dispatched, succeeded: dealer.succeeded, failed: dealer.failed },
      lastHeartbeat: new Date(dealer.lastSeen).toISOString(),
    }));
  }

  router(): RouterInfo {
    const { registry, queues, calls } = this.sources;
    let active = 0;
    let busy = 0;
    for (const dealer of registry.dealers) {
      active++;
      if (dealer.load > 0) busy++;
    }
    const startedAt = this.sources.startedAt();
    return {
      mode: this.sources.mode,
      address: this.sources.address(),
      uptimeSeconds: startedAt ? (Date.now() - startedAt) / 1000 : 0,
      activeServices: active,
      activeDealers: active,
      busyDealers: busy,
      idleDealers: active - busy,
      totalRequests: calls.totalRequests,
      totalResponses: calls.totalResponses,
      queuedRequests: queues.total,
      inProgressRequests: calls.onDealers.size,
      requireDealerAuth: this.sources.requireDealerAuth,
      requireClientAuth: this.sources.requireClientAuth,
    };
  }

  /** Methods with calls waiting: how many, and when the oldest arrived (performance.now()). */
  waiting(): Map<string, { count: number; oldestReceivedAt: number }> {
    const result = new Map<string, { count: number; oldestReceivedAt: number }>();
    const { queues } = this.sources;
    for (const method of queues.methodsWithWaiting()) {
      const oldest = queues.get(method)?.peek();
      if (oldest !== undefined) result.set(method, { count: queues.count(method), oldestReceivedAt: oldest.receivedAt });
    }
    return result;
  }

  queues(): QueuesInfo {
    const { registry, queues } = this.sources;
    const methods = new Set<string>();
    for (const [method] of registry.methods()) methods.add(method);
    for (const method of queues.methodsWithWaiting()) methods.add(method);
    const result: QueuesInfo = {};
    for (const method of [...methods].sort()) {
      let available = 0;
      let busy = 0;
      for (const dealer of registry.offering(method) ?? []) {
        if (dealer.draining || dealer.settingUp) continue;
        if (dealer.inFlight.size < dealer.maxConcurrent) available++;
        else busy++;
      }
      result[method] = { queueLength: queues.count(method), availableServices: available, busyServices: busy };
    }
    return result;
  }
}
