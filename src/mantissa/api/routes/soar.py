"""SOAR routes: ``/playbooks``, ``/executions``, ``/approvals``.

Reading needs ``analyst``; running playbooks, deciding approvals and changing playbooks
need ``responder`` (or ``admin``). Approval links sent to Slack/Teams are signed and
short-lived; they open the console's approval page (``/console/approvals/{id}``), which
asks for a login and refuses the link once it has expired.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from mantissa.api import background
from mantissa.api.auth import Principal, Role, require
from mantissa.api.errors import error_responses
from mantissa.api.middleware import audit_detail
from mantissa.api.routers import register

router = APIRouter(tags=["soar"])
FEATURE = "soar"
_ID = r"^[A-Za-z0-9_.@-]{1,160}$"


def _console_pages() -> None:
    """``/console/playbooks``, ``/console/executions``, ``/console/approvals``
    (``soar/static/soar.js``)."""
    try:
        from mantissa.web.console import register_page
    except ModuleNotFoundError:  # a build without the console
        return
    for key, title in (
        ("playbooks", "Playbooks"),
        ("executions", "Executions"),
        ("approvals", "Approvals"),
    ):
        register_page(key, title, package="mantissa.soar", script="soar.js", feature=FEATURE)


_console_pages()


def _rt(request: Request) -> Any:
    return request.app.state.runtime


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any] | None = None
    alert_id: str | None = Field(None, max_length=64)
    dry_run: bool = False
    #: wait for the execution to end or to need a person (default); false returns at once
    wait: bool = True


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000)
    #: the signed link's token when the decision comes from a link (recorded as via=link)
    token: str | None = Field(None, max_length=200)


@router.get("/playbooks")
def list_playbooks(request: Request, _: Principal = Depends(require(Role.analyst))) -> list[dict]:
    """Playbooks with versions, status and trigger."""
    from mantissa.soar.store import PlaybookStore

    return PlaybookStore(_rt(request)).list()


@router.post("/playbooks", status_code=201, responses=error_responses(409))
def create_playbook(
    request: Request,
    yaml_text: str = Body(..., media_type="application/yaml", max_length=256_000),
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    """Import playbook YAML (a changed playbook becomes a new version)."""
    from mantissa.soar.store import PlaybookStore
    from mantissa.soar.triggers import invalidate

    out = PlaybookStore(_rt(request)).import_text(yaml_text, "api", who.actor)
    invalidate()
    audit_detail(request, playbook=out.id, version=out.version)
    return {**out.to_dict(), "created": out.created}


@router.get("/playbooks/{ref}", responses=error_responses(404, 409))
def get_playbook(
    request: Request,
    ref: str = Path(..., pattern=_ID),
    _: Principal = Depends(require(Role.analyst)),
) -> dict:
    """One playbook version (``ID`` or ``ID@VERSION``) as parsed, plus its YAML."""
    from mantissa.soar.store import PlaybookStore

    store = PlaybookStore(_rt(request))
    pid, version = store.resolve(ref)
    pb = store.load(pid, version)
    return {**pb.model_dump(mode="json"), "yaml": store.text(pid, version)}


@router.put("/playbooks/{ref}", responses=error_responses(404, 409))
def set_playbook_status(
    request: Request,
    ref: str = Path(..., pattern=_ID),
    status: str = Body(..., embed=True, pattern="^(active|inactive|draft)$"),
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    """Set a version's status (activate a draft, deactivate a playbook)."""
    from mantissa.soar.store import PlaybookStore
    from mantissa.soar.triggers import invalidate

    store = PlaybookStore(_rt(request))
    pid, version = store.resolve(ref)
    store.set_status(pid, version, status, who.actor)
    invalidate()
    audit_detail(request, playbook=pid, version=version, status=status)
    return {"id": pid, "version": version, "status": status}


@router.delete("/playbooks/{ref}", responses=error_responses(404, 409))
def delete_playbook(
    request: Request,
    ref: str = Path(..., pattern=_ID),
    who: Principal = Depends(require(Role.admin)),
) -> dict:
    """Deactivate every version (versions are kept: executions refer to them)."""
    from mantissa.soar.store import PlaybookStore
    from mantissa.soar.triggers import invalidate

    store = PlaybookStore(_rt(request))
    pid, _v = store.resolve(ref)
    versions = next(p["versions"] for p in store.list() if p["id"] == pid)
    for v in versions:
        store.set_status(pid, v, "inactive", who.actor)
    invalidate()
    return {"id": pid, "status": "inactive", "versions": versions}


def _run(request: Request, ref: str, body: RunRequest, who: Principal) -> dict:
    from mantissa.soar.executor import Executor

    rt = _rt(request)
    alert = None
    if body.alert_id:
        from mantissa.alerts.store import AlertStore

        alert = AlertStore(rt.state).get(body.alert_id).model_dump(mode="json")
    ex = Executor(rt)
    eid = ex.start(
        ref,
        input=body.input if body.input is not None else ({} if alert is None else None),
        alert=alert,
        dry_run=body.dry_run,
        trigger="manual",
        actor=who.actor,
    )
    assert eid is not None
    status = ex.run(eid) if body.wait else "running"
    if not body.wait:
        from mantissa.soar.triggers import _POOL, _run_quietly

        _POOL.submit(_run_quietly, rt, eid)
    audit_detail(request, execution=eid, playbook=ref)
    return {"execution_id": eid, "status": status}


