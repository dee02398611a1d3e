"""The offline tier over the evaluation set: >= 90% correct, declines never answered."""

from __future__ import annotations

import pytest

from mantissa.ask import answer
from tests.nlq.evaluate import report, run, table
from tests.nlq.questions import CASES


def test_the_set_is_large_and_varied() -> None:
    questions = [q for c in CASES for q in c.questions]
    assert len(questions) >= 150
    assert len(set(questions)) == len(questions), "duplicate questions"
    intents = {c.intent for c in CASES}
    assert intents >= {
        "search",
        "count",
        "top_k",
        "last_seen",
        "compare",
        "percentile",
        "breakdown",
    }


@pytest.mark.slow
def test_offline_tier_accuracy(nlq_lake, capsys: pytest.CaptureFixture[str]) -> None:
    rt, ds = nlq_lake
    outcomes = run(rt, ds, answer)
    per = report(outcomes)
    with capsys.disabled():
        print("\n" + table(per))
    answerable = [o for o in outcomes if o.intent != "decline"]
    correct = sum(o.status == "correct" for o in answerable)
    assert correct / len(answerable) >= 0.90, [o for o in answerable if o.status != "correct"]
    # questions the lake cannot answer must be declined, never answered
    assert all(o.status == "correct" for o in outcomes if o.intent == "decline")
    # every answerable intent is at least mostly right
    for intent, p in per.items():
        assert p["correct"] / p["questions"] >= 0.75, (intent, p)


@pytest.mark.slow
def test_answers_are_deterministic_and_cached(nlq_lake) -> None:
    rt, _ = nlq_lake
    from tests.nlq.dataset import NOW

    a = answer(rt, "how many failed console logins yesterday", now=NOW)
    b = answer(rt, "How many failed console logins yesterday?", now=NOW)
    assert a.rows == b.rows and a.sql == b.sql
    assert b.cached
