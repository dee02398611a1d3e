"""``/rules``: list and read (viewer); update, enable/disable, delete and run (engineer).

Rules come from :class:`mantissa.detect.rules.RuleIndex` (built-in library, the data
dir's ``rules/sigma`` and ``detect.rule_paths``). Changes made here are written only
inside the data dir: a rule from a configured folder elsewhere is read-only over HTTP.
``POST /rules/{id}/run`` runs the compiled rule over a time range through the guarded
engine and returns its matches without raising alerts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path as FsPath
from typing import Any

import yaml
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from mantissa.api.auth import Principal, Role, require
from mantissa.api.errors import error_responses
from mantissa.api.middleware import audit_detail
from mantissa.api.paging import InvalidParameter, Paged, PageParams, check_sort, paged, paging
from mantissa.detect.rules import Rule, RuleError, RuleIndex
from mantissa.engines.base import to_jsonable
from mantissa.errors import MantissaError

router = APIRouter(prefix="/rules", tags=["rules"])

_RULE_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
_INDEX_TTL_SECS = 30.0
_MAX_RULE_BYTES = 256 * 1024
SORTS = {"id", "title", "level", "status", "table", "enabled"}
_LEVEL_RANK = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class RuleConflict(MantissaError):
    code = "rule_read_only"
    http_status = 409


class RuleSummary(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    title: str
    level: str
    status: str
    tags: list[str]
    logsource: dict[str, str | None]
    table: str | None
    kind: str
    enabled: bool
    interval_secs: int
    builtin: bool
    file: str
    editable: bool


class RuleDetail(RuleSummary):
    description: str
    yaml: str
    sql: str | None
    sql_error: str | None
    references: list[str]


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class RuleYaml(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(..., min_length=1, max_length=_MAX_RULE_BYTES)


class RuleRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: dt.datetime | None = Field(None, description="Start (ISO-8601); default 24 h ago.")
    until: dt.datetime | None = Field(None, description="End (ISO-8601); default now.")
    limit: int = Field(500, ge=1, le=10_000)


class RuleRunOut(BaseModel):
    rule_id: str
    since: str
    until: str
    sql: str
    columns: list[str]
    rows: list[list[Any]]
    matches: int
    truncated: bool
    elapsed_ms: float


class _IndexCache:
    """The loaded rule index, shared by requests; reloaded after changes or a short TTL
    (so enable/disable done from the CLI shows up)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index: RuleIndex | None = None
        self.loaded_at = 0.0

    def get(self, runtime: Any) -> RuleIndex:
        with self.lock:
            if self.index is None or time.monotonic() - self.loaded_at > _INDEX_TTL_SECS:
                self.index = RuleIndex.load(runtime)
                self.loaded_at = time.monotonic()
            return self.index

    def invalidate(self) -> None:
        with self.lock:
            self.index = None


def _cache(request: Request) -> _IndexCache:
    st = request.app.state
    if getattr(st, "rule_cache", None) is None:
        st.rule_cache = _IndexCache()
    return st.rule_cache


def _user_dir(request: Request) -> FsPath:
    return (FsPath(request.app.state.runtime.data_dir) / "rules").resolve()


def _editable(request: Request, rule: Rule) -> bool:
    if rule.builtin:
        return False
    try:
        path = FsPath(rule.path).resolve()
    except (OSError, ValueError):
        return False
    return _user_dir(request) in path.parents


def _file(request: Request, rule: Rule) -> str:
    """Where the rule lives, without revealing the server's directory layout."""
    path = FsPath(rule.path)
    if rule.builtin:
        return f"builtin:{path.parent.name}/{path.name}"
    data = FsPath(request.app.state.runtime.data_dir).resolve()
    try:
        return path.resolve().relative_to(data).as_posix()
    except ValueError:
        return f"external:{path.name}"


def _summary(request: Request, rule: Rule) -> dict[str, Any]:
    d = rule.summary()
    d["file"] = _file(request, rule)
    d["editable"] = _editable(request, rule)
    d.pop("path", None)
    return d


