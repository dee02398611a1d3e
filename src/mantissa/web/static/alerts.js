// Alerts: the list (filters, paging, live refresh) and one alert's detail
// (evidence rows, enrichment, deliveries, timeline, status buttons).

import {
  api, boot, can, clear, dataTable, el, errorBox, fmtTime, ago, pivotLink, pivotField,
  severityBadge, statusBadge, toast,
} from "./common.js";

const main = document.getElementById("main");
const STATUSES = ["open", "acknowledged", "closed", "false_positive"];
const SEVERITIES = ["informational", "low", "medium", "high", "critical"];
const REFRESH_MS = 10000;

// -- list ---------------------------------------------------------------------------

function listView() {
  const params = new URLSearchParams(location.search);
  const state = {
    status: params.has("status") ? params.getAll("status") : ["open", "acknowledged"],
    min_severity: params.get("min_severity") || "",
    q: params.get("q") || "",
    rule_id: params.get("rule_id") || "",
    sort: params.get("sort") || "-last_seen",
    offset: Number(params.get("offset") || 0),
    limit: 50,
    live: params.get("live") !== "0",
  };
  let timer = null;

  const statusBoxes = STATUSES.map((s) =>
    el("label", { class: "check" },
      el("input", { type: "checkbox", value: s, checked: state.status.includes(s), onchange: onFilter }),
      s.replace("_", " ")));
  const sevSelect = el("select", { id: "min-severity", onchange: onFilter },
    el("option", { value: "" }, "any severity"),
    SEVERITIES.map((s) => el("option", { value: s, selected: state.min_severity === s }, `${s} +`)));
  const qBox = el("input", {
    type: "search", id: "alert-q", placeholder: "Filter: rule, user, IP, tag…  ( / )",
    value: state.q, "data-search-box": true, "aria-label": "Filter alerts",
  });
  qBox.addEventListener("input", debounce(onFilter, 300));
  const sortSelect = el("select", { id: "alert-sort", onchange: onFilter, "aria-label": "Sort" },
    [["-last_seen", "newest activity"], ["-severity", "severity"], ["-count", "most matches"],
      ["-created_at", "newest alerts"], ["last_seen", "oldest activity"]].map(([v, l]) =>
      el("option", { value: v, selected: state.sort === v }, l)));
  const live = el("input", { type: "checkbox", id: "live", checked: state.live, onchange: () => { state.live = live.checked; schedule(); } });
  const summary = el("p", { class: "muted", id: "alert-count", "aria-live": "polite" });
  const body = el("div", { id: "alert-table" });
  const pager = el("div", { class: "pager" });

  clear(main,
    el("div", { class: "page-head" },
      el("h1", {}, "Alerts"),
      el("label", { class: "check live" }, live, "Live refresh")),
    el("div", { class: "filters", role: "search" },
      el("fieldset", {}, el("legend", {}, "Status"), statusBoxes),
      sevSelect, qBox, sortSelect,
      state.rule_id ? el("span", { class: "chip" }, `rule ${state.rule_id} `,
        el("button", { type: "button", class: "link", onclick: () => { state.rule_id = ""; onFilter(); } }, "×")) : null),
    summary, body, pager);

  function onFilter() {
    state.status = statusBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    state.min_severity = sevSelect.value;
    state.q = qBox.value.trim();
    state.sort = sortSelect.value;
    state.offset = 0;
    load();
  }

  function syncUrl() {
    const p = new URLSearchParams();
    state.status.forEach((s) => p.append("status", s));
    if (!state.status.length) p.append("status", "");
    if (state.min_severity) p.set("min_severity", state.min_severity);
    if (state.q) p.set("q", state.q);
    if (state.rule_id) p.set("rule_id", state.rule_id);
    if (state.sort !== "-last_seen") p.set("sort", state.sort);
    if (state.offset) p.set("offset", String(state.offset));
    history.replaceState(null, "", `${location.pathname}?${p}`);
  }

  async function load() {
    syncUrl();
    try {
      const page = await api("/alerts", {
        query: {
          status: state.status.filter(Boolean), min_severity: state.min_severity, q: state.q,
          rule_id: state.rule_id, sort: state.sort, limit: state.limit, offset: state.offset,
        },
      });
      render(page);
    } catch (err) {
      clear(body, errorBox(err));
    }
    schedule();
  }

  function render(page) {
    const first = page.total ? page.offset + 1 : 0;
    summary.textContent = `${page.total} alert${page.total === 1 ? "" : "s"}` +
      (page.total ? ` · showing ${first}–${page.offset + page.items.length}` : "") +
      ` · updated ${new Date().toLocaleTimeString()}`;
    const cols = ["severity", "alert", "entities", "count", "last seen", "status"];
    const rows = page.items.map((a) => [a.severity, a, a.entities, a.count, a.last_seen, a.status]);
    const table = dataTable(cols, rows, {
      onOpen: (row) => location.assign(`/console/alerts/${encodeURIComponent(row[1].id)}`),
      rowClass: (row) => `sev-row-${row[0]}`,
      render: (col, v) => {
        if (col === "severity") return severityBadge(v);
        if (col === "status") return statusBadge(v);
        if (col === "last seen") return el("time", { datetime: v, title: fmtTime(v) }, ago(v));
        if (col === "alert") {
          return el("div", {},
            el("a", { href: `/console/alerts/${encodeURIComponent(v.id)}`, class: "alert-title" }, v.rule_title),
            el("div", { class: "muted small" }, v.rule_id, v.source ? ` · ${v.source}` : ""));
        }
        if (col === "entities") return entityList(v);
        return undefined;
      },
    });
    table.id = "alerts-table";
    clear(body, table);
    clear(pager,
      el("button", { type: "button", disabled: page.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - state.limit); load(); } }, "← Newer"),
      el("button", { type: "button", disabled: page.next_offset === null, onclick: () => { state.offset = page.next_offset; load(); } }, "Older →"));
  }

  function schedule() {
    clearTimeout(timer);
    // live refresh pauses while the tab is hidden and while the user reads page 2+
    if (state.live && state.offset === 0) {
      timer = setTimeout(() => { if (!document.hidden) load(); else schedule(); }, REFRESH_MS);
    }
  }

  load();
}

