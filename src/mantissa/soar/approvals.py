"""Approvals: a gated step waits for a person, bound to its rendered parameters.

An approval expires at an absolute ``expires_at`` (``approval_timeout_seconds``); the
first decision wins (a conditional UPDATE); a decision after ``expires_at`` is refused
(409). Expiry is applied by :func:`sweep`, which ``serve`` runs every half second and
every read path runs first, so it holds across restarts. Requests can be sent to a
destination (Slack/Teams) with signed, short-lived approve/deny links.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets as _secrets
import time
from typing import Any

import sqlalchemy as sa

from mantissa.errors import MantissaError, NotFound
from mantissa.soar.schema import approvals, executions
from mantissa.state.store import as_utc, leases, utcnow

log = logging.getLogger("mantissa.soar")

WORKER_LEASE = "soar-worker"


class ApprovalConflict(MantissaError):
    """The approval was already decided, has expired, or was cancelled."""

    code = "approval_conflict"
    http_status = 409


class ApprovalForbidden(MantissaError):
    code = "forbidden"
    http_status = 403


def _iso(v: Any) -> str | None:
    v = as_utc(v)
    return v.isoformat().replace("+00:00", "Z") if v else None


def to_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "execution_id": r.execution_id,
        "step": r.step_key,
        "action": r.action,
        "parameters": r.parameters,
        "status": r.status,
        "requested_at": _iso(r.requested_at),
        "expires_at": _iso(r.expires_at),
        "auto_approve_after_timeout": bool(r.auto_approve),
        "decided_by": r.decided_by,
        "decided_at": _iso(r.decided_at),
        "via": r.via,
        "reason": r.reason,
    }


def gate(executor: Any, ex: Any, pb: Any, step: Any, row: Any, rendered: list[Any]) -> str:
    """Decide whether ``step`` may run now: proceed | wait | skip | denied | expired | ..."""
    from mantissa.soar.actions import mask
    from mantissa.soar.executor import new_id, params_digest, record_audit

    state = executor.state
    eid = ex.id
    digest = params_digest(rendered)
    with executor._tx() as conn:
        ap = conn.execute(
            sa.select(approvals).where(
                approvals.c.execution_id == eid, approvals.c.step_key == step.id
            )
        ).first()
    now = utcnow()
    if ap is None:
        cfg = executor.settings.approval
        timeout = step.approval_timeout_seconds
        if "approval_timeout_seconds" not in step.model_fields_set:
            timeout = cfg.timeout_seconds
        aid = new_id("ap")
        masked = mask(rendered[0] if len(rendered) == 1 else {"items": rendered}, [])
        with executor._tx() as conn:
            try:
                conn.execute(
                    approvals.insert().values(
                        id=aid,
                        execution_id=eid,
                        step_key=step.id,
                        step_id=step.id,
                        action=step.action_type,
                        parameters=masked,
                        parameters_sha256=digest,
                        status="pending",
                        requested_at=now,
                        expires_at=now + dt.timedelta(seconds=timeout),
                        auto_approve=step.auto_approve_after_timeout
                        or cfg.auto_approve_after_timeout,
                    )
                )
            except sa.exc.IntegrityError:
                return "wait"
            executor._transition(conn, eid, step.id, "waiting_approval", {"approval": aid})
            executor._set_exec(conn, eid, "waiting_approval")
            record_audit(conn, eid, "transition", {"to": "waiting_approval", "approval": aid})
        notify(executor.runtime, aid)
        return "wait"
    if ap.status == "pending":
        if as_utc(ap.expires_at) <= now:  # type: ignore[operator]
            _expire(state, ap.id)
            return gate(executor, ex, pb, step, row, rendered)
        with executor._tx() as conn:
            executor._set_exec(conn, eid, "waiting_approval")
        return "wait"
    if ap.status in ("approved", "auto_approved"):
        if ap.parameters_sha256 != digest:
            executor._fail(ex, step, f"step {step.id}: parameters changed since approval {ap.id}")
            return "failed"
        with executor._tx() as conn:
            executor._set_exec(conn, eid, "running")
        return "proceed"
    if ap.status == "denied":
        if step.on_deny == "skip":
            with executor._tx() as conn:
                executor._set_exec(conn, eid, "running")
            return "skip"
        with executor._tx() as conn:
            executor._transition(
                conn,
                eid,
                step.id,
                "denied",
                {"approval": ap.id},
                error=f"denied by {ap.decided_by}: {ap.reason or ''}".strip(),
                ended_at=now,
            )
        executor._finish(eid, "denied", f"step {step.id} denied by {ap.decided_by}")
        return "denied"
    if ap.status == "expired":
        with executor._tx() as conn:
            executor._transition(
                conn,
                eid,
                step.id,
                "expired",
                {"approval": ap.id},
                error=f"approval {ap.id} expired at {_iso(ap.expires_at)}",
                ended_at=now,
            )
        executor._finish(eid, "expired", f"approval for step {step.id} expired")
        return "expired"
    executor._finish(eid, "cancelled", f"approval {ap.id} {ap.status}")
    return "cancelled"


def _expire(state: Any, aid: str) -> bool:
    from mantissa.soar.executor import record_audit

    now = utcnow()
    with state.begin() as conn:
        ap = conn.execute(sa.select(approvals).where(approvals.c.id == aid)).first()
        if ap is None or ap.status != "pending":
            return False
        new = "auto_approved" if ap.auto_approve else "expired"
        res = conn.execute(
            approvals.update()
            .where(approvals.c.id == aid, approvals.c.status == "pending")
            .values(status=new, decided_at=now, decided_by="timeout", via="timer")
        )
        if not res.rowcount:
            return False
        record_audit(
            conn,
            ap.execution_id,
            "decision",
            {"approval": aid, "decision": new, "step": ap.step_key, "via": "timer"},
            "timeout",
        )
        conn.execute(
            executions.update()
            .where(executions.c.id == ap.execution_id, executions.c.status == "waiting_approval")
            .values(status="running", updated_at=now)
        )
    return True


def sweep(runtime: Any, run: bool = True, transport: Any = None) -> list[str]:
    """Expire due approvals and move their executions on; returns the approval ids."""
    now = utcnow()
    with runtime.state.engine.connect() as conn:
        due = [
            r[0]
            for r in conn.execute(
                sa.select(approvals.c.id).where(
                    approvals.c.status == "pending", approvals.c.expires_at <= now
                )
            )
        ]
    done = []
    for aid in due:
        if _expire(runtime.state, aid):
            done.append(aid)
            if run:
                from mantissa.soar.executor import Executor

                with runtime.state.engine.connect() as conn:
                    eid = conn.execute(
                        sa.select(approvals.c.execution_id).where(approvals.c.id == aid)
                    ).scalar()
                Executor(runtime, transport).run(eid, wait_retries=False)
    return done


def list_approvals(
    runtime: Any, status: str | None = "pending", execution_id: str | None = None
) -> list[dict[str, Any]]:
    sweep(runtime)
    conds = []
    if status:
        conds.append(approvals.c.status == status)
    if execution_id:
        conds.append(approvals.c.execution_id == execution_id)
    with runtime.state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(approvals)
            .where(sa.and_(sa.true(), *conds))
            .order_by(approvals.c.requested_at)
        ).all()
    return [to_dict(r) for r in rows]


def get_approval(runtime: Any, aid: str) -> dict[str, Any]:
    with runtime.state.engine.connect() as conn:
        r = conn.execute(sa.select(approvals).where(approvals.c.id == aid)).first()
    if r is None:
        raise NotFound(f"approval {aid!r} not found", hint="mantissa approvals list")
    return to_dict(r)


def worker_running(runtime: Any) -> bool:
    """Whether a ``serve`` process holds the SOAR worker lease right now."""
    with runtime.state.engine.connect() as conn:
        exp = conn.execute(
            sa.select(leases.c.expires_at).where(leases.c.name == WORKER_LEASE)
        ).scalar()
    return exp is not None and as_utc(exp) > utcnow()  # type: ignore[operator]


def decide(
    runtime: Any,
    aid: str,
    decision: str,
    actor: str,
    via: str = "cli",
    reason: str | None = None,
    continue_here: bool | None = None,
    transport: Any = None,
) -> dict[str, Any]:
    """Approve or deny; the first decision wins, one after ``expires_at`` is refused."""
    from mantissa.soar.config import soar_config
    from mantissa.soar.executor import Executor, record_audit

    if decision not in ("approve", "deny"):
        raise MantissaError(f"unknown decision {decision!r}")
    cfg = soar_config(runtime).approval
    if cfg.approvers and actor not in cfg.approvers:
        raise ApprovalForbidden(f"{actor} is not in soar.approval.approvers")
    now = utcnow()
    new = "approved" if decision == "approve" else "denied"
    with runtime.state.begin() as conn:
        ap = conn.execute(sa.select(approvals).where(approvals.c.id == aid)).first()
        if ap is None:
            raise NotFound(f"approval {aid!r} not found", hint="mantissa approvals list")
        res = conn.execute(
            approvals.update()
            .where(
                approvals.c.id == aid,
                approvals.c.status == "pending",
                approvals.c.expires_at > now,
            )
            .values(status=new, decided_by=actor, decided_at=now, via=via, reason=reason)
        )
        if not res.rowcount:
            if ap.status == "pending":
                why = f"expired at {_iso(ap.expires_at)}"
            else:
                why = f"already {ap.status}" + (f" by {ap.decided_by}" if ap.decided_by else "")
            raise ApprovalConflict(f"approval {aid} cannot be decided: {why}")
        record_audit(
            conn,
            ap.execution_id,
            "decision",
            {"approval": aid, "decision": new, "step": ap.step_key, "via": via, "reason": reason},
            actor,
        )
        conn.execute(
            executions.update()
            .where(executions.c.id == ap.execution_id, executions.c.status == "waiting_approval")
            .values(status="running", updated_at=now)
        )
    if continue_here is None:
        continue_here = not worker_running(runtime)
    status = None
    if continue_here:
        status = Executor(runtime, transport).run(ap.execution_id)
    out = get_approval(runtime, aid)
    out["execution_status"] = status or Executor(runtime)._status(ap.execution_id)
    return out


# -- signed links ----------------------------------------------------------------------
def _key(runtime: Any) -> bytes:
    cfg = __import__("mantissa.soar.config", fromlist=["soar_config"]).soar_config(runtime)
    if cfg.approval.link_secret:
        from mantissa.secrets import resolve, secrets_config

        return (resolve(cfg.approval.link_secret, secrets_config(runtime)) or "").encode()
    k = runtime.state.get("soar", "link_key")
    if not k:
        k = _secrets.token_urlsafe(32)
        runtime.state.put("soar", "link_key", k)
    return str(k).encode()


def sign_link(runtime: Any, aid: str, decision: str, ttl_secs: int | None = None) -> str:
    """A token ``<exp>.<sig>`` allowing ``decision`` on approval ``aid`` until ``exp``."""
    from mantissa.soar.config import soar_config

    ttl = ttl_secs or soar_config(runtime).approval.link_ttl_secs
    exp = int(time.time()) + ttl
    msg = f"{aid}|{decision}|{exp}".encode()
    sig = base64.urlsafe_b64encode(hmac.new(_key(runtime), msg, hashlib.sha256).digest())
    return f"{exp}.{sig.decode().rstrip('=')}"


def verify_link(runtime: Any, aid: str, decision: str, token: str) -> bool:
    try:
        exp_s, sig = token.split(".", 1)
        exp = int(exp_s)
    except ValueError:
        return False
    if exp < time.time():
        return False
    msg = f"{aid}|{decision}|{exp}".encode()
    good = base64.urlsafe_b64encode(hmac.new(_key(runtime), msg, hashlib.sha256).digest())
    return hmac.compare_digest(good.decode().rstrip("="), sig)


def links(runtime: Any, aid: str) -> dict[str, str]:
    """Signed approve/deny links to the console's approval page (which needs a login)."""
    from mantissa.soar.config import soar_config

    base = (soar_config(runtime).console_url or "http://127.0.0.1:8080").rstrip("/")
    return {
        d: f"{base}/console/approvals/{aid}?decision={d}&token={sign_link(runtime, aid, d)}"
        for d in ("approve", "deny")
    }


