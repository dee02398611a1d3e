"""Docker: JSON and text events mixed in one file, json-file logs, the CLI's epoch goldens."""

from __future__ import annotations

import json

from mantissa.sources.base import get_source
from tests.conftest import shared_or_skip
from tests.sources.saas import ingest_with, parse_text


def test_mixed_text_and_json_lines(tmp_path):
    body = "\n".join(
        [
            json.dumps(
                {
                    "Type": "container",
                    "Action": "oom",
                    "Actor": {"ID": "abc", "Attributes": {"name": "db", "image": "postgres:16"}},
                    "time": 1709543400,
                    "timeNano": 1709543400999999999,
                }
            ),
            "2024-03-04T09:10:40.123456789-05:00 volume create data (driver=local)",
            '{"log":"ready\\n","stream":"stdout","time":"2024-03-04T14:10:41Z"}',
        ]
    )
    rows = {r["event_type"]: r for r in parse_text("docker", body, tmp_path).rows}
    assert rows["container.oom"]["outcome"] == "failure"
    assert rows["container.oom"]["event_time"] == "2024-03-04T09:10:00.999999Z"
    assert rows["volume.create"]["event_time"] == "2024-03-04T14:10:40.123456Z"
    assert json.loads(rows["volume.create"]["Actor"]["Attributes"]) == {"driver": "local"}
    assert rows["log.stdout"]["message"] == "ready"


def test_sniff_recognises_both_forms():
    src = get_source("docker")
    assert src.sniff(["2024-03-04T09:10:30.000000000Z image pull alpine:3.19 (name=alpine)"]) == 1.0
    assert src.sniff(['{"log":"x\\n","stream":"stderr","time":"2024-03-04T09:11:00Z"}']) == 1.0
    assert src.sniff(['{"eventName": "x"}', "hello"]) == 0.0


def test_cli_goldens_parse_with_their_epoch_clock(tmp_path):
    files = [
        shared_or_skip("corpus", "docker", "docker-cli__docker-events-default.log"),
        shared_or_skip("corpus", "docker", "docker-cli__docker-events-json.log"),
    ]
    summary = ingest_with("docker", files, tmp_path / "lake", min_event_time="1970-01-01T00:00:00Z")
    assert summary.rejected == 0
    # the same four events in both forms: text and JSON rows are not deduplicated against
    # each other (the raw differs), so 8 rows
    assert summary.events == 8
