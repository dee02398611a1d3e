"""`mantissa engines check`, `engines list` and storage errors that name the object and the fix."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES
from tests.scale.test_objectstore import cli_json


def run_json(data: Path, *args: str) -> tuple[int, Any]:
    from mantissa.cli.main import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run(["--data-dir", str(data), *args, "--format", "json"])
    return code, json.loads(buf.getvalue()) if buf.getvalue().strip() else None


def test_engines_list(data_dir: Path) -> None:
    code, out = run_json(data_dir, "engines", "list")
    assert code == 0
    by = {o["engine"]: o for o in out}
    assert set(by) == {"duckdb", "athena", "bigquery", "synapse", "spark"}
    assert by["duckdb"]["available"] and by["duckdb"]["configured"]


def test_check_local_lake_and_a_non_parquet_file(data_dir: Path) -> None:
    cli_json(data_dir, "ingest", "-s", "cloudtrail", str(FIXTURES / "cloudtrail" / "events.ndjson"))
    code, out = run_json(data_dir, "engines", "check", "--since", "all", "--deep")
    assert code == 0 and out["ok"], out
    assert any(
        c["check"] == "engine sees cloudtrail" and c["status"] == "ok" for c in out["checks"]
    )
    part = next((data_dir / "lake" / "logs" / "cloudtrail").rglob("hour=*"))
    (part / "notes.parquet").write_text("this is not parquet at all")
    code, out = run_json(
        data_dir, "engines", "check", "--since", "all", "--deep", "--engine", "duckdb"
    )
    assert code == 1 and not out["ok"]
    (bad,) = [c for c in out["checks"] if c["check"] == "table cloudtrail files"]
    assert bad["status"] == "error" and "notes.parquet" in bad["detail"] and bad["hint"]


def test_check_s3_lake(s3_data_dir: Path) -> None:
    cli_json(
        s3_data_dir, "ingest", "-s", "cloudtrail", str(FIXTURES / "cloudtrail" / "events.ndjson")
    )
    code, out = run_json(s3_data_dir, "engines", "check", "--since", "all", "--deep")
    assert code == 0 and out["ok"], out
    steps = {c["check"]: c["status"] for c in out["checks"]}
    assert steps["lake write"] == steps["lake read"] == steps["lake delete"] == "ok"


def test_wrong_bucket_is_named(tmp_path: Path, aws_env: str) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "mantissa.yaml").write_text('lake:\n  url: "s3://no-such-bucket-x1/lake"\n')
    code, out = run_json(d, "engines", "check")
    assert code == 1
    errors = [c for c in out["checks"] if c["status"] == "error"]
    assert errors and "no-such-bucket-x1" in errors[0]["detail"]
    from mantissa.errors import StorageError
    from mantissa.runtime import Runtime

    try:
        list(Runtime(d).storage.list("logs"))
    except StorageError as exc:
        assert "no-such-bucket-x1" in str(exc) and exc.hint and "lake.url" in exc.hint
    else:
        raise AssertionError("listing a missing bucket must fail")


def test_unknown_scheme_is_a_config_error(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "mantissa.yaml").write_text('lake:\n  url: "ftp://host/lake"\n')
    code, _ = run_json(d, "engines", "check")
    assert code != 0
