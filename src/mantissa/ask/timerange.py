"""Time expressions in a question → literal UTC bounds (``[start, end)``).

Analysts write "today", "yesterday", "this week", "last 24h", "past 3 days", "since
Monday", "between 2026-11-01 and 2026-11-05", "on Nov 3", "in the last hour". Each is
resolved here, in Python, against ``now`` — never by the engine — so that the SQL
carries literal bounds (partition pruning) and a follow-up sees the same window.
Weeks start on Monday (ISO 8601).
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel

_UNITS = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
    "mo": "months", "month": "months", "months": "months",
}  # fmt: skip
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15,
    "twenty": 20, "thirty": 30, "fourty": 40, "forty": 40, "sixty": 60, "few": 3,
    "couple": 2, "couple of": 2,
}  # fmt: skip
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}  # fmt: skip
_NUM = r"(\d+|" + "|".join(sorted((re.escape(k) for k in _NUMBERS), key=len, reverse=True)) + ")"
_UNIT = r"(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b"
_DATE = r"(\d{4}-\d{2}-\d{2}(?:[ t]\d{2}:\d{2}(?::\d{2})?)?z?)"
_MONTH_DAY = (
    r"((?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?\s+\d{1,2}(?:st|nd|rd|th)?"
    r"(?:,?\s+\d{4})?|\d{1,2}(?:st|nd|rd|th)?\s+(?:"
    + "|".join(sorted(_MONTHS, key=len, reverse=True))
    + r")\.?(?:,?\s+\d{4})?)"
)

DEFAULT_LOOKBACK = dt.timedelta(days=7)


class TimeRange(BaseModel):
    """A half-open UTC interval ``[start, end)`` and the words it came from."""

    start: dt.datetime
    end: dt.datetime
    label: str
    explicit: bool = True

    def to_dict(self) -> dict[str, str]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "label": self.label,
        }

    def shifted_back(self) -> TimeRange:
        """The window of the same length just before this one ("vs the previous week")."""
        span = self.end - self.start
        return TimeRange(
            start=self.start - span, end=self.start, label=f"the {_span_words(span)} before"
        )


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _span_words(span: dt.timedelta) -> str:
    secs = span.total_seconds()
    if secs % 604800 == 0 and secs >= 604800:
        n = int(secs // 604800)
        return "week" if n == 1 else f"{n} weeks"
    if secs % 86400 == 0:
        n = int(secs // 86400)
        return "day" if n == 1 else f"{n} days"
    if secs % 3600 == 0:
        n = int(secs // 3600)
        return "hour" if n == 1 else f"{n} hours"
    return f"{int(secs // 60)} minutes"


def _day(t: dt.datetime) -> dt.datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _delta(n: int, unit: str) -> dt.timedelta:
    u = _UNITS[unit]
    if u == "months":
        return dt.timedelta(days=30 * n)
    return dt.timedelta(**{u: n})


def _num(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else _NUMBERS[text]


def _parse_date(text: str, now: dt.datetime) -> dt.datetime | None:
    text = text.strip().rstrip("z").replace("t", " ")
    try:
        v = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


def _parse_month_day(text: str, now: dt.datetime) -> dt.datetime | None:
    m = re.match(r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$", text.strip())
    if m:
        mon, day, year = _MONTHS.get(m.group(1)), int(m.group(2)), m.group(3)
    else:
        m = re.match(r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?(?:,?\s+(\d{4}))?$", text.strip())
        if not m:
            return None
        mon, day, year = _MONTHS.get(m.group(2)), int(m.group(1)), m.group(3)
    if mon is None:
        return None
    y = int(year) if year else now.year
    try:
        v = dt.datetime(y, mon, day, tzinfo=dt.UTC)
    except ValueError:
        return None
    if not year and v > now:
        v = v.replace(year=y - 1)
    return v


def _any_date(text: str, now: dt.datetime) -> dt.datetime | None:
    return _parse_date(text, now) or _parse_month_day(text, now)


def _range(start: dt.datetime, end: dt.datetime, label: str) -> TimeRange:
    return TimeRange(start=start, end=end, label=label)


def parse_time(
    question: str, now: dt.datetime | None = None
) -> tuple[TimeRange | None, list[TimeRange], str]:
    """Find the time windows a question names.

    Returns ``(primary, others, rest)``: the first window, any further windows (for
    "this week vs last week") and the question with the time words removed.
    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    q = question.lower()
    found: list[tuple[int, TimeRange]] = []
    spans: list[tuple[int, int]] = []

    def take(m: re.Match[str], tr: TimeRange) -> None:
        if any(a < m.end() and m.start() < b for a, b in spans):
            return
        spans.append((m.start(), m.end()))
        found.append((m.start(), tr))

    today = _day(now)
    week_start = today - dt.timedelta(days=today.weekday())
    month_start = today.replace(day=1)

    patterns: list[tuple[str, object]] = [
        (
            rf"\bbetween\s+{_DATE}\s+and\s+{_DATE}",
            lambda m: _between(m.group(1), m.group(2), now),
        ),
        (
            rf"\bbetween\s+{_MONTH_DAY}\s+and\s+{_MONTH_DAY}",
            lambda m: _between(m.group(1), m.group(2), now),
        ),
        (
            rf"\bfrom\s+{_DATE}\s+(?:to|until|till)\s+{_DATE}",
            lambda m: _between(m.group(1), m.group(2), now),
        ),
        (
            rf"\b(?:in\s+|during\s+|over\s+|within\s+)?(?:the\s+)?(?:last|past|previous|prior|recent)\s+{_NUM}\s*{_UNIT}",
            lambda m: _range(
                now - _delta(_num(m.group(1)), m.group(2)),
                now,
                f"last {_num(m.group(1))} {_UNITS[m.group(2)].rstrip('s') if _num(m.group(1)) == 1 else _UNITS[m.group(2)]}",
            ),
        ),
        (
            rf"\b{_NUM}\s*{_UNIT}\s+ago\b",
            lambda m: _range(
                now - _delta(_num(m.group(1)), m.group(2)),
                now,
                f"since {_num(m.group(1))} {_UNITS[m.group(2)]} ago",
            ),
        ),
        (
            r"\b(?:in\s+|during\s+|over\s+|within\s+)?(?:the\s+)?(?:last|past)\s+(hour|day|minute|24h|24\s*hours)\b",
            lambda m: _range(
                now - (_delta(1, m.group(1)) if m.group(1)[0] != "2" else dt.timedelta(days=1)),
                now,
                f"last {'24 hours' if m.group(1)[0] == '2' else m.group(1)}",
            ),
        ),
        (
            r"\b(?:in\s+|during\s+|over\s+|within\s+)?(?:the\s+)?past\s+(week|month)\b",
            lambda m: _range(
                now - dt.timedelta(days=7 if m.group(1) == "week" else 30),
                now,
                "last 7 days" if m.group(1) == "week" else "last 30 days",
            ),
        ),
        (
            r"\b(?:in\s+|during\s+)?(?:the\s+)?(?:last|previous|prior)\s+week\b",
            lambda m: _range(week_start - dt.timedelta(days=7), week_start, "last week"),
        ),
        (
            r"\b(?:in\s+|during\s+)?(?:the\s+)?(?:last|previous|prior)\s+month\b",
            lambda m: _range(
                (month_start - dt.timedelta(days=1)).replace(day=1), month_start, "last month"
            ),
        ),
        (
            r"\b(?:in\s+|during\s+|for\s+)?(?:this|the current|current)\s+week\b|\bso far this week\b|\bthis wk\b",
            lambda m: _range(week_start, now, "this week"),
        ),
        (
            r"\b(?:in\s+|during\s+|for\s+)?(?:this|the current|current)\s+month\b|\bmonth to date\b|\bmtd\b",
            lambda m: _range(month_start, now, "this month"),
        ),
        (
            r"\b(?:on\s+|for\s+|from\s+)?yesterday\b|\byday\b|\bystd\b",
            lambda m: _range(today - dt.timedelta(days=1), today, "yesterday"),
        ),
        (
            r"\b(?:on\s+|for\s+|from\s+)?(?:the\s+)?day before yesterday\b",
            lambda m: _range(
                today - dt.timedelta(days=2), today - dt.timedelta(days=1), "day before yesterday"
            ),
        ),
        (
            r"\b(?:so far\s+)?(?:for\s+|from\s+)?(?:today|todays|today's|tdy|this morning|since midnight)\b",
            lambda m: _range(today, now, "today"),
        ),
        (
            r"\b(?:in\s+)?(?:the\s+)?(?:last|past)\s+(?:few|couple of)\s+(hours|days)\b",
            lambda m: _range(now - _delta(3, m.group(1)), now, f"last 3 {m.group(1)}"),
        ),
        (
            r"\bsince\s+("
            + "|".join(_WEEKDAYS)
            + r"|"
            + "|".join(d[:3] for d in _WEEKDAYS)
            + r")\b",
            lambda m: _since_weekday(m.group(1), today, now),
        ),
        (
            rf"\bsince\s+{_DATE}",
            lambda m: _since(m.group(1), now),
        ),
        (
            rf"\bsince\s+{_MONTH_DAY}",
            lambda m: _since(m.group(1), now),
        ),
        (
            rf"\b(?:on|for)\s+{_DATE}",
            lambda m: _on_day(m.group(1), now),
        ),
        (
            rf"\b(?:on|for)\s+{_MONTH_DAY}",
            lambda m: _on_day(m.group(1), now),
        ),
        (
            r"\b(?:on\s+)?(?:last\s+)?(" + "|".join(_WEEKDAYS) + r")\b",
            lambda m: _on_weekday(m.group(1), today),
        ),
        (
            r"\b(?:recently|lately)\b",
            lambda m: _range(now - dt.timedelta(days=1), now, "last 24 hours"),
        ),
        (
            r"\b(?:overnight|last night)\b",
            lambda m: _range(
                today - dt.timedelta(hours=6), today + dt.timedelta(hours=8), "overnight"
            ),
        ),
        (
            r"\b(?:ever|all time|of all time)\b",
            lambda m: _range(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), now, "all time"),
        ),
    ]
    for pat, make in patterns:
        for m in re.finditer(pat, q):
            tr = make(m)  # type: ignore[operator]
            if tr is not None:
                take(m, tr)
    found.sort(key=lambda x: x[0])
    rest = question
    for a, b in sorted(spans, reverse=True):
        rest = rest[:a] + " " + rest[b:]
    rest = re.sub(r"\s+", " ", rest).strip()
    windows = [tr for _, tr in found]
    return (windows[0] if windows else None), windows[1:], rest


