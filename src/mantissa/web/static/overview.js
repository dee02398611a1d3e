// Overview: events per source over time (stacked bars in SVG), open alerts by severity,
// top alerting rules, ingestion health (last event per source, dead letters) and the
// health of each collector input (cursor, lag, events and errors in the last hour, next run).

import { api, ago, boot, clear, dataTable, el, errorBox, fmtTime, severityBadge } from "./common.js";

const main = document.getElementById("main");
const SVG = "http://www.w3.org/2000/svg";
const BASE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b"];
// ten hand-picked colours, then evenly spread hues (golden angle) for more sources
const color = (j) => (j < BASE.length ? BASE[j] : `hsl(${Math.round((j * 137.508) % 360)} 60% ${j % 2 ? 42 : 58}%)`);
const SEVERITIES = ["critical", "high", "medium", "low", "informational"];
const STALE_HOURS = 24;

const hoursSel = el("select", { id: "hours", "aria-label": "Window" },
  [[1, "last hour"], [24, "last 24 hours"], [72, "last 3 days"], [168, "last 7 days"], [720, "last 30 days"]]
    .map(([h, label]) => el("option", { value: h, selected: h === 72 }, label)));
const body = el("div", { id: "overview" });
clear(main, el("div", { class: "page-head" }, el("h1", {}, "Overview"), hoursSel), body);
hoursSel.addEventListener("change", load);

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function chart(events) {
  if (!events.length) return el("p", { class: "muted" }, "No events in this window.");
  const sources = [...new Set(events.map((e) => e.source))].sort();
  const buckets = [...new Set(events.map((e) => e.bucket))].sort();
  const totals = new Map(buckets.map((b) => [b, 0]));
  const cell = new Map();
  for (const e of events) {
    cell.set(`${e.bucket}|${e.source}`, e.events);
    totals.set(e.bucket, totals.get(e.bucket) + e.events);
  }
  const max = Math.max(...totals.values(), 1);
  const W = 900; const H = 220; const left = 48; const bottom = 22; const top = 12;
  const bw = (W - left) / buckets.length;
  const root = svg("svg", { viewBox: `0 ${-top} ${W} ${H + bottom + top}`, class: "chart", role: "img", "aria-label": "Events per source over time" });
  for (const frac of [0, 0.5, 1]) {
    const y = H - frac * H;
    root.append(svg("line", { x1: left, x2: W, y1: y, y2: y, class: "grid" }),
      svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, Math.round(max * frac).toLocaleString()));
  }
  buckets.forEach((b, i) => {
    let y = H;
    sources.forEach((s, j) => {
      const n = cell.get(`${b}|${s}`) || 0;
      if (!n) return;
      const h = (n / max) * H;
      y -= h;
      root.append(svg("rect", { x: left + i * bw + 1, y, width: Math.max(1, bw - 2), height: h, fill: color(j) },
        svg("title", {}, `${fmtTime(b)} · ${s}: ${n.toLocaleString()}`)));
    });
    if (buckets.length <= 12 || i % Math.ceil(buckets.length / 8) === 0) {
      root.append(svg("text", { x: left + i * bw + bw / 2, y: H + 16, "text-anchor": "middle", class: "axis" },
        fmtTime(b).slice(5, 16)));
    }
  });
  const legend = el("ul", { class: "legend" }, sources.map((s, j) =>
    el("li", {}, swatch(color(j)), s)));
  return el("div", {}, root, legend);
}

