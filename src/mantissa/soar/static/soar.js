// SOAR console pages: playbooks (Run), executions (steps, Cancel/Resume) and approvals
// (bound parameters, expiry countdown, Approve/Deny with a reason). One script for the
// three pages; it talks to the JSON API with the session cookie and the CSRF token.
// Buttons that change something are drawn for responder/admin only (the API answers
// 403 to anyone else anyway).

import {
  api, boot, can, clear, dataTable, el, errorBox, fmtTime, ago, toast,
} from "./common.js";

document.head.append(el("link", { rel: "stylesheet", href: "/console/static/soar.css" }));

const main = boot();
const page = main.dataset.page;
const sub = main.dataset.subpath || "";
const RESPONDER = can("responder");
const TERMINAL = new Set(["succeeded", "failed", "denied", "expired", "cancelled"]);
const POLL_MS = 1500;

const badge = (st) => el("span", { class: `badge soar-${st}`, "data-status": st }, String(st).replace("_", " "));
const json = (v) => el("pre", { class: "json" }, JSON.stringify(v ?? null, null, 2));
const readOnlyNote = () => RESPONDER ? null
  : el("p", { class: "muted small", id: "read-only" }, "Read-only: running playbooks and deciding approvals need the responder role.");

function deniedOr(err) {
  if (err.status === 403) {
    return el("div", { class: "error-box", role: "alert", id: "forbidden" },
      "Your role cannot see this page's data (", err.message, ").");
  }
  return errorBox(err);
}

// -- playbooks ----------------------------------------------------------------------

function triggerText(t) {
  if (!t) return "";
  if (t.type === "alert") {
    const c = t.conditions || {};
    const parts = [];
    if (c.rule_id) parts.push(`rule ${c.rule_id}`);
    if (c.severity) parts.push(`severity ${[].concat(c.severity).join("|")}`);
    if (c.tags) parts.push(`tags ${[].concat(c.tags).join("|")}`);
    return `alert${parts.length ? `: ${parts.join(", ")}` : ""}`;
  }
  if (t.type === "schedule") return `schedule ${t.schedule || ""}`;
  return t.type;
}

async function playbooksList() {
  const body = el("div", { id: "playbooks-table" }, el("p", { class: "muted" }, "Loading…"));
  clear(main, el("div", { class: "page-head" }, el("h1", {}, "Playbooks")), readOnlyNote(), body);
  let items;
  try {
    items = await api("/playbooks");
  } catch (err) {
    clear(body, deniedOr(err));
    return;
  }
  const columns = ["id", "name", "status", "version", "versions", "trigger", ""];
  const rows = items.map((p) => [p.id, p.name, p.status, p.active_version || p.latest,
    p.versions.join(", "), triggerText(p.trigger), p.id]);
  clear(body, dataTable(columns, rows, {
    onOpen: (row) => location.assign(`/console/playbooks/${encodeURIComponent(row[0])}`),
    render: (col, v, row) => {
      if (col === "status") return badge(v);
      if (col === "") {
        return RESPONDER
          ? el("button", { type: "button", class: "primary run", "data-playbook": v, onclick: () => runDialog(row[0], row[3]) }, "Run")
          : "";
      }
      return undefined;
    },
  }));
}

function runDialog(id, version) {
  const input = el("textarea", { id: "run-input", rows: 8, "aria-label": "Input (JSON)" }, "{}");
  const alertId = el("input", { type: "text", id: "run-alert", placeholder: "or an alert id (al_…)", "aria-label": "Alert id" });
  const dry = el("input", { type: "checkbox", id: "run-dry" });
  const err = el("div", { id: "run-error" });
  const dlg = el("dialog", { id: "run-dialog", "aria-labelledby": "run-title" },
    el("h2", { id: "run-title" }, `Run ${id}@${version}`),
    el("p", { class: "muted small" }, "The input is what templates see as `input` (and `alert` for a manual run)."),
    input, alertId, el("label", { class: "check" }, dry, "Dry run (send nothing, record the would-be requests)"),
    err,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "primary", id: "run-submit", onclick: submit }, "Run"),
      el("button", { type: "button", onclick: () => dlg.close() }, "Cancel")));
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();

  async function submit() {
    const req = { dry_run: dry.checked, wait: false };
    if (alertId.value.trim()) {
      req.alert_id = alertId.value.trim();
    } else {
      try {
        req.input = JSON.parse(input.value || "{}");
      } catch (e) {
        clear(err, el("p", { class: "error" }, `Input is not JSON: ${e.message}`));
        return;
      }
      if (typeof req.input !== "object" || Array.isArray(req.input) || req.input === null) {
        clear(err, el("p", { class: "error" }, "Input must be a JSON object"));
        return;
      }
    }
    try {
      const out = await api(`/playbooks/${encodeURIComponent(`${id}@${version}`)}/run`, { method: "POST", body: req });
      toast(`Started ${out.execution_id}`);
      location.assign(`/console/executions/${out.execution_id}`);
    } catch (e) {
      clear(err, errorBox(e));
    }
  }
}

