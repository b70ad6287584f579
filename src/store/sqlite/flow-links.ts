/**
 * The flow-links SQL for SqliteTaskStore: the `flow_links` table (a workflow's shape: each task's
 * parent, position, role and join) and its row mapping. Inserts run in the store's batch
 * transaction, inside the savepoint `insertFlow` holds around the whole flow.
 */
import type { FlowLink, StoredFlowLink } from "../task-store.ts";
import type { TaskState } from "../task-states.ts";
import type { SqlContext } from "./sql.ts";

interface FlowLinkRow {
  task_id: string;
  flow_id: string;
  parent_id: string | null;
  position: number;
  role: FlowLink["role"];
  kind: FlowLink["kind"];
  join_mode: FlowLink["join"] | null;
  immutable: number;
  release: string | null;
  state: TaskState | null;
  method: string | null;
}

export class FlowLinkTable {
  constructor(private readonly sql: SqlContext) {}

  insert(link: FlowLink): void {
    this.sql.write(
      `INSERT INTO flow_links (task_id, flow_id, parent_id, position, role, kind, join_mode, immutable, release)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      link.taskId,
      link.flowId,
      link.parentId ?? null,
      link.position,
      link.role,
      link.kind,
      link.join ?? null,
      link.immutable ? 1 : 0,
      link.release === undefined ? null : JSON.stringify(link.release),
    );
  }

  /** The links of flow `flowId` in insertion order, each with its task's current state and method. */
  list(flowId: string): StoredFlowLink[] {
    const rows = this.sql
      .statement(
        `SELECT l.*, t.state AS state, t.method AS method FROM flow_links l LEFT JOIN tasks t ON t.id = l.task_id WHERE l.flow_id = ?
       ORDER BY l.rowid`,
      )
      .all(flowId) as FlowLinkRow[];
    return rows.map(linkFromRow);
  }
}

function linkFromRow(row: FlowLinkRow): StoredFlowLink {
  const link: StoredFlowLink = {
    taskId: row.task_id,
    flowId: row.flow_id,
    position: row.position,
    role: row.role,
    kind: row.kind,
  };
  if (row.parent_id !== null) link.parentId = row.parent_id;
  if (row.join_mode !== null) link.join = row.join_mode;
  if (row.immutable === 1) link.immutable = true;
  if (row.release !== null) link.release = JSON.parse(row.release) as FlowLink["release"];
  if (row.state !== null) link.state = row.state;
  if (row.method !== null) link.method = row.method;
  return link;
}
