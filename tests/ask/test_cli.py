"""``mantissa query "QUESTION"``: JSON shape, dialects, follow-ups in a session, declines."""

from __future__ import annotations

import json

import pytest

from mantissa.cli.main import run

KEYS = {"question", "sql", "columns", "rows", "summary", "cost", "tier", "time_range"}


def q(data, capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run(["--data-dir", str(data), "query", *args])
    return code, capsys.readouterr().out


@pytest.mark.slow
def test_json_answer_shape(ask_lake, capsys) -> None:
    _, _, data = ask_lake
    code, out = q(
        data,
        capsys,
        "How many failed console logins between 2026-11-01 and 2026-11-26?",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= KEYS
    assert doc["tier"] == "rules" and doc["answered"] is True
    assert doc["columns"] == ["count"] and isinstance(doc["rows"][0][0], int)
    assert doc["cost"]["engine"] == "duckdb" and doc["cost"]["bytes_scanned"] > 0
    assert doc["time_range"]["label"] == "2026-11-01 to 2026-11-26"
    assert "failed" in doc["summary"]


@pytest.mark.slow
@pytest.mark.parametrize("dialect", ["athena", "bigquery", "synapse", "spark"])
def test_dialect_flag(ask_lake, capsys, dialect: str) -> None:
    _, _, data = ask_lake
    code, out = q(
        data,
        capsys,
        "p95 bytes per flow this week",
        "--dialect",
        dialect,
        "--explain",
        "-f",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["dialect"] == dialect and doc["explain"] is True and not doc["rows"]
    marker = {
        "athena": "APPROX_PERCENTILE",
        "bigquery": "APPROX_QUANTILES",
        "synapse": "WITHIN GROUP",
        "spark": "PERCENTILE_APPROX",
    }
    assert marker[dialect] in doc["sql"].upper()


@pytest.mark.slow
def test_session_follow_ups(ask_lake, capsys) -> None:
    _, _, data = ask_lake
    s = ["--session", "case-42", "-f", "json"]
    _, out = q(data, capsys, "failed logins between 2026-11-01 and 2026-11-26", *s)
    first = json.loads(out)
    _, out = q(data, capsys, "and only for bob?", *s)
    bob = json.loads(out)
    assert bob["answered"] and bob["rows"]
    users = {r[bob["columns"].index("user")] for r in bob["rows"]}
    assert users <= {"bob", "bob@example.com"}
    assert len(bob["rows"]) < len(first["rows"])
    _, out = q(data, capsys, "what about between 2026-11-16 and 2026-11-22?", *s)
    lw = json.loads(out)
    assert lw["time_range"]["label"] == "2026-11-16 to 2026-11-22"
    assert {r[lw["columns"].index("user")] for r in lw["rows"]} <= {"bob", "bob@example.com"}
    # a fresh session starts over; "who is the top one?" ranks the previous question
    _, out = q(
        data,
        capsys,
        "failed logins between 2026-11-01 and 2026-11-26",
        "--session",
        "case-43",
        "-f",
        "json",
    )
    _, out = q(data, capsys, "who is the top one?", "--session", "case-43", "-f", "json")
    top = json.loads(out)
    assert top["intent"] == "top_k" and len(top["rows"]) == 1 and top["columns"][0] == "user"


@pytest.mark.slow
def test_declined_question_is_honest(ask_lake, capsys) -> None:
    _, _, data = ask_lake
    code, out = q(data, capsys, "what is our quarterly revenue", "-f", "json")
    doc = json.loads(out)
    assert code == 0 and doc["answered"] is False and doc["sql"] is None and doc["rows"] == []
    assert doc["summary"].startswith("I could not map this question")
    assert doc["suggestions"]
    code, out = q(data, capsys, "what is our quarterly revenue")
    assert "could not map" in out


@pytest.mark.slow
def test_table_output(ask_lake, capsys) -> None:
    _, _, data = ask_lake
    code, out = q(data, capsys, "who created IAM users this week")
    assert code == 0
    assert "SELECT" in out and "tier rules" in out and "cost:" in out