function entityList(entities) {
  const items = Object.entries(entities || {}).slice(0, 4);
  return el("div", { class: "entities" }, items.map(([k, v]) => {
    const field = pivotField(k === "ip" ? "src_ip" : k);
    return el("span", { class: "entity" }, el("span", { class: "muted" }, `${k} `),
      field ? pivotLink(field, v) : v);
  }));
}

// -- detail ---------------------------------------------------------------------------

const ACTIONS = [
  ["acknowledged", "Acknowledge", "a"],
  ["closed", "Close", "c"],
  ["false_positive", "False positive", "f"],
  ["open", "Reopen", "o"],
];

async function detailView(id) {
  let alert;
  try {
    alert = await api(`/alerts/${encodeURIComponent(id)}`);
  } catch (err) {
    clear(main, el("p", {}, el("a", { href: "/console/alerts" }, "← Alerts")), errorBox(err));
    return;
  }
  renderDetail(alert);
}

async function setStatus(alert, status) {
  if (!can("analyst")) { toast("Changing status needs role analyst", "error"); return; }
  const reason = document.getElementById("status-reason")?.value.trim() || undefined;
  try {
    const updated = await api(`/alerts/${encodeURIComponent(alert.id)}`, {
      method: "PATCH", body: { status, reason },
    });
    toast(`Alert ${status.replace("_", " ")}`);
    renderDetail(updated);
  } catch (err) {
    toast(err.message, "error");
  }
}