async function playbookDetail(ref) {
  clear(main, el("p", { class: "muted" }, "Loading…"));
  let pb;
  try {
    pb = await api(`/playbooks/${encodeURIComponent(ref)}`);
  } catch (err) {
    clear(main, deniedOr(err));
    return;
  }
  const steps = pb.steps.map((s) => [s.id, s.name, s.action_type, s.requires_approval ? "yes" : "",
    (s.depends_on || []).join(", "), s.condition || "", s.on_failure]);
  clear(main,
    el("p", { class: "crumbs" }, el("a", { href: "/console/playbooks" }, "← Playbooks")),
    el("div", { class: "page-head" },
      el("h1", {}, `${pb.name} `, el("span", { class: "muted" }, `${pb.id}@${pb.version}`)),
      RESPONDER ? el("button", { type: "button", class: "primary run", onclick: () => runDialog(pb.id, pb.version) }, "Run") : null),
    readOnlyNote(),
    el("p", {}, badge(pb.status), " ", triggerText(pb.trigger)),
    pb.description ? el("p", {}, pb.description) : null,
    el("h2", {}, "Steps"),
    dataTable(["id", "name", "action", "approval", "depends on", "condition", "on failure"], steps),
    el("p", {}, el("a", { href: `/console/executions?playbook_id=${encodeURIComponent(pb.id)}` }, "Executions of this playbook")),
    el("details", {}, el("summary", {}, "YAML"), el("pre", { class: "json" }, pb.yaml)));
}

// -- executions ---------------------------------------------------------------------

async function executionsList() {
  const params = new URLSearchParams(location.search);
  const statusSel = el("select", { id: "exec-status", "aria-label": "Status", onchange: load },
    el("option", { value: "" }, "any status"),
    ["running", "waiting_approval", "succeeded", "failed", "denied", "expired", "cancelled"].map((s) =>
      el("option", { value: s, selected: params.get("status") === s }, s.replace("_", " "))));
  const body = el("div", { id: "executions-table" }, el("p", { class: "muted" }, "Loading…"));
  const summary = el("p", { class: "muted", id: "exec-count" });
  clear(main, el("div", { class: "page-head" }, el("h1", {}, "Executions")),
    el("div", { class: "filters" }, statusSel,
      params.get("playbook_id") ? el("span", { class: "chip" }, `playbook ${params.get("playbook_id")}`) : null),
    summary, body);
  let timer = null;

  async function load() {
    clearTimeout(timer);
    let page;
    try {
      page = await api("/executions", { query: { status: statusSel.value, playbook_id: params.get("playbook_id"), limit: 100 } });
    } catch (err) {
      clear(body, deniedOr(err));
      return;
    }
    summary.textContent = `${page.total} execution${page.total === 1 ? "" : "s"}`;
    const rows = page.items.map((x) => [x.id, x.playbook_id, x.version, x.status, x.trigger,
      x.dry_run ? "yes" : "", x.created_at, x.error || ""]);
    clear(body, dataTable(["id", "playbook", "version", "status", "trigger", "dry run", "created", "error"], rows, {
      onOpen: (row) => location.assign(`/console/executions/${row[0]}`),
      render: (col, v) => (col === "status" ? badge(v) : undefined),
    }));
    if (page.items.some((x) => !TERMINAL.has(x.status))) timer = setTimeout(load, POLL_MS * 2);
  }
  await load();
}

