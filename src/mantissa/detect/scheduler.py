"""The detection scheduler: every rule at its interval, exactly once per window.

Each rule has an interval (5m, 15m, 1h, 24h by level; ``interval:`` in the rule or
``detect.intervals`` overrides) and a watermark persisted in the state store
(``detect.watermark``). A window is ``[watermark - lookback, now - ingest_delay)``, its end
aligned to the interval so that rules with the same interval share windows and are packed
into one scan per table. Rows already evaluated are skipped (``event_time >= watermark``
or ingested since the previous run), so the lookback catches late-arriving events without
double alerts; the watermark only advances after the alerts are stored, so a crash re-runs
the window and the alert store's dedup absorbs the replay. Downtime is caught up in chunks
of ``detect.max_catchup``. In a fleet sharing one state store (PostgreSQL), each rule is
run under a lease (``StateStore.acquire_lease``) and its watermark re-read after taking it,
so every window runs once across processes. A lease whose holder was killed on this host
(its pid is gone) is taken over at once; one held on another host expires after
``lease_secs``. Each completed window is one ``detect_runs`` row (rule, window end), written
in the watermark's transaction: the audit trail of exactly-once, and the lag from window
end to run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mantissa.detect.correlation import parse_duration
from mantissa.detect.engine import DetectionEngine, raise_alerts, record_stats
from mantissa.detect.pipelines import detect_config
from mantissa.detect.rules import BUILTIN_DIR, ENABLED_NS, Rule, RuleIndex, rule_files
from mantissa.detect.runs import detect_runs, record_run
from mantissa.state.store import leases

log = logging.getLogger(__name__)
WATERMARK_NS = "detect.watermark"
_HOST = socket.gethostname()
#: How long ``detect_runs`` rows are kept.
RUN_HISTORY = dt.timedelta(days=7)


def _iso(v: dt.datetime) -> str:
    return v.astimezone(dt.UTC).isoformat()


def _parse(v: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(v)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _floor(t: dt.datetime, secs: int) -> dt.datetime:
    epoch = int(t.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % secs, dt.UTC)


class Scheduler:
    """Runs due rule windows; :meth:`tick` once, :meth:`run_forever` in ``mantissa serve``."""

    def __init__(
        self,
        runtime: Any,
        owner: str | None = None,
        now: Callable[[], dt.datetime] | None = None,
        lease_secs: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.cfg = detect_config(runtime)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.lookback = dt.timedelta(seconds=parse_duration(self.cfg.lookback))
        self.delay = dt.timedelta(seconds=parse_duration(self.cfg.ingest_delay))
        self.max_catchup = dt.timedelta(seconds=parse_duration(self.cfg.max_catchup))
        timeout = float(getattr(runtime.config.engine, "timeout_secs", 60))
        self.lease_secs = lease_secs or max(300.0, 4 * timeout)
        self._pruned = 0.0
        self._index: tuple[Any, RuleIndex] | None = None

    # -- planning ---------------------------------------------------------------------
    def state_of(self, rule_id: str) -> dict[str, Any] | None:
        return self.runtime.state.get(WATERMARK_NS, rule_id)

    def window_for(
        self, rule: Rule, now: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime | None] | None:
        """(start, end, watermark, last_run) of the rule's due window, or None."""
        interval = max(60, int(rule.interval_secs))
        end = _floor(now - self.delay, interval)
        st = self.state_of(rule.id)
        if st is None:
            wm, last_run = end - dt.timedelta(seconds=interval), None
        else:
            wm = _parse(st["watermark"])
            last_run = _parse(st["last_run"]) if st.get("last_run") else None
        if end <= wm:
            return None
        end = min(end, wm + self.max_catchup)
        return wm - self.lookback, end, wm, last_run

    def plan(
        self, index: RuleIndex, now: dt.datetime
    ) -> dict[tuple[dt.datetime, dt.datetime], list[tuple[Rule, dt.datetime, dt.datetime | None]]]:
        groups: dict[
            tuple[dt.datetime, dt.datetime], list[tuple[Rule, dt.datetime, dt.datetime | None]]
        ] = {}
        for rule in index.rules:
            if (
                not rule.enabled
                or not rule.generate
                or not (rule.table or rule.kind == "correlation")
            ):
                continue
            w = self.window_for(rule, now)
            if w is None:
                continue
            start, end, wm, last_run = w
            groups.setdefault((start, end), []).append((rule, wm, last_run))
        return groups

    def rule_index(self) -> RuleIndex:
        """The rule index, re-loaded only when a rule file or an enable/disable changed.

        Loading parses every rule file (seconds for the built-in library on a busy host);
        a tick every few seconds must not pay that, nor recompile the due rules.
        """
        cfg = self.cfg
        dirs = [BUILTIN_DIR] if cfg.builtin_rules else []
        dirs += [Path(self.runtime.data_dir) / "rules" / "sigma"]
        dirs += [Path(p) for p in cfg.rule_paths]
        files = []
        for d in dirs:
            for f in rule_files(d):
                try:
                    st = f.stat()
                except OSError:
                    continue
                files.append((str(f), st.st_mtime_ns, st.st_size))
        enabled = self.runtime.state.items(ENABLED_NS)
        fingerprint = (tuple(files), tuple(sorted(enabled.items())))
        if self._index is None or self._index[0] != fingerprint:
            self._index = (fingerprint, RuleIndex.load(self.runtime))
        return self._index[1]

    # -- running ----------------------------------------------------------------------
    def tick(self) -> dict[str, Any]:
        """Run every due window once; returns what ran."""
        now = self.now()
        index = self.rule_index()
        engine = DetectionEngine(self.runtime, index)
        report: dict[str, Any] = {
            "owner": self.owner,
            "at": _iso(now),
            "windows": [],
            "alerts": 0,
            "skipped_leased": [],
            "errors": {},
        }
        state = self.runtime.state
        for (start, end), members in sorted(self.plan(index, now).items(), key=lambda kv: kv[0][1]):
            held: list[tuple[Rule, dt.datetime, dt.datetime | None]] = []
            for rule, wm, last_run in members:
                lease = f"detect:{rule.id}"
                if not self._acquire(lease):
                    report["skipped_leased"].append(rule.id)
                    continue
                st = self.state_of(rule.id)
                if st is not None and _parse(st["watermark"]) != wm:
                    state.release_lease(lease, self.owner)  # another process ran it meanwhile
                    continue
                held.append((rule, wm, last_run))
            if not held:
                continue
            # the wall clock, not ``self.now``: the "seen" filter compares with ingested_at
            run_started = dt.datetime.now(dt.UTC)
            try:
                seen = {r.id: (wm, lr) for r, wm, lr in held if lr is not None}
                ev = engine.evaluate(start, end, rules=[r for r, _, _ in held], seen_filter=seen)
                alerts = raise_alerts(self.runtime, ev.candidates)
                record_stats(self.runtime, ev, alerts)
                unit_failed = {rid for u in ev.units if u.error for rid in u.rule_ids}
                matched: dict[str, int] = {}
                for c in ev.candidates:
                    matched[c.rule_id] = matched.get(c.rule_id, 0) + 1
                with state.begin() as conn:
                    ran_at = dt.datetime.now(dt.UTC)
                    for rule, wm, _ in held:
                        if rule.id in unit_failed:
                            continue  # engine error: retry this window next tick
                        state.put(
                            WATERMARK_NS,
                            rule.id,
                            {
                                "watermark": _iso(end),
                                "last_run": _iso(run_started),
                                "owner": self.owner,
                            },
                            conn,
                        )
                        runs = record_run(
                            conn,
                            rule.id,
                            start,
                            end,
                            wm,
                            self.owner,
                            matched.get(rule.id, 0),
                            ran_at,
                        )
                        if runs > 1:
                            log.warning(
                                "detect: rule %s window ending %s completed %d times",
                                rule.id,
                                _iso(end),
                                runs,
                            )
                report["windows"].append(
                    {
                        "start": _iso(start),
                        "end": _iso(end),
                        "rules": [r.id for r, _, _ in held],
                        "alerts": len(alerts),
                        "queries": len(ev.units),
                    }
                )
                report["alerts"] += len(alerts)
                report["errors"].update(ev.errors)
            finally:
                for rule, _, _ in held:
                    state.release_lease(f"detect:{rule.id}", self.owner)
        return report

    def _acquire(self, lease: str) -> bool:
        """Take ``lease``; also when its holder was a process on this host that is gone."""
        state = self.runtime.state
        if state.acquire_lease(lease, self.owner, self.lease_secs):
            return True
        with state.begin() as conn:
            row = conn.execute(sa.select(leases.c.owner).where(leases.c.name == lease)).first()
            if row is None or not _dead_local(str(row[0])):
                return False
            # kill -9 leaves the lease until it expires; on this host we know it is orphaned
            conn.execute(leases.delete().where(leases.c.name == lease, leases.c.owner == row[0]))
        log.info("detect: took over %s from %s (process gone)", lease, row[0])
        return bool(state.acquire_lease(lease, self.owner, self.lease_secs))

    def prune(self, now: dt.datetime | None = None) -> int:
        """Delete ``detect_runs`` rows older than :data:`RUN_HISTORY`; returns how many."""
        cutoff = (now or dt.datetime.now(dt.UTC)) - RUN_HISTORY
        with self.runtime.state.begin() as conn:
            return int(
                conn.execute(detect_runs.delete().where(detect_runs.c.ran_at < cutoff)).rowcount
            )

    def run_forever(self, stop_event: threading.Event, poll_secs: float | None = None) -> None:
        """Tick until ``stop_event`` is set (errors are logged, never fatal)."""
        poll = self.cfg.poll_secs if poll_secs is None else poll_secs
        while not stop_event.is_set():
            if time.monotonic() - self._pruned > 3600:
                self._pruned = time.monotonic()
                try:
                    self.prune()
                except Exception:
                    log.exception("pruning detect_runs failed")
            try:
                report = self.tick()
                if report["windows"]:
                    log.info(
                        "detect: %d windows, %d alerts", len(report["windows"]), report["alerts"]
                    )
            except Exception:  # keep the scheduler alive across one bad tick
                log.exception("detection scheduler tick failed")
            stop_event.wait(poll)


def _dead_local(owner: str) -> bool:
    """Whether lease owner ``host:pid:...`` is a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
