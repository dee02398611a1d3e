"""Durable executions: every transition is a committed row before the next step starts.

Status of an execution: ``running | waiting_approval | succeeded | failed | denied |
expired | cancelled``. Status of a step: ``pending | running | retry_wait |
waiting_approval | succeeded | failed | skipped | denied | expired | in_doubt |
cancelled``.

Crash safety: a step is marked ``running`` (attempt n, rendered input, idempotency key)
and committed *before* its action is called; its result is committed before the next
step starts. After a crash the executor finds the step still ``running``: it re-runs it
when the action is ``natural``, ``keyed`` (same idempotency key) or ``verify-first``,
and otherwise marks it ``in_doubt`` and stops the execution ``failed`` for a person to
check (``executions resume ID --retry STEP``). Steps that succeeded never run again.
Timers (retry backoff, approval expiry, the execution deadline) are columns, honoured
by whoever runs the execution next (the foreground process, ``serve``'s tick loop).
"""

from __future__ import annotations

import builtins
import concurrent.futures as cf
import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from functools import cached_property
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from mantissa.errors import ConfigError, MantissaError, NotFound
from mantissa.soar import templates
from mantissa.soar.actions import ActionContext, ActionSpec, DryRunStop, get_action, mask
from mantissa.soar.config import soar_config
from mantissa.soar.model import Playbook, Step
from mantissa.soar.schema import approvals, audit, executions, steps
from mantissa.soar.store import PlaybookStore
from mantissa.state.store import as_utc, leases, utcnow

log = logging.getLogger("mantissa.soar")

TERMINAL = frozenset({"succeeded", "failed", "denied", "expired", "cancelled"})
STEP_DONE = frozenset({"succeeded", "failed", "skipped", "denied", "expired", "cancelled"})
_POOL = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="soar-action")
_HOST = socket.gethostname()


class ExecutionConflict(MantissaError):
    """The execution is not in a state that allows this (resume a finished one ...)."""

    code = "execution_conflict"
    http_status = 409


class _LeaseLost(Exception):
    """This process's lease on an execution was taken over by another worker."""


class StepFailed(MantissaError):
    code = "step_failed"
    http_status = 502


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def params_digest(params: Any) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Statements built once: SQLAlchemy then skips building and cache-keying them per call,
# which was most of an execution's cost (bench/soar.py).
_AUDIT_INSERT = audit.insert()
_INSERT_EXEC = executions.insert()
_INSERT_STEPS = steps.insert()
_FINISH_EXEC = (
    executions.update()
    .where(executions.c.id == sa.bindparam("w_eid"), executions.c.status.notin_(TERMINAL))
    .values(
        status=sa.bindparam("v_status", type_=executions.c.status.type),
        error=sa.bindparam("v_error", type_=executions.c.error.type),
        updated_at=sa.bindparam("v_now", type_=executions.c.updated_at.type),
        ended_at=sa.bindparam("v_now", type_=executions.c.ended_at.type),
    )
)
_SELECT_EXEC = sa.select(executions).where(executions.c.id == sa.bindparam("w_eid"))
_SELECT_EXEC_STATE = sa.select(executions.c.status, executions.c.cancel_requested).where(
    executions.c.id == sa.bindparam("w_eid")
)
_SELECT_STEPS = sa.select(steps).where(steps.c.execution_id == sa.bindparam("w_eid"))
_SET_EXEC = (
    executions.update()
    .where(executions.c.id == sa.bindparam("w_eid"), executions.c.status.notin_(TERMINAL))
    .values(
        status=sa.bindparam("v_status", type_=executions.c.status.type),
        updated_at=sa.bindparam("v_updated_at", type_=executions.c.updated_at.type),
    )
)
_STEP_UPDATES: dict[tuple[str, ...], Any] = {}


def _step_update(keys: tuple[str, ...]) -> Any:
    """``UPDATE steps SET <keys> WHERE execution_id, key``, built once per column set."""
    stmt = _STEP_UPDATES.get(keys)
    if stmt is None:
        stmt = (
            steps.update()
            .where(
                steps.c.execution_id == sa.bindparam("w_eid"),
                steps.c.key == sa.bindparam("w_key"),
            )
            .values({k: sa.bindparam(f"v_{k}", type_=steps.c[k].type) for k in keys})
        )
        _STEP_UPDATES[keys] = stmt
    return stmt


