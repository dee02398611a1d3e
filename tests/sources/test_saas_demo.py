"""The SaaS demo generators: native formats that parse cleanly, with the planted attacks."""

from __future__ import annotations

import datetime as dt
import importlib
from collections import Counter
from pathlib import Path

import pytest

from mantissa.demo.scenario import ATTACKER_IPS, Scenario
from tests.sources.harness import parse_files

_END = dt.datetime(2024, 3, 4, 12, 0, tzinfo=dt.UTC)

ATTACKS = {
    # source: (event_type, minimum count from the attacker's address)
    "duo": ("authentication", 18),
    "google_workspace": ("download", 100),
    "microsoft_365": ("New-InboxRule", 1),
    "github": ("repo.access", 1),
    "kubernetes": ("create pods/exec", 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("source", sorted(ATTACKS))
def test_generator_output_parses_and_holds_the_attack(source, tmp_path):
    mod = importlib.import_module(f"mantissa.demo.{source}")
    files = mod.generate(Scenario(seed=3, days=2), tmp_path / "in")
    parsed = parse_files(source, [Path(f) for f in files], tmp_path / "lake")
    assert parsed.summary.rejected == 0, parsed.rejections[:3]
    assert parsed.summary.events > 100
    kind, minimum = ATTACKS[source]
    hits = Counter(r["event_type"] for r in parsed.rows if r["src_ip"] == ATTACKER_IPS[1])
    assert hits[kind] >= minimum, hits
    # benign activity outweighs the attack
    assert sum(1 for r in parsed.rows if r["src_ip"] != ATTACKER_IPS[1]) > 2 * sum(hits.values())


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
