"""The SaaS demo generators: native formats that parse cleanly, with the planted attacks."""

from __future__ import annotations

import datetime as dt
import importlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mantissa.demo.scenario import ATTACKER_IPS, Scenario
from tests.sources.harness import parse_files

_END = dt.datetime(2024, 3, 4, 12, 0, tzinfo=dt.UTC)

A1 = ATTACKER_IPS[1]

# source: (what marks a planted row, event_type, minimum count)
ATTACKS: dict[str, tuple[Callable[[dict[str, Any]], bool], str, int]] = {
    "duo": (lambda r: r["src_ip"] == A1, "authentication", 18),
    "google_workspace": (lambda r: r["src_ip"] == A1, "download", 100),
    "microsoft_365": (lambda r: r["src_ip"] == A1, "New-InboxRule", 1),
    "github": (lambda r: r["src_ip"] == A1, "repo.access", 1),
    "kubernetes": (lambda r: r["src_ip"] == A1, "create pods/exec", 1),
    "onepassword": (lambda r: r["src_ip"] == A1, "item:reveal", 20),
    "slack_audit": (lambda r: r["src_ip"] == A1, "file_downloaded", 40),
    "salesforce": (lambda r: r["src_ip"] == A1, "ReportExport", 12),
    "snowflake": (lambda r: r["src_ip"] == ATTACKER_IPS[3], "LOGIN", 7),
    "crowdstrike": (lambda r: r["dst_ip"] == ATTACKER_IPS[0], "NetworkConnectIP4", 6),
    "docker": (
        lambda r: "nsenter" in (r["event_type"] or ""),
        "container.exec_start: nsenter -t 1 -m -u -i -n sh",
        1,
    ),
    "jamf": (lambda r: r["user"] == "mallory" and r["src_ip"] is None, "RestAPIOperation", 2),
}


@pytest.mark.slow
@pytest.mark.parametrize("source", sorted(ATTACKS))
def test_generator_output_parses_and_holds_the_attack(source, tmp_path):
    mod = importlib.import_module(f"mantissa.demo.{source}")
    files = mod.generate(Scenario(seed=3, days=2), tmp_path / "in")
    parsed = parse_files(source, [Path(f) for f in files], tmp_path / "lake")
    assert parsed.summary.rejected == 0, parsed.rejections[:3]
    assert parsed.summary.events > 60
    planted, kind, minimum = ATTACKS[source]
    hits = Counter(r["event_type"] for r in parsed.rows if planted(r))
    assert hits[kind] >= minimum, hits
    # benign activity outweighs the attack
    assert sum(1 for r in parsed.rows if not planted(r)) > 2 * sum(hits.values())


def test_duo_push_bombing_ends_in_an_approval(tmp_path):
    from mantissa.demo import duo

    auths, _ = duo.events(Scenario(seed=3, days=1))
    mallory = [a for a in auths if a["access_device"]["ip"] == ATTACKER_IPS[1]]
    results = [a["result"] for a in sorted(mallory, key=lambda a: a["timestamp"])]
    assert results.count("denied") >= 15 and results[-1] == "success"


def test_generators_are_deterministic_for_a_seed(tmp_path):
    from mantissa.demo import google_workspace

    a = google_workspace.generate(Scenario(seed=5, days=1, end=_END), tmp_path / "a")
    b = google_workspace.generate(Scenario(seed=5, days=1, end=_END), tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
