"""Per-user behavioral baselines in the state store, updated incrementally.

Each run folds its window's sign-ins into one row per user (``identity_baselines``):
first/last seen, sign-in and failure counts, and histograms of hour of day (UTC: a user's
own histogram is shifted by their time zone as a whole, so comparing a sign-in with it
is the same as comparing in their local time), hour of week, countries, networks (ASN or
AS organisation), devices (user agent without version numbers), source IPs, apps,
factors (multi- vs single-factor) and the daily volume; plus the department/group when a
provider says (the peer group, else the organisation). IPs users signed in from are
kept org-wide in ``identity_known_ips``. The aggregation is one SQL query per window;
Python only merges one small document per active user.

A user is *learning* until ``identity.learning_days`` (14) after their first sign-in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from mantissa.state.store import StateStore, as_utc, metadata, utcnow

baselines = sa.Table(
    "identity_baselines",
    metadata,
    sa.Column("user", sa.String(320), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("logins", sa.Integer, nullable=False, default=0),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

known_ips = sa.Table(
    "identity_known_ips",
    metadata,
    sa.Column("ip", sa.String(64), primary_key=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
)

# most entries kept per histogram (the least used are dropped first)
_CAP = {"ips": 200, "devices": 50, "countries": 50, "nets": 50, "apps": 100}
_DAYS_KEPT = 60

# the window's sign-in aggregates per user (ev.in_window only)
AGG_SQL = """
SELECT "user",
  min(event_time) AS first_seen, max(event_time) AS last_seen,
  count(*) FILTER (WHERE ok) AS logins,
  count(*) FILTER (WHERE action = 'login' AND outcome = 'failure') AS failures,
  histogram(country) FILTER (WHERE ok AND country IS NOT NULL) AS countries,
  histogram(net) FILTER (WHERE ok AND net IS NOT NULL) AS nets,
  histogram(dev) FILTER (WHERE ok AND dev IS NOT NULL) AS devices,
  histogram(src_ip) FILTER (WHERE ok AND src_ip IS NOT NULL) AS ips,
  histogram(app) FILTER (WHERE ok AND app IS NOT NULL) AS apps,
  histogram(hour(event_time)) FILTER (WHERE ok) AS hod,
  histogram(CAST(isodow(event_time) - 1 AS INTEGER) * 24 + hour(event_time))
    FILTER (WHERE ok) AS how,
  histogram(strftime(event_time, '%Y-%m-%d')) FILTER (WHERE ok) AS daily,
  count(*) FILTER (WHERE action = 'login' AND outcome = 'success' AND mfa IS TRUE) AS mfa,
  count(*) FILTER (WHERE action = 'login' AND outcome = 'success' AND mfa IS FALSE) AS single,
  any_value(department) AS department
FROM (SELECT *, (action IN ('login', 'sso') AND outcome = 'success') AS ok FROM ev
      WHERE in_window) AS w
GROUP BY "user"
"""

RESETS_SQL = """
SELECT actor AS "user", count(*) FILTER (WHERE action IN ('factor_reset', 'mfa_disable')) AS resets,
  count(*) FILTER (WHERE action = 'token_create') AS tokens
FROM ev WHERE in_window AND action IN ('factor_reset', 'mfa_disable', 'token_create')
  AND actor IS NOT NULL
