/**
 * The public ServiceRouter: the router (src/router/) with the task layer attached. It opens the
 * task store before it binds (a store that cannot be used stops the start with one clear error),
 * serves clients' SUBMIT and TASK requests, and runs each task's attempts as calls it owns.
 */
import * as v from "valibot";
import { ValidationError } from "../protocol/index.ts";
import { type ServiceRouterOptions as CoreOptions, ServiceRouter as CoreRouter } from "../router/service-router.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { ClientTasks } from "./client-tasks.ts";
import { FlowEngine } from "./flows/flow-engine.ts";
import { openTaskStore, type TaskStoreOption } from "./open-store.ts";
import { RouterTaskHost } from "./router-host.ts";
import { Scheduler } from "./schedules/scheduler.ts";
import { TaskManager } from "./task-manager.ts";

export interface ServiceRouterOptions extends CoreOptions {
  /**
   * Where background tasks are kept: a SQLite file path (durable; created if missing), "memory"
   * (lost at a restart), or a TaskStore. Default "memory" for the library (env VOIDRAIL_STORE);
   * `voidrail router` and `serve` default to ./voidrail-tasks.db.
   */
  taskStore?: TaskStoreOption;
  /** Queued tasks held in memory per method; the rest wait in the store. Default 1000. */
  taskWindow?: number;
  /** Seconds between sweeps that delete finished tasks past their result TTL. Default 60. */
  taskPurgeInterval?: number;
}

const TaskOptionsSchema = v.object({
  taskStore: v.optional(
    v.union([
      v.pipe(v.string(), v.minLength(1)),
      v.custom<object>((value) => typeof value === "object" && value !== null && "insert" in value, "a TaskStore"),
    ]),
  ),
  taskWindow: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000))),
  taskPurgeInterval: v.optional(v.pipe(v.number(), v.gtValue(0), v.maxValue(86_400))),
});

/**
 * The central router, with durable background tasks.
 *
 * @example
 * const router = new ServiceRouter({ address: "tcp://127.0.0.1:5555", taskStore: "./voidrail-tasks.db" });
 * await router.start();
 */
export class ServiceRouter extends CoreRouter {
  /** The task layer, once started. */
  tasks: TaskManager | undefined;
  /** The workflow engine (chain, group, chord, callbacks), once started. */
  flows: FlowEngine | undefined;
  /** The schedules, once started. */
  schedules: Scheduler | undefined;
  private readonly storeOption: TaskStoreOption;
  private readonly taskWindow: number | undefined;
  private readonly purgeIntervalMs: number | undefined;
  private readonly taskLog: Logger;

  constructor(options: ServiceRouterOptions = {}) {
    super(options);
    const parsed = v.safeParse(TaskOptionsSchema, {
      taskStore: options.taskStore,
      taskWindow: options.taskWindow,
      taskPurgeInterval: options.taskPurgeInterval,
    });
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const path = issue.path?.map((p) => String(p.key)).join(".") ?? "options";
      throw new ValidationError(`ServiceRouter: ${path}: ${issue.message}`, { data: { path } });
    }
    this.storeOption = options.taskStore ?? (process.env.VOIDRAIL_STORE || "memory");
    this.taskWindow = options.taskWindow;
    this.taskLog = options.logger ?? createLogger("tasks");
    this.purgeIntervalMs = options.taskPurgeInterval === undefined ? undefined : options.taskPurgeInterval * 1000;
  }

  /** Opens the task store (refusing one it cannot use), then binds and takes over the stored tasks. */
  override async start(): Promise<void> {
    if (this.tasks) return;
    const log = this.taskLog;
    const { store, description } = await openTaskStore(this.storeOption);
    const host = new RouterTaskHost(this);
    const tasks = new TaskManager({
      store,
      host,
      logger: log,
      ...(this.taskWindow !== undefined ? { windowSize: this.taskWindow } : {}),
      ...(this.purgeIntervalMs !== undefined ? { purgeIntervalMs: this.purgeIntervalMs } : {}),
    });
    const flows = new FlowEngine({ store, host, tasks, logger: log });
    tasks.onFinished(flows.finished);
    const clientTasks = new ClientTasks(tasks, flows, log);
    this.attachExtension(clientTasks);
    try {
      await super.start();
    } catch (error) {
      await store.close();
      throw error;
    }
    this.tasks = tasks;
    this.flows = flows;
    const open = flows.load();
    const held = await tasks.start();
    await flows.carryOn();
    log.info(`task store: ${description}; ${held}${open > 0 ? `; ${open} flow(s) carried on` : ""}`);
    const scheduler = new Scheduler({
      store,
      fire: (firing) => tasks.submit(firing.method, firing.args, firing.options, true, undefined, firing.origin),
      checkOptions: (method, options) => tasks.checkOptions(method, options),
      logger: log,
    });
    this.schedules = scheduler;
    clientTasks.scheduler = scheduler;
    await scheduler.start();
    const schedules = scheduler.list();
    if (schedules.length > 0) {
      const paused = schedules.filter((schedule) => schedule.paused).length;
      log.info(`schedules: ${schedules.length}${paused > 0 ? ` (${paused} paused)` : ""}`);
    }
  }

  /** Stops the router (attempts still running are retried after a restart), then closes the store. */
  override async stop(): Promise<void> {
    this.schedules?.stop();
    await this.schedules?.idle();
    this.schedules = undefined;
    await super.stop();
    const tasks = this.tasks;
    this.tasks = undefined;
    this.flows?.stop();
    this.flows = undefined;
    await tasks?.stop();
  }
}
