"""Time expressions resolve to literal UTC bounds."""

from __future__ import annotations

import datetime as dt

import pytest

from mantissa.ask.timerange import parse_time

NOW = dt.datetime(2026, 11, 25, 15, 30, tzinfo=dt.UTC)  # a Wednesday
U = dt.UTC


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("failed logins today", dt.datetime(2026, 11, 25, tzinfo=U), NOW),
        ("yesterday", dt.datetime(2026, 11, 24, tzinfo=U), dt.datetime(2026, 11, 25, tzinfo=U)),
        ("this week", dt.datetime(2026, 11, 23, tzinfo=U), NOW),
        ("last week", dt.datetime(2026, 11, 16, tzinfo=U), dt.datetime(2026, 11, 23, tzinfo=U)),
        ("in the past week", NOW - dt.timedelta(days=7), NOW),
        ("this month", dt.datetime(2026, 11, 1, tzinfo=U), NOW),
        ("last month", dt.datetime(2026, 10, 1, tzinfo=U), dt.datetime(2026, 11, 1, tzinfo=U)),
        ("last 24h", NOW - dt.timedelta(hours=24), NOW),
        ("in the last 6 hours", NOW - dt.timedelta(hours=6), NOW),
        ("past three days", NOW - dt.timedelta(days=3), NOW),
        ("last 30 minutes", NOW - dt.timedelta(minutes=30), NOW),
        ("since Monday", dt.datetime(2026, 11, 23, tzinfo=U), NOW),
        ("since 2026-11-20", dt.datetime(2026, 11, 20, tzinfo=U), NOW),
        (
            "between 2026-11-01 and 2026-11-05",
            dt.datetime(2026, 11, 1, tzinfo=U),
            dt.datetime(2026, 11, 6, tzinfo=U),
        ),
        (
            "between Nov 1 and Nov 3",
            dt.datetime(2026, 11, 1, tzinfo=U),
            dt.datetime(2026, 11, 4, tzinfo=U),
        ),
        ("on 2026-11-10", dt.datetime(2026, 11, 10, tzinfo=U), dt.datetime(2026, 11, 11, tzinfo=U)),
        ("on Nov 10", dt.datetime(2026, 11, 10, tzinfo=U), dt.datetime(2026, 11, 11, tzinfo=U)),
        ("2 days ago", NOW - dt.timedelta(days=2), NOW),
        ("on Monday", dt.datetime(2026, 11, 23, tzinfo=U), dt.datetime(2026, 11, 24, tzinfo=U)),
    ],
)
def test_expressions(text: str, start: dt.datetime, end: dt.datetime) -> None:
    tr, _, _ = parse_time(text, NOW)
    assert tr is not None, text
    assert (tr.start, tr.end) == (start, end)


def test_two_windows_and_rest() -> None:
    tr, more, rest = parse_time("failed logins this week vs last week", NOW)
    assert tr and tr.label == "this week" and more[0].label == "last week"
    assert rest == "failed logins vs"


def test_no_time_words() -> None:
    assert parse_time("who is root", NOW)[0] is None
    assert parse_time("most recent root usage", NOW)[0] is None