@router.post("/playbooks/{ref}/run", responses=error_responses(404, 409))
def run_playbook(
    request: Request,
    ref: str = Path(..., pattern=_ID),
    body: RunRequest = Body(...),
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    """Run a playbook; returns ``{"execution_id", "status"}``."""
    return _run(request, ref, body, who)


@router.post("/playbooks/{ref}/execute", responses=error_responses(404, 409))
def execute_playbook(
    request: Request,
    ref: str = Path(..., pattern=_ID),
    body: RunRequest = Body(...),
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    """The module reference's name for ``/run``."""
    return _run(request, ref, body, who)


@router.get("/executions")
def list_executions(
    request: Request,
    status: str | None = Query(None, max_length=24),
    playbook_id: str | None = Query(None, max_length=128),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    _: Principal = Depends(require(Role.analyst)),
) -> dict:
    """Executions, newest first."""
    from mantissa.soar.executor import Executor

    items, total = Executor(_rt(request)).list(status, playbook_id, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/executions/{eid}", responses=error_responses(404, 409))
def get_execution(
    request: Request,
    eid: str = Path(..., pattern=_ID),
    _: Principal = Depends(require(Role.analyst)),
) -> dict:
    """One execution with its steps, approvals and audit trail."""
    from mantissa.soar.executor import Executor

    ex = Executor(_rt(request))
    out = ex.get(eid)
    out["audit"] = ex.audit_log(eid)
    return out


@router.post("/executions/{eid}/cancel", responses=error_responses(404, 409))
def cancel_execution(
    request: Request,
    eid: str = Path(..., pattern=_ID),
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    from mantissa.soar.executor import Executor

    return {"execution_id": eid, "status": Executor(_rt(request)).cancel(eid, who.actor)}


@router.post("/executions/{eid}/resume", responses=error_responses(404, 409))
def resume_execution(
    request: Request,
    eid: str = Path(..., pattern=_ID),
    retry: str | None = Query(None, max_length=64),
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    from mantissa.soar.executor import Executor

    return {"execution_id": eid, "status": Executor(_rt(request)).resume(eid, retry, who.actor)}


@router.get("/approvals")
def list_approvals_route(
    request: Request,
    status: str | None = Query("pending", max_length=16),
    _: Principal = Depends(require(Role.responder)),
) -> list[dict]:
    """Approvals (pending by default)."""
    from mantissa.soar.approvals import list_approvals

    return list_approvals(_rt(request), status or None)


@router.get("/approvals/{aid}", responses=error_responses(404))
def get_approval_route(
    request: Request,
    aid: str = Path(..., pattern=_ID),
    decision: str | None = Query(None, pattern="^(approve|deny)$"),
    token: str | None = Query(None, max_length=200),
    _: Principal = Depends(require(Role.responder)),
) -> dict:
    """One approval; with ``decision`` and ``token`` (a signed link) 403 once the link is
    invalid or expired."""
    from mantissa.soar.approvals import check_link, get_approval, sweep

    rt = _rt(request)
    if token is not None:
        check_link(rt, aid, decision or "", token)
    sweep(rt)
    return get_approval(rt, aid)


def _decide(
    request: Request,
    aid: str,
    decision: str,
    body: Decision | None,
    who: Principal,
    via: str = "api",
) -> dict:
    from mantissa.soar.approvals import check_link, decide

    if who.via == "session":
        via = "console"
    if body and body.token:
        check_link(_rt(request), aid, decision, body.token)
        via = "link"
    out = decide(_rt(request), aid, decision, who.actor, via, body.reason if body else None)
    audit_detail(request, approval=aid, decision=decision)
    return out


@router.post("/approvals/{aid}/approve", responses=error_responses(404, 409))
def approve(
    request: Request,
    aid: str = Path(..., pattern=_ID),
    body: Decision | None = None,
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    """Approve; the execution continues. 409 once decided or expired."""
    return _decide(request, aid, "approve", body, who)


@router.post("/approvals/{aid}/deny", responses=error_responses(404, 409))
def deny(
    request: Request,
    aid: str = Path(..., pattern=_ID),
    body: Decision | None = None,
    who: Principal = Depends(require(Role.responder)),
) -> dict:
    """Deny; the execution ends ``denied`` (or skips the step with ``on_deny: skip``)."""
    return _decide(request, aid, "deny", body, who)


# -- signed links (Slack/Teams) ----------------------------------------------------------
link_router = APIRouter(tags=["soar"])
# the signature is the credential: no token, and kept out of the OpenAPI schema
link_router.public = True  # type: ignore[attr-defined]


@link_router.get("/approvals/{aid}/link", include_in_schema=False)
def link_page(
    request: Request,
    aid: str = Path(..., pattern=_ID),
    decision: str = Query(..., pattern="^(approve|deny)$"),
    token: str = Query(..., max_length=200),
) -> RedirectResponse:
    """Links sent before the console page existed: checked, then sent to the console's
    approval page (which asks for a login; only a signed-in responder decides)."""
    from urllib.parse import urlencode

    from mantissa.soar.approvals import check_link

    check_link(_rt(request), aid, decision, token)
    query = urlencode({"decision": decision, "token": token})
    return RedirectResponse(f"/console/approvals/{aid}?{query}", status_code=303)


register(link_router)


@background.register(name="soar")
def soar_worker(runtime: Any, stop: Any) -> None:
    """Approval expiry, crash recovery, retries and schedules while ``serve`` runs."""
    from mantissa.soar.triggers import worker

    worker(runtime, stop)
