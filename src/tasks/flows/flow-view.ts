/**
 * A flow as `getFlow` answers it: the tree from the stored links, each node with its task id
 * and state (and a task node's method), shaped as it was built: a chain's `steps`, a group's
 * `members`, a chord's `group` and `callback`, and any node's `onSuccess` / `onFailure`. Pure.
 */
import type { FlowInfo } from "../../protocol/index.ts";
import type { StoredFlowLink } from "../../store/task-store.ts";

/** The subtree rooted at `taskId` (the whole flow when it is the root). */
export function describeFlow(links: readonly StoredFlowLink[], taskId: string): FlowInfo {
  const children = new Map<string, StoredFlowLink[]>();
  let start: StoredFlowLink | undefined;
  for (const link of links) {
    if (link.taskId === taskId) start = link;
    if (link.parentId === undefined) continue;
    let list = children.get(link.parentId);
    if (!list) children.set(link.parentId, (list = []));
    list.push(link);
  }
  if (!start) return { id: taskId, kind: "task" };
  const build = (link: StoredFlowLink): FlowInfo => {
    const info: FlowInfo = { id: link.taskId, kind: link.kind };
    if (link.state !== undefined) info.state = link.state;
    if (link.kind === "task" && link.method !== undefined) info.method = link.method;
    if (link.kind === "group") info.join = link.join ?? "all";
    const below = children.get(link.taskId) ?? [];
    const steps = below.filter((child) => child.role === "step").sort((a, b) => a.position - b.position);
    if (link.kind === "chain") info.steps = steps.map(build);
    else if (link.kind === "group") info.members = steps.map(build);
    else if (link.kind === "chord") {
      const [group, callback] = steps;
      if (group) info.group = build(group);
      if (callback) info.callback = build(callback);
    }
    for (const child of below) if (child.role !== "step") info[child.role] = build(child);
    return info;
  };
  return build(start);
}
