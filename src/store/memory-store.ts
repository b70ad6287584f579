/**
 * MemoryTaskStore: the task store contract in process memory (`taskStore: "memory"`). Nothing
 * survives a restart. Lookups by state scan every task: meant for tests and small deployments;
 * the SQLite store is the one for large backlogs.
 */
import type {
  FlowLink,
  NewTask,
  QueuePosition,
  ScheduleFields,
  ScheduleRecord,
  StoredFlowLink,
  TaskFilter,
  TaskPage,
  TaskRecord,
  TaskStore,
  TransitionFields,
} from "./task-store.ts";
import { StateCounts } from "./state-counts.ts";
import { canTransition, type TaskState, TRANSITIONS, type TransitionName, isFinal } from "./task-states.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";

export class MemoryTaskStore implements TaskStore {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly byIdempotencyKey = new Map<string, string>();
  /** Flow links by flow id, in insertion order (parents first, steps in order). */
  private readonly links = new Map<string, Map<string, FlowLink>>();
  private readonly schedules = new Map<string, ScheduleRecord>();
  private nextSeq = 1;
  private readonly stateCounts = new StateCounts();

  async insert(task: NewTask): Promise<{ task: TaskRecord; created: boolean }> {
    if (task.idempotencyKey !== undefined) {
      const existing = this.tasks.get(this.byIdempotencyKey.get(task.idempotencyKey) ?? "");
      // A finished task past its result TTL frees its key even before the purge deletes it.
      if (existing && !(existing.purgeAt !== undefined && existing.purgeAt <= task.createdAt)) {
        return { task: { ...existing }, created: false };
      }
    }
    const record: TaskRecord = { ...task, seq: this.nextSeq++, attempts: 0, lostAttempts: 0 };
    this.tasks.set(record.id, record);
    this.stateCounts.added(record.state);
    if (record.idempotencyKey !== undefined) this.byIdempotencyKey.set(record.idempotencyKey, record.id);
    return { task: { ...record }, created: true };
  }

  async insertFlow(tasks: NewTask[], links: FlowLink[]): Promise<{ root: TaskRecord; created: boolean }> {
    const [first] = tasks;
    if (!first) throw new Error("insertFlow needs at least the root task");
    for (const task of tasks) if (this.tasks.has(task.id)) throw new Error(`task ${task.id} exists already`);
    const root = await this.insert(first);
    if (!root.created) return { root: root.task, created: false };
    for (const task of tasks.slice(1)) await this.insert(task);
    for (const link of links) {
      let byTask = this.links.get(link.flowId);
      if (!byTask) this.links.set(link.flowId, (byTask = new Map()));
      byTask.set(link.taskId, { ...link });
    }
    return { root: root.task, created: true };
  }

  flowLinks(flowId: string): StoredFlowLink[] {
    const links: StoredFlowLink[] = [];
    for (const link of this.links.get(flowId)?.values() ?? []) {
      const record = this.tasks.get(link.taskId);
      links.push(record === undefined ? { ...link } : { ...link, state: record.state, method: record.method });
    }
    return links;
  }

  openFlows(): string[] {
    const open = new Set<string>();
    for (const record of this.tasks.values()) if (record.flowId !== undefined && !isFinal(record.state)) open.add(record.flowId);
    return [...open];
  }

  get(id: string): TaskRecord | undefined {
    const record = this.tasks.get(id);
    return record && { ...record };
  }

  list(filter: TaskFilter): TaskPage {
    const before = filter.cursor === undefined ? Number.POSITIVE_INFINITY : decodeCursor(filter.cursor);
    const matches: TaskRecord[] = [];
    for (const record of this.tasks.values()) {
      if (record.seq >= before) continue;
      if (filter.state !== undefined && record.state !== filter.state) continue;
      if (filter.method !== undefined && record.method !== filter.method) continue;
      if (filter.createdFrom !== undefined && record.createdAt < filter.createdFrom) continue;
      if (filter.createdTo !== undefined && record.createdAt >= filter.createdTo) continue;
      matches.push(record);
    }
    matches.sort((a, b) => b.seq - a.seq);
    const page = matches.slice(0, filter.limit).map((record) => ({ ...record }));
    return matches.length > filter.limit ? { tasks: page, cursor: encodeCursor(page[page.length - 1].seq) } : { tasks: page };
  }

  queued(method: string, limit: number, after?: QueuePosition): TaskRecord[] {
    const queued: TaskRecord[] = [];
    for (const record of this.tasks.values()) {
      if (record.state !== "queued" || record.method !== method) continue;
      if (after && !(record.priority < after.priority || (record.priority === after.priority && record.seq > after.seq))) continue;
      queued.push(record);
    }
    queued.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    return queued.slice(0, limit).map((record) => ({ ...record }));
  }

  queuedMethods(): string[] {
    const methods = new Set<string>();
    for (const record of this.tasks.values()) if (record.state === "queued") methods.add(record.method);
    return [...methods].sort();
  }