function renderDetail(alert) {
  const buttons = ACTIONS.filter(([s]) => s !== alert.status).map(([status, label, key]) =>
    el("button", {
      type: "button", class: status === "acknowledged" ? "primary" : "", id: `action-${status}`,
      disabled: !can("analyst"), title: can("analyst") ? `${label} (${key})` : "needs role analyst",
      onclick: () => setStatus(alert, status),
    }, label));
  window.currentAlert = alert;

  const facts = el("dl", { class: "facts" },
    fact("Rule", el("a", { href: `/console/rules?q=${encodeURIComponent(alert.rule_id)}` }, alert.rule_id)),
    fact("Severity", severityBadge(alert.severity)),
    fact("Status", statusBadge(alert.status)),
    fact("Matches", String(alert.count)),
    fact("First seen", fmtTime(alert.first_seen)),
    fact("Last seen", `${fmtTime(alert.last_seen)} (${ago(alert.last_seen)})`),
    alert.source ? fact("Source", alert.source) : null,
    alert.window_start ? fact("Window", `${fmtTime(alert.window_start)} → ${fmtTime(alert.window_end)}`) : null,
    alert.tags?.length ? fact("Tags", el("span", {}, alert.tags.map((t) => el("span", { class: "chip" }, t)))) : null);

  const evidenceCols = [...new Set((alert.evidence_rows || []).flatMap((r) => Object.keys(r)))];
  const evidence = (alert.evidence_rows || []).length
    ? dataTable(evidenceCols, alert.evidence_rows.map((r) => evidenceCols.map((c) => r[c])))
    : el("p", { class: "muted" }, "No evidence rows were kept for this alert.");
  evidence.id = "evidence";

  const deliveries = (alert.deliveries || []).length
    ? dataTable(["destination", "kind", "status", "attempts", "last_error", "delivered_at"],
      alert.deliveries.map((d) => [d.destination, d.kind, d.status, d.attempts, d.last_error, d.delivered_at]))
    : el("p", { class: "muted" }, "Not routed to any destination.");

  const timeline = el("ol", { class: "timeline", id: "timeline" },
    [...(alert.history || [])].reverse().map((h) =>
      el("li", {},
        el("time", { datetime: h.at }, fmtTime(h.at)), " ",
        el("strong", {}, h.action === "status" ? `${h.from ?? "?"} → ${h.status}` : (h.action || "event")),
        h.actor ? el("span", { class: "muted" }, ` by ${h.actor}`) : null,
        h.reason ? el("div", { class: "reason" }, h.reason) : null,
        h.detail ? el("div", { class: "muted small" }, typeof h.detail === "string" ? h.detail : JSON.stringify(h.detail)) : null)));

  const searchLink = alert.query
    ? el("a", { href: `/console/search?${new URLSearchParams({ sql: alert.query })}`, class: "button" }, "Open query in Search")
    : null;

  clear(main,
    el("p", { class: "crumbs" }, el("a", { href: "/console/alerts" }, "← Alerts")),
    el("div", { class: "page-head" },
      el("h1", { id: "alert-title" }, severityBadge(alert.severity), " ", alert.rule_title),
      statusBadge(alert.status)),
    alert.description ? el("p", { class: "lead" }, alert.description) : null,
    el("div", { class: "actions", role: "group", "aria-label": "Change status" },
      buttons,
      el("input", { id: "status-reason", type: "text", placeholder: "Reason (optional)", "aria-label": "Reason", maxlength: 2000 })),
    el("div", { class: "grid2" },
      el("section", { class: "card" }, el("h2", {}, "Summary"), facts),
      el("section", { class: "card" }, el("h2", {}, "Entities"),
        Object.keys(alert.entities || {}).length
          ? el("dl", { class: "facts" }, Object.entries(alert.entities).map(([k, v]) => {
            // a trace id opens the trace's waterfall (APM console page)
            if (k === "trace_id" && /^[0-9a-f]{32}$/.test(v)) return fact(k, el("a", { href: `/console/apm/trace/${v}`, class: "pivot", title: "Open the trace" }, v));
            // a service opens its traces (RED, slowest and failed spans) on the APM page
            if (k === "service" && typeof v === "string" && v) return fact(k, el("a", { href: `/console/apm?service=${encodeURIComponent(v)}`, class: "pivot", title: "Open the service's traces" }, v));
            const field = pivotField(k === "ip" ? "src_ip" : k);
            return fact(k, field ? pivotLink(field, v) : v);
          }))
          : el("p", { class: "muted" }, "None"))),
    el("section", { class: "card" }, el("h2", {}, `Evidence (${(alert.evidence_rows || []).length} rows)`),
      el("div", { class: "scroll" }, evidence), searchLink),
    el("section", { class: "card" }, el("h2", {}, "Enrichment"), enrichment(alert.enrichment)),
    el("div", { class: "grid2" },
      el("section", { class: "card" }, el("h2", {}, "Timeline"), timeline),
      el("section", { class: "card" }, el("h2", {}, "Deliveries"), el("div", { class: "scroll" }, deliveries))),
    alert.query ? el("section", { class: "card" }, el("h2", {}, "Detection query"), el("pre", { class: "sql" }, alert.query)) : null);
}

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function enrichment(data) {
  const entries = Object.entries(data || {});
  if (!entries.length) return el("p", { class: "muted" }, "No enrichment.");
  return el("dl", { class: "facts" }, entries.map(([k, v]) =>
    fact(k, typeof v === "object" && v !== null
      ? el("pre", { class: "json" }, JSON.stringify(v, null, 2))
      : String(v))));
}

function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

// -- boot -------------------------------------------------------------------------------

const detailId = main.dataset.alertId;
const keys = detailId ? Object.fromEntries(ACTIONS.map(([status, , key]) => [key, () => {
  const a = window.currentAlert;
  if (a && a.status !== status) setStatus(a, status);
}])) : {};
boot(keys);
if (detailId) detailView(detailId); else listView();
