/**
 * Owns the router's HTTP server (Bun.serve): routing, the token check, and the wiring of
 * metrics, API, live feed and dashboard. Routes:
 *   GET  /healthz                   always open: {"status":"ok"}
 *   GET  /metrics                   Prometheus text exposition
 *   GET  /api/router|services|clusters|queues   the INFO topics as JSON
 *   GET  /api/tasks?id=&state=&method=&from=&to=&limit=&cursor=   task search
 *   GET  /api/tasks/:id             one task
 *   POST /api/tasks/:id/revoke      {terminate?: boolean}
 *   POST /api/tasks/:id/retry       a new task with the same method and arguments
 *   POST /api/dealers/:id/drain     the dealer finishes its work and leaves
 *   GET  /api/flows/:id             the flow tree rooted at task :id, each node's state
 *   GET  /api/schedules             every schedule, with its next due time
 *   POST /api/schedules/:name/pause, /resume
 *   GET  /api/history               the live feed's last ten minutes of points
 *   GET  /api/events                the live feed (Server-Sent Events)
 *   GET  /, /assets/*               the dashboard; GET/POST /login its sign-in form
 * Any request handler that throws answers 500 without details; the server never goes down
 * with a request.
 */
import type { Server } from "bun";
import type { Logger } from "../util/log.ts";
import type { RouterMetrics } from "../observability/router-metrics.ts";
import { EXPOSITION_CONTENT_TYPE } from "../observability/exposition.ts";
import { type ApiSource, drainDealer, getFlow, getTask, INFO_TOPICS, retryTask, revokeTask, searchTasks } from "./api.ts";
import { listSchedules, pauseOrResume } from "./api-schedules.ts";
import { HttpAuth } from "./auth.ts";
import type { HttpConfig } from "./http-options.ts";
import type { LiveFeed, LiveSource } from "./live.ts";
import { ASSETS } from "./dashboard/assets.ts";
import { CONTENT_SECURITY_POLICY, dashboardPage, loginPage } from "./dashboard/pages.ts";
import { httpError, json } from "./responses.ts";

export type HttpSource = ApiSource & LiveSource;

export interface HttpServerParts {
  config: HttpConfig;
  source: HttpSource;
  metrics: RouterMetrics;
  live: LiveFeed;
  log: Logger;
  version: string;
}

