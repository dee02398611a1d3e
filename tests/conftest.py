"""Shared test fixtures: a fresh data dir, the CLI in-process, paths to fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = ROOT.parent / "shared"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def cli(data_dir: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``mantissa --data-dir <tmp> ARGS...`` in-process; returns code, stdout, stderr."""
    from mantissa.cli.main import run

    def invoke(*args: str, data: Path | None = None) -> CliResult:
        capsys.readouterr()
        code = run(["--data-dir", str(data or data_dir), *args])
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return invoke


def run_mantissa(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """Run the real console script in a subprocess (stdin, signals, exit codes)."""
    return subprocess.run(
        [sys.executable, "-m", "mantissa.cli.main", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present: ../shared is beside the repo only on dev and CI machines")
    return path
