"""``mantissa engines check``: can this deployment read its lake, and does the engine see it all?

Checks, in order: the lake's storage (list, write, read, delete a probe object), every
table's committed files (each must end in Parquet's ``PAR1`` magic with ``--deep``),
the engine's connectivity, and for each table with data that the engine sees every
hour partition the lake holds (within ``since``). Each failure names the object and the fix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from mantissa.engines.base import QueryEngine
from mantissa.errors import MantissaError
from mantissa.lake.catalog import parse_partition, tables
from mantissa.lake.storage import Storage


@dataclass
class Check:
    check: str
    status: str  # ok | warning | error
    detail: str
    hint: str | None = None


def _storage_checks(storage: Storage) -> list[Check]:
    out: list[Check] = []
    probe = getattr(storage, "check", None)
    if callable(probe):
        for step in probe():
            out.append(
                Check(
                    f"lake {step['step']}",
                    "ok" if step["status"] == "ok" else "error",
                    step["detail"],
                )
            )
        return out
    try:
        storage.write_bytes("_probe/check.txt", b"ok")
        storage.read_bytes("_probe/check.txt")
        storage.delete("_probe/check.txt")
        out.append(Check("lake read/write", "ok", storage.describe()))
    except OSError as exc:
        out.append(
            Check(
                "lake read/write",
                "error",
                f"{storage.describe()}: {exc}",
                "fix the folder's permissions",
            )
        )
    return out


def run_checks(
    storage: Storage,
    engine: QueryEngine,
    since: dt.timedelta | None = dt.timedelta(days=7),
    deep: bool = False,
) -> dict[str, Any]:
    """Every check's result; ``ok`` is False when any check is an error."""
    checks = _storage_checks(storage)
    now = dt.datetime.now(dt.UTC)
    floor = None
    if since is not None:
        lo = now - since
        floor = (lo.year, lo.month, lo.day, lo.hour)
    lake_parts: dict[str, set[tuple[int, int, int, int]]] = {}
    for name, spec in tables().items():
        try:
            files = [o for o in storage.list(spec.prefix, ".parquet") if parse_partition(o.key)]
        except MantissaError as exc:
            checks.append(Check(f"table {name}", "error", exc.message, exc.hint))
            continue
        if not files:
            continue
        parts = {
            p for o in files if (p := parse_partition(o.key)) and (floor is None or p >= floor)
        }
        lake_parts[name] = parts
        bad = [o.key for o in files if o.size < 12]
        if deep:
            for o in files:
                if o.key in bad:
                    continue
                try:
                    data = storage.read_bytes(o.key)
                except (MantissaError, OSError):
                    bad.append(o.key)
                    continue
                if data[:4] != b"PAR1" or data[-4:] != b"PAR1":
                    bad.append(o.key)
        if bad:
            checks.append(
                Check(
                    f"table {name} files",
                    "error",
                    f"{len(bad)} file(s) are not Parquet: {', '.join(storage.uri(k) for k in bad[:5])}",
                    "move them out of the lake (they break every engine's scan of that partition)",
                )
            )
        else:
            checks.append(Check(f"table {name} files", "ok", f"{len(files)} committed files"))
    try:
        engine.execute("SELECT count(*) AS n FROM events WHERE false")
        checks.append(Check(f"engine {engine.type}", "ok", "connected, query ran"))
    except MantissaError as exc:
        checks.append(Check(f"engine {engine.type}", "error", exc.message, exc.hint))
        return _result(storage, engine, checks)
    except Exception as exc:  # a driver error we have no mapping for: report, don't crash
        checks.append(Check(f"engine {engine.type}", "error", str(exc).splitlines()[0][:300]))
        return _result(storage, engine, checks)
    for name, parts in sorted(lake_parts.items()):
        if not parts:
            continue
        lo = min(parts)
        where = (
            f"WHERE event_time >= '{lo[0]:04d}-{lo[1]:02d}-{lo[2]:02d} {lo[3]:02d}:00:00'"
            if floor is not None
            else ""
        )
        sql = f'SELECT year, month, day, hour, count(*) AS n FROM "{name}" {where} GROUP BY 1, 2, 3, 4'
        try:
            res = engine.execute(sql)
        except MantissaError as exc:
            checks.append(Check(f"engine sees {name}", "error", exc.message, exc.hint))
            continue
        seen = {tuple(int(v) for v in r[:4]) for r in res.rows if all(v is not None for v in r[:4])}
        missing = sorted(parts - seen)
        if missing:
            shown = ", ".join(
                f"year={y}/month={m:02d}/day={d:02d}/hour={h:02d}" for y, m, d, h in missing[:5]
            )
            checks.append(
                Check(
                    f"engine sees {name}",
                    "error",
                    f"{len(missing)} of {len(parts)} partitions are in the lake but not visible: {shown}",
                    f"run `mantissa lake register --engine {engine.type}`",
                )
            )
        else:
            checks.append(Check(f"engine sees {name}", "ok", f"{len(parts)} partitions visible"))
    return _result(storage, engine, checks)


def _result(storage: Storage, engine: QueryEngine, checks: list[Check]) -> dict[str, Any]:
    return {
        "engine": engine.type,
        "lake": storage.describe(),
        "ok": not any(c.status == "error" for c in checks),
        "checks": [asdict(c) for c in checks],
    }