def _detail(request: Request, index: RuleIndex, rule: Rule) -> dict[str, Any]:
    d = _summary(request, rule)
    sql = err = None
    try:
        sql = index.compiled(rule).sql(pretty=True)
    except MantissaError as exc:
        err = exc.message
    except Exception as exc:  # a rule pySigma accepts but we cannot compile: say so
        err = f"{type(exc).__name__}: {exc}"
    d.update(
        description=rule.description or "",
        yaml=rule.yaml_text,
        sql=sql,
        sql_error=err,
        references=list(rule.references),
    )
    return d


def _sort_key(sort: str):
    key = sort.lstrip("-")
    if key == "level":
        return lambda r: (_LEVEL_RANK.get(r.level, 0), r.id)
    if key == "enabled":
        return lambda r: (r.enabled, r.id)
    return lambda r: (str(getattr(r, key) or ""), r.id)


@router.get("", response_model=Paged[RuleSummary])
def list_rules(
    request: Request,
    source: str | None = Query(
        None, max_length=128, description="Table, or logsource product/service/category."
    ),
    tag: str | None = Query(None, max_length=128, description="A tag (e.g. attack.t1078)."),
    level: str | None = Query(None, pattern="^(informational|low|medium|high|critical)$"),
    status: str | None = Query(None, max_length=32),
    enabled: bool | None = Query(None),
    q: str | None = Query(None, max_length=256, description="Text in id, title or tags."),
    page: PageParams = Depends(paging(SORTS)),
    _: Principal = Depends(require(Role.viewer)),
) -> dict:
    """Detection rules matching every filter, sorted (default ``id``) and paged."""
    index = _cache(request).get(request.app.state.runtime)
    rules = index.select(level=level, status=status, enabled=enabled)
    if tag:
        t = tag.lower()
        rules = [r for r in rules if any(x.lower() == t for x in r.tags)]
    if source:
        s = source.lower()
        rules = [
            r
            for r in rules
            if (r.table and s in r.table.lower().split(","))
            or s in {str(v).lower() for v in (r.logsource or {}).values() if v}
        ]
    if q:
        ql = q.lower()
        rules = [
            r
            for r in rules
            if ql in r.id.lower() or ql in r.title.lower() or any(ql in t.lower() for t in r.tags)
        ]
    sort = check_sort(page.sort, SORTS, "id")
    rules = sorted(rules, key=_sort_key(sort), reverse=sort.startswith("-"))
    window = rules[page.offset : page.offset + page.limit]
    return paged([_summary(request, r) for r in window], len(rules), page)


@router.get("/{rule_id}", response_model=RuleDetail, responses=error_responses(404))
def get_rule(
    request: Request,
    rule_id: str = Path(..., pattern=_RULE_ID),
    _: Principal = Depends(require(Role.viewer)),
) -> dict:
    """One rule with its YAML and the SQL it compiles to."""
    index = _cache(request).get(request.app.state.runtime)
    return _detail(request, index, index.get(rule_id))


def _yaml_from(request_body: Any) -> str:
    if isinstance(request_body, dict):
        return RuleYaml.model_validate(request_body).yaml
    raise InvalidParameter('send the rule as {"yaml": "..."} or as application/yaml text')


