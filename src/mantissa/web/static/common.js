// Shared console code: API calls, safe DOM building, tables, pivots, keyboard.
// Everything is built with DOM nodes and textContent (never innerHTML with data):
// log data is attacker-controlled.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";

export const role = meta("mantissa-role");
const RANK = { viewer: 0, analyst: 1, engineer: 2, responder: 3, admin: 4 };
export const can = (need) => role === "admin" || (RANK[role] ?? -1) >= (RANK[need] ?? 99);

export class ApiError extends Error {
  constructor(status, body) {
    const err = body?.error ?? {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code;
    this.hint = err.hint;
  }
}

/** Call the JSON API with the session cookie (and the CSRF token on writes). */
export async function api(path, { method = "GET", body, query, raw = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, item);
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = meta("csrf-token");
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) {
    location.assign(`/console/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, { error: { message: "signed out" } });
  }
  if (!resp.ok) {
    let data = null;
    try { data = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(resp.status, data);
  }
  if (raw) return resp;
  if (resp.status === 204) return null;
  return resp.json();
}

/** el("a", {href, class, onclick}, child, ...): a DOM node; strings become text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function toast(message, kind = "info") {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = message;
  t.className = `show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, kind === "error" ? 8000 : 3500);
}

export function errorBox(err) {
  return el("div", { class: "error-box", role: "alert" },
    el("strong", {}, err.code ? `${err.code}: ` : "Error: "), err.message,
    err.hint ? el("div", { class: "muted" }, err.hint) : null);
}

// -- formatting ------------------------------------------------------------------

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/:00Z$/, "Z");
}

export function ago(iso) {
  if (!iso) return "never";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function fmtBytes(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function cellText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export const severityBadge = (sev) => el("span", { class: `badge sev-${sev}` }, sev);
export const statusBadge = (st) => el("span", { class: `badge st-${st}` }, st.replace("_", " "));

// -- pivots ------------------------------------------------------------------------

// columns whose values are people or addresses: clicking one searches its activity
const PIVOT_FIELDS = {
  user: "user", "user_name": "user", username: "user", actor: "user", email: "user", principal: "user",
  src_ip: "src_ip", dst_ip: "dst_ip", ip: "src_ip", "source_ip": "src_ip", client_ip: "src_ip",
  sourceIPAddress: "src_ip", host: "host",
};

export function pivotField(column) {
  return PIVOT_FIELDS[column] ?? null;
}

export function pivotUrl(field, value) {
  const p = new URLSearchParams({ pivot: field, value });
  return `/console/search?${p}`;
}

export function pivotLink(field, value) {
  return el("a", { href: pivotUrl(field, value), class: "pivot", title: `Search ${field} = ${value}` }, value);
}

// -- tables ------------------------------------------------------------------------

/**
 * A sortable table of `rows` (arrays) under `columns`. Header buttons sort (keyboard
 * too); user / IP cells are pivot links; `onOpen(row, index)` makes rows selectable.
 */
export function dataTable(columns, rows, { onOpen, caption, rowClass, render } = {}) {
  let sortCol = -1;
  let desc = false;
  const tbody = el("tbody");
  const heads = columns.map((c, i) =>
    el("th", { scope: "col", "aria-sort": "none" },
      el("button", { type: "button", class: "sort", onclick: () => sortBy(i) }, c)));
  const table = el("table", { class: "data" },
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, heads)), tbody);

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return cellText(a).localeCompare(cellText(b), undefined, { numeric: true });
  }

  function sortBy(i) {
    desc = sortCol === i ? !desc : false;
    sortCol = i;
    heads.forEach((h, j) => h.setAttribute("aria-sort", j === i ? (desc ? "descending" : "ascending") : "none"));
    const order = rows.map((r, idx) => idx).sort((x, y) => compare(rows[x][i], rows[y][i]) * (desc ? -1 : 1));
    draw(order);
  }

  function draw(order) {
    const trs = order.map((idx) => {
      const row = rows[idx];
      const tds = row.map((v, j) => {
        if (render) {
          const custom = render(columns[j], v, row);
          if (custom !== undefined) return el("td", {}, custom);
        }
        const field = pivotField(columns[j]);
        if (field && v !== null && v !== undefined && v !== "" && typeof v !== "object") {
          return el("td", {}, pivotLink(field, String(v)));
        }
        if (typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v)) {
          return el("td", { class: "ts" }, el("time", { datetime: v }, fmtTime(v)));
        }
        const text = cellText(v);
        return el("td", { title: text.length > 80 ? text : null }, text.length > 300 ? `${text.slice(0, 300)}…` : text);
      });
      const tr = el("tr", { class: rowClass ? rowClass(row) : null }, tds);
      if (onOpen) {
        tr.tabIndex = 0;
        tr.dataset.nav = "1";
        tr.addEventListener("click", (ev) => { if (!ev.target.closest("a,button")) onOpen(row, idx); });
        tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && ev.target === tr) onOpen(row, idx); });
      }
      return tr;
    });
    tbody.replaceChildren(...trs);
  }

  draw(rows.map((_, i) => i));
  if (!rows.length) {
    tbody.append(el("tr", {}, el("td", { colspan: columns.length, class: "muted empty" }, "No rows")));
  }
  return table;
}

// -- keyboard ------------------------------------------------------------------------

const NAV_KEYS = { a: "alerts", s: "search", r: "rules", o: "overview" };

export function installKeyboard(handlers = {}) {
  let pendingG = false;
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    const typing = t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (ev.key === "Escape" && typing) { t.blur(); return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (pendingG) {
      pendingG = false;
      if (NAV_KEYS[ev.key]) { location.assign(`/console/${NAV_KEYS[ev.key]}`); ev.preventDefault(); }
      return;
    }
    if (ev.key === "g") { pendingG = true; setTimeout(() => { pendingG = false; }, 1500); return; }
    if (ev.key === "?") { document.getElementById("help")?.showModal(); ev.preventDefault(); return; }
    if (ev.key === "/") {
      const box = document.querySelector("[data-search-box]");
      if (box) { box.focus(); ev.preventDefault(); }
      return;
    }
    if (ev.key === "j" || ev.key === "k") {
      const rows = [...document.querySelectorAll("tr[data-nav]")];
      if (!rows.length) return;
      const i = rows.indexOf(document.activeElement);
      const next = ev.key === "j" ? Math.min(rows.length - 1, i + 1) : Math.max(0, i - 1);
      rows[i === -1 ? 0 : next].focus();
      ev.preventDefault();
      return;
    }
    const h = handlers[ev.key];
    if (h) { h(ev); ev.preventDefault(); }
  });
}

/** Wire the page chrome (sign out, help) and the keyboard; returns <main>. */
export function boot(handlers) {
  document.getElementById("logout")?.addEventListener("click", async () => {
    try { await api("/auth/logout", { method: "POST" }); } catch { /* already out */ }
    location.assign("/console/login");
  });
  document.getElementById("help-button")?.addEventListener("click", () => document.getElementById("help").showModal());
  installKeyboard(handlers);
  return document.getElementById("main");
}

/** Download `text` as a file (used for CSV export). */
export function download(filename, blob) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename, class: "hidden" });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
}

export function sqlString(v) {
  return `'${String(v).replaceAll("'", "''")}'`;
}
