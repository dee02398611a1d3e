"""Conversations: the understanding behind a session's last answer, kept in the state store.

A follow-up ("and only for bob?", "what about last week?", "who is the top one?")
is understood on its own, then merged into the previous understanding: new entities
of a kind replace the old ones, a new window replaces the old window, a new intent
replaces the old intent; everything else carries over.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from mantissa.ask.timerange import TimeRange
from mantissa.ask.understand import Match, Understanding

NAMESPACE = "ask.sessions"
_REPLACE_KINDS = ("user", "email", "ip", "cidr", "country", "outcome", "service", "literal")
_FOLLOW_UP = re.compile(
    r"^\s*(and|but|what about|how about|only|now|same|also|then|ok|okay|just|except|excluding|"
    r"instead|filter|narrow|what if|and what about|and for|and only)\b"
    r"|\b(them|those|these|that one|the top one|top one|same thing|same query|it)\b",
    re.I,
)


def to_doc(u: Understanding) -> dict[str, Any]:
    d = asdict(u)
    d["time"] = u.time.model_dump(mode="json") if u.time else None
    d["more_times"] = [t.model_dump(mode="json") for t in u.more_times]
    return d


def from_doc(d: dict[str, Any]) -> Understanding:
    return Understanding(
        question=d["question"],
        time=TimeRange.model_validate(d["time"]) if d.get("time") else None,
        more_times=[TimeRange.model_validate(t) for t in d.get("more_times") or []],
        matches=[Match(**_tuples(m)) for m in d.get("matches") or []],
        unknown=list(d.get("unknown") or []),
        intent=d.get("intent", "search"),
        k=d.get("k"),
        quantile=d.get("quantile"),
        ascending=bool(d.get("ascending")),
    )


def _tuples(m: dict[str, Any]) -> dict[str, Any]:
    p = m.get("payload")
    if isinstance(p, list):
        m = {**m, "payload": [tuple(x) if isinstance(x, list) else x for x in p]}
    return m


def is_follow_up(u: Understanding) -> bool:
    """Whether a question refines the previous one rather than starting over."""
    if _FOLLOW_UP.search(u.question):
        return True
    anchors = [
        m
        for m in u.matches
        if m.kind in ("table", "provider", "concept", "event_type", "table_all", "measure")
    ]
    return not anchors


def merge(prev: Understanding, new: Understanding) -> Understanding:
    """``new`` applied on top of ``prev``."""
    kinds_new = {m.kind for m in new.matches}
    keep = [
        m
        for m in prev.matches
        if not (m.kind in _REPLACE_KINDS and m.kind in kinds_new)
        and not (m.kind in ("table", "provider") and kinds_new & {"table", "provider"})
        and not (
            m.kind in ("dim", "native_dim", "bucket")
            and kinds_new & {"dim", "native_dim", "bucket"}
        )
    ]
    # "user" and "email" pin the same column
    if kinds_new & {"user", "email"}:
        keep = [m for m in keep if m.kind not in ("user", "email")]
    merged = Understanding(
        question=new.question if new.intent != "search" else prev.question,
        time=new.time or prev.time,
        more_times=new.more_times if new.time else prev.more_times,
        matches=keep + [m for m in new.matches],
        unknown=list(new.unknown),
        intent=new.intent if new.intent != "search" else prev.intent,
        k=new.k if new.k is not None else (prev.k if new.intent == "search" else None),
        quantile=new.quantile if new.quantile is not None else prev.quantile,
        ascending=new.ascending or (prev.ascending and new.intent == "search"),
    )
    if re.search(
        r"\btop one\b|\bthe top\b(?! \d)|\bwho is the top\b|\bwhich one\b", new.question, re.I
    ):
        merged.k = 1
        merged.intent = "top_k"
        merged.question = new.question
    return merged