def record_audit(
    conn: Any, execution_id: str | None, kind: str, detail: dict[str, Any], actor: str | None = None
) -> None:
    conn.execute(
        _AUDIT_INSERT,
        {
            "at": utcnow(),
            "execution_id": execution_id,
            "kind": kind,
            "actor": actor,
            "detail": detail,
        },
    )


class Executor:
    """Starts, runs, resumes and cancels executions for one runtime."""

    def __init__(self, runtime: Any, transport: Any = None) -> None:
        self.runtime = runtime
        self.state = runtime.state
        self.transport = transport
        self.owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: while :meth:`run` works: its connection and the execution's step rows
        self._conn: Any = None
        self._rows: dict[str, Any] | None = None
        self._eid: str | None = None
        self._seen: Any = None
        self._loaded: Any = None
        self._holding = False

    @contextlib.contextmanager
    def _tx(self, read_state: bool = True) -> Iterator[Any]:
        """A committed transaction: on the connection :meth:`run` holds (no pool
        checkout per step), else a fresh one. Only the running thread uses it."""
        conn = self._conn
        if conn is None:
            with self.state.begin() as c:
                yield c
            return
        with conn.begin():
            yield conn
            if read_state:
                # the status and cancel flag, read in the same transaction: the run loop
                # needs them before the next step, and this saves a transaction per step
                self._seen = conn.execute(_SELECT_EXEC_STATE, {"w_eid": self._eid}).first()

    @cached_property
    def store(self) -> PlaybookStore:
        return PlaybookStore(self.runtime)

    @cached_property
    def settings(self) -> Any:
        return soar_config(self.runtime)

    # -- starting -------------------------------------------------------------------------
    def start(
        self,
        ref: str,
        *,
        input: dict[str, Any] | None = None,
        alert: dict[str, Any] | None = None,
        dry_run: bool = False,
        trigger: str = "manual",
        actor: str | None = None,
        version: str | None = None,
    ) -> str | None:
        """Create an execution (committed) and return its id; None if this alert already
        started this playbook (one execution per playbook and alert)."""
        if version is None:
            pid, version = self.store.resolve(ref)
        else:
            pid = ref
        pb = self.store.load(pid, version)
        now = utcnow()
        eid = new_id("ex")
        timeout = self.settings.execution_timeout_seconds
        try:
            with self.state.begin() as conn:
                conn.execute(
                    _INSERT_EXEC,
                    {
                        "id": eid,
                        "playbook_id": pid,
                        "version": version,
                        "status": "running",
                        "trigger": trigger,
                        "alert_id": (alert or {}).get("id") if trigger == "alert" else None,
                        "input": {
                            "input": input if input is not None else (alert or {}),
                            "alert": alert,
                        },
                        "dry_run": dry_run,
                        "actor": actor,
                        "cancel_requested": False,
                        "created_at": now,
                        "updated_at": now,
                        "deadline_at": now + dt.timedelta(seconds=timeout),
                    },
                )
                conn.execute(
                    _INSERT_STEPS,
                    [
                        {
                            "execution_id": eid,
                            "key": s.id,
                            "step_id": s.id,
                            "position": i,
                            "action": s.action_type,
                            "status": "pending",
                            "attempt": 0,
                        }
                        for i, s in enumerate(pb.order())
                    ],
                )
                record_audit(
                    conn,
                    eid,
                    "transition",
                    {
                        "event": "started",
                        "playbook": f"{pid}@{version}",
                        "trigger": trigger,
                        "dry_run": dry_run,
                        "to": "running",
                    },
                    actor,
                )
        except sa.exc.IntegrityError:
            if trigger == "alert":
                return None
            raise
        return eid

    # -- reading --------------------------------------------------------------------------
    def get(self, eid: str) -> dict[str, Any]:
        with self.state.engine.connect() as conn:
            row = conn.execute(sa.select(executions).where(executions.c.id == eid)).first()
            if row is None:
                raise NotFound(f"execution {eid!r} not found", hint="mantissa executions list")
            srows = conn.execute(
                sa.select(steps).where(steps.c.execution_id == eid).order_by(steps.c.position)
            ).all()
            arows = conn.execute(sa.select(approvals).where(approvals.c.execution_id == eid)).all()
        return _execution_dict(row, srows, arows)

    def list(
        self,
        status: str | None = None,
        playbook_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        conds = []
        if status:
            conds.append(executions.c.status == status)
        if playbook_id:
            conds.append(executions.c.playbook_id == playbook_id)
        where = sa.and_(sa.true(), *conds)
        with self.state.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(executions).where(where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(executions)
                .where(where)
                .order_by(executions.c.created_at.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [_summary(r) for r in rows], int(total)

    def audit_log(self, eid: str) -> builtins.list[dict[str, Any]]:
        with self.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit).where(audit.c.execution_id == eid).order_by(audit.c.seq)
            ).all()
        return [
            {"at": as_utc(r.at), "kind": r.kind, "actor": r.actor, **(r.detail or {})} for r in rows
        ]

    # -- leases ---------------------------------------------------------------------------
    def _lease(self, eid: str, ttl: float, load: bool = False) -> bool:
        """Take the execution's lease; with ``load``, read the execution in the same
        transaction (for :meth:`_run`)."""
        name = f"soar-exec:{eid}"
        with self._tx(read_state=False) as conn:
            if self.state.acquire_lease(name, self.owner, ttl, conn):
                if load:
                    self._loaded = self._read(conn, eid)
                return True
        # a holder on this host whose process is gone (kill -9): take over at once
        with self.state.begin() as conn:
            row = conn.execute(sa.select(leases.c.owner).where(leases.c.name == name)).first()
            if row is not None:
                host, _, rest = str(row[0]).partition(":")
                pid = rest.split(":", 1)[0]
                if host == _HOST and pid.isdigit() and not _pid_alive(int(pid)):
                    conn.execute(
                        leases.delete().where(leases.c.name == name, leases.c.owner == row[0])
                    )
        with self._tx(read_state=False) as conn:
            if self.state.acquire_lease(name, self.owner, ttl, conn):
                if load:
                    self._loaded = self._read(conn, eid)
                return True
        return False

    def _release(self, eid: str) -> None:
        name = f"soar-exec:{eid}"
        try:
            with self._tx(read_state=False) as conn:
                self.state.release_lease(name, self.owner, conn)
        except sa.exc.DBAPIError:  # the held connection broke: a fresh one
            self.state.release_lease(name, self.owner)

    # -- running --------------------------------------------------------------------------
    def run(self, eid: str, *, wait_retries: bool = True) -> str:
        """Run execution ``eid`` until it ends or waits for a person; returns its status."""
        with self.state.engine.connect() as conn:
            self._conn, self._eid, self._seen, self._loaded = conn, eid, None, None
            try:
                if not self._lease(eid, 60, load=True):
                    return self._status(eid)
                self._holding = True
                try:
                    return self._run(eid, wait_retries)
                except _LeaseLost:
                    # another worker took the execution over (our lease had expired):
                    # it runs the rest; we must not touch its steps or its lease
                    self._holding = False
                    log.warning("execution %s: lease lost to another worker; stopping", eid)
                    return self._status(eid)
                finally:
                    if self._holding:  # _finish drops it in its own transaction
                        self._release(eid)
            finally:
                self._conn = self._rows = self._eid = self._seen = self._loaded = None
                self._holding = False

    def _hold(self, eid: str, ttl: float, conn: Any) -> None:
        """Renew the execution's lease for ``ttl`` seconds inside ``conn``'s transaction.

        The first lease lasts 60 s; a step may run for its ``timeout_seconds`` (and a
        retry may sleep its backoff), so the lease is extended before each, or another
        worker's crash recovery would take the execution over mid-step and run it twice.
        """
        if self._holding and not self.state.acquire_lease(
            f"soar-exec:{eid}", self.owner, ttl, conn
        ):
            raise _LeaseLost(eid)

    @staticmethod
    def _read(conn: Any, eid: str) -> tuple[Any, dict[str, Any]]:
        row = conn.execute(_SELECT_EXEC, {"w_eid": eid}).first()
        if row is None:
            raise NotFound(f"execution {eid!r} not found")
        # mutable copies: the lease holder alone changes the steps; every step
        # transition updates them (see _set_step) instead of a re-read
        rows = {
            r.key: SimpleNamespace(**r._mapping)
            for r in conn.execute(_SELECT_STEPS, {"w_eid": eid})
        }
        return row, rows

    def _status(self, eid: str) -> str:
        with self.state.engine.connect() as conn:
            st = conn.execute(sa.select(executions.c.status).where(executions.c.id == eid)).scalar()
        if st is None:
            raise NotFound(f"execution {eid!r} not found")
        return str(st)

    def _run(self, eid: str, wait_retries: bool) -> str:
        loaded, self._loaded = self._loaded, None
        if loaded is None:
            with self._tx(read_state=False) as conn:
                loaded = self._read(conn, eid)
        row, rows = loaded
        ex = SimpleNamespace(**row._mapping)
        if ex.status in TERMINAL:
            return str(ex.status)
        self._rows = rows
        pb = self.store.load(ex.playbook_id, ex.version)
        ctx: dict[str, Any] = {
            "input": ex.input.get("input") or {},
            # a manual run with --input can exercise an alert playbook: alert = input
            "alert": ex.input.get("alert") or ex.input.get("input") or {},
            "vars": pb.vars,
            "steps": {},
            "execution": {"id": eid, "playbook": pb.pid, "version": ex.version},
        }
        order = pb.order()
        deadline = as_utc(ex.deadline_at)
        first = True
        while True:
            if not first:  # status and cancel flag only: the rest does not change
                state, self._seen = self._seen, None
                if state is None:
                    with self._tx():
                        pass  # reads them
                    state, self._seen = self._seen, None
                if state is None:
                    raise NotFound(f"execution {eid!r} not found")
                ex.status, ex.cancel_requested = state
            first = False
            if ex.status in TERMINAL:
                return str(ex.status)
            if ex.cancel_requested:
                return self._finish(eid, "cancelled", "cancelled by request")
            if utcnow() >= deadline:  # type: ignore[operator]
                return self._finish(eid, "failed", "execution timed out")
            ctx["steps"] = {
                r.step_id: {"status": r.status, "output": r.output} for r in rows.values()
            }
            nxt = None
            for step in order:
                srow = rows[step.id]
                if srow.status in STEP_DONE:
                    continue
                nxt = (step, srow)
                break
            if nxt is None:
                failed = [r for r in rows.values() if r.status == "failed"]
                return self._finish(
                    eid, "succeeded", None, note="with failures" if failed else None
                )
            step, srow = nxt
            outcome = self._step(ex, pb, step, srow, ctx, wait_retries)
            if outcome is not None:
                return outcome

    def _set_step(self, conn: Any, eid: str, key: str, **values: Any) -> None:
        keys = tuple(sorted(values))
        params = {f"v_{k}": values[k] for k in keys}
        conn.execute(_step_update(keys), {"w_eid": eid, "w_key": key, **params})
        row = (self._rows or {}).get(key)
        if row is not None:
            for k, v in values.items():
                setattr(row, k, v)

    def _transition(
        self,
        conn: Any,
        eid: str,
        key: str,
        status: str,
        detail: dict[str, Any] | None = None,
        **values: Any,
    ) -> None:
        self._set_step(conn, eid, key, status=status, **values)
        record_audit(conn, eid, "transition", {"step": key, "to": status, **(detail or {})})

    def _finish(self, eid: str, status: str, error: str | None, note: str | None = None) -> str:
        now = utcnow()
        release = self._holding and self._conn is not None
        ended = False
        with self._tx(read_state=False) as conn:
            if release:
                # the run ends here: drop its lease in the same transaction
                self.state.release_lease(f"soar-exec:{eid}", self.owner, conn)
            res = conn.execute(
                _FINISH_EXEC, {"w_eid": eid, "v_status": status, "v_error": error, "v_now": now}
            )
            if res.rowcount:
                if status in ("cancelled", "expired", "denied", "failed"):
                    conn.execute(
                        steps.update()
                        .where(
                            steps.c.execution_id == eid,
                            steps.c.status.in_(("pending", "retry_wait", "waiting_approval")),
                        )
                        .values(status="cancelled" if status == "cancelled" else "skipped")
                    )
                    conn.execute(
                        approvals.update()
                        .where(approvals.c.execution_id == eid, approvals.c.status == "pending")
                        .values(status="cancelled", decided_at=now)
                    )
                record_audit(
                    conn,
                    eid,
                    "transition",
                    {"to": status, "error": error, **({"note": note} if note else {})},
                )
                ended = True
        if release:  # committed: run() has nothing left to drop
            self._holding = False
        return status if ended else self._status(eid)

    def _set_exec(self, conn: Any, eid: str, status: str) -> None:
        conn.execute(_SET_EXEC, {"w_eid": eid, "v_status": status, "v_updated_at": utcnow()})

    def _step(
        self, ex: Any, pb: Playbook, step: Step, row: Any, ctx: dict[str, Any], wait: bool
    ) -> str | None:
        eid = ex.id
        where = f"playbook {pb.pid}@{ex.version} step {step.id}"
        spec = get_action(step.action_type)
        # dependencies that did not succeed: skip this step
        bad = [d for d in step.depends_on if ctx["steps"].get(d, {}).get("status") != "succeeded"]
        if bad and row.status == "pending":
            with self._tx() as conn:
                self._transition(
                    conn,
                    eid,
                    step.id,
                    "skipped",
                    {"reason": f"dependency {bad[0]} did not succeed"},
                    error=f"skipped: dependency {bad[0]} did not succeed",
                    ended_at=utcnow(),
                )
            return None
        # a crash left this step in flight
        if row.status == "running":
            if spec.idempotency == "unsafe" and not ex.dry_run:
                msg = (
                    f"{where}: the process stopped while {step.action_type} was in flight and "
                    "the action is not idempotent: check the target, then "
                    f"`mantissa executions resume {eid} --retry {step.id}`"
                )
                with self._tx() as conn:
                    self._transition(conn, eid, step.id, "in_doubt", error=msg, ended_at=utcnow())
                return self._finish(eid, "failed", msg)
            with self._tx() as conn:
                record_audit(
                    conn,
                    eid,
                    "transition",
                    {
                        "step": step.id,
                        "event": "resumed_in_flight",
                        "idempotency": spec.idempotency,
                    },
                )
        if row.status == "retry_wait":
            due = as_utc(row.next_attempt_at)
            if due and due > utcnow():
                if not wait:
                    return "running"
                pause = max(0.0, (due - utcnow()).total_seconds())
                with self._tx(read_state=False) as conn:
                    self._hold(eid, pause + 60, conn)
                time.sleep(pause)
        # condition
        try:
            if (
                row.status == "pending"
                and step.condition
                and not templates.evaluate(step.condition, ctx, f"{where}.condition")
            ):
                with self._tx() as conn:
                    self._transition(
                        conn,
                        eid,
                        step.id,
                        "skipped",
                        {"reason": "condition false"},
                        ended_at=utcnow(),
                    )
                return None
            items: list[Any] | None = None
            if step.for_each:
                items = templates.evaluate(step.for_each, ctx, f"{where}.for_each")
                if not isinstance(items, list):
                    raise templates.TemplateRejected(f"{where}.for_each: not a list")
            rendered = self._render(step, ctx, items, where)
            for p in rendered:
                spec.validate(p, where)
        except MantissaError as exc:
            return self._fail(ex, step, exc.message)
        except Exception as exc:
            return self._fail(ex, step, f"{where}: {type(exc).__name__}: {exc}")
        # approval gate
        need = step.requires_approval or step.action_type in self.settings.approval.required_for
        if need and not ex.dry_run:
            from mantissa.soar.approvals import gate

            verdict = gate(self, ex, pb, step, row, rendered)
            if verdict == "wait":
                return "waiting_approval"
            if verdict == "skip":
                with self._tx() as conn:
                    self._transition(
                        conn,
                        eid,
                        step.id,
                        "skipped",
                        {"reason": "denied, on_deny: skip"},
                        ended_at=utcnow(),
                    )
                return None
            if verdict in ("denied", "expired", "failed", "cancelled"):
                return self._status(eid)
        return self._execute(ex, pb, step, row, spec, rendered, items, where)

    def _render(
        self, step: Step, ctx: dict[str, Any], items: builtins.list[Any] | None, where: str
    ) -> builtins.list[dict[str, Any]]:
        if items is None:
            return [templates.render_value(step.parameters, ctx, f"{where}.parameters")]
        out = []
        for i, item in enumerate(items):
            out.append(
                templates.render_value(
                    step.parameters, {**ctx, "item": item}, f"{where}[{i}].parameters"
                )
            )
        return out

    def _fail(self, ex: Any, step: Step, msg: str) -> str | None:
        with self._tx() as conn:
            self._transition(
                conn, ex.id, step.id, "failed", {"error": msg}, error=msg, ended_at=utcnow()
            )
        if step.on_failure == "continue":
            return None
        return self._finish(ex.id, "failed", msg)

    def _execute(
        self,
        ex: Any,
        pb: Playbook,
        step: Step,
        row: Any,
        spec: ActionSpec,
        rendered: builtins.list[dict[str, Any]],
        items: builtins.list[Any] | None,
        where: str,
    ) -> str | None:
        eid = ex.id
        attempt = (row.attempt or 0) + (0 if row.status == "running" else 1)
        key = f"mnt-{eid}-{step.id}"
        secrets: list[str] = []
        prior = row.output if (row.status == "running" and items is not None) else None
        done_items: list[Any] = list((prior or {}).get("items", [])) if prior else []
        now = utcnow()
        if not ex.dry_run:
            with self._tx() as conn:
                self._hold(eid, step.timeout_seconds + 60, conn)
                self._transition(
                    conn,
                    eid,
                    step.id,
                    "running",
                    {"attempt": attempt},
                    attempt=attempt,
                    input=mask(rendered[0] if items is None else {"items": rendered}, []),
                    idempotency_key=key,
                    started_at=now,
                    error=None,
                    next_attempt_at=None,
                )
        deadline = time.monotonic() + step.timeout_seconds
        exec_deadline = as_utc(ex.deadline_at)
        if exec_deadline is not None:
            deadline = min(deadline, time.monotonic() + (exec_deadline - utcnow()).total_seconds())
        outputs: list[Any] = done_items
        try:
            for i, params in enumerate(rendered):
                if i < len(done_items):
                    continue  # this item finished before a crash
                actx = ActionContext(
                    runtime=self.runtime,
                    execution_id=eid,
                    step_key=step.id,
                    idempotency_key=key if items is None else f"{key}-{i}",
                    deadline=deadline,
                    dry_run=bool(ex.dry_run),
                    audit=functools.partial(self._audit_call, eid, step.id),
                    transport=self.transport,
                    secrets=secrets,
                )
                out = self._call(spec, actx, params, deadline, where)
                outputs.append(out)
                if items is not None and not ex.dry_run:
                    with self._tx() as conn:
                        self._set_step(conn, eid, step.id, output={"items": outputs})
        except Exception as exc:
            msg = f"{where}: " + (
                exc.message if isinstance(exc, MantissaError) else f"{type(exc).__name__}: {exc}"
            )
            msg = mask(msg, secrets)
            permanent = isinstance(exc, ConfigError | templates.TemplateRejected)
            if step.retries and attempt < step.retries.max_attempts and not permanent:
                backoff = step.retries.backoff_seconds * (2 ** (attempt - 1))
                with self._tx() as conn:
                    self._transition(
                        conn,
                        eid,
                        step.id,
                        "retry_wait",
                        {"error": msg, "backoff_s": backoff},
                        attempt=attempt,
                        error=msg,
                        next_attempt_at=utcnow() + dt.timedelta(seconds=backoff),
                    )
                return None
            with self._tx() as conn:
                self._transition(
                    conn,
                    eid,
                    step.id,
                    "failed",
                    {"error": msg},
                    error=msg,
                    output={"items": outputs} if items is not None else None,
                    ended_at=utcnow(),
                )
            if step.on_failure == "continue":
                return None
            return self._finish(eid, "failed", msg)
        output = outputs[0] if items is None else {"items": outputs}
        with self._tx() as conn:
            values = dict(output=mask(output, secrets), ended_at=utcnow(), error=None)
            if ex.dry_run:
                values.update(
                    attempt=attempt,
                    input=mask(rendered[0] if items is None else {"items": rendered}, secrets),
                    started_at=now,
                )
            self._transition(conn, eid, step.id, "succeeded", None, **values)
        return None

    def _call(
        self,
        spec: ActionSpec,
        actx: ActionContext,
        params: dict[str, Any],
        deadline: float,
        where: str,
    ) -> Any:
        clean = spec.validate(params, where)
        if actx.dry_run:
            try:
                spec.fn(actx, **clean)
            except DryRunStop:
                pass
            return {"dry_run": True, "requests": actx.requests, "parameters": actx.mask(clean)}
        fut = _POOL.submit(spec.fn, actx, **clean)
        try:
            return fut.result(timeout=max(0.05, deadline - time.monotonic()))
        except cf.TimeoutError:
            raise StepFailed("step timed out (timeout_seconds)") from None

    def _audit_call(self, eid: str, step: str, detail: dict[str, Any]) -> None:
        with self.state.begin() as conn:
            record_audit(conn, eid, "call", {"step": step, **detail})

    # -- control --------------------------------------------------------------------------
    def cancel(self, eid: str, actor: str | None = None) -> str:
        st = self._status(eid)
        if st in TERMINAL:
            raise ExecutionConflict(f"execution {eid} already ended ({st})")
        with self.state.begin() as conn:
            conn.execute(
                executions.update().where(executions.c.id == eid).values(cancel_requested=True)
            )
            record_audit(conn, eid, "decision", {"event": "cancel_requested"}, actor)
        # nobody is running it (waiting for approval, or idle): end it now
        if self._lease(eid, 30):
            try:
                return self._finish(eid, "cancelled", f"cancelled by {actor or 'unknown'}")
            finally:
                self._release(eid)
        return self._status(eid)

    def resume(self, eid: str, retry: str | None = None, actor: str | None = None) -> str:
        ex = self.get(eid)
        if retry:
            keys = {s["id"] for s in ex["steps"]}
            if retry not in keys:
                raise NotFound(f"execution {eid} has no step {retry!r}")
            with self.state.begin() as conn:
                self._transition(
                    conn,
                    eid,
                    retry,
                    "pending",
                    {"event": "retry", "actor": actor},
                    error=None,
                    output=None,
                )
                conn.execute(
                    steps.update()
                    .where(
                        steps.c.execution_id == eid,
                        steps.c.status.in_(("skipped", "cancelled")),
                        steps.c.ended_at.is_(None),
                    )
                    .values(status="pending")
                )
                conn.execute(
                    executions.update()
                    .where(executions.c.id == eid)
                    .values(
                        status="running",
                        error=None,
                        ended_at=None,
                        cancel_requested=False,
                        updated_at=utcnow(),
                        deadline_at=utcnow()
                        + dt.timedelta(seconds=self.settings.execution_timeout_seconds),
                    )
                )
                record_audit(conn, eid, "decision", {"event": "resume", "retry": retry}, actor)
        elif ex["status"] in TERMINAL:
            raise ExecutionConflict(
                f"execution {eid} ended {ex['status']}",
                hint="resume with --retry STEP to run a step again",
            )
        return self.run(eid)

    def recover(self) -> builtins.list[str]:
        """Executions left ``running`` by a dead process: run them again (serve start, tick)."""
        with self.state.engine.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    sa.select(executions.c.id).where(executions.c.status == "running")
                )
            ]
        out = []
        for eid in ids:
            st = self.run(eid, wait_retries=False)
            out.append(st)
        return out


