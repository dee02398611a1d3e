"""`mantissa lake compact`: small files merged atomically, on S3 (moto) and on local disk."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.scale.test_objectstore import cli_json, s3_keys, write_events


def _trickle(data: Path, tmp_path: Path, batches: int, per: int) -> None:
    for b in range(batches):
        src = tmp_path / f"b{b}.ndjson"
        write_events(src, per, start=b * per, hours=2)
        cli_json(data, "ingest", "-s", "cloudtrail", str(src))


def _count(data: Path) -> list[list[int]]:
    return cli_json(
        data, "query", "--sql", "SELECT count(*), count(DISTINCT event_id) FROM cloudtrail"
    )["rows"]


def _ct_stats(data: Path) -> dict:
    (ct,) = [s for s in cli_json(data, "stats") if s["table"] == "cloudtrail"]
    return ct


def _check_compaction(data: Path, tmp_path: Path) -> dict:
    _trickle(data, tmp_path, batches=6, per=300)
    before = _ct_stats(data)
    assert before["max_files_per_partition"] == 6 and before["files"] == 12
    dry = cli_json(data, "lake", "compact", "--dry-run")
    assert dry["dry_run"] and dry["compacted"] == 2
    assert _ct_stats(data)["files"] == 12
    res = cli_json(data, "lake", "compact", "--target-mb", "128")
    assert res["compacted"] == 2 and res["files_removed"] == 10
    after = _ct_stats(data)
    assert after["files"] == 2 and after["max_files_per_partition"] == 1
    assert after["rows"] == before["rows"] == 1800
    assert _count(data) == [[1800, 1800]]
    again = cli_json(data, "lake", "compact")
    assert again["compacted"] == 0
    return res


@pytest.mark.slow
def test_compact_local(data_dir: Path, tmp_path: Path) -> None:
    _check_compaction(data_dir, tmp_path)
    lake = data_dir / "lake" / "logs" / "cloudtrail"
    assert len(list(lake.rglob("*.parquet"))) == 2
    assert not [p for p in lake.rglob("*") if p.name.startswith(".")]


@pytest.mark.slow
def test_compact_s3(s3_data_dir: Path, bucket: str, tmp_path: Path) -> None:
    _check_compaction(s3_data_dir, tmp_path)
    keys = s3_keys(bucket, "prod/lake/logs/cloudtrail/")
    assert len([k for k in keys if k.endswith(".parquet")]) == 2, keys
    # the six batch markers per partition are spent and gone; one compaction marker stays
    assert len([k for k in keys if "/_commits/" in k]) == 2


@pytest.mark.slow
def test_queries_during_compaction_never_see_both_or_neither(
    s3_data_dir: Path, tmp_path: Path
) -> None:
    """Readers racing a compaction always count every row exactly once."""
    _trickle(s3_data_dir, tmp_path, batches=5, per=200)
    from mantissa.runtime import Runtime

    rt = Runtime(s3_data_dir)
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        eng = rt.make_engine()
        while not stop.is_set():
            try:
                seen.append(eng.execute("SELECT count(*) FROM cloudtrail").rows[0][0])
            except BaseException as exc:  # a vanished file is reported, not hidden
                errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        cli_json(s3_data_dir, "lake", "compact")
    finally:
        stop.set()
        t.join()
    assert seen and set(seen) == {1000}, (set(seen), errors[:1])


def test_compact_unknown_table_is_clear(data_dir: Path) -> None:
    from mantissa.cli.main import run

    assert run(["--data-dir", str(data_dir), "lake", "compact", "--table", "nope"]) != 0


@pytest.mark.parametrize("target", ["0"])
def test_compact_rejects_tiny_target(data_dir: Path, target: str) -> None:
    from mantissa.cli.main import run

    assert run(["--data-dir", str(data_dir), "lake", "compact", "--target-mb", target]) != 0
