"""Per-user behavioral baselines in the state store, updated incrementally.

Each run folds its window's sign-ins into one row per user (``identity_baselines``):
first/last seen, sign-in and failure counts, and histograms of hour of day (UTC: a user's
own histogram is shifted by their time zone as a whole, so comparing a sign-in with it
is the same as comparing in their local time), hour of week, countries, networks (ASN or
AS organisation), devices (user agent without version numbers), source IPs, apps,
factors (multi- vs single-factor) and the daily volume; plus the department/group when a
provider says (the peer group, else the organisation). IPs users signed in from are
kept org-wide in ``identity_known_ips``.

Everything is set-based in the run's DuckDB session: the stored rows are read once into
the temporary tables ``bscal`` (per-user counters) and ``bhist`` (histograms in long form,
parsed from the stored JSON by DuckDB); each window is folded in by a few aggregate,
update and insert queries; the detections' ``bl`` table is derived from them by SQL; and
changed rows go back to the state store in bulk (:func:`flush`) — no per-user Python.

A user is *learning* until ``identity.learning_days`` (14) after their first sign-in.
"""

from __future__ import annotations

import datetime as dt
import json
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

BASELINE_WATERMARK = ("identity", "baseline_watermark")

# most entries kept per histogram (the least used are dropped first); None: all
_CAP: dict[str, int | None] = {
    "countries": 50, "nets": 50, "devices": 50, "ips": 200, "apps": 100, "hod": None,
    "how": None,
}  # fmt: skip
_DAYS_KEPT = 60
_KINDS = (*_CAP, "daily")
_MAP = "MAP(VARCHAR, BIGINT)"
_COUNTERS = ("mfa", "single", "resets", "tokens")

# the stored JSON document → typed columns (DuckDB json_transform)
_DOC = json.dumps(
    {**{k: _MAP for k in _KINDS}, **{k: "BIGINT" for k in _COUNTERS}, "department": "VARCHAR"}
)

# what each histogram counts, over a successful sign-in / app access
_KEYS = {
    "countries": "country",
    "nets": "net",
    "devices": "dev",
    "ips": "src_ip",
    "apps": "app",
    "hod": "CAST(hour(event_time) AS VARCHAR)",
    "how": "CAST((isodow(event_time) - 1) * 24 + hour(event_time) AS VARCHAR)",
    "daily": "strftime(event_time, '%Y-%m-%d')",
}

# the window's histograms in long form: (user, kind, key, count)
HIST_SQL = f"""
SELECT "user", x.kind, x.k, count(*) AS n FROM (
  SELECT "user", unnest([{", ".join(f"struct_pack(kind := '{k}', k := {e})" for k, e in _KEYS.items())}]) AS x
  FROM ev WHERE in_window AND action IN ('login', 'sso') AND outcome = 'success')
WHERE x.k IS NOT NULL
GROUP BY ALL
"""

# the window's counters per user
AGG_SQL = """
SELECT "user",
  min(event_time) AS first_seen, max(event_time) AS last_seen,
  count(*) FILTER (WHERE action IN ('login', 'sso') AND outcome = 'success') AS logins,
  count(*) FILTER (WHERE action = 'login' AND outcome = 'failure') AS failures,
  count(*) FILTER (WHERE action = 'login' AND outcome = 'success' AND mfa IS TRUE) AS mfa,
  count(*) FILTER (WHERE action = 'login' AND outcome = 'success' AND mfa IS FALSE) AS single,
  any_value(department) AS department
FROM ev WHERE in_window
GROUP BY "user"
"""

RESETS_SQL = """
SELECT actor AS "user", count(*) FILTER (WHERE action IN ('factor_reset', 'mfa_disable')) AS resets,
  count(*) FILTER (WHERE action = 'token_create') AS tokens
FROM ev WHERE in_window AND action IN ('factor_reset', 'mfa_disable', 'token_create')
  AND actor IS NOT NULL
GROUP BY actor
"""

