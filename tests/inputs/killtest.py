"""Helpers for the pull-input tests: rows in the lake, one cycle, and kill -9 between the
lake write and the checkpoint (the pattern of test_okta.py, shared by the Google and
Microsoft input tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from mantissa.inputs.base import CycleResult, Runner, configured_inputs
from mantissa.runtime import Runtime


def lake_rows(data_dir: Path, source: str, column: str = "event_id") -> list[str]:
    """``column`` of every row of ``source`` in the lake (duplicates kept)."""
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet")]
    if not files:
        return []
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT {column} FROM read_parquet(?, union_by_name=true) WHERE source = ?",
        [files, source],
    ).fetchall()
    return [r[0] for r in rows]


def cycle(data_dir: Path, input_id: str) -> tuple[Runtime, CycleResult]:
    """One poll cycle of ``input_id`` in-process, as ``collect --once`` runs it."""
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)[input_id]
    return rt, Runner(rt).cycle(input_id, cls, cfg)


def kill_at_checkpoint(
    data_dir: Path, input_id: str, n: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``mantissa collect --once INPUT`` and SIGKILL it right before the ``n``-th
    checkpoint is written (batch ``n`` is already in the lake)."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from mantissa.state import store
        from mantissa.inputs.base import CURSOR_NS
        real_put, seen = store.StateStore.put, []
        def put(self, ns, key, value, conn=None):
            if ns == CURSOR_NS and conn is None:
                seen.append(1)
                if len(seen) == {n}:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_put(self, ns, key, value, conn)
        store.StateStore.put = put
        from mantissa.cli.main import run
        sys.exit(run(["--data-dir", {str(data_dir)!r}, "collect", "--once", {input_id!r}]))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=120,
    )


def collect_once(
    data_dir: Path, input_id: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The real console entry point: ``mantissa collect --once INPUT --format json``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mantissa.cli.main",
            "--data-dir",
            str(data_dir),
            "collect",
            "--once",
            input_id,
            "--format",
            "json",
        ],
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=120,
    )
