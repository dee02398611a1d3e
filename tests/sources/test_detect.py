"""Auto-detection: the right source for every fixture and corpus folder, never a silent guess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mantissa.errors import SourceError
from mantissa.sources.detect import detect_source
from tests.conftest import FIXTURES, SHARED

MINE = [
    "cloudtrail",
    "vpc_flow",
    "syslog",
    "cef",
    "json_lines",
    "s3_access",
    "guardduty",
    "aws_config",
    "gcp_audit",
    "gcp_vpc_flow",
    "azure_activity",
    "azure_ad",
    "okta",
]


def _inputs(source: str) -> list[str]:
    return [
        str(p)
        for p in sorted((FIXTURES / source).iterdir())
        if p.is_file()
        and not p.name.endswith((".expected.json", "corpus.json"))
        and p.name != "digest.json"
    ]


@pytest.mark.parametrize("source", MINE)
def test_fixture_folders_are_detected(source):
    found = detect_source(_inputs(source))
    assert found.source == source, found


@pytest.mark.parametrize("source", MINE)
def test_each_fixture_file_is_detected(source):
    for f in _inputs(source):
        assert detect_source([f]).source == source, f


def test_ambiguous_input_asks_for_source(tmp_path):
    both = {
        "eventType": "user.session.start",
        "actor": {"alternateId": "a@example.com"},
        "published": "2024-05-02T09:15:01Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "eventTime": "2024-05-02T09:15:01Z",
    }
    f = tmp_path / "mixed.json"
    f.write_text(json.dumps(both) + "\n")
    with pytest.raises(SourceError, match="ambiguous") as e:
        detect_source([str(f)])
    assert "--source" in (e.value.hint or "")


def test_files_of_two_sources_are_mixed_input(tmp_path):
    import shutil

    for src in ("okta", "gcp_audit"):
        for f in _inputs(src):
            shutil.copy(f, tmp_path / f"{src}-{Path(f).name}")
    with pytest.raises(SourceError, match="mixed input") as e:
        detect_source([str(tmp_path)])
    assert "--source okta" in (e.value.hint or "") and "--source gcp_audit" in (e.value.hint or "")


def test_sidecar_files_do_not_sway_detection(tmp_path):
    import shutil

    for f in _inputs("okta"):
        shutil.copy(f, tmp_path)
    (tmp_path / "README.md").write_text("# exported from the tenant\n")
    (tmp_path / "reference.expected.json").write_text(json.dumps([{"event.action": "x"}] * 3))
    (tmp_path / "index.jsonl").write_text('{"rule": "r", "test": "t"}\n' * 3)
    assert detect_source([str(tmp_path)]).source == "okta"


def test_unknown_text_asks_for_source(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("shopping list\neggs\nmilk\n")
    with pytest.raises(SourceError, match="could not recognise"):
        detect_source([str(f)])


def test_generic_json_falls_back_to_json_lines(tmp_path):
    f = tmp_path / "app.log"
    f.write_text('{"ts": 1714676400, "level": "info", "msg": "started"}\n' * 3)
    assert detect_source([str(f)]).source == "json_lines"


def test_more_specific_signature_wins(tmp_path):
    # Slack audit entries also carry GitHub's (action, actor): the longer signature wins
    f = tmp_path / "slack.json"
    rec = {
        "id": "x",
        "date_create": 1521214343,
        "action": "user_login",
        "actor": {"type": "user", "user": {"id": "W1", "email": "a@example.com"}},
        "entity": {"type": "user"},
        "context": {"ua": "Mozilla", "ip_address": "192.0.2.1"},
    }
    f.write_text(json.dumps(rec) + "\n")
    assert detect_source([str(f)]).source == "slack_audit"


def test_cli_says_which_source_it_chose(cli):
    res = cli("ingest", "--format", "json", *_inputs("okta"))
    assert res.code == 0, res.err
    assert "detected source" in res.err and "okta" in res.err
    assert res.json()["source"] == "okta"


CORPUS = SHARED / "corpus"


def _corpus_folders() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.exists() else []


@pytest.mark.parametrize("source", _corpus_folders())
def test_corpus_folders_are_detected(source):
    files = [
        str(p)
        for p in sorted((CORPUS / source).iterdir())
        if not p.name.endswith((".expected.json", ".index.jsonl"))
    ]
    assert detect_source(files).source == source
    # the folder as a user would pass it, sidecars and reference parses included
    assert detect_source([str(CORPUS / source)]).source == source


def test_corpus_present_or_skipped():
    if not CORPUS.exists():
        pytest.skip("../shared/corpus not present (only on dev and CI machines)")
    assert _corpus_folders()