@router.put(
    "/{rule_id}",
    response_model=RuleDetail,
    responses={
        **error_responses(400, 404, 409),
        201: {"model": RuleDetail, "description": "Created"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": RuleYaml.model_json_schema()},
                "application/yaml": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
async def put_rule(
    request: Request,
    rule_id: str = Path(..., pattern=_RULE_ID),
    who: Principal = Depends(require(Role.engineer)),
) -> Any:
    """Create or replace a rule from Sigma YAML (validated; its ``id`` must match the path)."""
    raw = await request.body()
    if len(raw) > _MAX_RULE_BYTES:
        raise InvalidParameter(f"a rule is at most {_MAX_RULE_BYTES} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        import orjson

        try:
            text = _yaml_from(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise InvalidParameter("the body is not valid JSON") from None
        except ValueError as exc:
            raise InvalidParameter(str(exc).splitlines()[0]) from None
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameter("the rule must be UTF-8 text") from None
    if not text.strip():
        raise InvalidParameter("empty rule")
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_save, request, rule_id, text, who)


def _yaml_id(text: str) -> str | None:
    """The ``id`` of the (first) rule document, read before anything is written."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError:
        return None  # RuleIndex.save reports the syntax error with its line
    first = docs[0] if docs else None
    return str(first.get("id")) if isinstance(first, dict) and first.get("id") else None


def _save(request: Request, rule_id: str, text: str, who: Principal) -> Any:
    found = _yaml_id(text)
    if found is not None and found != rule_id:
        raise RuleError(
            f"the YAML's id {found!r} does not match the path's {rule_id!r}",
            hint="PUT /rules/<the rule's id>",
        )
    cache = _cache(request)
    index = cache.get(request.app.state.runtime)
    existing = index.get_optional(rule_id)
    if existing is not None and not existing.builtin and not _editable(request, existing):
        raise RuleConflict(
            f"rule {rule_id} lives in a configured rule folder outside the data dir",
            hint="edit it there",
        )
    rule = index.save(text)
    cache.invalidate()
    fresh = cache.get(request.app.state.runtime)
    audit_detail(request, action="rule.save", rule_id=rule.id, created=existing is None)
    body = to_jsonable(_detail(request, fresh, fresh.get(rule.id)))
    return JSONResponse(body, status_code=201 if existing is None else 200)


@router.patch("/{rule_id}", response_model=RuleDetail, responses=error_responses(404))
def patch_rule(
    body: RulePatch,
    request: Request,
    rule_id: str = Path(..., pattern=_RULE_ID),
    who: Principal = Depends(require(Role.engineer)),
) -> dict:
    """Enable or disable a rule."""
    cache = _cache(request)
    index = cache.get(request.app.state.runtime)
    index.set_enabled(rule_id, body.enabled)
    audit_detail(request, action="rule.enable", rule_id=rule_id, enabled=body.enabled)
    cache.invalidate()
    fresh = cache.get(request.app.state.runtime)
    return _detail(request, fresh, fresh.get(rule_id))


@router.delete(
    "/{rule_id}",
    status_code=204,
    responses=error_responses(400, 404, 409),
    response_class=Response,
    response_model=None,
)
def delete_rule(
    request: Request,
    rule_id: str = Path(..., pattern=_RULE_ID),
    who: Principal = Depends(require(Role.engineer)),
) -> Any:
    """Delete a user rule (built-in rules can only be disabled)."""
    cache = _cache(request)
    index = cache.get(request.app.state.runtime)
    rule = index.get(rule_id)
    if not rule.builtin and not _editable(request, rule):
        raise RuleConflict(
            f"rule {rule_id} lives in a configured rule folder outside the data dir",
            hint="remove it there, or disable it",
        )
    index.delete(rule_id)
    cache.invalidate()
    audit_detail(request, action="rule.delete", rule_id=rule_id)
    return Response(status_code=204)


def _utc(v: dt.datetime | None, default: dt.datetime) -> dt.datetime:
    if v is None:
        return default
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


@router.post(
    "/{rule_id}/run",
    response_model=RuleRunOut,
    responses=error_responses(400, 404, 408),
)
def run_rule(
    request: Request,
    rule_id: str = Path(..., pattern=_RULE_ID),
    body: RuleRun = Body(default_factory=lambda: RuleRun.model_validate({})),
    _: Principal = Depends(require(Role.engineer)),
) -> dict:
    """Run the rule over a time range and return its matches (no alerts are raised)."""
    now = dt.datetime.now(dt.UTC)
    until = _utc(body.until, now)
    since = _utc(body.since, until - dt.timedelta(hours=24))
    if since >= until:
        raise InvalidParameter("since must be before until")
    rt = request.app.state.runtime
    index = _cache(request).get(rt)
    rule = index.get(rule_id)
    try:
        sql = index.compiled(rule).sql(start=since, end=until)
    except MantissaError:
        raise
    except Exception as exc:
        raise RuleError(f"rule {rule_id} cannot be compiled: {exc}") from None
    engine = rt.make_engine(max_rows=body.limit)
    result = engine.execute(sql)
    return {
        "rule_id": rule.id,
        "since": to_jsonable(since),
        "until": to_jsonable(until),
        "sql": result.sql,
        "columns": result.columns,
        "rows": to_jsonable(result.rows),
        "matches": len(result.rows),
        "truncated": result.truncated,
        "elapsed_ms": round(result.elapsed_ms, 3),
    }
