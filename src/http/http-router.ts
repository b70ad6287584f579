/**
 * The public ServiceRouter: the router with its task layer (src/tasks/task-router.ts) and, when
 * asked for, the HTTP server: /metrics, /api, the live dashboard. The server's modules load only
 * when it starts (they need Bun: Bun.serve, and the dashboard's files embedded as text), so a
 * router without `http` costs nothing and runs under Node too.
 */
import packageJson from "../../package.json" with { type: "json" };
import { ValidationError } from "../protocol/index.ts";
import { ServiceRouter as TaskServiceRouter, type ServiceRouterOptions as TaskRouterOptions } from "../tasks/task-router.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { type HttpConfig, type HttpOptions, resolveHttpConfig } from "./http-options.ts";
import type { HttpServer } from "./http-server.ts";
import type { RouterTracing } from "../observability/router-tracing.ts";
import { loadOtel, otel } from "../util/otel.ts";

export type { HttpOptions };

export interface ServiceRouterOptions extends TaskRouterOptions {
  /**
   * Serve /metrics, /api and the dashboard over HTTP: `{ port, host, token }` (see HttpOptions).
   * Off unless given or env VOIDRAIL_HTTP_PORT is set.
   */
  http?: HttpOptions;
}

/**
 * The central router, with durable background tasks and, on request, its HTTP server.
 *
 * @example
 * const router = new ServiceRouter({ address: "tcp://127.0.0.1:5555", http: { port: 8080 } });
 * await router.start(); // http://127.0.0.1:8080/ shows the dashboard
 */
export class ServiceRouter extends TaskServiceRouter {
  private readonly httpConfig: HttpConfig | undefined;
  private readonly httpLog: Logger;
  private httpServer: HttpServer | undefined;
  /** Router spans, when @opentelemetry/api is installed. */
  private tracing: RouterTracing | undefined;

  constructor(options: ServiceRouterOptions = {}) {
    super(options);
    this.httpConfig = resolveHttpConfig(options.http, process.env);
    this.httpLog = options.logger ?? createLogger("http");
  }

  /** The HTTP server's base URL once it listens (the real port when 0 was asked for); undefined when off. */
  get httpUrl(): string | undefined {
    return this.httpServer?.url;
  }

  override async start(): Promise<void> {
    if (this.httpConfig !== undefined && typeof Bun === "undefined") {
      throw new ValidationError("the HTTP server (http option) needs Bun: run the router with bun or the voidrail binary");
    }
    await super.start();
    if (this.tracing === undefined) {
      // Router spans when an OpenTelemetry SDK is registered by now (register it before start()).
      await loadOtel();
      const api = otel();
      if (api !== undefined) {
        const { RouterTracing } = await import("../observability/router-tracing.ts");
        this.tracing = new RouterTracing(this.events, api);
        this.tracing.attach();
      }
    }
    const config = this.httpConfig;
    if (config === undefined || this.httpServer !== undefined) return;
    try {
      this.httpServer = await this.startHttp(config);
    } catch (error) {
      await super.stop();
      throw error;
    }
    const url = this.httpServer.url;
    this.httpLog.info(`dashboard and metrics on ${url}/${config.token ? " (token required)" : ""}`);
    if (config.token) this.httpLog.info(`open ${url}/?token=${encodeURIComponent(config.token)} to sign in`);
  }

  override async stop(): Promise<void> {
    const server = this.httpServer;
    this.httpServer = undefined;
    await server?.stop();
    await super.stop();
  }

  private async startHttp(config: HttpConfig): Promise<HttpServer> {
    const [{ HttpServer }, { RouterMetrics }, { LiveFeed }] = await Promise.all([
      import("./http-server.ts"),
      import("../observability/router-metrics.ts"),
      import("./live.ts"),
    ]);
    const metrics = new RouterMetrics(this, { version: packageJson.version });
    metrics.attach();
    const tasks = this.tasks;
    if (tasks) tasks.attemptStarted = (task, startedAt) => metrics.taskAttemptStarted(task.method, startedAt - task.runAt);
    const live = new LiveFeed(this, metrics);
    const server = new HttpServer({ config, source: this, metrics, live, log: this.httpLog, version: packageJson.version });
    try {
      server.start();
    } catch (error) {
      metrics.detach();
      const message = (error as Error).message;
      throw new ValidationError(`cannot serve HTTP on ${config.host}:${config.port}: ${message}`, { data: { path: "http.port" } });
    }
    return server;
  }
}