GROUP BY actor
"""


def _merge(a: dict[str, int] | None, b: dict[Any, int] | None, cap: int | None) -> dict[str, int]:
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[str(k)] = out.get(str(k), 0) + int(v)
    if cap and len(out) > cap:
        out = dict(sorted(out.items(), key=lambda kv: -kv[1])[:cap])
    return out


def update(state: StateStore, con: Any) -> int:
    """Fold the window's events (``ev`` in ``con``) into the stored baselines; returns the
    number of users updated."""
    cur = con.execute(AGG_SQL)
    cols = [d[0] for d in cur.description]
    aggs = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
    extra = {r[0]: (r[1], r[2]) for r in con.execute(RESETS_SQL).fetchall()}
    users = sorted(set(aggs) | set(extra))
    if not users:
        return 0
    stored = load(state, users)
    now = utcnow()
    inserts, updates = [], []
    for u in users:
        a = aggs.get(u)
        old = stored.get(u)
        data: dict[str, Any] = dict(old["data"]) if old else {}
        if a:
            for key, cap in _CAP.items():
                data[key] = _merge(data.get(key), a[key], cap)
            data["hod"] = _merge(data.get("hod"), a["hod"], None)
            data["how"] = _merge(data.get("how"), a["how"], None)
            daily = _merge(data.get("daily"), a["daily"], None)
            data["daily"] = dict(sorted(daily.items())[-_DAYS_KEPT:])
            data["mfa"] = int(data.get("mfa", 0)) + int(a["mfa"] or 0)
            data["single"] = int(data.get("single", 0)) + int(a["single"] or 0)
            if a["department"]:
                data["department"] = a["department"]
        if u in extra:
            data["resets"] = int(data.get("resets", 0)) + int(extra[u][0] or 0)
            data["tokens"] = int(data.get("tokens", 0)) + int(extra[u][1] or 0)
        first = as_utc(a["first_seen"]) if a else None
        last = as_utc(a["last_seen"]) if a else None
        row = {
            "data": data,
            "logins": (old["logins"] if old else 0) + (int(a["logins"]) if a else 0),
            "failures": (old["failures"] if old else 0) + (int(a["failures"]) if a else 0),
            "updated_at": now,
        }
        if old:
            row["first_seen"] = min(old["first_seen"], first) if first else old["first_seen"]
            # last_seen = last successful activity (dormancy is measured from it)
            row["last_seen"] = (
                max(old["last_seen"], last) if last and a and a["logins"] else old["last_seen"]
            )
            updates.append({"u": u, **row})
        else:
            if first is None:
                continue  # an actor with no sign-in of its own yet
            row.update(user=u, first_seen=first, last_seen=last or first)
            inserts.append(row)
    ips = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT src_ip FROM ev WHERE in_window AND action IN ('login', 'sso') "
            "AND outcome = 'success' AND src_ip IS NOT NULL"
        ).fetchall()
    ]
    with state.begin() as conn:
        if inserts:
            conn.execute(baselines.insert(), inserts)
        if updates:
            conn.execute(
                baselines.update()
                .where(baselines.c.user == sa.bindparam("u"))
                .values(
                    data=sa.bindparam("data"),
                    logins=sa.bindparam("logins"),
                    failures=sa.bindparam("failures"),
                    first_seen=sa.bindparam("first_seen"),
                    last_seen=sa.bindparam("last_seen"),
                    updated_at=sa.bindparam("updated_at"),
                ),
                updates,
            )
        if ips:
            have = set()
            for chunk in _chunks(ips, 500):
                have |= {
                    r[0]
                    for r in conn.execute(
                        sa.select(known_ips.c.ip).where(known_ips.c.ip.in_(chunk))
                    )
                }
            new = [{"ip": ip, "first_seen": now, "last_seen": now} for ip in ips if ip not in have]
            if new:
                conn.execute(known_ips.insert(), new)
    return len(inserts) + len(updates)


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def load(state: StateStore, users: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Stored baselines, all or for ``users``."""
    out: dict[str, dict[str, Any]] = {}
    with state.engine.connect() as conn:
        chunks = _chunks(users, 500) if users is not None else [None]
        for chunk in chunks:
            q = sa.select(baselines)
            if chunk is not None:
                q = q.where(baselines.c.user.in_(chunk))
            for r in conn.execute(q).mappings():
                d = dict(r)
                d["first_seen"] = as_utc(d["first_seen"])
                d["last_seen"] = as_utc(d["last_seen"])
                out[d["user"]] = d
    return out