# bscal ⊕ the window (bagg: counters, bres: resets/tokens per actor). A user seen only
# as an actor (no event of their own yet) gets no row; last_seen moves only with
# successful activity (dormancy is measured from it).
MERGE_SQL = """
SELECT coalesce(s."user", a."user") AS "user",
  CASE WHEN s."user" IS NULL THEN a.first_seen
       ELSE least(s.first_seen, coalesce(a.first_seen, s.first_seen)) END AS first_seen,
  CASE WHEN s."user" IS NULL THEN a.last_seen
       WHEN a.logins > 0 THEN greatest(s.last_seen, a.last_seen) ELSE s.last_seen END AS last_seen,
  coalesce(s.logins, 0) + coalesce(a.logins, 0) AS logins,
  coalesce(s.failures, 0) + coalesce(a.failures, 0) AS failures,
  coalesce(s.mfa, 0) + coalesce(a.mfa, 0) AS mfa,
  coalesce(s.single, 0) + coalesce(a.single, 0) AS single,
  coalesce(s.resets, 0) + coalesce(r.resets, 0) AS resets,
  coalesce(s.tokens, 0) + coalesce(r.tokens, 0) AS tokens,
  coalesce(a.department, s.department) AS department,
  coalesce(s.dirty, false) OR a."user" IS NOT NULL OR r."user" IS NOT NULL AS dirty
FROM bscal s FULL JOIN bagg a ON a."user" = s."user"
LEFT JOIN bres r ON r."user" = coalesce(s."user", a."user")
"""


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def load_state(con: Any, state: StateStore) -> int:
    """Read every stored baseline and known IP into the session: ``bscal`` (one row per
    user: times, counters, department), ``bhist`` (histograms in long form: user, kind,
    key, count) and ``kip`` (known IPs); returns the number of users."""
    users: list[str] = []
    firsts: list[dt.datetime | None] = []
    lasts: list[dt.datetime | None] = []
    logins: list[int] = []
    failures: list[int] = []
    docs: list[str] = []
    with state.engine.connect() as conn:
        q = sa.select(
            baselines.c.user, baselines.c.first_seen, baselines.c.last_seen,
            baselines.c.logins, baselines.c.failures, sa.cast(baselines.c.data, sa.Text),
        )  # fmt: skip
        for u, f, la, lo, fa, doc in conn.execute(q):
            users.append(u)
            firsts.append(as_utc(f))
            lasts.append(as_utc(la))
            logins.append(int(lo or 0))
            failures.append(int(fa or 0))
            docs.append(doc if isinstance(doc, str) else json.dumps(doc))
        ips = [r[0] for r in conn.execute(sa.select(known_ips.c.ip))]
    ts = pa.timestamp("us", tz="UTC")
    raw = pa.table(
        {
            "user": pa.array(users, pa.string()),
            "first_seen": pa.array(firsts, ts),
            "last_seen": pa.array(lasts, ts),
            "logins": pa.array(logins, pa.int64()),
            "failures": pa.array(failures, pa.int64()),
            "doc": pa.array(docs, pa.string()),
        }
    )
    con.register("bl_raw_arrow", raw)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE bl_raw AS SELECT * EXCLUDE (doc), "
        f"json_transform(doc, '{_DOC}') AS j FROM bl_raw_arrow"
    )
    con.unregister("bl_raw_arrow")
    counters = ", ".join(f"coalesce(j.{k}, 0) AS {k}" for k in _COUNTERS)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE bscal AS
SELECT "user", first_seen, last_seen, logins, failures, {counters}, j.department,
  false AS dirty FROM bl_raw"""
    )
    hist = " UNION ALL ".join(
        f"SELECT \"user\", '{k}' AS kind, unnest(map_entries(j.{k})) AS e FROM bl_raw"
        for k in _KINDS
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE bhist AS
SELECT "user", kind, e.key AS k, CAST(e.value AS BIGINT) AS n FROM ({hist})"""
    )
    con.execute("DROP TABLE bl_raw")
    con.register("kip_arrow", pa.table({"ip": pa.array(ips, pa.string())}))
    con.execute("CREATE OR REPLACE TEMP TABLE kip AS SELECT ip, false AS new FROM kip_arrow")
    con.unregister("kip_arrow")
    con.execute("CREATE OR REPLACE TEMP VIEW known_ips AS SELECT ip FROM kip")
    return len(users)


def fold(con: Any) -> int:
    """Fold the window's events (``ev`` in ``con``) into ``bscal``/``bhist`` and ``kip``;
    returns the number of users updated. Nothing is written to the state store (see
    :func:`flush`): counters are one merge over the users, histogram counts are added
    to existing keys and new keys inserted (no rewrite of the histograms)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE bagg AS {AGG_SQL}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE bres AS {RESETS_SQL}")
    (n,) = con.execute(
        'SELECT count(*) FROM (SELECT "user" FROM bagg UNION '
        'SELECT r."user" FROM bres r JOIN bscal s USING ("user"))'
    ).fetchone()
    if n:
        con.execute(f"CREATE OR REPLACE TEMP TABLE bscal AS {MERGE_SQL}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE whist AS {HIST_SQL}")
        con.execute(
            """UPDATE bhist SET n = bhist.n + w.n FROM whist w
