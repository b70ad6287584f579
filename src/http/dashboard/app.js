// The VoidRail dashboard: one page over the router's /api. Live numbers arrive once a second on
// /api/events (Server-Sent Events); tasks are read from /api/tasks, so history survives restarts.
// preact + htm: components without a build step; uPlot: the charts.
import htm from "htm";
import { h, render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import uPlot from "uplot";

const html = htm.bind(h);
/** Points the charts and sparklines show: the last five minutes. */
const RECENT_POINTS = 300;
/** The Queue chart's colours, which the sparklines reuse so its legend explains them too. */
const WAITING_COLOR = "#6a1b9a";
const OLDEST_COLOR = "#00838f";
const TASK_STATES = ["blocked", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "revoked", "expired"];

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: options.body ? { "content-type": "application/json" } : {},
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body?.error?.message ?? `${response.status} ${response.statusText}`);
  return body;
}

/** 12345 → "12.3k": axis labels that fit. */
function compact(n) {
  if (n == null) return "";
  const a = Math.abs(n);
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(2)}`;
}

/** When, relative to now: "in 5 min" or "3 s ago". */
function when(iso) {
  if (!iso) return "";
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  if (seconds < 0) return ago(iso);
  if (seconds < 60) return `in ${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `in ${(seconds / 60).toFixed(0)} min`;
  return `in ${(seconds / 3600).toFixed(1)} h`;
}

