// Search: one box for a question or SQL; the SQL shown and editable; a cost estimate
// before running; a sortable results table; CSV export. Pivots arrive as
// ?pivot=user&value=alice.

import {
  api, boot, can, clear, dataTable, download, el, errorBox, fmtBytes, sqlString, toast,
} from "./common.js";

const main = document.getElementById("main");
const MAX_ROWS = 5000;
const looksLikeSql = (text) => /^\s*(select|with|from)\b/i.test(text) || /^\s*\(\s*select\b/i.test(text);

const params = new URLSearchParams(location.search);
const box = el("textarea", {
  id: "search-box", rows: 3, "data-search-box": true, spellcheck: "false",
  "aria-label": "Question or SQL",
  placeholder: "Ask a question (\"failed logins in the last 24 hours\") or write SQL (SELECT … FROM events …).  Ctrl+Enter runs.",
});
const sqlBox = el("textarea", { id: "sql-box", rows: 6, spellcheck: "false", "aria-label": "SQL that runs" });
const modeLabel = el("span", { class: "badge", id: "mode" }, "question");
const costLine = el("p", { class: "muted", id: "cost", "aria-live": "polite" });
const meta = el("div", { id: "answer-meta", "aria-live": "polite" });
const results = el("div", { id: "results", class: "scroll" });
const exportButton = el("button", { type: "button", id: "export-csv", disabled: true, onclick: exportCsv }, "Export CSV");
const schema = el("details", { class: "schema" }, el("summary", {}, "Tables and columns"));
let last = null; // {body, answer}

clear(main,
  el("div", { class: "page-head" }, el("h1", {}, "Search"), modeLabel),
  can("analyst") ? null : el("p", { class: "error-box" }, "Running queries needs role analyst; your token is a viewer."),
  el("form", { id: "search-form", onsubmit: (ev) => { ev.preventDefault(); runBox(); } },
    box,
    el("div", { class: "actions" },
      el("button", { type: "submit", class: "primary", id: "run", disabled: !can("analyst") }, "Run"),
      el("button", { type: "button", id: "estimate", disabled: !can("analyst"), onclick: () => runBox(true) }, "Estimate cost"),
      costLine)),
  el("details", { id: "sql-panel", class: "card" },
    el("summary", {}, "SQL (editable)"),
    sqlBox,
    el("div", { class: "actions" },
      el("button", { type: "button", id: "run-sql", disabled: !can("analyst"), onclick: () => run({ sql: sqlBox.value }) }, "Run this SQL"),
      el("button", { type: "button", onclick: () => run({ sql: sqlBox.value, explain: true }) }, "Estimate"))),
  meta,
  el("div", { class: "actions" }, exportButton),
  results,
  schema);

box.addEventListener("input", () => { modeLabel.textContent = looksLikeSql(box.value) ? "SQL" : "question"; });
for (const b of [box, sqlBox]) {
  b.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      if (b === box) runBox(); else run({ sql: sqlBox.value });
    }
  });
}

function runBox(explain = false) {
  const text = box.value.trim();
  if (!text) { box.focus(); return; }
  run(looksLikeSql(text) ? { sql: text, explain } : { question: text, explain });
}

async function run(body) {
  if (!can("analyst")) return;
  const request = { ...body, max_rows: MAX_ROWS };
  clear(meta, el("p", { class: "muted" }, body.explain ? "Estimating…" : "Running…"));
  try {
    const answer = await api("/query", { method: "POST", body: request });
    if (answer.sql) sqlBox.value = answer.sql;
    showCost(answer.cost);
    if (answer.explain) {
      clear(meta, el("p", { class: "muted" }, "Not run: this is the SQL and its estimated cost."));
      document.getElementById("sql-panel").open = true;
      return;
    }
    last = { body: { ...body, explain: false }, answer };
    render(answer);
  } catch (err) {
    clear(meta, errorBox(err));
  }
}

