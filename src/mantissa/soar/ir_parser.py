"""``playbooks from-plan``: an incident response plan (Markdown, text or YAML in the module
reference's layout) becomes playbook YAML with ``status: draft``.

    # Playbook Name
    ## Trigger
    Description of when to run
    ## Steps
    1. **Step Name** - Action description

Offline and deterministic by default: each step's prose is matched against a table of
phrases ("disable the account" → ``disable_user``) and gets parameter templates that read
the alert's entities. With ``--llm`` a configured provider maps the prose the table cannot;
its answer is validated like any playbook. What remains unmapped becomes a
``manual_task`` step gated by an approval: a person does it and confirms.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mantissa.errors import ConfigError
from mantissa.soar.model import slug

_USER = "{{ alert.entities.user }}"
_IP = "{{ alert.entities.ip }}"
_HOST = "{{ alert.entities.host }}"
# a run with ``--input`` (no alert) still reads well in notifications and tickets
_TITLE = "{{ alert.rule_title | default('manual run') }}"

# (phrases, action_type, parameters, requires_approval); first match wins, order matters
RULES: list[tuple[tuple[str, ...], str, dict[str, Any], bool]] = [
    (
        (
            "api key",
            "access key",
            "api token",
            "revoke key",
            "rotate key",
            "rotate credentials",
            "revoke credentials",
            "deactivate key",
        ),
        "revoke_api_keys",
        {"user_id": _USER, "scope": "all"},
        True,
    ),
    (
        (
            "re-enable",
            "reenable",
            "enable the account",
            "enable the user",
            "restore access",
            "unlock the account",
        ),
        "enable_user",
        {"user_id": _USER},
        True,
    ),
    (
        (
            "disable",
            "suspend",
            "deactivate",
            "lock the account",
            "lock account",
            "block the user",
            "block user",
        ),
        "disable_user",
        {"user_id": _USER, "reason": _TITLE},
        True,
    ),
    (
        (
            "revoke session",
            "revoke all session",
            "sign out",
            "log out",
            "logout",
            "terminate session",
            "kill session",
            "invalidate session",
            "revoke the session",
            "end session",
            "end all session",
        ),
        "revoke_sessions",
        {"user_id": _USER, "include_refresh_tokens": True},
        False,
    ),
    (
        (
            "reset password",
            "reset the password",
            "force password",
            "password reset",
            "rotate password",
            "change password",
            "reset their password",
            "reset the user's password",
        ),
        "reset_password",
        {"user_id": _USER, "send_notification": True},
        True,
    ),
    (("unblock", "allow the ip", "remove the block"), "unblock_ip", {"ip_address": _IP}, True),
    (
        (
            "block the ip",
            "block ip",
            "block the source ip",
            "block source",
            "block the address",
            "block address",
            "firewall",
            "blacklist",
            "deny list",
            "denylist",
            "waf",
        ),
        "block_ip",
        {"ip_address": _IP, "duration": 86400},
        True,
    ),
    (
        ("block the domain", "block domain", "sinkhole", "dns block"),
        "block_domain",
        {"domain": "{{ alert.entities.domain }}", "block_type": "sinkhole"},
        True,
    ),
    (
        (
            "release the host",
            "unisolate",
            "un-isolate",
            "lift containment",
            "reconnect the host",
            "restore network",
        ),
        "unisolate_host",
        {"host_id": _HOST},
        True,
    ),
    (
        (
            "isolate",
            "contain the host",
            "contain host",
            "quarantine the host",
            "quarantine host",
            "network containment",
            "disconnect the host",
        ),
        "isolate_host",
        {"host_id": _HOST, "isolation_level": "full"},
        True,
    ),
    (
        (
            "forensic",
            "collect evidence",
            "memory dump",
            "triage package",
            "collect artifacts",
            "gather evidence",
            "snapshot",
        ),
        "collect_forensics",
        {"host_id": _HOST, "collection_type": "triage"},
        False,
    ),
    (
        (
            "update the ticket",
            "update ticket",
            "comment on the ticket",
            "close the ticket",
            "add a comment",
        ),
        "update_ticket",
        {"system": "jira", "ticket_id": "{{ steps.ticket.output.key }}", "comment": ""},
        False,
    ),
    (
        ("ticket", "jira", "servicenow", "incident record", "open a case", "create a case"),
        "create_ticket",
        {
            "system": "jira",
            "title": _TITLE,
            "description": "{{ alert.description | default('') }}",
        },
        False,
    ),
    (
        (
            "notify",
            "alert the",
            "page ",
            "pagerduty",
            "slack",
            "email",
            "inform",
            "message",
            "escalate",
            "tell the",
        ),
        "send_notification",
        {"destination": "slack", "message": _TITLE + ": {{ alert.id | default('manual run') }}"},
        False,
    ),
    (
        (
            "query",
            "search the logs",
            "search logs",
            "look up",
            "lookup",
            "hunt",
            "investigate",
            "review the logs",
            "review logs",
            "check the logs",
            "find other",
        ),
        "run_query",
        {
            "query": "SELECT * FROM events WHERE user = '{{ alert.entities.user | replace(\"'\", \"''\") }}' LIMIT 100"
        },
        False,
    ),
    (
        ("tag the asset", "mark the asset", "update the asset", "asset inventory", "cmdb"),
        "update_asset",
        {"asset_id": _HOST, "status": "compromised", "tags": ["incident"]},
        False,
    ),
]

_SEVERITIES = ("critical", "high", "medium", "low", "informational")
_STEP_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*+])\s+(.*)$")
_BOLD = re.compile(r"^\*\*(.+?)\*\*\s*(?:[-–—:]\s*)?(.*)$")


def map_step(text: str) -> tuple[str, dict[str, Any], bool] | None:
    """The action for a step's prose, or None when no phrase matches."""
    low = " " + re.sub(r"\s+", " ", text.lower()) + " "
    for phrases, action, params, approval in RULES:
        if any(p in low for p in phrases):
            return action, dict(params), approval
    return None


