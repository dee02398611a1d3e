"""Shape of the built-in Sigma rule library: coverage, metadata and samples for every rule.

The samples themselves are executed end to end by ``tests/detect/test_cli.py::
test_rules_test_whole_library`` (``mantissa rules test``); this file checks, quickly and
without a lake, that every rule carries what the library promises.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mantissa.sources.base import registry

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "src" / "mantissa" / "rules" / "sigma"
LEVELS = {"informational", "low", "medium", "high", "critical"}
TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
    "privilege-escalation", "defense-evasion", "credential-access", "discovery",
    "lateral-movement", "collection", "command-and-control", "exfiltration", "impact",
}  # fmt: skip
TECHNIQUE = re.compile(r"^attack\.t\d{4}(\.\d{3})?$")


def _rules() -> list[tuple[Path, dict]]:
    out = []
    for p in sorted(LIBRARY.glob("*/*.yml")):
        if not p.name.endswith(".samples.yml"):
            out.append((p, yaml.safe_load(p.read_text())))
    return out


RULES = _rules()
SOURCE_RULES = [(p, d) for p, d in RULES if p.parent.name != "apm"]


def test_library_covers_every_source() -> None:
    per_source = Counter(p.parent.name for p, _ in SOURCE_RULES)
    missing = sorted(s for s in registry() if per_source[s] < 3)
    assert len(SOURCE_RULES) >= 150, len(SOURCE_RULES)
    assert not missing, f"sources with fewer than 3 rules: {missing}"
    assert set(per_source) <= set(registry()), set(per_source) - set(registry())


def test_ids_are_stable_unique_uuids() -> None:
    ids = [d["id"] for _, d in RULES]
    assert len(ids) == len(set(ids))
    names = [d.get("name") for _, d in RULES]
    assert len(names) == len(set(names))
    for _, d in SOURCE_RULES:
        uuid.UUID(d["id"])


@pytest.mark.parametrize("path,doc", SOURCE_RULES, ids=[p.stem for p, _ in SOURCE_RULES])
def test_rule_metadata_and_samples(path: Path, doc: dict) -> None:
    assert doc.get("name") == path.stem
    for key in ("title", "description", "level", "author", "date", "status"):
        assert doc.get(key), f"{path.name}: missing {key}"
    assert doc["level"] in LEVELS
    if "correlation" not in doc:
        assert doc.get("falsepositives"), f"{path.name}: no falsepositives"
    tags = doc.get("tags") or []
    assert any(t[7:] in TACTICS for t in tags if t.startswith("attack.")), f"{path.name}: no tactic"
    assert any(TECHNIQUE.match(t) for t in tags), f"{path.name}: no technique"
    samples = yaml.safe_load(path.with_name(path.stem + ".samples.yml").read_text())
    assert samples["source"] == path.parent.name
    if "correlation" not in doc:
        assert samples.get("match") and samples.get("nomatch"), f"{path.name}: needs both sets"
        det = doc["detection"]
        if "|" in str(det.get("condition")):
            tf = det.get("timeframe") or doc.get("timeframe")
            assert tf, f"{path.name}: aggregation without timeframe"


def test_docs_table_is_current() -> None:
    script = ROOT / "scripts" / "rules_table.py"
    if not (ROOT / "docs" / "rules.md").exists():
        pytest.skip("docs/rules.md not in this checkout")
    res = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