  due(now: number, limit: number): TaskRecord[] {
    const due = this.select((r) => (r.state === "scheduled" || r.state === "retrying") && r.runAt <= now);
    return due.sort((a, b) => a.runAt - b.runAt || a.seq - b.seq).slice(0, limit);
  }

  nextDueAt(): number | undefined {
    return this.earliest((r) => (r.state === "scheduled" || r.state === "retrying" ? r.runAt : undefined));
  }

  expiring(now: number, limit: number): TaskRecord[] {
    const expiring = this.select((r) => notStarted(r.state) && r.expiresAt !== undefined && r.expiresAt <= now);
    return expiring.sort((a, b) => a.expiresAt! - b.expiresAt! || a.seq - b.seq).slice(0, limit);
  }

  nextExpiryAt(): number | undefined {
    return this.earliest((r) => (notStarted(r.state) ? r.expiresAt : undefined));
  }

  running(): TaskRecord[] {
    return this.select((r) => r.state === "running").sort((a, b) => a.seq - b.seq);
  }

  async transition(id: string, name: TransitionName, fields: TransitionFields = {}): Promise<boolean> {
    const record = this.tasks.get(id);
    if (!record || !canTransition(name, record.state)) return false;
    this.stateCounts.moved(record.state, TRANSITIONS[name].to);
    record.state = TRANSITIONS[name].to;
    if (fields.startedAt !== undefined) record.startedAt = fields.startedAt;
    if (fields.finishedAt !== undefined) record.finishedAt = fields.finishedAt;
    if (fields.purgeAt !== undefined) record.purgeAt = fields.purgeAt;
    if (fields.runAt !== undefined) record.runAt = fields.runAt;
    if (fields.result !== undefined) record.result = fields.result;
    if (fields.error !== undefined) record.error = fields.error;
    if (fields.countAttempt) record.attempts++;
    if (fields.countLost) record.lostAttempts++;
    if (fields.args !== undefined) record.args = fields.args;
    if (fields.expiresAt !== undefined) record.expiresAt = fields.expiresAt;
    return true;
  }

  async setProgress(id: string, progress: unknown): Promise<boolean> {
    const record = this.tasks.get(id);
    if (record?.state !== "running") return false;
    record.progress = progress;
    return true;
  }

  async purge(now: number, limit: number): Promise<number> {
    let purged = 0;
    for (const record of this.tasks.values()) {
      if (purged >= limit) break;
      if (!isFinal(record.state) || record.purgeAt === undefined || record.purgeAt > now) continue;
      if (record.flowId !== undefined && record.flowId !== record.id) {
        const root = this.tasks.get(record.flowId);
        if (root && !isFinal(root.state)) continue;
      }
      this.tasks.delete(record.id);
      this.stateCounts.removed(record.state);
      if (record.idempotencyKey !== undefined) this.byIdempotencyKey.delete(record.idempotencyKey);
      if (record.flowId !== undefined) this.forgetLink(record.flowId, record.id);
      purged++;
    }
    return purged;
  }

  counts(): Record<TaskState, number> {
    return this.stateCounts.snapshot();
  }

  async putSchedule(schedule: ScheduleRecord): Promise<void> {
    this.schedules.set(schedule.name, copySchedule(schedule));
  }

  getSchedule(name: string): ScheduleRecord | undefined {
    const schedule = this.schedules.get(name);
    return schedule && copySchedule(schedule);
  }

  listSchedules(): ScheduleRecord[] {
    return [...this.schedules.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(copySchedule);
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.schedules.delete(name);
  }

  async updateSchedule(name: string, fields: ScheduleFields): Promise<boolean> {
    const schedule = this.schedules.get(name);
    if (!schedule) return false;
    if (fields.paused !== undefined) schedule.paused = fields.paused;
    if (fields.since !== undefined) schedule.since = fields.since;
    if (fields.lastDueAt !== undefined) schedule.lastDueAt = fields.lastDueAt;
    return true;
  }

  async close(): Promise<void> {}

  private forgetLink(flowId: string, taskId: string): void {
    const byTask = this.links.get(flowId);
    if (byTask?.delete(taskId) && byTask.size === 0) this.links.delete(flowId);
  }

  private select(keep: (record: TaskRecord) => boolean): TaskRecord[] {
    const selected: TaskRecord[] = [];
    for (const record of this.tasks.values()) if (keep(record)) selected.push({ ...record });
    return selected;
  }

  private earliest(timeOf: (record: TaskRecord) => number | undefined): number | undefined {
    let earliest: number | undefined;
    for (const record of this.tasks.values()) {
      const at = timeOf(record);
      if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
    }
    return earliest;
  }
}

function copySchedule(schedule: ScheduleRecord): ScheduleRecord {
  return { ...schedule, options: structuredClone(schedule.options) };
}

function notStarted(state: TaskState): boolean {
  return state === "scheduled" || state === "queued" || state === "retrying";
}
