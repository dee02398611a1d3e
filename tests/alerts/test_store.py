"""AlertStore on SQLite and PostgreSQL: dedup, suppression, listing, status history."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from mantissa.alerts.model import MAX_EVIDENCE_ROWS, AlertStatus, Severity
from mantissa.alerts.store import AlertStore
from mantissa.errors import NotFound
from mantissa.state.store import StateStore
from tests.alerts.conftest import T0, candidate


@pytest.fixture
def store(state_url: str):
    st = StateStore(state_url)
    yield AlertStore(st)
    st.close()


def test_upsert_creates_then_dedups_within_window(store: AlertStore) -> None:
    a, created = store.upsert(candidate())
    assert created and a.status == AlertStatus.open and a.count == 1
    later = T0 + dt.timedelta(minutes=20)
    b, created = store.upsert(
        candidate(first_seen=later, last_seen=later, evidence_event_ids=["ev-2"], count=3)
    )
    assert not created and b.id == a.id
    assert b.count == 4 and b.last_seen == later and b.first_seen == T0
    assert b.evidence_event_ids == ["ev-1", "ev-2"]
    got = store.get(a.id)
    assert got.count == 4 and got.history[0]["action"] == "created"


def test_replaying_the_same_match_changes_nothing(store: AlertStore) -> None:
    a, _ = store.upsert(candidate())
    b, created = store.upsert(candidate())
    assert not created and b.count == 1 == store.get(a.id).count


def test_outside_window_or_closed_creates_a_new_alert(store: AlertStore) -> None:
    a, _ = store.upsert(candidate(suppress_secs=600))
    late = T0 + dt.timedelta(minutes=11)
    b, created = store.upsert(
        candidate(first_seen=late, last_seen=late, suppress_secs=600, evidence_event_ids=["ev-9"])
    )
    assert created and b.id != a.id
    store.set_status(b.id, "closed", "tester")
    c, created = store.upsert(candidate(first_seen=late, last_seen=late, evidence_event_ids=["x"]))
    assert created and c.id not in (a.id, b.id)


def test_evidence_is_bounded_and_severity_escalates(store: AlertStore) -> None:
    rows = [{"n": i} for i in range(15)]
    store.upsert(candidate(evidence_rows=rows, severity="medium"))
    b, _ = store.upsert(
        candidate(
            evidence_rows=[{"n": 100 + i} for i in range(15)],
            severity="critical",
            evidence_event_ids=["ev-2"],
            last_seen=T0 + dt.timedelta(seconds=5),
        )
    )
    assert len(b.evidence_rows) == MAX_EVIDENCE_ROWS
    assert b.evidence_rows[0] == {"n": 0}  # the first rows are kept
    assert b.severity == Severity.critical


def test_list_filters_sort_and_paging(store: AlertStore) -> None:
    for i, sev in enumerate(["low", "medium", "high", "critical", "informational"]):
        t = T0 + dt.timedelta(hours=i)
        store.upsert(
            candidate(
                rule_id=f"rule.{sev}",
                rule_title=f"Rule {sev}",
                severity=sev,
                dedup_key=f"k{i}",
                first_seen=t,
                last_seen=t,
                entities={"user": f"user{i}@corp.example"},
            )
        )
    items, total = store.list()
    assert total == 5 and items[0].rule_id == "rule.informational"  # -last_seen
    items, total = store.list(severity=["high", "critical"], sort="-severity")
    assert [a.severity.value for a in items] == ["critical", "high"] and total == 2
    assert store.list(min_severity="medium")[1] == 3
    assert store.list(rule_id="rule.*")[1] == 5
    assert store.list(rule_id="rule.h*")[0][0].rule_id == "rule.high"
    assert store.list(q="USER3@corp")[0][0].rule_id == "rule.critical"
    assert store.list(since=T0 + dt.timedelta(hours=3))[1] == 2
    assert store.list(until=T0 + dt.timedelta(hours=1))[1] == 1
    page, total = store.list(sort="last_seen", limit=2, offset=2)
    assert total == 5 and [a.rule_id for a in page] == ["rule.high", "rule.critical"]
    a = page[0]
    store.set_status(a.id, "acknowledged", "ann")
    assert store.list(status="acknowledged")[0][0].id == a.id
    with pytest.raises(Exception, match="unknown sort"):
        store.list(sort="bogus")


def test_status_history_and_not_found(store: AlertStore) -> None:
    a, _ = store.upsert(candidate())
    store.set_status(a.id, "acknowledged", "ann", "looking")
    b = store.set_status(a.id, AlertStatus.false_positive, "bob", "known scanner")
    assert [h["action"] for h in b.history] == ["created", "status", "status"]
    assert b.history[-1] | {"at": None} == {
        "at": None,
        "actor": "bob",
        "action": "status",
        "from": "acknowledged",
        "status": "false_positive",
        "reason": "known scanner",
    }
    with pytest.raises(NotFound):
        store.get("al_missing")
    with pytest.raises(NotFound):
        store.set_status("al_missing", "closed", "x")


def test_concurrent_upserts_of_one_dedup_key_make_one_alert(store: AlertStore) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            t = T0 + dt.timedelta(seconds=i)
            a, _ = store.upsert(candidate(first_seen=t, last_seen=t, evidence_event_ids=[f"e{i}"]))
            ids.append(a.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 1
    assert store.get(ids[0]).count == 8


def test_upsert_many_matches_one_by_one(store: AlertStore) -> None:
    old, _ = store.upsert(candidate(dedup_key="existing"))
    closed, _ = store.upsert(candidate(dedup_key="reopened"))
    store.set_status(closed.id, "closed", "ann")
    t1 = T0 + dt.timedelta(minutes=1)
    batch = [
        candidate(dedup_key="new1"),
        candidate(dedup_key="existing", first_seen=t1, last_seen=t1, evidence_event_ids=["b"]),
        candidate(dedup_key="new1", first_seen=t1, last_seen=t1, evidence_event_ids=["c"], count=2),
        candidate(dedup_key="reopened", first_seen=t1, last_seen=t1, evidence_event_ids=["d"]),
    ]
    res = store.upsert_many(batch)
    assert [created for _, created in res] == [True, False, False, True]
    assert res[0][0].id == res[2][0].id and store.get(res[0][0].id).count == 3
    assert res[1][0].id == old.id and store.get(old.id).count == 2
    assert res[3][0].id != closed.id
    assert store.list(dedup_key="reopened")[1] == 2
    # the dedup key now points at the new alert: a later match updates it
    again, created = store.upsert(
        candidate(dedup_key="reopened", first_seen=t1, last_seen=t1, evidence_event_ids=["e"])
    )
    assert not created and again.id == res[3][0].id


def test_evidence_with_odd_values_round_trips(store: AlertStore) -> None:
    import decimal

    rows = [
        {
            "t": T0,
            "d": decimal.Decimal("1.5"),
            "nan": float("nan"),
            "inf": float("inf"),
            "b": b"\x01\x02",
            "nested": {"x": [T0.date(), float("-inf")]},
        }
    ]
    a, _ = store.upsert(candidate(evidence_rows=rows))
    got = store.get(a.id).evidence_rows[0]
    assert got == {
        "t": "2026-03-01T12:00:00Z",
        "d": 1.5,
        "nan": None,
        "inf": None,
        "b": "0102",
        "nested": {"x": ["2026-03-01", None]},
    }
