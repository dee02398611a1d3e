// APM console page: the service map as a graph (nodes coloured by error rate, edges with
// calls and p99), a service's RED and latency chart (exemplar dots open their trace),
// span search, and the trace waterfall (/console/apm/trace/<id>).
// DOM is built with el()/textContent only: span names and attributes are untrusted.

import { api, boot, clear, dataTable, el, errorBox, fmtTime } from "/console/static/common.js";

const main = boot({});
const SVG = "http://www.w3.org/2000/svg";
const sub = main.dataset.subpath || "";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// the CSP forbids style attributes; CSSOM properties are allowed
const withStyle = (node, props) => { Object.assign(node.style, props); return node; };
const rateColour = (r) => (r >= 0.1 ? "#dc2626" : r >= 0.02 ? "#f59e0b" : "#16a34a");
const ms = (v) => (v === null || v === undefined ? "–" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);

const sinceSel = el("select", { id: "apm-since", "aria-label": "Window" },
  [["15m", "last 15 minutes"], ["1h", "last hour"], ["6h", "last 6 hours"], ["24h", "last 24 hours"], ["7d", "last 7 days"]]
    .map(([v, label]) => el("option", { value: v, selected: v === "1h" }, label)));

function graph(map, onNode) {
  const nodes = map.nodes;
  if (!nodes.length) return el("p", { class: "muted" }, "No spans in this window. Point an OpenTelemetry SDK at /v1/traces.");
  // layered layout: callers left of callees (longest path from a root)
  const depth = new Map(nodes.map((n) => [n.id, 0]));
  for (let i = 0; i < nodes.length; i++) {
    for (const e of map.edges) {
      if (e.source === e.target) continue;
      const d = (depth.get(e.source) ?? 0) + 1;
      if (d > (depth.get(e.target) ?? 0) && d < nodes.length) depth.set(e.target, d);
    }
  }
  const layers = new Map();
  for (const n of nodes) {
    const d = depth.get(n.id);
    if (!layers.has(d)) layers.set(d, []);
    layers.get(d).push(n);
  }
  const cols = Math.max(...layers.keys()) + 1;
  const rows = Math.max(...[...layers.values()].map((l) => l.length));
  const W = Math.max(640, cols * 220); const H = Math.max(220, rows * 90 + 40);
  const pos = new Map();
  for (const [d, list] of layers) {
    list.forEach((n, i) => pos.set(n.id, { x: 90 + d * ((W - 180) / Math.max(1, cols - 1)), y: (H / (list.length + 1)) * (i + 1) }));
  }
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "apm-map", role: "img", "aria-label": "Service map" });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }))));
  for (const e of map.edges) {
    const a = pos.get(e.source); const b = pos.get(e.target);
    if (!a || !b) continue;
    const line = svg("line", { x1: a.x + 28, y1: a.y, x2: b.x - 30, y2: b.y, stroke: e.errors ? "#f87171" : "#94a3b8", "stroke-width": 1.5 + Math.min(4, Math.log10(e.calls + 1)), "marker-end": "url(#arrow)", class: "edge" });
    line.append(svg("title", {}, `${e.source} → ${e.target}: ${e.calls} calls, ${e.errors} errors, p99 ${ms(e.p99_ms)}`));
    root.append(line);
    root.append(svg("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6, "text-anchor": "middle", class: "edge-label" }, `${e.calls} · p99 ${ms(e.p99_ms)}`));
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const g = svg("g", { class: "node", tabindex: 0, role: "button", "data-node": n.id, transform: `translate(${p.x},${p.y})` });
    g.append(n.virtual
      ? svg("rect", { x: -28, y: -20, width: 56, height: 40, rx: 8, fill: "#e2e8f0", stroke: "#64748b", "stroke-dasharray": "4 3" })
      : svg("circle", { r: 26, fill: rateColour(n.error_rate), stroke: "#1f2937", "stroke-width": 1.5 }));
    g.append(svg("text", { y: 42, "text-anchor": "middle", class: "node-label" }, n.id));
    g.append(svg("title", {}, `${n.id}${n.virtual ? ` (${n.type})` : ""}: ${n.request_count} requests, error rate ${(n.error_rate * 100).toFixed(1)}%, p99 ${ms(n.p99_ms)}`));
    if (!n.virtual) {
      g.addEventListener("click", () => onNode(n.id));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onNode(n.id); });
    }
    root.append(g);
  }
  return root;
}