def _iso(v: Any) -> str | None:
    v = as_utc(v)
    return v.isoformat().replace("+00:00", "Z") if v else None


def _summary(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "playbook_id": r.playbook_id,
        "version": r.version,
        "status": r.status,
        "trigger": r.trigger,
        "alert_id": r.alert_id,
        "dry_run": bool(r.dry_run),
        "error": r.error,
        "created_at": _iso(r.created_at),
        "updated_at": _iso(r.updated_at),
        "ended_at": _iso(r.ended_at),
    }


def _execution_dict(r: Any, srows: list[Any], arows: list[Any]) -> dict[str, Any]:
    out = _summary(r)
    out["input"] = (r.input or {}).get("input")
    out["deadline_at"] = _iso(r.deadline_at)
    out["steps"] = [
        {
            "id": s.key,
            "action": s.action,
            "status": s.status,
            "attempt": s.attempt,
            "input": s.input,
            "output": s.output,
            "error": s.error,
            "started_at": _iso(s.started_at),
            "ended_at": _iso(s.ended_at),
            "next_attempt_at": _iso(s.next_attempt_at),
        }
        for s in srows
    ]
    out["approvals"] = [
        {
            "id": a.id,
            "step": a.step_key,
            "status": a.status,
            "requested_at": _iso(a.requested_at),
            "expires_at": _iso(a.expires_at),
            "decided_by": a.decided_by,
            "decided_at": _iso(a.decided_at),
            "via": a.via,
            "reason": a.reason,
        }
        for a in arows
    ]
    return out
