"""Playbook model, import, versions and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mantissa.soar.model import json_schema
from mantissa.soar.store import PlaybookInvalid, PlaybookStore
from tests.soar.conftest import playbook

PLAYBOOK_DIR = Path(__file__).resolve().parents[2] / "src" / "mantissa" / "rules" / "playbooks"

STEP = {
    "id": "s1",
    "name": "n",
    "action_type": "http_request",
    "parameters": {"url": "http://127.0.0.1:9/x"},
}


def test_shipped_playbooks_import(make_runtime: Any) -> None:
    rt = make_runtime()
    out = PlaybookStore(rt).import_path(PLAYBOOK_DIR)
    assert len(out) >= 2 and all(o.created for o in out)
    listed = {p["id"]: p for p in PlaybookStore(rt).list()}
    assert listed["compromised-okta-user"]["trigger"]["type"] == "alert"


def test_versions_and_refs(make_runtime: Any, state_url: str) -> None:
    rt = make_runtime(state_url=state_url)
    store = PlaybookStore(rt)
    a = store.import_text(playbook([STEP], id="pb"))
    assert a.to_dict() == {"id": "pb", "version": "1.0.0", "status": "active"}
    assert store.import_text(playbook([STEP], id="pb")).created is False  # same content
    changed = playbook([{**STEP, "name": "other"}], id="pb")
    b = store.import_text(changed)
    assert (b.version, b.created) == ("1.0.1", True)  # 1.0.0 taken: next patch
    assert store.resolve("pb") == ("pb", "1.0.1")
    assert store.load("pb", "1.0.0").steps[0].name == "n"  # old version kept
    assert store.resolve("pb@1.0.0") == ("pb", "1.0.0")
    assert rt.storage.exists("playbooks/pb/1.0.1/playbook.yaml")
    [row] = store.list()
    assert row["versions"] == ["1.0.0", "1.0.1"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: x\nsteps: [\n", "invalid YAML"),
        (
            playbook([{**STEP, "action_type": "launch_missiles"}]),
            "unknown action 'launch_missiles'",
        ),
        (playbook([{**STEP, "parameters": {"url": "{{ x.__class__ }}"}}]), "not allowed"),
        (playbook([{**STEP, "parameters": {"url": "{{ unclosed"}}]), "syntax error"),
        (playbook([{**STEP, "depends_on": ["nope"]}]), "unknown step 'nope'"),
        (playbook([STEP, STEP]), "duplicate step ids"),
        (playbook([{**STEP, "on_failure": "explode"}]), "on_failure"),
        (playbook([{**STEP, "timeout": 3}]), "Extra inputs"),
        (playbook([STEP], trigger={"type": "schedule", "schedule": "not cron"}), "cron"),
    ],
)
def test_import_errors_name_file_line_field(
    make_runtime: Any, tmp_path: Path, text: str, needle: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PlaybookInvalid) as exc:
        PlaybookStore(make_runtime()).import_path(f)
    assert str(f) in str(exc.value) and needle in str(exc.value)
    assert ":" in exc.value.message.split(str(f))[1][:3]  # file:line


def test_error_line_points_at_field(make_runtime: Any, tmp_path: Path) -> None:
    text = playbook([STEP, {**STEP, "id": "s2", "on_failure": "explode"}])
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PlaybookInvalid) as exc:
        PlaybookStore(make_runtime()).import_path(f)
    line = next(i + 1 for i, t in enumerate(text.splitlines()) if "explode" in t)
    assert f"{f}:{line}: steps.1.on_failure" in exc.value.message


def test_json_schema_published() -> None:
    s = json_schema()
    step = s["$defs"]["Step"]["properties"]
    for field in (
        "id",
        "name",
        "action_type",
        "description",
        "parameters",
        "requires_approval",
        "approval_timeout_seconds",
        "depends_on",
        "condition",
        "on_failure",
        "timeout_seconds",
        "for_each",
        "retries",
    ):
        assert field in step
    assert step["timeout_seconds"]["default"] == 300
    for field in (
        "id",
        "name",
        "version",
        "status",
        "trigger",
        "steps",
        "tags",
        "metadata",
        "vars",
    ):
        assert field in s["properties"]