WHERE w."user" = bhist."user" AND w.kind = bhist.kind AND w.k = bhist.k"""
        )
        con.execute(
            """INSERT INTO bhist SELECT w.* FROM whist w
ANTI JOIN bhist b ON w."user" = b."user" AND w.kind = b.kind AND w.k = b.k"""
        )
    con.execute(
        """INSERT INTO kip SELECT DISTINCT src_ip, true FROM ev
WHERE in_window AND action IN ('login', 'sso') AND outcome = 'success' AND src_ip IS NOT NULL
  AND src_ip NOT IN (SELECT ip FROM kip)"""
    )
    return int(n)


def _data_param(state: StateStore) -> Any:
    p = sa.bindparam("data", type_=sa.Text)
    # PostgreSQL: a JSON column takes the document as text through a cast; SQLite stores
    # the text as it is (its JSON is text; a CAST there would turn it into a number)
    return sa.cast(p, sa.JSON) if state.engine.dialect.name == "postgresql" else p


def _cap_sql() -> str:
    caps = " ".join(f"WHEN '{k}' THEN {c}" for k, c in _CAP.items() if c)
    return f"""DELETE FROM bhist WHERE rowid IN (
  SELECT rid FROM (
    SELECT h.rowid AS rid, h.kind, row_number() OVER (
      PARTITION BY h."user", h.kind
      ORDER BY CASE WHEN h.kind = 'daily' THEN 0 ELSE h.n END DESC, h.k DESC) AS rn
    FROM bhist h JOIN bscal s ON s."user" = h."user" AND s.dirty)
  WHERE rn > CASE kind {caps} WHEN 'daily' THEN {_DAYS_KEPT} ELSE 2147483647 END)"""


def flush(con: Any, state: StateStore, watermark: dt.datetime | None = None) -> int:
    """Write the changed baselines (histograms capped to their most used entries, the
    last 60 days) and new known IPs to the state store in bulk, with the baseline
    watermark in the same transaction; returns the number of users written."""
    con.execute(_cap_sql())
    maps = ", ".join(
        f"map_from_entries(list(struct_pack(k := k, v := n)) FILTER (WHERE kind = '{k}')) AS {k}"
        for k in _KINDS
    )
    doc = ", ".join(
        [f"{k} := coalesce(h.{k}, MAP {{}}::{_MAP})" for k in _KINDS]
        + [f"{k} := s.{k}" for k in _COUNTERS]
        + ["department := s.department"]
    )
    rows = con.execute(
        f"""SELECT s."user", s.first_seen, s.last_seen, s.logins, s.failures,
  to_json(struct_pack({doc}))
FROM bscal s LEFT JOIN (
  SELECT "user", {maps} FROM bhist
  WHERE "user" IN (SELECT "user" FROM bscal WHERE dirty) GROUP BY "user") h USING ("user")
