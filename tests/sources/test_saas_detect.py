"""Auto-detection of the SaaS sources from their fixtures; ambiguity is reported, not guessed."""

from __future__ import annotations

import pytest

from mantissa.errors import SourceError
from mantissa.sources.detect import detect_source
from tests.conftest import FIXTURES

SOURCES = [
    "google_workspace", "microsoft_365", "duo", "crowdstrike", "jamf", "slack_audit",
    "github", "kubernetes", "docker", "snowflake", "salesforce", "onepassword",
]  # fmt: skip
# AKS diagnostic records are also Azure Monitor diagnostic records: both claim them
AMBIGUOUS = {("kubernetes", "aks-diagnostic.json"): "azure_activity"}


def _inputs() -> list[tuple[str, str]]:
    return [
        (s, p.name)
        for s in SOURCES
        for p in sorted((FIXTURES / s).iterdir())
        if not p.name.endswith((".expected.json", "corpus.json"))
    ]


@pytest.mark.parametrize("source,name", _inputs())
def test_fixture_is_detected(source, name):
    path = str(FIXTURES / source / name)
    other = AMBIGUOUS.get((source, name))
    if other:
        with pytest.raises(SourceError) as err:
            detect_source([path])
        assert source in str(err.value) and other in str(err.value)
        return
    assert detect_source([path]).source == source
