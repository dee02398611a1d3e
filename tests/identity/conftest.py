"""Identity tests: a lake with the demo's identity sources ingested through the real
parsers; state stores on SQLite and PostgreSQL (127.0.0.1:5432, db ``test``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_unavailable() -> str | None:
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(
            PG_URL.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"connect_timeout": 3},
        )
        with eng.connect() as c:
            c.exec_driver_sql("SELECT 1")
        eng.dispose()
        return None
    except Exception as exc:  # driver missing, server down
        return (
            f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}); "
            "run scripts/test-deps.sh"
        )


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh state store: a SQLite file, or a private schema on PostgreSQL (skipped
    with the reason when the server is not reachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    why = _pg_unavailable()
    if why:
        pytest.skip(why)
    import sqlalchemy as sa

    schema = "identity_" + uuid.uuid4().hex[:10]
    eng = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        eng.dispose()


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
