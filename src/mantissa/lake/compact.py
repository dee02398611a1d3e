"""Compaction: merge a partition's small Parquet files into few large ones, atomically.

Cloud engines pay per file opened (Athena, Spark and Synapse plan one split per file;
S3 charges per GET), so a trickle of small batches slows every later query. Compaction
bins the small files of an hour partition into outputs of about ``target_bytes``
(default 256 MB, the middle of the 128–512 MB range the engines recommend), drops
duplicate ``event_id`` rows on the way, and swaps them in:

* object stores: one commit marker adds the merged file and removes the small ones
  (``lake/objectstore.py``), then the small files and their spent markers are deleted;
* the local folder: the partition folder is rebuilt beside the old one and exchanged
  with it in one ``renameat2(RENAME_EXCHANGE)`` (Linux), so a query sees the old set or
  the new set of files, never both.

It also removes orphans: data files no commit names (a writer killed before it
committed), once they are older than the grace period.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from mantissa.lake.catalog import TableSpec, parse_partition
from mantissa.lake.objectstore import ORPHAN_GRACE_SECS, ObjectStorage
from mantissa.lake.storage import LocalStorage, ObjectInfo, Storage
from mantissa.lake.writer import new_batch_id

DEFAULT_TARGET_BYTES = 256 * 1024 * 1024
MIN_TARGET_BYTES = 1 * 1024 * 1024


@dataclass
class PartitionResult:
    partition: str
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    rows: int
    duplicates_dropped: int = 0


@dataclass
class CompactResult:
    partitions: list[PartitionResult] = field(default_factory=list)
    orphans_removed: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "compacted": len(self.partitions),
            "files_removed": sum(p.files_before - p.files_after for p in self.partitions),
            "orphans_removed": self.orphans_removed,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
            "partitions": [asdict(p) for p in self.partitions],
        }


def bins(files: list[ObjectInfo], target_bytes: int) -> list[list[ObjectInfo]]:
    """Group small files (each under half the target) into runs of about ``target_bytes``."""
    small = sorted((f for f in files if f.size < target_bytes // 2), key=lambda f: f.key)
    out: list[list[ObjectInfo]] = []
    cur: list[ObjectInfo] = []
    size = 0
    for f in small:
        if cur and size + f.size > target_bytes:
            out.append(cur)
            cur, size = [], 0
        cur.append(f)
        size += f.size
    if cur:
        out.append(cur)
    return [b for b in out if len(b) > 1]


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _merge(
    storage: Storage,
    con: duckdb.DuckDBPyConnection,
    files: list[ObjectInfo],
    out: Path,
    spec: TableSpec,
) -> tuple[int, int]:
    """Write ``files`` merged into ``out``; returns (rows in, rows out)."""
    uris = ", ".join(_q(storage.uri(f.key)) for f in files)
    src = f"read_parquet([{uris}], hive_partitioning=false, union_by_name=true)"
    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    rows_in = int(con.execute(f"SELECT count(*) FROM {src}").fetchone()[0])  # type: ignore[index]
    order = spec.time_column if spec.time_column in cols else "1"
    dedup = "QUALIFY row_number() OVER (PARTITION BY event_id) = 1" if "event_id" in cols else ""
    con.execute(
        f"COPY (SELECT * FROM {src} {dedup} ORDER BY {order}) TO {_q(str(out))} "
        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    )
    rows_out = int(
        con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({_q(str(out))})").fetchone()[
            0
        ]  # type: ignore[index]
        or 0
    )
    return rows_in, rows_out


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where unsupported."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _swap_local(
    storage: LocalStorage, partition: str, new: dict[str, Path], old: list[str]
) -> None:
    part_dir = storage.root / partition
    shadow = part_dir.with_name(f".{part_dir.name}.compact-{new_batch_id()}")
    shadow.mkdir()
    old_names = {k.rsplit("/", 1)[1] for k in old}
    for f in part_dir.iterdir():
        if f.is_file() and f.name not in old_names:
            os.link(f, shadow / f.name)
    for key, local in new.items():
        os.replace(local, shadow / key.rsplit("/", 1)[1])
    if not _exchange(shadow, part_dir):
        # No atomic exchange here: publish first, then retire (a brief overlap).
        for f in shadow.iterdir():
            if not (part_dir / f.name).exists():
                os.replace(f, part_dir / f.name)
        for name in old_names:
            (part_dir / name).unlink(missing_ok=True)
        shutil.rmtree(shadow, ignore_errors=True)
        return
    # A writer may have published into the old folder between the links and the swap.
    for f in shadow.iterdir():
        if f.is_file() and f.name not in old_names and not (part_dir / f.name).exists():
            os.replace(f, part_dir / f.name)
    shutil.rmtree(shadow, ignore_errors=True)


def compact_partition(
    storage: Storage,
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    partition: str,
    files: list[ObjectInfo],
    target_bytes: int = DEFAULT_TARGET_BYTES,
    dry_run: bool = False,
) -> PartitionResult | None:
    """Merge the small files of one partition; None when there is nothing to merge."""
    groups = bins(files, target_bytes)
    if not groups:
        return None
    merged_keys = {f.key for g in groups for f in g}
    res = PartitionResult(
        partition=partition,
        files_before=len(files),
        files_after=len(files) - len(merged_keys) + len(groups),
        bytes_before=sum(f.size for f in files),
        bytes_after=sum(f.size for f in files if f.key not in merged_keys),
        rows=0,
    )
    if dry_run:
        res.bytes_after = res.bytes_before
        return res
    staging = storage.scratch_dir() / f"compact-{new_batch_id()}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        new: dict[str, Path] = {}
        for g in groups:
            name = f"{new_batch_id()}-c"
            out = staging / f"{name}.parquet"
            rows_in, rows_out = _merge(storage, con, g, out, spec)
            res.rows += rows_out
            res.duplicates_dropped += rows_in - rows_out
            res.bytes_after += out.stat().st_size
            new[f"{partition}/{name}.parquet"] = out
        old = sorted(merged_keys)
        if isinstance(storage, LocalStorage):
            _swap_local(storage, partition, new, old)
        elif isinstance(storage, ObjectStorage):
            storage.publish(new, remove=old)
            _retire(storage, partition, set(old))
        else:
            storage.publish(new, remove=old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return res


def _retire(storage: ObjectStorage, partition: str, removed: set[str]) -> None:
    """Delete merged-away files and the markers that only named them (one request each)."""
    st = storage.partitions(partition).get(partition)
    if st is None:
        return
    names = {k.rsplit("/", 1)[1] for k in removed}
    # A marker whose every added file is merged away commits nothing any more.
    spent = [
        f"{partition}/_commits/{marker}"
        for marker, doc in st.markers.items()
        if doc["add"] and set(doc["add"]) <= names
    ]
    storage.delete_many([*sorted(removed), *spent])


def vacuum(storage: ObjectStorage, prefix: str, grace_secs: float = ORPHAN_GRACE_SECS) -> int:
    """Delete uncommitted data files older than ``grace_secs`` (killed writers' leftovers)."""
    now = time.time()
    doomed = [
        o.key
        for st in storage.partitions(prefix).values()
        for o in st.orphans
        if now - o.mtime > grace_secs
    ]
    storage.delete_many(doomed)
    return len(doomed)


def compact(
    storage: Storage,
    specs: Iterable[TableSpec],
    target_bytes: int = DEFAULT_TARGET_BYTES,
    partition_filter: str | None = None,
    dry_run: bool = False,
    grace_secs: float = ORPHAN_GRACE_SECS,
) -> CompactResult:
    """Compact every partition of ``specs`` that has two or more small files."""
    start = time.perf_counter()
    result = CompactResult(dry_run=dry_run)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    storage.attach(con)
    try:
        for spec in specs:
            by_part: dict[str, list[ObjectInfo]] = {}
            for obj in storage.list(spec.prefix, ".parquet"):
                if parse_partition(obj.key) is None:
                    continue
                part = obj.key.rsplit("/", 1)[0]
                if partition_filter and not part.startswith(partition_filter.rstrip("/")):
                    continue
                by_part.setdefault(part, []).append(obj)
            for part, files in sorted(by_part.items()):
                r = compact_partition(storage, con, spec, part, files, target_bytes, dry_run)
                if r is not None:
                    result.partitions.append(r)
            if isinstance(storage, ObjectStorage) and not dry_run:
                result.orphans_removed += vacuum(storage, spec.prefix, grace_secs)
    finally:
        con.close()
    result.seconds = time.perf_counter() - start
    return result