/** A dealer that does not report its host (HELLO `host`, older dealers): the host of its default instanceId ("host:pid"). */
function hostOf(instanceId) {
  const match = /^(.+):(\d+)$/.exec(instanceId ?? "");
  return match ? match[1] : "";
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(0)} s ago`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(0)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function useLive() {
  const [snapshot, setSnapshot] = useState(null);
  const [points, setPoints] = useState([]);
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => setConnected(true));
    source.addEventListener("error", () => setConnected(false));
    source.addEventListener("history", (event) => setPoints(JSON.parse(event.data)));
    source.addEventListener("snapshot", (event) => {
      const next = JSON.parse(event.data);
      setSnapshot(next);
      setPoints((old) => (old.length && old[old.length - 1].t >= next.point.t ? old : [...old.slice(-599), next.point]));
    });
    return () => source.close();
  }, []);
  return { snapshot, points, connected };
}

function Chart({ title, points, series }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(240, box.current.clientWidth);
    plot.current = new uPlot(
      {
        width,
        height: 160,
        legend: { show: true },
        scales: { x: { time: true } },
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true, points: { show: false } }))],
        axes: [{}, { size: 64, values: (_, ticks) => ticks.map(compact) }],
      },
      [[], ...series.map(() => [])],
      box.current,
    );
    const resize = () => plot.current?.setSize({ width: Math.max(240, box.current.clientWidth), height: 160 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.current?.destroy();
    };
  }, []);
  useEffect(() => {
    const recent = points.slice(-RECENT_POINTS);
    plot.current?.setData([recent.map((p) => p.t / 1000), ...series.map((s) => recent.map(s.value))]);
  }, [points]);
  return html`<section class="card chart"><h2>${title}</h2><div ref=${box} class="plot"></div></section>`;
}

function Summary({ snapshot, connected }) {
  const r = snapshot?.router;
  const tasks = snapshot?.tasks;
  const item = (label, value, id) => html`<div class="stat" data-stat=${id}><span>${label}</span><strong>${value ?? "–"}</strong></div>`;
  return html`<section class="summary">
    ${item("Dealers", r?.activeDealers, "dealers")} ${item("Busy", r?.busyDealers, "busy")} ${item("Queued calls", r?.queuedRequests, "queued")}
    ${item("In flight", r?.inProgressRequests, "inflight")} ${item("Calls", r?.totalResponses, "calls")}
    ${item("Tasks running", tasks?.running, "tasks-running")} ${item("Tasks queued", tasks?.queued, "tasks-queued")}
    ${item("Tasks failed", tasks?.failed, "tasks-failed")}
    <div class=${`stat live ${connected ? "on" : "off"}`} data-stat="live"><span>Live</span><strong>${connected ? "connected" : "reconnecting"}</strong></div>
  </section>`;
}

function Dealers({ clusters, onDrain }) {
  if (!clusters) return null;
  return html`<section class="card">
    <h2>Dealers <small>${clusters.length}</small></h2>
    ${clusters.length === 0 ? html`<p class="empty">No dealer is registered.</p>` : null}
    <div class="table-wrap"><table id="dealers">
      <thead><tr><th>Dealer</th><th>Service</th><th>Instance</th><th>Host</th><th>GPU</th><th>Tags</th><th>State</th><th>Load</th><th>Done / failed</th><th>Last heartbeat</th><th></th></tr></thead>
      <tbody>${clusters.map(
        (d) => html`<tr data-dealer=${d.id} data-state=${d.state}>
          <td class="mono">${d.id}</td><td>${d.service}</td><td class="mono">${d.instanceId ?? ""}</td>
          <td class="mono" data-col="host">${d.host ?? hostOf(d.instanceId)}</td>
          <td class="mono" data-col="gpus">${(d.gpus ?? []).join(", ")}</td>
          <td data-col="tags">${Object.entries(d.tags ?? {}).map(([k, v]) => html`<span class="tag">${k}=${v}</span> `)}</td>
          <td><span class=${`badge ${d.state}`} title=${d.state === "setup" ? "running its setup(): gets no work yet" : ""}>${d.state}</span></td>
          <td><meter min="0" max=${d.maxConcurrent} value=${d.load}></meter> ${d.load}/${d.maxConcurrent}</td>
          <td>${d.counts.succeeded} / ${d.counts.failed}</td><td>${ago(d.lastHeartbeat)}</td>
          <td>${d.state === "active" ? html`<button class="small" onClick=${() => onDrain(d.id)}>Drain</button>` : ""}</td>
        </tr>`,
      )}</tbody>
    </table></div>
  </section>`;
}

/**
 * Each method's queue over the recent points: depth and oldest age per point, for the methods the
 * points list (the busiest few of each second). A method missing from a point had nothing waiting,
 * unless that point left some methods out: then its value is unknown (null, a gap in the line).
 */
function queueHistories(points) {
  const recent = points.slice(-RECENT_POINTS);
  const byMethod = new Map();
  recent.forEach((point, i) => {
    for (const q of point.queues ?? []) {
      let history = byMethod.get(q.method);
      if (!history) {
        history = { depth: [], age: [] };
        byMethod.set(q.method, history);
      }
      history.depth[i] = q.depth;
      history.age[i] = q.oldestAgeSeconds;
    }
  });
  for (const history of byMethod.values()) {
    recent.forEach((point, i) => {
      if (history.depth[i] !== undefined) return;
      const known = !point.queuesLeftOut;
      history.depth[i] = known ? 0 : null;
      history.age[i] = known ? 0 : null;
    });
  }
  return byMethod;
}

/** A sparkline spans at least this many points (a minute): a young router's line grows from the right. */
const SPARK_MIN_POINTS = 60;

/** An SVG path through `values` scaled to `peak`, right-aligned, broken where a value is null. */
function sparkPath(values, peak, width, height) {
  const slots = Math.max(values.length, SPARK_MIN_POINTS);
  const step = width / (slots - 1);
  const offset = slots - values.length;
  let d = "";
  let pen = "M";
  values.forEach((value, i) => {
    if (value == null) {
      pen = "M";
      return;
    }
    const y = height - 1 - (value / peak) * (height - 2);
    d += `${pen}${((offset + i) * step).toFixed(1)} ${y.toFixed(1)}`;
    pen = "L";
  });
  return d;
}

/**
 * A method's waiting calls (solid) and oldest age (dashed) over the last minutes, each on its own
 * scale; the peak is written beside it, since a phone has no hover for the title.
 */
function Sparkline({ method, history }) {
  const width = 120;
  const height = 26;
  const peakDepth = Math.max(0, ...history.depth.filter((v) => v != null));
  const peakAge = Math.max(0, ...history.age.filter((v) => v != null));
  const depthLine = sparkPath(history.depth, Math.max(1, peakDepth), width, height);
  const ageLine = sparkPath(history.age, Math.max(1e-3, peakAge), width, height);
  // A point a second: the span in seconds, or minutes once that reads better.
  const span = history.depth.length < 120 ? `${history.depth.length} s` : `${Math.round(history.depth.length / 60)} min`;
  const summary = `${method}: up to ${peakDepth} waiting, oldest ${peakAge.toFixed(1)} s, over the last ${span}`;
  return html`<svg class="spark" viewBox=${`0 0 ${width} ${height}`} width=${width} height=${height}
    preserveAspectRatio="none" role="img" aria-label=${summary} data-method=${method} data-peak-depth=${peakDepth} data-points=${history.depth.length}>
    <title>${summary}</title>
    <path d=${depthLine} fill="none" stroke=${WAITING_COLOR} stroke-width="1.5" vector-effect="non-scaling-stroke" />
    <path d=${ageLine} fill="none" stroke=${OLDEST_COLOR} stroke-width="1" stroke-dasharray="3 2" vector-effect="non-scaling-stroke" />
  </svg><span class="spark-peak" aria-hidden="true">max ${peakDepth}</span>`;
}

/**
 * The methods, their queues now and over time. Per-method history is a sparkline in each row, not
 * one line per method in the Queue chart: the line sits beside its method's name (eight similar
 * lines in a chart a third of a laptop wide, or a phone wide, need a legend to match by colour
 * and are hard to tell apart), methods come and go without rebuilding the chart, and on a phone
 * it stays in view next to the name and depth (its column comes right after them, narrower there)
 * while the rest of the row scrolls. The Queue chart keeps the totals.
 */
function Queues({ queues, ages, points }) {
  const histories = useMemo(() => queueHistories(points), [points]);
  if (!queues) return null;
  const methods = Object.keys(queues);
  return html`<section class="card">
    <h2>Methods and queues</h2>
    ${methods.length === 0 ? html`<p class="empty">No method is offered.</p>` : null}
    <div class="table-wrap"><table id="queues">
      <thead><tr><th>Method</th><th>Waiting</th><th title="the last 5 min: waiting (solid) and oldest age (dashed), each on its own scale">Over time</th><th>Oldest</th><th>Free dealers</th><th>Busy dealers</th></tr></thead>
      <tbody>${methods.map(
        (m) => html`<tr data-method=${m}><td class="mono">${m}</td><td>${queues[m].queueLength}</td>
          <td><div class="spark-cell">${histories.has(m) ? html`<${Sparkline} method=${m} history=${histories.get(m)} />` : ""}</div></td>
          <td>${ages?.[m] ? `${ages[m].toFixed(1)} s` : ""}</td>
          <td>${queues[m].availableServices}</td><td>${queues[m].busyServices}</td></tr>`,
      )}</tbody>
    </table></div>
  </section>`;
}

const FLOW_KINDS = ["chain", "group", "chord"];

/** One node of a flow and what hangs below it, as GET /api/flows/:id describes it. */
function FlowNode({ node, role, current, onSelect }) {
  const children = [
    ...(node.steps ?? []).map((child, i) => [`step ${i + 1}`, child]),
    ...(node.members ?? []).map((child, i) => [`member ${i + 1}`, child]),
    ...(node.group ? [["group", node.group]] : []),
    ...(node.callback ? [["callback", node.callback]] : []),
    ...(node.onSuccess ? [["on success", node.onSuccess]] : []),
    ...(node.onFailure ? [["on failure", node.onFailure]] : []),
  ];
  const state = node.state ?? "purged";
  return html`<li data-flow-node=${node.id} data-kind=${node.kind} data-state=${state}>
    ${role ? html`<span class="role">${role}</span> ` : null}
    <button type="button" class=${`link ${node.id === current ? "current" : ""}`} onClick=${() => onSelect(node.id)}>
      ${node.kind === "task" ? html`<span class="mono">${node.method ?? "task"}</span>` : html`<b>${node.kind}</b>${node.join && node.join !== "all" ? ` (${node.join})` : ""}`}
    </button>
    <span class=${`badge ${state}`}>${state}</span>
    ${children.length ? html`<ul>${children.map(([r, child]) => html`<${FlowNode} node=${child} role=${r} current=${current} onSelect=${onSelect} />`)}</ul>` : null}
  </li>`;
}

/** The tree of the flow a task belongs to (from its root), refreshed as task counts change. */
function FlowTree({ task, counts, onSelect }) {
  const root = task.flowId ?? (FLOW_KINDS.includes(task.method) ? task.id : undefined);
  const [flow, setFlow] = useState(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!root) return;
    api(`/api/flows/${root}`)
      .then((tree) => {
        setFlow(tree);
        setError("");
      })
      .catch((e) => setError(e.message));
  }, [root, task.state, JSON.stringify(counts)]);
  if (!root) return null;
  return html`<dt>Flow</dt><dd id="flow-tree">${error ? html`<span class="error">${error}</span>` : null}
    ${flow ? html`<ul class="flow"><${FlowNode} node=${flow} current=${task.id} onSelect=${onSelect} /></ul>` : null}</dd>`;
}

function Schedules({ schedules, notify }) {
  if (!schedules) return null;
  const act = async (name, action) => {
    try {
      await api(`/api/schedules/${encodeURIComponent(name)}/${action}`, { method: "POST", body: "{}" });
      notify(`Schedule ${name} ${action === "pause" ? "paused" : "resumed"}`);
    } catch (e) {
      notify(e.message, true);
    }
  };
  return html`<section class="card">
    <h2>Schedules <small>${schedules.length}</small></h2>
    ${schedules.length === 0 ? html`<p class="empty">No schedule is set (client.schedules.set, voidrail task schedule).</p>` : null}
    ${
      schedules.length
        ? html`<div class="table-wrap"><table id="schedules">
      <thead><tr><th>Name</th><th>When</th><th>Time zone</th><th>Method</th><th>State</th><th>Last due</th><th>Next due</th><th></th></tr></thead>
      <tbody>${schedules.map(
        (s) => html`<tr data-schedule=${s.name} data-paused=${String(s.paused)}>
          <td class="mono">${s.name}</td><td class="mono">${s.cron ?? (s.every !== undefined ? `every ${s.every} s` : "")}</td>
          <td>${s.timezone ?? (s.cron ? "UTC" : "")}</td><td class="mono">${s.method}</td>
          <td><span class=${`badge ${s.paused ? "paused" : "active"}`}>${s.paused ? "paused" : "active"}</span></td>
          <td title=${s.lastDueAt ?? ""}>${ago(s.lastDueAt)}</td><td title=${s.nextDueAt ?? ""}>${s.paused ? "" : when(s.nextDueAt)}</td>
          <td><button class="small" onClick=${() => act(s.name, s.paused ? "resume" : "pause")}>${s.paused ? "Resume" : "Pause"}</button></td>
        </tr>`,
      )}</tbody>
    </table></div>`
        : null
    }
  </section>`;
}

function TaskDetail({ task, counts, onRevoke, onRetry, onSelect }) {
  const timeline = [
    ["created", task.createdAt],
    ["due", task.runAt],
    ["started", task.startedAt],
    ["finished", task.finishedAt],
    ["purged at", task.purgeAt],
  ].filter(([, at]) => at);
  const final = ["succeeded", "failed", "revoked", "expired"].includes(task.state);
  return html`<div class="detail" id="task-detail" data-task=${task.id}>
    <h3><span class="mono">${task.id}</span> <span class=${`badge ${task.state}`} id="task-state">${task.state}</span></h3>
    <dl>
      <dt>Method</dt><dd class="mono">${task.method}</dd>
      <dt>Attempts</dt><dd>${task.attempts}${task.lostAttempts ? ` (${task.lostAttempts} cut off by a lost dealer)` : ""}</dd>
      <dt>Priority</dt><dd>${task.priority}</dd>
      ${task.args !== undefined ? html`<dt>Arguments</dt><dd><pre class="mono">${JSON.stringify(task.args)}</pre></dd>` : null}
      <${FlowTree} task=${task} counts=${counts} onSelect=${onSelect} />
      ${task.schedule ? html`<dt>Schedule</dt><dd><span class="mono">${task.schedule.name}</span>, due ${new Date(task.schedule.dueAt).toLocaleString()}</dd>` : null}
      ${task.traceparent ? html`<dt>Trace</dt><dd class="mono">${task.traceparent}</dd>` : null}
      ${task.progress !== undefined ? html`<dt>Progress</dt><dd class="mono">${JSON.stringify(task.progress)}</dd>` : null}
      ${task.result !== undefined ? html`<dt>Result</dt><dd><pre>${JSON.stringify(task.result, null, 2)}</pre></dd>` : null}
      ${task.error ? html`<dt>Error</dt><dd class="error"><span class="mono">${task.error.code}</span>: ${task.error.message}</dd>` : null}
      <dt>Timeline</dt><dd><ol class="timeline">${timeline.map(([what, at]) => html`<li><b>${what}</b> ${new Date(at).toLocaleString()}</li>`)}</ol></dd>
    </dl>
    <div class="actions">
      ${final ? null : html`<button id="revoke" class="danger" onClick=${() => onRevoke(task.id)}>Revoke</button>`}
      ${final && task.state !== "succeeded" && !FLOW_KINDS.includes(task.method) ? html`<button id="retry" onClick=${() => onRetry(task.id)}>Retry as a new task</button>` : null}
    </div>
  </div>`;
}

function Tasks({ counts, notify }) {
  const [filter, setFilter] = useState({ state: "", method: "", id: "" });
  const [tasks, setTasks] = useState(null);
  const [selected, setSelected] = useState(null);
  const [error, setError] = useState("");
  const load = async () => {
    const query = new URLSearchParams({ limit: "50" });
    if (filter.id.trim()) query.set("id", filter.id.trim());
    if (filter.state) query.set("state", filter.state);
    if (filter.method.trim()) query.set("method", filter.method.trim());
    try {
      const page = await api(`/api/tasks?${query}`);
      setTasks(page.tasks);
      setError("");
      if (selected) {
        const fresh = await api(`/api/tasks/${selected.id}`).catch(() => null);
        if (fresh) setSelected(fresh);
      }
    } catch (e) {
      setError(e.message);
    }
  };
  useEffect(() => {
    load();
  }, [filter, JSON.stringify(counts)]);
  // The list has no arguments: the task's own page (GET /api/tasks/:id) has them.
  const select = async (task) => {
    setSelected(task);
    const full = await api(`/api/tasks/${task.id}`).catch(() => null);
    if (full) setSelected(full);
  };
  // A node picked in a flow's tree: only its id is known until its record arrives.
  const selectId = async (id) => {
    const full = await api(`/api/tasks/${id}`).catch((e) => notify(e.message, true));
    if (full) setSelected(full);
  };
  const act = async (path, message) => {
    try {
      const task = await api(path, { method: "POST", body: "{}" });
      notify(message(task));
      setSelected(task);
      load();
    } catch (e) {
      notify(e.message, true);
    }
  };
  return html`<section class="card tasks">
    <h2>Tasks</h2>
    <form class="filters" onSubmit=${(e) => {
      e.preventDefault();
      const data = new FormData(e.currentTarget);
      setFilter({ id: data.get("id"), state: data.get("state"), method: data.get("method") });
    }}>
      <input name="id" id="task-search" placeholder="Task id" aria-label="Task id" />
      <select name="state" aria-label="State"><option value="">Any state</option>${TASK_STATES.map((s) => html`<option value=${s}>${s}</option>`)}</select>
      <input name="method" placeholder="Service.method" aria-label="Method" />
      <button type="submit" id="task-find">Find</button>
    </form>
    ${error ? html`<p class="error">${error}</p>` : null}
    ${
      selected
        ? html`<${TaskDetail} task=${selected} counts=${counts} onSelect=${selectId}
      onRevoke=${(id) => act(`/api/tasks/${id}/revoke`, () => `Task ${id} revoked`)}
      onRetry=${(id) => act(`/api/tasks/${id}/retry`, (t) => `Retried as ${t.id}`)} />`
        : null
    }
    <div class="table-wrap"><table id="tasks">
      <thead><tr><th>Id</th><th>Method</th><th>State</th><th>Attempts</th><th>Created</th></tr></thead>
      <tbody>${(tasks ?? []).map(
        (t) => html`<tr data-task=${t.id} class=${selected?.id === t.id ? "selected" : ""} onClick=${() => select(t)}>
          <td class="mono">${t.id.slice(0, 8)}…${t.id.slice(-4)}</td><td class="mono">${t.method}</td>
          <td><span class=${`badge ${t.state}`}>${t.state}</span></td><td>${t.attempts}</td><td>${ago(t.createdAt)}</td></tr>`,
      )}</tbody>
    </table></div>
    ${tasks && tasks.length === 0 ? html`<p class="empty">No task matches.</p>` : null}
  </section>`;
}

function App() {
  const { snapshot, points, connected } = useLive();
  const [toast, setToast] = useState(null);
  const notify = (text, bad = false) => {
    setToast({ text, bad });
    setTimeout(() => setToast(null), 4000);
  };
  const drain = async (id) => {
    try {
      await api(`/api/dealers/${encodeURIComponent(id)}/drain`, { method: "POST", body: "{}" });
      notify(`Dealer ${id} is draining`);
    } catch (e) {
      notify(e.message, true);
    }
  };
  return html`<header><h1>VoidRail</h1><span class="meta">${snapshot?.router?.address ?? ""} · ${snapshot?.router?.mode ?? ""} · v${document.body.dataset.version}</span></header>
    <main>
      <${Summary} snapshot=${snapshot} connected=${connected} />
      <div class="charts">
        <${Chart} title="Calls per second" points=${points} series=${[
          { label: "calls/s", color: "#3056d3", value: (p) => p.calls },
          { label: "errors/s", color: "#c62828", value: (p) => p.errors },
        ]} />
        <${Chart} title="Latency (ms)" points=${points} series=${[
          { label: "p50", color: "#2e7d32", value: (p) => p.p50Ms },
          { label: "p99", color: "#ef6c00", value: (p) => p.p99Ms },
        ]} />
        <${Chart} title="Queue" points=${points} series=${[
          { label: "waiting", color: WAITING_COLOR, value: (p) => p.queued },
          { label: "oldest (s)", color: OLDEST_COLOR, value: (p) => p.oldestAgeSeconds },
        ]} />
      </div>
      <${Dealers} clusters=${snapshot?.clusters} onDrain=${drain} />
      <${Queues} queues=${snapshot?.queues} ages=${snapshot?.queueAges} points=${points} />
      <${Schedules} schedules=${snapshot?.schedules} notify=${notify} />
      <${Tasks} counts=${snapshot?.tasks} notify=${notify} />
    </main>
    ${toast ? html`<div class=${`toast ${toast.bad ? "bad" : ""}`} role="status">${toast.text}</div>` : null}`;
}

const root = document.getElementById("app");
// The "Loading…" placeholder is plain HTML: preact renders beside what it did not create.
root.textContent = "";
render(html`<${App} />`, root);