def _sections(text: str) -> tuple[str | None, dict[str, list[str]]]:
    title = None
    sections: dict[str, list[str]] = {}
    current = "_"
    for line in text.splitlines():
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            level, head = len(m.group(1)), m.group(2).strip()
            if level == 1 and title is None:
                title = head
                current = "_"
            else:
                current = head.lower()
            sections.setdefault(current, [])
            continue
        sections.setdefault(current, []).append(line)
    return title, sections


def _steps_from_lines(lines: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in lines:
        m = _STEP_LINE.match(line)
        if m:
            body = m.group(1).strip()
            b = _BOLD.match(body)
            if b:
                out.append((b.group(1).strip(), b.group(2).strip()))
            else:
                name, _, desc = body.partition(" - ")
                out.append((name.strip(), desc.strip() or name.strip()))
        elif out and line.strip() and line.startswith((" ", "\t")):
            name, desc = out[-1]
            out[-1] = (name, (desc + " " + line.strip()).strip())
    return out


def _trigger(text: str) -> dict[str, Any]:
    low = text.lower()
    sev = [s for s in _SEVERITIES if re.search(rf"\b{s}\b", low)]
    if re.search(r"\b(daily|hourly|weekly|every (day|hour|week|monday|morning))\b", low):
        cron = (
            "0 * * * *"
            if "hour" in low
            else ("0 8 * * 1" if "week" in low or "monday" in low else "0 8 * * *")
        )
        return {"type": "schedule", "schedule": cron}
    if "alert" in low or "detect" in low or sev or "`" in text:
        cond: dict[str, Any] = {}
        rid = re.search(r"`([A-Za-z0-9_.*?-]+)`", text)
        if rid:
            cond["rule_id"] = rid.group(1)
        if sev:
            # "high or critical", "high and above"
            if re.search(r"(and|or) (above|higher)", low):
                sev = list(_SEVERITIES[: _SEVERITIES.index(sev[-1]) + 1])
            cond["severity"] = [
                s for s in ("informational", "low", "medium", "high", "critical") if s in sev
            ]
        return {"type": "alert", "conditions": cond}
    return {"type": "manual"}


def _llm_map(runtime: Any, name: str, desc: str) -> tuple[str, dict[str, Any], bool] | None:
    from mantissa.llm.base import LLMConfig, get_provider
    from mantissa.soar.actions import action_types

    cfg = runtime.config.section("llm", LLMConfig)
    if not cfg.provider:
        raise ConfigError("--llm needs an llm provider in mantissa.yaml (llm.provider)")
    types = action_types()
    schema = {
        "type": "object",
        "properties": {
            "action_type": {"type": "string", "enum": [*sorted(types), "none"]},
            "parameters": {"type": "object"},
        },
        "required": ["action_type", "parameters"],
    }
    catalog = "\n".join(
        f"- {k}: {v.description} params={list(v.schema()['properties'])}"
        for k, v in sorted(types.items())
        if k != "manual_task"
    )
    prompt = (
        "Map this incident response step to one action, or 'none' if no action fits.\n"
        f"Actions:\n{catalog}\nParameter values may be Jinja templates over "
        "alert.entities.user/ip/host/domain and alert.rule_title.\n"
        f"Step: {name} - {desc}"
    )
    out = get_provider(cfg).generate_with_schema(prompt, schema, name="map_step")
    act = out.get("action_type")
    if act not in types or act == "manual_task":
        return None
    params = out.get("parameters") or {}
    try:
        types[act].params.model_validate(
            {k: v for k, v in params.items()}  # templates are strings: they validate as str
        )
    except Exception:
        return None
    return act, params, True


def plan_to_playbook(
    text: str, kind: str = "md", runtime: Any = None, default_name: str = "Imported plan"
) -> dict[str, Any]:
    """Parse a plan into a playbook document (a dict ready for YAML)."""
    if kind in ("yaml", "yml"):
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"plan: invalid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("plan: a YAML plan is a mapping with name, trigger, steps")
        title = str(data.get("name") or default_name)
        trig_text = str(data.get("trigger") or "")
        steps = []
        for s in data.get("steps") or []:
            if isinstance(s, str):
                name, _, desc = s.partition(" - ")
                steps.append((name.strip(), desc.strip() or name.strip()))
            elif isinstance(s, dict):
                steps.append(
                    (
                        str(s.get("name", "step")),
                        str(s.get("description") or s.get("action") or s.get("name")),
                    )
                )
    else:
        title, sections = _sections(text)
        if kind == "txt" and title is None:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            title = lines[0].strip() if lines else None
            sections = {"steps": lines[1:]}
        title = title or default_name
        trig_key = next((k for k in sections if k.startswith(("trigger", "when", "scope"))), None)
        trig_text = "\n".join(sections.get(trig_key, [])) if trig_key else ""
        step_key = next(
            (
                k
                for k in sections
                if k.startswith(("step", "response", "actions", "procedure", "containment"))
            ),
            None,
        )
        steps = _steps_from_lines(sections.get(step_key, []) if step_key else text.splitlines())
    if not steps:
        raise ConfigError("plan: no steps found", hint="list them under '## Steps' as 1. 2. 3.")
    out_steps: list[dict[str, Any]] = []
    ids: set[str] = set()
    prev: str | None = None
    for i, (name, desc) in enumerate(steps, 1):
        mapped = map_step(f"{name} {desc}")
        if mapped is None and runtime is not None:
            mapped = _llm_map(runtime, name, desc)
        sid = slug(name)[:40].strip("-") or f"step-{i}"
        while sid in ids:
            sid = f"{sid}-{i}"
        ids.add(sid)
        step: dict[str, Any] = {"id": sid, "name": name[:200]}
        if desc and desc != name:
            step["description"] = desc
        if mapped is None:
            step.update(
                action_type="manual_task",
                requires_approval=True,
                parameters={"instructions": f"{name}: {desc}"[:2000]},
            )
        else:
            action, params, approval = mapped
            if action == "create_ticket":
                step["id"] = "ticket" if "ticket" not in ids else sid
                ids.add(step["id"])
            step.update(action_type=action, parameters=params)
            if approval:
                step["requires_approval"] = True
        if prev:
            step["depends_on"] = [prev]
        prev = step["id"]
        out_steps.append(step)
    return {
        "name": title,
        "id": slug(title),
        "version": "1.0.0",
        "status": "draft",
        "description": f"Converted from an incident response plan: {title}",
        "trigger": _trigger(trig_text),
        "steps": out_steps,
        "tags": ["from-plan"],
        "metadata": {"author": "mantissa playbooks from-plan"},
    }


def parse_plan(path: Path, runtime: Any = None) -> str:
    """Read ``path`` (.md, .txt, .yaml) and return playbook YAML, validated."""
    from mantissa.soar.store import parse

    kind = path.suffix.lower().lstrip(".")
    if kind not in ("md", "markdown", "txt", "yaml", "yml"):
        raise ConfigError(f"{path}: plans are .md, .txt or .yaml files")
    doc = plan_to_playbook(
        path.read_text(),
        "md" if kind == "markdown" else kind,
        runtime,
        default_name=path.stem.replace("-", " ").replace("_", " ").title(),
    )
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    parse(text, str(path))  # the output must be a valid playbook
    return text
