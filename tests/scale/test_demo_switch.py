"""The README's "From laptop to cloud" promise: the same demo, one config change each.

``mantissa demo`` on the embedded default, then with only ``lake: {url: s3://...}`` (moto
in server mode) and with only ``engine: {type: spark, master: "local[2]"}`` in
``mantissa.yaml``: every step runs, the same detections fire, the questions get the same
answers.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


# one sample for every run: the generated activity ends at the same instant, so the
# engines see the same events in the same aggregation buckets
END = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _demo(data: Path, config: str = "") -> tuple[dict[str, Any], str]:
    from mantissa.demo.run import run_demo
    from mantissa.runtime import Runtime

    data.mkdir(parents=True, exist_ok=True)
    if config:
        (data / "mantissa.yaml").write_text(config)
    out = io.StringIO()
    ctx = run_demo(Runtime(data), Console(file=out, width=200), days=1, keep_input=False, end=END)
    print(data, ctx.results["seconds"])  # where the time goes, shown on failure
    return ctx.results, out.getvalue()


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    return {
        "detections": results["detections"]["alerts"],
        "identity": results["identity"]["rules"],
        "questions": [
            (q.get("question"), q.get("answered"), len(q.get("rows") or []))
            for q in results["questions"]
        ],
        "apm_alerts": sorted(results["apm"].get("alerts") or []),
    }


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results, _ = _demo(tmp_path_factory.mktemp("laptop") / "data")
    assert results["detections"]["alerts"] > 0
    return _summary(results)


def test_demo_with_the_lake_on_s3(
    tmp_path: Path, bucket: str, aws_env: str, baseline: dict[str, Any]
) -> None:
    import boto3

    results, text = _demo(tmp_path / "data", f'lake: {{url: "s3://{bucket}/mantissa"}}\n')
    assert _summary(results) == baseline, text[-3000:]
    keys = [
        o["Key"]
        for page in boto3.client("s3", endpoint_url=aws_env)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix="mantissa/logs/")
        for o in page.get("Contents", [])
    ]
    assert any(k.endswith(".parquet") for k in keys)
    assert not (tmp_path / "data" / "lake" / "logs").exists()  # nothing went to local disk


def test_demo_with_spark_as_the_engine(tmp_path: Path, baseline: dict[str, Any]) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime: run scripts/test-deps.sh (openjdk-17-jre-headless)")
    results, text = _demo(tmp_path / "data", 'engine: {type: spark, master: "local[2]"}\n')
    assert _summary(results) == baseline, text[-3000:]
    # the questions ran as Spark SQL, not on a DuckDB fallback
    assert {(q["cost"] or {}).get("engine") for q in results["questions"] if q["answered"]} == {
        "spark"
    }