def _between(a: str, b: str, now: dt.datetime) -> TimeRange | None:
    lo, hi = _any_date(a, now), _any_date(b, now)
    if lo is None or hi is None:
        return None
    if hi < lo:
        lo, hi = hi, lo
    label = f"{_iso(lo)[:10]} to {_iso(hi)[:10]}"
    # A bare end date means "through the end of that day".
    if hi.time() == dt.time(0, 0):
        hi = hi + dt.timedelta(days=1)
    return _range(lo, min(hi, now) if lo < now else hi, label)


def _since(text: str, now: dt.datetime) -> TimeRange | None:
    lo = _any_date(text, now)
    return _range(lo, now, f"since {_iso(lo)[:10]}") if lo else None


def _on_day(text: str, now: dt.datetime) -> TimeRange | None:
    lo = _any_date(text, now)
    if lo is None:
        return None
    lo = _day(lo)
    return _range(lo, lo + dt.timedelta(days=1), f"on {_iso(lo)[:10]}")


def _weekday_index(name: str) -> int:
    for i, d in enumerate(_WEEKDAYS):
        if d.startswith(name[:3]):
            return i
    raise ValueError(name)


def _since_weekday(name: str, today: dt.datetime, now: dt.datetime) -> TimeRange:
    back = (today.weekday() - _weekday_index(name)) % 7
    lo = today - dt.timedelta(days=back)
    return _range(lo, now, f"since {_WEEKDAYS[_weekday_index(name)].capitalize()}")


def _on_weekday(name: str, today: dt.datetime) -> TimeRange:
    back = (today.weekday() - _weekday_index(name)) % 7 or 7
    lo = today - dt.timedelta(days=back)
    return _range(lo, lo + dt.timedelta(days=1), f"on {name.capitalize()} {_iso(lo)[:10]}")


def default_range(now: dt.datetime | None = None) -> TimeRange:
    """The window used when a question names none: the last 7 days (said in the answer)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    return TimeRange(start=now - DEFAULT_LOOKBACK, end=now, label="last 7 days", explicit=False)
