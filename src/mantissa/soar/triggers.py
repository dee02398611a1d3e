"""Triggers: alerts (through ``AlertService.on_alert``), schedules (cron), manual runs,
and the worker ``serve`` runs (approval expiry, crash recovery, retries, schedules).

An alert that matches a playbook's ``trigger.conditions`` (``rule_id`` glob, ``severity``
list, ``tags`` any-of) starts the latest active version once: the execution row is
unique per (playbook, alert). The execution runs on a worker thread so the alert path is
not held up; at interpreter exit the process waits for those threads (bounded by the
step and execution timeouts), and whatever a killed process left is resumed by ``serve``.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import fnmatch
import logging
import threading
import time
from typing import Any

from mantissa.state.store import utcnow

log = logging.getLogger("mantissa.soar")

_POOL = cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="soar-trigger")
_PENDING: set[cf.Future[Any]] = set()
_CACHE: dict[int, tuple[float, list[tuple[str, str, dict[str, Any]]]]] = {}
_LOCK = threading.Lock()
CACHE_SECS = 2.0
TICK_SECS = 0.5


def matches(trigger: dict[str, Any], alert: dict[str, Any]) -> bool:
    """Whether ``alert`` satisfies an alert trigger's conditions."""
    if trigger.get("type") != "alert":
        return False
    cond = trigger.get("conditions") or {}
    rid = cond.get("rule_id")
    if rid and not fnmatch.fnmatchcase(str(alert.get("rule_id", "")), rid):
        return False
    sev = cond.get("severity")
    if sev and str(alert.get("severity")) not in sev:
        return False
    tags = cond.get("tags")
    return not (tags and not set(tags) & set(alert.get("tags") or []))


def _active(runtime: Any) -> list[tuple[str, str, dict[str, Any]]]:
    key = id(runtime)
    now = time.monotonic()
    with _LOCK:
        hit = _CACHE.get(key)
        if hit and hit[0] > now:
            return hit[1]
    from mantissa.soar.store import PlaybookStore

    rows = PlaybookStore(runtime).latest_active()
    with _LOCK:
        _CACHE[key] = (now + CACHE_SECS, rows)
    return rows


def invalidate() -> None:
    with _LOCK:
        _CACHE.clear()


def start_for_alert(runtime: Any, alert: dict[str, Any], wait: bool = False) -> list[str]:
    """Start every matching playbook for ``alert`` (once each); returns execution ids."""
    from mantissa.soar.executor import Executor

    started = []
    for pid, version, trigger in _active(runtime):
        if not matches(trigger, alert):
            continue
        ex = Executor(runtime)
        eid = ex.start(pid, version=version, alert=alert, trigger="alert", actor="alert")
        if eid is None:
            continue  # this alert already started this playbook
        started.append(eid)
        if wait:
            ex.run(eid)
        else:
            fut = _POOL.submit(_run_quietly, runtime, eid)
            _PENDING.add(fut)
            fut.add_done_callback(_PENDING.discard)
    return started


def _run_quietly(runtime: Any, eid: str) -> None:
    from mantissa.soar.executor import Executor

    try:
        Executor(runtime).run(eid)
    except Exception:  # recorded by the executor; a worker thread must not die loudly
        log.exception("execution %s stopped unexpectedly", eid)


def alert_hook(alert: Any, created: bool, runtime: Any) -> None:
    """``AlertService.on_alert`` hook: start matching playbooks for a new alert."""
    if not created:
        return
    start_for_alert(runtime, alert.model_dump(mode="json"))


def install() -> None:
    """Register :func:`alert_hook` on the alert path (idempotent)."""
    try:
        from mantissa.alerts.service import AlertService
    except ImportError:  # a build without alerts
        return
    if alert_hook not in AlertService.on_alert:
        AlertService.on_alert.append(alert_hook)


def wait_pending(timeout: float | None = None) -> None:
    """Wait for executions started by alert triggers in this process."""
    cf.wait(list(_PENDING), timeout=timeout)


atexit.register(wait_pending)


# -- schedules --------------------------------------------------------------------------
def due_schedules(runtime: Any) -> list[str]:
    """Start schedule-triggered playbooks whose cron time has passed (once per slot)."""
    from croniter import croniter

    from mantissa.soar.executor import Executor

    started = []
    now = utcnow()
    for pid, version, trigger in _active(runtime):
        if trigger.get("type") != "schedule" or not trigger.get("schedule"):
            continue
        slot = croniter(trigger["schedule"], now).get_prev(type(now))
        last = runtime.state.get("soar_schedule", pid)
        if last is None:
            # first sight: remember the slot, do not fire for the past
            runtime.state.put("soar_schedule", pid, slot.isoformat())
            continue
        if last >= slot.isoformat():
            continue
        # one process per slot: the lease name carries the slot
        if not runtime.state.acquire_lease(
            f"soar-sched:{pid}:{slot.isoformat()}", "once", 7 * 86400
        ):
            continue
        runtime.state.put("soar_schedule", pid, slot.isoformat())
        eid = Executor(runtime).start(
            pid,
            version=version,
            input={"scheduled_at": slot.isoformat()},
            trigger="schedule",
            actor="schedule",
        )
        if eid:
            started.append(eid)
            _POOL.submit(_run_quietly, runtime, eid)
    return started


# -- the worker serve runs ---------------------------------------------------------------
def tick(runtime: Any) -> None:
    """One pass: expire approvals, move waiting executions on, resume orphans, schedules."""
    from mantissa.soar.approvals import sweep
    from mantissa.soar.executor import Executor

    sweep(runtime)
    Executor(runtime).recover()
    due_schedules(runtime)


def worker(runtime: Any, stop: threading.Event) -> None:
    """``serve`` background service: :func:`tick` every half second (expiry within 1 s)."""
    import os
    import socket

    from mantissa.soar.approvals import WORKER_LEASE
    from mantissa.soar.config import soar_config
    from mantissa.soar.store import PlaybookStore

    install()
    owner = f"{socket.gethostname()}:{os.getpid()}:worker"
    for d in soar_config(runtime).playbook_dirs:
        try:
            PlaybookStore(runtime).import_path(__import__("pathlib").Path(d), "serve")
        except Exception as exc:
            log.error("importing playbooks from %s: %s", d, exc)
    while not stop.is_set():
        runtime.state.acquire_lease(WORKER_LEASE, owner, 5)
        try:
            tick(runtime)
        except Exception:
            log.exception("SOAR tick failed")
        stop.wait(TICK_SECS)
    runtime.state.release_lease(WORKER_LEASE, owner)