async function executionDetail(eid) {
  clear(main, el("p", { class: "muted" }, "Loading…"));
  let timer = null;

  async function load() {
    clearTimeout(timer);
    let ex;
    try {
      ex = await api(`/executions/${encodeURIComponent(eid)}`);
    } catch (err) {
      clear(main, el("p", { class: "crumbs" }, el("a", { href: "/console/executions" }, "← Executions")), deniedOr(err));
      return;
    }
    draw(ex);
    if (!TERMINAL.has(ex.status)) timer = setTimeout(load, POLL_MS);
  }

  async function control(path, label) {
    try {
      const out = await api(path, { method: "POST" });
      toast(`${label}: ${out.status}`);
    } catch (err) {
      toast(err.message, "error");
    }
    load();
  }

  function draw(ex) {
    const live = !TERMINAL.has(ex.status);
    // a live execution resumes where it stopped; an ended one only with a step to run again
    const again = ex.steps.filter((s) => ["failed", "in_doubt", "cancelled", "skipped", "expired", "denied"].includes(s.status));
    const retry = el("select", { id: "retry-step", "aria-label": "Step to run again" },
      live ? el("option", { value: "" }, "resume where it stopped") : null,
      again.map((s) => el("option", { value: s.id }, `retry ${s.id}`)));
    const buttons = RESPONDER && (live || again.length) ? el("div", { class: "actions" },
      live ? el("button", { type: "button", id: "exec-cancel", onclick: () => control(`/executions/${eid}/cancel`, "Cancel") }, "Cancel") : null,
      el("button", {
        type: "button", id: "exec-resume",
        onclick: () => control(`/executions/${eid}/resume${retry.value ? `?retry=${encodeURIComponent(retry.value)}` : ""}`, "Resume"),
      }, "Resume"), retry) : null;
    const steps = el("div", { class: "soar-steps", id: "exec-steps" }, ex.steps.map((s) =>
      el("section", { class: `card soar-step soar-step-${s.status}`, "data-step": s.id },
        el("h3", {}, badge(s.status), " ", s.id, " ", el("span", { class: "muted" }, s.action),
          s.attempt > 1 ? el("span", { class: "muted small" }, ` · attempt ${s.attempt}`) : null),
        el("p", { class: "muted small" },
          s.started_at ? `started ${fmtTime(s.started_at)}` : "not started",
          s.ended_at ? ` · ended ${fmtTime(s.ended_at)}` : "",
          s.next_attempt_at ? ` · next attempt ${fmtTime(s.next_attempt_at)}` : ""),
        s.error ? el("p", { class: "error step-error" }, s.error) : null,
        s.input ? el("details", {}, el("summary", {}, "Input"), json(s.input)) : null,
        s.output !== null && s.output !== undefined
          ? el("details", { open: true }, el("summary", {}, "Output"), json(s.output)) : null)));
    const approvals = ex.approvals.length ? [el("h2", {}, "Approvals"),
      dataTable(["id", "step", "status", "expires", "decided by", "via", "reason"],
        ex.approvals.map((a) => [a.id, a.step, a.status, a.expires_at, a.decided_by || "", a.via || "", a.reason || ""]), {
          onOpen: RESPONDER ? (row) => location.assign(`/console/approvals/${row[0]}`) : undefined,
          render: (col, v) => (col === "status" ? badge(v) : undefined),
        })] : [];
    clear(main,
      el("p", { class: "crumbs" }, el("a", { href: "/console/executions" }, "← Executions")),
      el("div", { class: "page-head" },
        el("h1", {}, "Execution ", el("code", {}, ex.id)),
        el("span", { id: "exec-status" }, badge(ex.status))),
      readOnlyNote(),
      el("p", {},
        el("a", { href: `/console/playbooks/${encodeURIComponent(ex.playbook_id)}` }, `${ex.playbook_id}@${ex.version}`),
        ` · ${ex.trigger}${ex.dry_run ? " · dry run" : ""}${ex.alert_id ? ` · alert ${ex.alert_id}` : ""}`,
        ` · created ${fmtTime(ex.created_at)} (${ago(ex.created_at)})`,
        ex.ended_at ? ` · ended ${fmtTime(ex.ended_at)}` : ""),
      ex.error ? el("div", { class: "error-box", id: "exec-error" }, ex.error) : null,
      ex.status === "waiting_approval" && RESPONDER
        ? el("p", {}, el("a", { href: "/console/approvals", id: "goto-approvals" }, "Waiting for a person: open the pending approvals")) : null,
      buttons,
      el("h2", {}, "Steps"), steps,
      approvals,
      el("details", {}, el("summary", {}, "Audit trail"),
        dataTable(["at", "kind", "actor", "detail"], (ex.audit || []).map((a) => {
          const { at, kind, actor, ...rest } = a;
          return [at, kind, actor || "", rest];
        }))),
      el("details", {}, el("summary", {}, "Input"), json(ex.input)));
  }
  await load();
}

// -- approvals ------------------------------------------------------------------------

function countdown(expiresAt) {
  const node = el("span", { class: "countdown", "data-expires": expiresAt });
  const tick = () => {
    const s = Math.round((new Date(expiresAt).getTime() - Date.now()) / 1000);
    if (s <= 0) {
      node.textContent = "expired";
      node.classList.add("error");
      return false;
    }
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    node.textContent = `expires in ${h ? `${h}h ` : ""}${h || m ? `${m}m ` : ""}${s % 60}s`;
    return true;
  };
  tick();
  const t = setInterval(() => { if (!node.isConnected || !tick()) clearInterval(t); }, 1000);
  return node;
}