def check_link(runtime: Any, aid: str, decision: str, token: str) -> None:
    """Raise 403 unless ``token`` is a valid, unexpired link for ``decision`` on ``aid``."""
    if decision not in ("approve", "deny") or not verify_link(runtime, aid, decision, token):
        raise ApprovalForbidden("this approval link is invalid or has expired")


def notify(runtime: Any, aid: str) -> None:
    """Send the approval request to ``soar.approval.notification_channel`` (best effort,
    audited; the approval stays decidable from the CLI/API whatever happens here)."""
    from mantissa.soar.config import soar_config
    from mantissa.soar.executor import record_audit

    channel = soar_config(runtime).approval.notification_channel
    if not channel:
        return
    ap = get_approval(runtime, aid)
    link = links(runtime, aid)
    text = (
        f"Step {ap['step']} ({ap['action']}) of execution {ap['execution_id']} needs approval "
        f"before {ap['expires_at']}.\nParameters: {ap['parameters']}\n"
        f"Approve: {link['approve']}\nDeny: {link['deny']}\n"
        f"or: mantissa approvals approve {aid}"
    )
    try:
        from mantissa.alerts.destinations.base import Delivery, message_alert
        from mantissa.alerts.routing import load_destination

        dest = load_destination(runtime, channel)
        try:
            dest.send(
                Delivery(
                    alert=message_alert(
                        f"Approval needed: {ap['action']}",
                        text,
                        severity="high",
                        source="mantissa-soar",
                    ),
                    kind="trigger",
                    idempotency_key=f"approval-{aid}",
                    destination_id=channel,
                    # Slack's and Teams' "open" button goes to the console approval page
                    console_url=link["approve"],
                    extra={"approval_links": link},
                )
            )
        finally:
            dest.close()
        outcome = "sent"
    except Exception as exc:
        outcome = f"failed: {type(exc).__name__}"
        log.warning("approval %s: notification to %s failed: %s", aid, channel, type(exc).__name__)
    with runtime.state.begin() as conn:
        record_audit(
            conn,
            ap["execution_id"],
            "call",
            {"event": "approval_notification", "destination": channel, "status": outcome},
        )
