"""``detect_runs``: one row per completed (rule, window), written with the watermark.

The audit trail of the scheduler's exactly-once promise across a fleet: which process
ran each window, and the lag from window end to ``ran_at``. ``runs`` counts completions
of the same (rule, window end); anything above 1 is a window that ran twice (a
watermark reset by hand, or a fleet bug) and is logged as such.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from mantissa.state.store import metadata

detect_runs = sa.Table(
    "detect_runs",
    metadata,
    sa.Column("rule_id", sa.String(256), primary_key=True),
    sa.Column("window_end", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("matches", sa.Integer, nullable=False),
    sa.Column("runs", sa.Integer, nullable=False, default=1),
    sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


def record_run(
    conn: sa.Connection,
    rule_id: str,
    start: dt.datetime,
    end: dt.datetime,
    watermark: dt.datetime,
    owner: str,
    matches: int,
    ran_at: dt.datetime,
) -> int:
    """Record one completed window inside the caller's transaction; returns its run count."""
    values = {
        "window_start": start,
        "watermark": watermark,
        "owner": owner,
        "matches": matches,
        "ran_at": ran_at,
    }
    try:
        with conn.begin_nested():
            conn.execute(
                detect_runs.insert().values(rule_id=rule_id, window_end=end, runs=1, **values)
            )
        return 1
    except sa.exc.IntegrityError:
        pass
    key = (detect_runs.c.rule_id == rule_id) & (detect_runs.c.window_end == end)
    conn.execute(detect_runs.update().where(key).values(runs=detect_runs.c.runs + 1, **values))
    runs = conn.execute(sa.select(detect_runs.c.runs).where(key)).scalar()
    return int(runs or 0)
