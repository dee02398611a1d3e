"""The scheduler: watermarks persisted across restarts, late events within the lookback,
catch-up after downtime, leases so a fleet runs each window once, no double alerts."""

from __future__ import annotations

import datetime as dt

import yaml

from mantissa.alerts.store import AlertStore
from mantissa.detect.rules import BUILTIN_DIR
from mantissa.detect.scheduler import WATERMARK_NS, Scheduler
from mantissa.runtime import Runtime
from tests.detect.conftest import ingest_events
from tests.detect.test_semantics import ct

T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
RULE_ID = "0d9ac4d2-1c54-4a39-9d57-3d5f7b3f0a11"


def _install_rule(rt: Runtime) -> None:
    d = rt.data_dir / "rules" / "sigma" / "cloudtrail"
    d.mkdir(parents=True, exist_ok=True)
    (d / "stop_logging.yml").write_text(
        yaml.safe_dump(
            {
                "title": "stop logging",
                "id": RULE_ID,
                "level": "high",  # → 5 minute interval
                "logsource": {"product": "aws", "service": "cloudtrail"},
                "detection": {"s": {"eventName": "StopLogging"}, "condition": "s"},
            }
        )
    )


def _sched(rt: Runtime, at: dt.datetime, owner: str = "p1") -> Scheduler:
    return Scheduler(Runtime(rt.data_dir), owner=owner, now=lambda: at)


def _alerts(rt: Runtime) -> list:
    alerts, _ = AlertStore(rt.state).list(rule_id=RULE_ID)
    return alerts


def test_restart_late_events_and_catch_up(rt: Runtime) -> None:
    _install_rule(rt)
    ingest_events(rt, "cloudtrail", [ct("e1", "StopLogging", minutes=1)], "a")
    rep = _sched(rt, T0 + dt.timedelta(minutes=10)).tick()
    assert [w["rules"] for w in rep["windows"]] == [[RULE_ID]]
    assert rep["windows"][0]["end"].startswith("2026-11-01T10:05")
    assert [a.count for a in _alerts(rt)] == [1]

    # a restarted process at the same moment has nothing to do: the watermark persisted
    rep = _sched(rt, T0 + dt.timedelta(minutes=10), owner="p2").tick()
    assert rep["windows"] == []
    assert [a.count for a in _alerts(rt)] == [1]

    # a late event (event time before the watermark, within the lookback) and a new one
    ingest_events(
        rt,
        "cloudtrail",
        [ct("e2", "StopLogging", minutes=2), ct("e3", "StopLogging", minutes=12)],
        "b",
    )
    rep = _sched(rt, T0 + dt.timedelta(minutes=30)).tick()
    assert len(rep["windows"]) == 1
    alerts = _alerts(rt)
    assert len(alerts) == 1  # same rule + entity: updated, not duplicated
    assert alerts[0].count == 3  # e1 counted once, e2 (late) and e3 added
    assert set(alerts[0].evidence_event_ids) == {"e1", "e2", "e3"}

    # downtime: three hours later everything missed is caught up in one window
    ingest_events(rt, "cloudtrail", [ct("e4", "StopLogging", minutes=120, user="bob")], "c")
    rep = _sched(rt, T0 + dt.timedelta(hours=3)).tick()
    assert len(rep["windows"]) == 1
    wm = rt.state.get(WATERMARK_NS, RULE_ID)["watermark"]
    assert wm.startswith("2026-11-01T12:55")
    assert {tuple(sorted(a.evidence_event_ids)) for a in _alerts(rt)} == {
        ("e1", "e2", "e3"),
        ("e4",),
    }


def test_lease_held_elsewhere_skips_the_window(rt: Runtime) -> None:
    _install_rule(rt)
    ingest_events(rt, "cloudtrail", [ct("e1", "StopLogging", minutes=1)], "a")
    assert rt.state.acquire_lease(f"detect:{RULE_ID}", "other-process", 300)
    rep = _sched(rt, T0 + dt.timedelta(minutes=10)).tick()
    assert rep["skipped_leased"] == [RULE_ID] and rep["windows"] == []
    assert rt.state.get(WATERMARK_NS, RULE_ID) is None
    rt.state.release_lease(f"detect:{RULE_ID}", "other-process")
    rep = _sched(rt, T0 + dt.timedelta(minutes=10)).tick()
    assert len(rep["windows"]) == 1 and rep["alerts"] == 1
    # two processes ticking one after another: the window ran once
    assert _sched(rt, T0 + dt.timedelta(minutes=10), owner="p3").tick()["windows"] == []
    assert [a.count for a in _alerts(rt)] == [1]


def test_builtin_library_ships_with_samples() -> None:
    rules = sorted(BUILTIN_DIR.rglob("*.yml"))
    names = {p.name for p in rules}
    for p in rules:
        if not p.name.endswith(".samples.yml"):
            assert p.name.replace(".yml", ".samples.yml") in names, p