/** The approve / deny form for one pending approval (link: the signed link's query). */
function decisionForm(ap, link, done) {
  const reason = el("input", { type: "text", class: "reason", "aria-label": "Reason", placeholder: "Reason (recorded in the audit trail)", maxlength: 2000 });
  const decide = async (decision) => {
    const body = { reason: reason.value.trim() || null };
    if (link && link.decision === decision) body.token = link.token;
    try {
      const out = await api(`/approvals/${encodeURIComponent(ap.id)}/${decision}`, { method: "POST", body });
      toast(`${ap.id} ${out.status}; execution ${out.execution_status}`);
      done(out);
    } catch (err) {
      toast(err.message, "error");
      done(null, err);
    }
  };
  return el("div", { class: "actions decide" }, reason,
    el("button", { type: "button", class: `approve${!link || link.decision === "approve" ? " primary" : ""}`, onclick: () => decide("approve") }, "Approve"),
    el("button", { type: "button", class: `deny${link && link.decision === "deny" ? " primary" : ""}`, onclick: () => decide("deny") }, "Deny"));
}

function approvalCard(ap, link, done) {
  return el("section", { class: "card approval", "data-approval": ap.id },
    el("h3", {}, badge(ap.status), " ", ap.action, " ", el("span", { class: "muted" }, `step ${ap.step}`)),
    el("p", { class: "small" },
      "Execution ", el("a", { href: `/console/executions/${ap.execution_id}` }, ap.execution_id),
      ` · requested ${fmtTime(ap.requested_at)} · `,
      ap.status === "pending" ? countdown(ap.expires_at) : `expires ${fmtTime(ap.expires_at)}`,
      ap.auto_approve_after_timeout ? " · approved automatically at expiry" : ""),
    el("p", { class: "muted small" }, "Bound to these rendered parameters (a changed rendering is refused):"),
    json(ap.parameters),
    ap.decided_by ? el("p", { class: "small" }, `${ap.status} by ${ap.decided_by} via ${ap.via}`,
      ap.reason ? `: ${ap.reason}` : "", ap.decided_at ? ` at ${fmtTime(ap.decided_at)}` : "") : null,
    ap.status === "pending" && RESPONDER ? decisionForm(ap, link, done) : null);
}

async function approvalsList() {
  const body = el("div", { id: "approvals-list" }, el("p", { class: "muted" }, "Loading…"));
  const summary = el("p", { class: "muted", id: "approvals-count", "aria-live": "polite" });
  clear(main, el("div", { class: "page-head" }, el("h1", {}, "Approvals")), readOnlyNote(), summary, body);
  let timer = null;

  async function load() {
    clearTimeout(timer);
    let items;
    try {
      items = await api("/approvals");
    } catch (err) {
      clear(body, deniedOr(err));
      return;
    }
    summary.textContent = `${items.length} pending`;
    clear(body, items.length ? items.map((ap) => approvalCard(ap, null, () => load()))
      : el("p", { class: "muted empty" }, "Nothing waits for a decision."));
    // a form somebody is typing into is not redrawn under them
    timer = setTimeout(() => {
      if (!body.contains(document.activeElement)) load();
      else timer = setTimeout(load, 5000);
    }, 5000);
  }
  await load();
}

async function approvalDetail(aid) {
  const params = new URLSearchParams(location.search);
  const link = params.get("token") ? { token: params.get("token"), decision: params.get("decision") || "" } : null;
  clear(main, el("p", { class: "muted" }, "Loading…"));

  async function load() {
    let ap;
    try {
      ap = await api(`/approvals/${encodeURIComponent(aid)}`, { query: link ? { token: link.token, decision: link.decision } : {} });
    } catch (err) {
      clear(main, el("p", { class: "crumbs" }, el("a", { href: "/console/approvals" }, "← Approvals")),
        err.status === 403 && link
          ? el("div", { class: "error-box", role: "alert", id: "link-refused" }, "This approval link is invalid or has expired. ",
            el("a", { href: "/console/approvals" }, "See the pending approvals"))
          : deniedOr(err));
      return;
    }
    clear(main,
      el("p", { class: "crumbs" }, el("a", { href: "/console/approvals" }, "← Approvals")),
      el("div", { class: "page-head" }, el("h1", {}, "Approval ", el("code", {}, ap.id))),
      link ? el("p", { class: "muted small" }, `Opened from a signed link to ${link.decision}.`) : null,
      approvalCard(ap, link, () => load()));
  }
  await load();
}

// -- dispatch -------------------------------------------------------------------------

const routes = {
  playbooks: [playbooksList, playbookDetail],
  executions: [executionsList, executionDetail],
  approvals: [approvalsList, approvalDetail],
};
const [listView, detailView] = routes[page] || [];
if (listView) {
  const ref = decodeURIComponent(sub.split("/")[0] || "");
  (ref ? detailView(ref) : listView()).catch((err) => clear(main, errorBox(err)));
}
