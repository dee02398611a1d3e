"""The identity scheduler inside ``mantissa serve``: every ``identity.interval_mins`` (5)
run the identity detections from the watermark to ``now - identity.ingest_delay_mins``,
under a state-store lease so one process of a fleet runs each window."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from typing import Any

from mantissa.api import background

log = logging.getLogger("mantissa.identity")

LEASE = "identity:run"


def tick(runtime: Any, owner: str | None = None, runner: Any = None) -> int:
    """One scheduled pass; returns the number of alerts raised (0 if another process holds
    the lease). ``runner``: the scheduler's long-lived :class:`IdentityRun` (its session
    keeps the lookback and the baselines between passes; baselines another process wrote
    meanwhile are re-read)."""
    from mantissa.identity.config import load
    from mantissa.identity.run import IdentityRun

    cfg = runner.config if runner is not None else load(runtime)
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"
    if not runtime.state.acquire_lease(LEASE, owner, ttl_secs=max(600, cfg.interval_mins * 120)):
        return 0
    try:
        end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=cfg.ingest_delay_mins)
        results = (runner or IdentityRun(runtime, cfg)).catch_up(end=end)
        return sum(len(r.alerts) for r in results)
    finally:
        runtime.state.release_lease(LEASE, owner)


@background.register(name="identity-scheduler")
def identity_scheduler(runtime: Any, stop: threading.Event) -> None:
    """Run :func:`tick` every ``identity.interval_mins`` until ``stop`` is set."""
    from mantissa.identity.config import load
    from mantissa.identity.run import IdentityRun

    cfg = load(runtime)
    interval = cfg.interval_mins * 60
    runner = IdentityRun(runtime, cfg, keep_session=True)
    try:
        while not stop.is_set():
            try:
                n = tick(runtime, runner=runner)
                if n:
                    log.info("identity detections raised %d alert(s)", n)
            except Exception:  # the supervisor restarts us, but one bad window must not spin
                log.exception("identity run failed")
            stop.wait(interval)
    finally:
        runner.close()