function swatch(fill) {
  return svg("svg", { class: "swatch", viewBox: "0 0 12 12", "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, rx: 2, fill }));
}

async function load() {
  clear(body, el("p", { class: "muted" }, "Loading…"));
  const inputsPromise = inputsHealth(); // in parallel; renders its own error box
  let data;
  try {
    data = await api("/overview", { query: { hours: hoursSel.value } });
  } catch (err) {
    clear(body, errorBox(err));
    return;
  }
  const inputs = await inputsPromise;
  const sev = data.alerts.by_severity || {};
  const cards = el("div", { class: "cards" },
    el("a", { class: "stat", href: "/console/alerts?status=open" }, el("strong", { id: "open-alerts" }, String(data.alerts.open ?? 0)), "open alerts"),
    SEVERITIES.map((s) => el("a", { class: `stat sev-${s}`, href: `/console/alerts?min_severity=${s}` },
      el("strong", {}, String(sev[s] || 0)), `${s} (active)`)));
  const top = data.top_rules.length
    ? dataTable(["rule", "alerts", "matches", "max severity", "last seen"],
      data.top_rules.map((r) => [r, r.alerts, r.matches, r.max_severity, r.last_seen]), {
        render: (col, v) => {
          if (col === "rule") return el("a", { href: `/console/alerts?${new URLSearchParams({ rule_id: v.rule_id, status: "open" })}` }, v.rule_title || v.rule_id);
          if (col === "max severity") return v ? severityBadge(v) : "";
          if (col === "last seen") return el("time", { datetime: v, title: fmtTime(v) }, ago(v));
          return undefined;
        },
      })
    : el("p", { class: "muted" }, "No alerts in this window.");
  const health = data.ingestion.length
    ? dataTable(["table", "last event", "rows", "files", "dead letters"],
      data.ingestion.map((t) => [t.table, t.last_event, t.rows, t.files, t.dead_letter]), {
        rowClass: (row) => (row[1] && (Date.now() - new Date(row[1])) / 3600e3 > STALE_HOURS ? "stale" : null),
        render: (col, v) => {
          if (col === "last event") return v ? el("time", { datetime: v, title: fmtTime(v) }, `${ago(v)}`) : "never";
          if (col === "dead letters") return v ? el("span", { class: "badge sev-high" }, String(v)) : "0";
          if (typeof v === "number") return v.toLocaleString();
          return undefined;
        },
      })
    : el("p", { class: "muted" }, "Nothing ingested yet. Try `mantissa demo`.");
  clear(body,
    cards,
    el("section", { class: "card" }, el("h2", {}, `Events per source (per ${data.bucket})`),
      data.events_error ? errorBox({ message: data.events_error }) : chart(data.events)),
    el("div", { class: "grid2" },
      el("section", { class: "card" }, el("h2", {}, "Top alerting rules"), top),
      el("section", { class: "card" }, el("h2", {}, "Ingestion health"), health)),
    el("section", { class: "card", id: "inputs-card" }, el("h2", {}, "Collector inputs"), inputs));
}

const STATE_CLASS = { ok: "sev-low", running: "sev-informational", error: "sev-high", auth_failed: "sev-critical" };

function lagText(secs) {
  if (secs == null) return "";
  if (secs < 120) return `${Math.round(secs)}s`;
  if (secs < 7200) return `${Math.round(secs / 60)}m`;
  if (secs < 172800) return `${Math.round(secs / 3600)}h`;
  return `${Math.round(secs / 86400)}d`;
}

function cursorText(c) {
  if (!c) return "";
  const text = typeof c === "object" ? Object.entries(c).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ") : String(c);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

// per-input collector health (GET /inputs/status, what `mantissa inputs status` lists)
async function inputsHealth() {
  let data;
  try {
    data = await api("/inputs/status");
  } catch (err) {
    return errorBox(err);
  }
  const note = data.config_error ? errorBox({ message: `inputs config: ${data.config_error}` }) : null;
  if (!data.inputs.length) {
    return el("div", {}, note, el("p", { class: "muted" }, "No collector inputs configured (see docs/collect.md)."));
  }
  const cols = ["input", "type", "state", "last cursor", "last event", "lag", "events 1h", "errors 1h", "next run", "last error"];
  const table = dataTable(cols,
    data.inputs.map((i) => [i.id, i.type, i.state, i.last_cursor, i.last_event_time, i.lag_secs, i.events_last_hour,
      i.errors_last_hour, i.next_run, i.last_error]), {
      rowClass: (row) => (row[2] === "error" || row[2] === "auth_failed" ? "input-failing" : null),
      render: (col, v) => {
        if (col === "state") return el("span", { class: `badge ${STATE_CLASS[v] || ""}` }, String(v).replace("_", " "));
        if (col === "last cursor") return el("code", { title: v ? JSON.stringify(v) : "" }, cursorText(v));
        if (col === "last event") return v ? el("time", { datetime: v, title: fmtTime(v) }, ago(v)) : "never";
        if (col === "lag") return lagText(v);
        if (col === "next run") return v ? el("time", { datetime: v, title: fmtTime(v) }, fmtTime(v)) : "";
        if (col === "errors 1h") return v ? el("span", { class: "badge sev-high" }, String(v)) : "0";
        if (col === "last error") return v ? el("span", { class: "input-error", title: `${v.at || ""} ${v.code || ""}` }, v.message || v.code || "") : "";
        if (typeof v === "number") return v.toLocaleString();
        return undefined;
      },
    });
  table.id = "inputs-health";
  return el("div", {}, note, table);
}

boot({});
load();