def as_arrow(stored: dict[str, dict[str, Any]], end: dt.datetime, learning_days: int) -> pa.Table:
    """The ``bl`` table detections join against."""
    cut = end - dt.timedelta(days=learning_days)
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "user", "first_seen", "last_seen", "learning", "logins", "fail_rate", "days",
            "countries", "nets", "devices", "ips", "hod", "daily", "daily_median",
            "daily_mad", "department", "mfa_ratio", "resets", "tokens",
        )
    }  # fmt: skip
    for u, b in stored.items():
        d = b["data"]
        first, last = b["first_seen"], b["last_seen"]
        span = max(1, (min(last, end) - first).days + 1)
        days = _daily_series(d.get("daily") or {}, first, min(last, end))
        med, mad = _median_mad(days)
        hod = [int((d.get("hod") or {}).get(str(h), 0)) for h in range(24)]
        total_f = int(d.get("mfa", 0)) + int(d.get("single", 0))
        cols["user"].append(u)
        cols["first_seen"].append(first)
        cols["last_seen"].append(last)
        cols["learning"].append(first > cut)
        cols["logins"].append(int(b["logins"]))
        cols["fail_rate"].append(int(b["failures"]) / span)
        cols["days"].append(len(days))
        for k in ("countries", "nets", "devices", "ips"):
            cols[k].append(sorted((d.get(k) or {}).keys()))
        cols["hod"].append(hod)
        cols["daily"].append(days)
        cols["daily_median"].append(med)
        cols["daily_mad"].append(mad)
        cols["department"].append(d.get("department"))
        cols["mfa_ratio"].append(int(d.get("mfa", 0)) / total_f if total_f else None)
        cols["resets"].append(int(d.get("resets", 0)))
        cols["tokens"].append(int(d.get("tokens", 0)))
    schema = pa.schema(
        [
            ("user", pa.string()),
            ("first_seen", pa.timestamp("us", tz="UTC")),
            ("last_seen", pa.timestamp("us", tz="UTC")),
            ("learning", pa.bool_()),
            ("logins", pa.int64()),
            ("fail_rate", pa.float64()),
            ("days", pa.int64()),
            ("countries", pa.list_(pa.string())),
            ("nets", pa.list_(pa.string())),
            ("devices", pa.list_(pa.string())),
            ("ips", pa.list_(pa.string())),
            ("hod", pa.list_(pa.int64())),
            ("daily", pa.list_(pa.int64())),
            ("daily_median", pa.float64()),
            ("daily_mad", pa.float64()),
            ("department", pa.string()),
            ("mfa_ratio", pa.float64()),
            ("resets", pa.int64()),
            ("tokens", pa.int64()),
        ]
    )
    return pa.table(cols, schema=schema)


def _daily_series(daily: dict[str, int], first: dt.datetime, last: dt.datetime) -> list[int]:
    """Sign-ins per working day (weekdays, zeros included) between first and last seen."""
    out = []
    d = first.date()
    while d <= last.date():
        if d.weekday() < 5:
            out.append(int(daily.get(d.isoformat(), 0)))
        d += dt.timedelta(days=1)
    return out[-_DAYS_KEPT:]


def _median_mad(xs: list[int]) -> tuple[float | None, float | None]:
    if not xs:
        return None, None
    s = sorted(xs)
    med = float(s[len(s) // 2]) if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    dev = sorted(abs(x - med) for x in xs)
    mad = (
        float(dev[len(dev) // 2])
        if len(dev) % 2
        else (dev[len(dev) // 2 - 1] + dev[len(dev) // 2]) / 2
    )
    return med, mad


def known_ip_arrow(state: StateStore, ips: list[str]) -> pa.Table:
    have: list[str] = []
    with state.engine.connect() as conn:
        for chunk in _chunks(ips, 500):
            have += [
                r[0]
                for r in conn.execute(sa.select(known_ips.c.ip).where(known_ips.c.ip.in_(chunk)))
            ]
    return pa.table({"ip": pa.array(have, pa.string())})


def forget(state: StateStore) -> None:
    """Drop every baseline (a full recompute starts from here)."""
    with state.begin() as conn:
        conn.execute(baselines.delete())
        conn.execute(known_ips.delete())
