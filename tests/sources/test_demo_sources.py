"""The demo generators of sources part A write input their sources parse in full."""

from __future__ import annotations

import pytest

from mantissa.demo.scenario import ATTACKER_IPS, Scenario
from mantissa.sources.detect import detect_source
from tests.sources.harness import parse_files


@pytest.mark.parametrize("source", ["okta", "azure_ad", "vpc_flow", "syslog"])
def test_demo_input_parses_and_holds_the_planted_attack(source, tmp_path):
    from mantissa.demo import generators

    files = generators()[source](Scenario(days=1), tmp_path / "in")
    parsed = parse_files(source, files, tmp_path / "lake")
    assert parsed.summary.rejected == 0, parsed.rejections[:3]
    assert parsed.summary.events > 50
    ips = {r["src_ip"] for r in parsed.rows} | {r["dst_ip"] for r in parsed.rows}
    assert ips & set(ATTACKER_IPS)
    assert {r["outcome"] for r in parsed.rows} >= {"success", "failure"}
    assert detect_source([str(f) for f in files]).source == source
