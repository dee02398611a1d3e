"""Identity tests: a lake with the demo's identity sources ingested through the real parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

IDENTITY_SOURCES = ("okta", "azure_ad", "google_workspace", "duo", "microsoft_365", "cloudtrail")


@pytest.fixture(scope="module")
def demo_runtime(tmp_path_factory: pytest.TempPathFactory):
    """A runtime whose lake holds 2 days of the demo's identity sources (with its attacks)."""
    from mantissa.demo import generators
    from mantissa.demo.scenario import Scenario
    from mantissa.lake.ingest import Pipeline, ingest_connection
    from mantissa.runtime import Runtime
    from mantissa.sources.base import get_source

    tmp: Path = tmp_path_factory.mktemp("identity-demo")
    rt = Runtime(data_dir=tmp / "data")
    sc = Scenario(seed=7, days=2)
    con = ingest_connection()
    gens = generators()
    for source in IDENTITY_SOURCES:
        files = gens[source](sc, tmp / "input")
        Pipeline(rt.storage, get_source(source), rt.config.ingest, con=con).ingest_paths(
            [str(f) for f in files]
        )
    yield rt
    rt.state.close()
