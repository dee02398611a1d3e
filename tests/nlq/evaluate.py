"""Scoring answers against the evaluation set (shared by the test and bench/nlq.py)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tests.nlq.dataset import NOW, Dataset
from tests.nlq.questions import CASES, Case


@dataclass
class Outcome:
    intent: str
    question: str
    status: str  # correct | wrong | declined
    detail: str = ""


def _norm(v: Any) -> Any:
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == "T":
        try:
            v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return v
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def check(case: Case, expected: Any, ans: Any) -> tuple[str, str]:
    """``(status, detail)`` for one answer."""
    if not ans.answered:
        return ("correct" if case.kind == "decline" else "declined"), ans.summary[:160]
    if case.kind == "decline":
        return "wrong", f"answered a question it should decline: {ans.sql}"
    cols, rows = ans.columns, ans.rows
    got: Any
    if case.kind == "count":
        got = _norm(rows[0][0]) if rows else None
    elif case.kind == "ids":
        if "event_time" not in cols or "source" not in cols:
            return "wrong", f"no events in {cols}"
        i, j = cols.index("source"), cols.index("event_time")
        got = sorted((r[i], _norm(r[j]).isoformat()) for r in rows)
        if len(rows) >= (ans.plan or {}).get("limit", 100):
            return "wrong", f"result truncated at {len(rows)} rows"
    elif case.kind in ("last", "first"):
        if not rows:
            got = None
        else:
            got = _norm(rows[0][cols.index("event_time")]) if "event_time" in cols else "?"
    elif case.kind == "top":
        got = [(r[0], _norm(r[1])) for r in rows]
    elif case.kind == "groups":
        got = {_norm(r[0]): _norm(r[1]) for r in rows}
    elif case.kind == "compare":
        by = {r[0]: _norm(r[1]) for r in rows}
        got = (by.get("current", 0), by.get("previous", 0))
    elif case.kind == "pct":
        got = float(rows[0][0]) if rows and rows[0][0] is not None else None
        ok = got is not None and abs(got - expected) <= 1e-6 * max(1.0, abs(expected))
        return ("correct" if ok else "wrong"), f"got {got} expected {expected}"
    else:
        raise AssertionError(case.kind)
    if got == expected:
        return "correct", ""
    return "wrong", f"got {_short(got)} expected {_short(expected)} sql={ans.sql}"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 300 else text[:300] + "…"


def run(runtime: Any, ds: Dataset, answer_fn: Any) -> list[Outcome]:
    out = []
    for case in CASES:
        expected = case.expect(ds)
        for q in case.questions:
            try:
                ans = answer_fn(runtime, q, now=NOW)
            except Exception as exc:  # an error is a wrong answer, not a crash of the run
                out.append(Outcome(case.intent, q, "wrong", f"error: {exc}"))
                continue
            status, detail = check(case, expected, ans)
            out.append(Outcome(case.intent, q, status, detail))
    return out


def report(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    per: dict[str, dict[str, int]] = defaultdict(
        lambda: {"questions": 0, "correct": 0, "wrong": 0, "declined": 0}
    )
    for o in outcomes:
        p = per[o.intent]
        p["questions"] += 1
        p[o.status] += 1
    return dict(per)


def table(per: dict[str, dict[str, int]]) -> str:
    lines = [
        "| intent | questions | correct | declined | wrong | accuracy |",
        "|---|---|---|---|---|---|",
    ]
    tot = {"questions": 0, "correct": 0, "wrong": 0, "declined": 0}
    for intent, p in sorted(per.items()):
        for k in tot:
            tot[k] += p[k]
        lines.append(
            f"| {intent} | {p['questions']} | {p['correct']} | {p['declined']} | {p['wrong']} | "
            f"{p['correct'] / p['questions']:.0%} |"
        )
    lines.append(
        f"| **all** | {tot['questions']} | {tot['correct']} | {tot['declined']} | {tot['wrong']} | "
        f"{tot['correct'] / max(1, tot['questions']):.1%} |"
    )
    return "\n".join(lines)