WHERE s.dirty"""
    ).fetchall()
    ips = [r[0] for r in con.execute("SELECT ip FROM kip WHERE new").fetchall()]
    now = utcnow()
    raw = sa.table(
        "identity_baselines",
        *(sa.column(c) for c in ("user", "first_seen", "last_seen", "logins", "failures")),
        sa.column("data", sa.Text),
        sa.column("updated_at"),
    )
    with state.begin() as conn:
        users = [r[0] for r in rows]
        for chunk in _chunks(users, 500):
            conn.execute(baselines.delete().where(baselines.c.user.in_(chunk)))
        if rows:
            conn.execute(
                sa.insert(raw).values(
                    user=sa.bindparam("u"),
                    first_seen=sa.bindparam("f", type_=sa.DateTime(timezone=True)),
                    last_seen=sa.bindparam("la", type_=sa.DateTime(timezone=True)),
                    logins=sa.bindparam("lo"),
                    failures=sa.bindparam("fa"),
                    data=_data_param(state),
                    updated_at=sa.bindparam("t", type_=sa.DateTime(timezone=True)),
                ),
                [
                    {"u": u, "f": as_utc(f), "la": as_utc(la), "lo": int(lo), "fa": int(fa),
                     "data": d, "t": now}
                    for u, f, la, lo, fa, d in rows
                ],
            )  # fmt: skip
        if ips:
            have: set[str] = set()
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
        if watermark is not None:
            state.put(*BASELINE_WATERMARK, watermark.isoformat(), conn=conn)
    con.execute("UPDATE bscal SET dirty = false WHERE dirty")
    con.execute("UPDATE kip SET new = false WHERE new")
    return len(rows)


def bl_sql(
    end: dt.datetime, learning_days: int, window_only: bool = False
) -> tuple[str, dict[str, Any]]:
    """The ``bl`` table detections join against — for the users of ``ev``, their grant
    targets and the ``bl_extra`` accounts (``window_only``: only those with events in the
    window, plus every account with a failed sign-in in the lookback) — as (SQL,
    parameters): lists of countries, networks, devices and IPs; hour-of-day counts;
    sign-ins per working day between first and last seen (zeros included, the last 60)
    with their median and MAD."""
    scope = "WHERE in_window" if window_only else ""
    fails = (
        "UNION SELECT \"user\" FROM ev WHERE action = 'login' AND outcome = 'failure'"
        if window_only
        else ""
    )
    days = (
        "list_slice([coalesce(dn[list_position(dk, strftime(d, '%Y-%m-%d'))], 0) FOR d IN "
        "generate_series(CAST(first_seen AS DATE), CAST(least(last_seen, $end) AS DATE), "
        f"INTERVAL 1 DAY) IF isodow(d) <= 5], -{_DAYS_KEPT}, -1)"
    )
    # unordered list aggregates, sorted afterwards (ordered aggregates cost ~5x more);
    # histograms as (key, count) lists looked up by position
    keys = ", ".join(
        f"list_sort(list(k) FILTER (WHERE kind = '{k}')) AS {k}"
        for k in ("countries", "nets", "devices", "ips")
    )
    sql = f"""
WITH w AS (SELECT "user" FROM ev {scope} UNION SELECT target FROM ev {scope}
           UNION SELECT account FROM bl_extra {fails}),
h0 AS (
  SELECT "user", {keys},
    list(struct_pack(k := k, n := n)) FILTER (WHERE kind = 'hod') AS hl,
    list(struct_pack(k := k, n := n)) FILTER (WHERE kind = 'daily') AS dl
  FROM bhist WHERE kind IN ('countries', 'nets', 'devices', 'ips', 'hod', 'daily')
    AND "user" IN (SELECT "user" FROM w)
  GROUP BY "user"),
h AS (
  SELECT * EXCLUDE (hl, dl), [x.k FOR x IN coalesce(hl, [])] AS hk,
    [x.n FOR x IN coalesce(hl, [])] AS hn, [x.k FOR x IN coalesce(dl, [])] AS dk,
    [x.n FOR x IN coalesce(dl, [])] AS dn
  FROM h0),
b AS (
  SELECT s."user", s.first_seen, s.last_seen, s.first_seen > $cut AS learning, s.logins,
    s.failures / greatest(1, floor(epoch(least(s.last_seen, $end) - s.first_seen) / 86400) + 1)
      AS fail_rate,
    {days} AS daily,
    coalesce(h.countries, []) AS countries, coalesce(h.nets, []) AS nets,
    coalesce(h.devices, []) AS devices, coalesce(h.ips, []) AS ips,
    [coalesce(hn[list_position(hk, CAST(x AS VARCHAR))], 0) FOR x IN range(24)] AS hod,
    s.department,
    CASE WHEN s.mfa + s.single > 0 THEN s.mfa / (s.mfa + s.single) END AS mfa_ratio,
    s.resets, s.tokens
  FROM bscal s LEFT JOIN h USING ("user")
  WHERE s."user" IN (SELECT "user" FROM w))
SELECT "user", first_seen, last_seen, learning, logins, fail_rate, len(daily) AS days,
  countries, nets, devices, ips, hod, daily, daily_median,
  list_median([abs(x - daily_median) FOR x IN daily]) AS daily_mad,
  department, mfa_ratio, resets, tokens
FROM (SELECT *, list_median(daily) AS daily_median FROM b)
"""
    return sql, {"end": end, "cut": end - dt.timedelta(days=learning_days)}


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


def forget(state: StateStore) -> None:
    """Drop every baseline (a full recompute starts from here)."""
    with state.begin() as conn:
        conn.execute(baselines.delete())
        conn.execute(known_ips.delete())
    state.delete(*BASELINE_WATERMARK)


#: peer groups (department/group, else the organisation) → the median of their members'
#: median working day, over the non-learning accounts of ``bl``
PEER_SQL = """
SELECT coalesce(department, 'organisation') AS peer_group, median(daily_median) AS peer_median
FROM bl WHERE NOT learning GROUP BY 1
"""