const HTML_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export class HttpServer {
  private server: Server<undefined> | undefined;
  private readonly auth: HttpAuth;
  private readonly page: string;

  constructor(private readonly parts: HttpServerParts) {
    this.auth = new HttpAuth(parts.config.token);
    this.page = dashboardPage(parts.version);
  }

  /** The base URL (with the real port once started). */
  get url(): string {
    const { host } = this.parts.config;
    const shown = host.includes(":") ? `[${host}]` : host;
    return `http://${shown}:${this.server?.port ?? this.parts.config.port}`;
  }

  start(): void {
    const { config } = this.parts;
    this.server = Bun.serve({
      port: config.port,
      hostname: config.host,
      // SSE streams stay open; each disables its own timeout (server.timeout below).
      idleTimeout: 30,
      // Bodies are small JSON or a login form: a bigger one is refused before it is buffered.
      maxRequestBodySize: 64 * 1024,
      fetch: (request, server) => this.handle(request, server),
      error: (error) => {
        this.parts.log.error(`http: ${error.stack ?? error.message}`);
        return httpError(500, "INTERNAL", "the request failed inside the router (see its log)");
      },
    });
    this.parts.live.start();
  }

  async stop(): Promise<void> {
    this.parts.live.stop();
    await this.server?.stop(true);
    this.server = undefined;
  }

  private async handle(request: Request, server: Server<undefined>): Promise<Response> {
    try {
      return await this.route(request, server);
    } catch (error) {
      this.parts.log.error(`http: ${request.method} ${new URL(request.url).pathname}: ${(error as Error)?.stack ?? error}`);
      return httpError(500, "INTERNAL", "the request failed inside the router (see its log)");
    }
  }

  private async route(request: Request, server: Server<undefined>): Promise<Response> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return httpError(400, "VALIDATION_ERROR", "bad request URL");
    }
    const path = url.pathname;
    const method = request.method;
    if (path === "/healthz") return method === "GET" || method === "HEAD" ? json({ status: "ok" }) : methodNotAllowed("GET");
    if (path === "/login") return this.login(request);

    const auth = this.auth.check(request, url);
    if (auth === null) {
      if (method === "GET" && (path === "/" || path === "/index.html"))
        return new Response(loginPage(url.searchParams.has("token") ? "That token is not right." : undefined), {
          status: 401,
          headers: HTML_HEADERS,
        });
      return httpError(401, "UNAUTHORIZED", "this router's HTTP server needs its token: Authorization: Bearer <token>", {
        "www-authenticate": 'Bearer realm="voidrail"',
      });
    }
    // A `?token=` link signs the browser in and drops the token from the address bar.
    if (auth.via === "query" && method === "GET" && (path === "/" || path === "/index.html")) {
      return new Response(null, {
        status: 303,
        headers: { location: "/", "set-cookie": this.auth.cookie(url.searchParams.get("token")!) },
      });
    }

    const response = await this.authorized(request, url, server, path, method);
    // A valid `?token=` signs the browser in on any route, as the dashboard link does.
    if (auth.via === "query") response.headers.append("set-cookie", this.auth.cookie(url.searchParams.get("token")!));
    return response;
  }

  private async authorized(request: Request, url: URL, server: Server<undefined>, path: string, method: string): Promise<Response> {
    if (path === "/" || path === "/index.html")
      return method === "GET" ? new Response(this.page, { headers: HTML_HEADERS }) : methodNotAllowed("GET");
    if (path.startsWith("/assets/")) {
      const asset = ASSETS.get(path.slice("/assets/".length));
      if (!asset) return httpError(404, "NOT_FOUND", `no asset ${path}`);
      return new Response(asset.body, {
        headers: { "content-type": asset.type, "cache-control": "no-cache", "x-content-type-options": "nosniff" },
      });
    }
    if (path === "/metrics") {
      if (method !== "GET") return methodNotAllowed("GET");
      return new Response(this.parts.metrics.scrape(), {
        headers: { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" },
      });
    }
    if (path.startsWith("/api/")) return this.api(request, url, server);
    return httpError(404, "NOT_FOUND", `no route ${path}`);
  }

  private async api(request: Request, url: URL, server: Server<undefined>): Promise<Response> {
    const { source } = this.parts;
    const method = request.method;
    const segments = url.pathname.slice("/api/".length).split("/");
    const [first, id, action, ...rest] = segments.map((segment) => safeDecode(segment));
    if (segments.some((s) => s === "") && segments.length > 1) return httpError(404, "NOT_FOUND", `no route ${url.pathname}`);
    if (first === undefined || first === null || rest.length > 0) return httpError(404, "NOT_FOUND", `no route ${url.pathname}`);
    if (segments.length === 1 && (INFO_TOPICS as readonly string[]).includes(first)) {
      return method === "GET" ? json(source.info(first)) : methodNotAllowed("GET");
    }
    if (first === "events" && segments.length === 1) {
      if (method !== "GET") return methodNotAllowed("GET");
      server.timeout(request, 0);
      return new Response(this.parts.live.subscribe(), {
        headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
      });
    }
    if (first === "history" && segments.length === 1) return method === "GET" ? json(this.parts.live.points()) : methodNotAllowed("GET");
    if (first === "tasks") {
      if (id === undefined) return method === "GET" ? searchTasks(source, url) : methodNotAllowed("GET");
      if (id === null) return httpError(400, "VALIDATION_ERROR", "id: bad percent-encoding");
      if (action === undefined) return method === "GET" ? getTask(source, id) : methodNotAllowed("GET");
      if (action === "revoke") return method === "POST" ? revokeTask(source, id, request) : methodNotAllowed("POST");
      if (action === "retry") return method === "POST" ? retryTask(source, id, request) : methodNotAllowed("POST");
    }
    if (first === "flows" && id !== undefined && action === undefined) {
      if (id === null) return httpError(400, "VALIDATION_ERROR", "id: bad percent-encoding");
      return method === "GET" ? getFlow(source, id) : methodNotAllowed("GET");
    }
    if (first === "schedules") {
      if (id === undefined) return method === "GET" ? listSchedules(source) : methodNotAllowed("GET");
      if (id === null) return httpError(400, "VALIDATION_ERROR", "name: bad percent-encoding");
      if (action === "pause" || action === "resume")
        return method === "POST" ? pauseOrResume(source, id, action, request) : methodNotAllowed("POST");
    }
    if (first === "dealers" && id !== undefined && action === "drain") {
      if (id === null) return httpError(400, "VALIDATION_ERROR", "id: bad percent-encoding");
      return method === "POST" ? drainDealer(source, id, request) : methodNotAllowed("POST");
    }
    return httpError(404, "NOT_FOUND", `no route ${url.pathname}`);
  }

  /** GET: the form. POST: checks the token, sets the cookie, sends the browser to the dashboard. */
  private async login(request: Request): Promise<Response> {
    if (request.method === "GET") return new Response(loginPage(undefined), { headers: HTML_HEADERS });
    if (request.method !== "POST") return methodNotAllowed("GET, POST");
    if (!this.auth.required) return new Response(null, { status: 303, headers: { location: "/" } });
    let token: string | undefined;
    try {
      const text = await request.text();
      if (text.length <= 4096) token = new URLSearchParams(text).get("token") ?? undefined;
    } catch {
      token = undefined;
    }
    if (token === undefined || !this.auth.matches(token)) {
      return new Response(loginPage("That token is not right."), { status: 401, headers: HTML_HEADERS });
    }
    return new Response(null, { status: 303, headers: { location: "/", "set-cookie": this.auth.cookie(token) } });
  }
}

function methodNotAllowed(allow: string): Response {
  return httpError(405, "METHOD_NOT_ALLOWED", `use ${allow}`, { allow });
}

/** A path segment decoded, or null when its percent-encoding is broken. */
function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