function latencyChart(points) {
  if (!points.length) return el("p", { class: "muted" }, "No entry spans in this window.");
  const W = 720; const H = 200; const left = 56; const bottom = 20;
  const max = Math.max(...points.map((p) => Math.max(p.p99_ms ?? 0, p.exemplar_ms ?? 0)), 1);
  const x = (i) => left + (i / Math.max(1, points.length - 1)) * (W - left - 10);
  const y = (v) => H - bottom - (v / max) * (H - bottom - 10);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "apm-latency", role: "img", "aria-label": "Latency" });
  root.append(svg("text", { x: 4, y: 14, class: "axis" }, ms(max)), svg("text", { x: 4, y: H - bottom, class: "axis" }, "0"));
  for (const [key, colour] of [["p50_ms", "#3b82f6"], ["p99_ms", "#ef4444"]]) {
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[key] ?? 0).toFixed(1)}`).join(" ");
    root.append(svg("path", { d, fill: "none", stroke: colour, "stroke-width": 2 }, svg("title", {}, key.replace("_ms", ""))));
  }
  points.forEach((p, i) => {
    if (!p.exemplar_trace_id) return;
    const a = svg("a", { href: `/console/apm/trace/${p.exemplar_trace_id}`, class: "exemplar" });
    a.append(svg("circle", { cx: x(i), cy: y(p.exemplar_ms), r: 4, fill: "#7c3aed" }),
      svg("title", {}, `exemplar: trace ${p.exemplar_trace_id} (${ms(p.exemplar_ms)}) at ${fmtTime(p.t)}`));
    root.append(a);
  });
  return root;
}

function spanTable(items) {
  return dataTable(
    ["trace", "service", "operation", "start", "duration", "status", "route"],
    items.map((s) => [s.trace_id, s.service_name, s.name, s.start_time, s.duration_ms, s.status_code, s["http.route"]]),
    {
      onOpen: (row) => location.assign(`/console/apm/trace/${row[0]}`),
      rowClass: (row) => (row[5] === "ERROR" ? "error" : null),
      render: (col, v) => (col === "trace" ? el("a", { href: `/console/apm/trace/${v}` }, v.slice(0, 12) + "…")
        : col === "duration" ? ms(v) : undefined),
    },
  );
}

async function showService(panel, service) {
  const since = sinceSel.value;
  clear(panel, el("h2", {}, service), el("p", { class: "muted" }, "Loading…"));
  try {
    const [svcs, ops, lat, slow, failed] = await Promise.all([
      api("/apm/services", { query: { since } }),
      api(`/apm/services/${encodeURIComponent(service)}/operations`, { query: { since } }),
      api(`/apm/services/${encodeURIComponent(service)}/latency`, { query: { since } }),
      api("/apm/traces", { query: { since, service, limit: 10, sort: "-duration_ms" } }),
      api("/apm/traces", { query: { since, service, status: "error", limit: 10, sort: "-start_time" } }),
    ]);
    const red = svcs.items.find((s) => s.service === service) ?? {};
    clear(panel,
      el("h2", {}, service, red.estimate ? el("span", { class: "badge" }, "sampled: estimates") : null),
      el("p", { class: "red" }, `${red.spans ?? 0} spans · ${red.errors ?? 0} errors (${((red.error_rate ?? 0) * 100).toFixed(1)}%) · p50 ${ms(red.p50_ms)} · p99 ${ms(red.p99_ms)}`),
      el("h3", {}, "Latency (p50 blue, p99 red; dots open the slowest trace)"), latencyChart(lat.items),
      el("h3", {}, "Operations"),
      dataTable(["operation", "spans", "errors", "p50", "p99"], ops.items.map((o) => [o.operation, o.spans, o.errors, ms(o.p50_ms), ms(o.p99_ms)])),
      el("h3", {}, "Slowest spans"), spanTable(slow.items),
      el("h3", {}, "Failed spans"), spanTable(failed.items));
  } catch (err) { clear(panel, errorBox(err)); }
}

async function mapPage() {
  const mapBox = el("div", { class: "card", id: "apm-map" }, el("p", { class: "muted" }, "Loading…"));
  const panel = el("div", { class: "card", id: "apm-service" }, el("p", { class: "muted" }, "Select a service on the map."));
  const q = {
    service: el("input", { id: "apm-q-service", placeholder: "service" }),
    status: el("select", { id: "apm-q-status", "aria-label": "Status" }, ["", "error", "ok", "unset"].map((s) => el("option", { value: s }, s || "any status"))),
    min: el("input", { id: "apm-q-min", placeholder: "min duration (500ms)", size: 16 }),
    attr: el("input", { id: "apm-q-attr", placeholder: "attribute key=value", size: 22 }),
  };
  const results = el("div", { id: "apm-results" });
  const form = el("form", { class: "actions", id: "apm-search" }, q.service, q.status, q.min, q.attr, el("button", { class: "primary", type: "submit" }, "Search spans"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("/apm/traces", { query: { since: sinceSel.value, service: q.service.value, status: q.status.value, min_duration: q.min.value, attr: q.attr.value || undefined, limit: 100 } });
      clear(results, spanTable(r.items));
    } catch (err) { clear(results, errorBox(err)); }
  });
  clear(main, el("div", { class: "page-head" }, el("h1", {}, "APM"), sinceSel), mapBox, el("div", { class: "card" }, el("h2", {}, "Span search"), form, results), panel);
  async function load() {
    try {
      const map = await api("/apm/service-map", { query: { since: sinceSel.value } });
      clear(mapBox, el("h2", {}, "Service map"), graph(map, (id) => showService(panel, id)),
        el("p", { class: "muted small" }, "Circles: services (green < 2% errors, amber < 10%, red above). Dashed boxes: databases, queues, uninstrumented peers."));
    } catch (err) { clear(mapBox, errorBox(err)); }
  }
  sinceSel.addEventListener("change", load);
  await load();
  // /console/apm?service=X (e.g. from an alert's service entity) opens that service
  const wanted = new URLSearchParams(location.search).get("service");
  if (wanted) { q.service.value = wanted; await showService(panel, wanted); form.requestSubmit(); }
}

async function tracePage(traceId) {
  clear(main, el("p", { class: "muted" }, "Loading trace…"));
  let t;
  try { t = await api(`/apm/traces/${encodeURIComponent(traceId)}`); } catch (err) { clear(main, errorBox(err)); return; }
  const flat = [];
  const walk = (n) => { flat.push(n); n.children.forEach(walk); };
  t.roots.forEach(walk);
  const total = Math.max(t.duration_ms, 1e-6);
  const rows = flat.map((s) => {
    const left = (s.offset_ms / total) * 100;
    const width = Math.max(0.4, (s.duration_ms / total) * 100);
    const err = s.status_code === "ERROR";
    return el("div", { class: `wf-row${err ? " error" : ""}`, "data-span": s.span_id },
      withStyle(el("div", { class: "wf-name", title: s.name }, s.name, s.orphan ? el("span", { class: "badge" }, "parent missing") : null), { paddingLeft: `${s.depth * 14}px` }),
      el("div", { class: "wf-svc" }, s.service_name),
      el("div", { class: "wf-ms" }, ms(s.duration_ms)),
      el("div", { class: "wf-track" }, withStyle(el("div", { class: "wf-bar" }), { left: `${left.toFixed(2)}%`, width: `${width.toFixed(2)}%` })),
      el("div", { class: "wf-status" }, err ? `${s.exception_type || "ERROR"}${s.exception_message || s.status_message ? `: ${s.exception_message || s.status_message}` : ""}` : ""));
  });
  clear(main,
    el("p", { class: "crumbs" }, el("a", { href: "/console/apm" }, "APM"), " / trace"),
    el("h1", {}, `Trace ${t.trace_id}`),
    el("p", {}, `${t.span_count} spans · ${t.services.length} services · ${ms(t.duration_ms)} · ${t.errors} errors${t.orphans ? ` · ${t.orphans} orphaned` : ""} · started ${fmtTime(t.start_time)}`),
    el("div", { class: "card waterfall", id: "waterfall" }, ...rows),
    traceLogs(t.logs || []));
}

function traceLogs(logs) {
  // the log lines carrying this trace id (logs join traces on the normalized trace_id)
  return el("section", { class: "card", id: "trace-logs" },
    el("h2", {}, `Log lines of this trace (${logs.length})`),
    logs.length
      ? dataTable(["time", "source", "host", "event", "outcome", "message"],
        logs.map((r) => [fmtTime(r.event_time), r.source, r.host, r.event_type, r.outcome, r.message]))
      : el("p", { class: "muted" }, "No log line carries this trace id."));
}

document.head.append(el("link", { rel: "stylesheet", href: "/console/static/apm.css" }));

const m = sub.match(/^trace\/([0-9a-fA-F]{32})$/);
if (m) tracePage(m[1]); else mapPage();