function showCost(cost) {
  if (!cost) { costLine.textContent = ""; return; }
  const price = cost.price_usd ? ` · $${cost.price_usd}` : "";
  costLine.textContent = `Scans ${fmtBytes(cost.bytes_scanned)} in ${cost.files} file(s), ` +
    `${cost.partitions} partition(s)${price}${cost.tables?.length ? ` · tables ${cost.tables.join(", ")}` : ""}`;
  costLine.title = cost.note || "";
}

function render(answer) {
  const range = answer.time_range
    ? (typeof answer.time_range === "object"
      ? `${answer.time_range.start ?? answer.time_range.from ?? ""} → ${answer.time_range.end ?? answer.time_range.to ?? ""}`
      : String(answer.time_range))
    : null;
  clear(meta,
    el("p", { class: "summary", id: "summary" }, answer.summary || `${answer.rows.length} rows`),
    el("p", { class: "muted small" },
      `answered by: ${answer.tier}`,
      answer.elapsed_ms != null ? ` · ${Math.round(answer.elapsed_ms)} ms` : "",
      range ? ` · time range ${range}` : "",
      answer.truncated ? " · truncated" : ""));
  if (answer.answered === false) {
    meta.append(el("div", { class: "error-box", id: "not-understood" },
      answer.summary || "I could not map this question.",
      answer.understood ? el("div", { class: "small" }, `Understood: ${typeof answer.understood === "string" ? answer.understood : JSON.stringify(answer.understood)}`) : null,
      (answer.suggestions || []).length ? el("ul", {}, answer.suggestions.map((q) =>
        el("li", {}, el("button", { type: "button", class: "link", onclick: () => { box.value = q; runBox(); } }, q)))) : null));
  }
  const table = dataTable(answer.columns, answer.rows);
  table.id = "results-table";
  clear(results, table);
  exportButton.disabled = !answer.columns.length;
}

async function exportCsv() {
  if (!last) return;
  try {
    // export re-runs the SQL that produced the table (not the question: no re-translation)
    const sql = last.answer.sql || last.body.sql;
    const body = sql ? { sql, format: "csv" } : { question: last.body.question, format: "csv" };
    const resp = await api("/query", { method: "POST", body, raw: true });
    download("mantissa-query.csv", await resp.blob());
    toast("CSV exported");
  } catch (err) {
    toast(err.message, "error");
  }
}

async function loadSchema() {
  try {
    const tables = await api("/tables");
    schema.append(el("ul", {}, tables.map((t) =>
      el("li", { class: t.has_data ? "" : "muted" },
        el("button", { type: "button", class: "link", onclick: () => {
          box.value = `SELECT * FROM ${t.name} WHERE event_time >= now() - INTERVAL 1 DAY ORDER BY event_time DESC LIMIT 100`;
          box.dispatchEvent(new Event("input"));
          box.focus();
        } }, t.name),
        ` (${t.kind}) `,
        el("span", { class: "small muted" }, t.columns.slice(0, 40).map((c) => c.name).join(", "))))));
  } catch { /* the schema list is a convenience */ }
}

function pivotSql(field, value) {
  const column = ["user", "src_ip", "dst_ip", "host"].includes(field) ? field : "user";
  const where = column === "src_ip" || column === "dst_ip"
    ? `(src_ip = ${sqlString(value)} OR dst_ip = ${sqlString(value)})`
    : `"${column}" = ${sqlString(value)}`;
  return `SELECT event_time, source, event_type, outcome, "user", src_ip, dst_ip, host, message\n` +
    `FROM events\nWHERE ${where}\n  AND event_time >= now() - INTERVAL 7 DAY\nORDER BY event_time DESC\nLIMIT 500`;
}

boot({});
loadSchema();
if (params.get("pivot") && params.get("value")) {
  box.value = pivotSql(params.get("pivot"), params.get("value"));
  box.dispatchEvent(new Event("input"));
  runBox();
} else if (params.get("sql")) {
  box.value = params.get("sql");
  box.dispatchEvent(new Event("input"));
  runBox(true);
} else if (params.get("q")) {
  box.value = params.get("q");
  box.dispatchEvent(new Event("input"));
  runBox();
} else {
  box.focus();
}
