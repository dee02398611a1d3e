"""Every question of the evaluation set renders to SQL that parses back in every engine
dialect (the cloud engines run questions in their own SQL: athena, bigquery, synapse, spark)."""

from __future__ import annotations

import pytest
import sqlglot

from mantissa.ask.lexicon import load_lexicon
from mantissa.ask.render import render, sqlglot_dialect
from mantissa.ask.service import translate
from tests.nlq.apm_questions import APM_CASES
from tests.nlq.dataset import NOW
from tests.nlq.questions import CASES

ENGINE_DIALECTS = ("duckdb", "athena", "bigquery", "synapse", "spark")


@pytest.mark.slow
def test_every_question_renders_in_every_dialect(nlq_lake) -> None:  # type: ignore[no-untyped-def]
    rt, _ = nlq_lake
    lex = load_lexicon(rt)
    planned = 0
    failures: list[str] = []
    for case in [*CASES, *APM_CASES]:
        for question in case.questions:
            tr = translate(question, lex, NOW)
            if tr.plan is None:
                continue  # declined: nothing to render
            planned += 1
            for dialect in ENGINE_DIALECTS:
                sql = render(tr.plan, dialect)
                try:
                    stmts = sqlglot.parse(sql, read=sqlglot_dialect(dialect))
                except sqlglot.errors.ParseError as e:
                    failures.append(f"{dialect}: {question!r}: {str(e)[:160]}")
                    continue
                if len(stmts) != 1:
                    failures.append(f"{dialect}: {question!r}: {len(stmts)} statements")
                if dialect == "synapse" and " LIMIT " in sql:
                    failures.append(f"synapse: {question!r}: LIMIT is not T-SQL")
    assert planned >= 150, planned
    assert not failures, failures[:10]
