// Rules: list with filters, enable/disable, view (and edit) the YAML and compiled SQL,
// and run a rule over a time range to see its matches.

import {
  api, boot, can, clear, dataTable, el, errorBox, severityBadge, toast,
} from "./common.js";

const main = document.getElementById("main");
const params = new URLSearchParams(location.search);
const state = { q: params.get("q") || "", level: "", source: "", enabled: "", offset: 0, limit: 100 };

const qBox = el("input", { type: "search", id: "rule-q", placeholder: "Filter by id, title or tag  ( / )", value: state.q, "data-search-box": true, "aria-label": "Filter rules" });
const levelSel = el("select", { id: "rule-level", "aria-label": "Level" }, el("option", { value: "" }, "any level"),
  ["informational", "low", "medium", "high", "critical"].map((l) => el("option", { value: l }, l)));
const sourceBox = el("input", { type: "search", id: "rule-source", placeholder: "Source / table", "aria-label": "Source" });
const enabledSel = el("select", { id: "rule-enabled", "aria-label": "Enabled" },
  el("option", { value: "" }, "enabled and disabled"), el("option", { value: "true" }, "enabled"), el("option", { value: "false" }, "disabled"));
const count = el("p", { class: "muted", "aria-live": "polite" });
const list = el("div", { id: "rules-list", class: "scroll" });
const detail = el("div", { id: "rule-detail" });

clear(main,
  el("div", { class: "page-head" }, el("h1", {}, "Rules")),
  el("div", { class: "filters", role: "search" }, qBox, levelSel, sourceBox, enabledSel),
  count,
  el("div", { class: "split" }, list, detail));

let timer;
for (const c of [qBox, sourceBox]) c.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 250); });
for (const c of [levelSel, enabledSel]) c.addEventListener("change", load);

async function load() {
  try {
    const page = await api("/rules", {
      query: {
        q: qBox.value.trim(), level: levelSel.value, source: sourceBox.value.trim(),
        enabled: enabledSel.value, limit: state.limit, offset: state.offset,
      },
    });
    count.textContent = `${page.total} rule${page.total === 1 ? "" : "s"}`;
    const rows = page.items.map((r) => [r.enabled, r.level, r, r.table, r.kind]);
    const table = dataTable(["on", "level", "rule", "table", "kind"], rows, {
      onOpen: (row) => open(row[2].id),
      render: (col, v) => {
        if (col === "on") {
          const cb = el("input", {
            type: "checkbox", checked: v, disabled: !can("engineer"), "aria-label": "Enabled",
            title: can("engineer") ? "Enable or disable" : "needs role engineer",
          });
          return cb;
        }
        if (col === "level") return severityBadge(v);
        if (col === "rule") return el("div", {}, el("span", { class: "alert-title" }, v.title), el("div", { class: "muted small" }, v.id));
        return undefined;
      },
    });
    table.querySelectorAll("input[type=checkbox]").forEach((cb, i) => {
      cb.addEventListener("change", () => toggle(page.items[i], cb));
    });
    clear(list, table);
    if (page.items.length === 1) open(page.items[0].id);
  } catch (err) {
    clear(list, errorBox(err));
  }
}

async function toggle(rule, cb) {
  try {
    await api(`/rules/${encodeURIComponent(rule.id)}`, { method: "PATCH", body: { enabled: cb.checked } });
    toast(`${rule.title}: ${cb.checked ? "enabled" : "disabled"}`);
  } catch (err) {
    cb.checked = !cb.checked;
    toast(err.message, "error");
  }
}

function localInput(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function open(id) {
  clear(detail, el("p", { class: "muted" }, "Loading…"));
  let rule;
  try {
    rule = await api(`/rules/${encodeURIComponent(id)}`);
  } catch (err) {
    clear(detail, errorBox(err));
    return;
  }
  const now = new Date();
  const since = el("input", { type: "datetime-local", id: "run-since", value: localInput(new Date(now - 24 * 3600e3)) });
  const until = el("input", { type: "datetime-local", id: "run-until", value: localInput(now) });
  const matches = el("div", { id: "rule-matches", class: "scroll" });
  const yaml = el("textarea", { id: "rule-yaml", rows: 16, spellcheck: "false", readonly: !(can("engineer") && rule.editable !== false && !rule.builtin), "aria-label": "Rule YAML" });
  yaml.value = rule.yaml;

  async function runRule(ev) {
    ev.preventDefault();
    clear(matches, el("p", { class: "muted" }, "Running…"));
    try {
      const out = await api(`/rules/${encodeURIComponent(rule.id)}/run`, {
        method: "POST",
        body: { since: new Date(since.value).toISOString(), until: new Date(until.value).toISOString() },
      });
      clear(matches,
        el("p", { class: "summary" }, `${out.matches} match${out.matches === 1 ? "" : "es"}${out.truncated ? " (truncated)" : ""} in ${Math.round(out.elapsed_ms)} ms`),
        dataTable(out.columns, out.rows));
    } catch (err) {
      clear(matches, errorBox(err));
    }
  }

  async function save() {
    try {
      const saved = await api(`/rules/${encodeURIComponent(rule.id)}`, { method: "PUT", body: { yaml: yaml.value } });
      toast("Rule saved");
      open(saved.id);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  clear(detail,
    el("section", { class: "card" },
      el("h2", {}, severityBadge(rule.level), " ", rule.title),
      el("p", { class: "muted small" }, `${rule.id} · ${rule.file} · every ${Math.round(rule.interval_secs / 60)} min · ${rule.enabled ? "enabled" : "disabled"}`),
      rule.description ? el("p", {}, rule.description) : null,
      rule.tags.length ? el("p", {}, rule.tags.map((t) => el("span", { class: "chip" }, t))) : null,
      el("p", {}, el("a", { href: `/console/alerts?${new URLSearchParams({ rule_id: rule.id, status: "open" })}` }, "Alerts from this rule →")),
      el("form", { class: "actions", onsubmit: runRule },
        el("label", { for: "run-since" }, "From"), since,
        el("label", { for: "run-until" }, "to"), until,
        el("button", { type: "submit", class: "primary", id: "run-rule", disabled: !can("engineer"), title: can("engineer") ? "" : "needs role engineer" }, "Run rule")),
      matches),
    el("details", { class: "card", open: true }, el("summary", {}, "YAML"), yaml,
      !yaml.readOnly ? el("div", { class: "actions" }, el("button", { type: "button", id: "save-rule", onclick: save }, "Save")) : null),
    el("details", { class: "card" }, el("summary", {}, "Compiled SQL"),
      rule.sql ? el("pre", { class: "sql" }, rule.sql) : el("p", { class: "error-box" }, rule.sql_error || "not compiled")));
}

boot({});
load();
