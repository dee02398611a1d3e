"""A small evaluation lake for the ask tests (same generator as tests/nlq)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.nlq.dataset import Dataset, build_lake


@pytest.fixture(scope="session")
def ask_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Dataset, Path]:
    from mantissa.runtime import Runtime

    root = tmp_path_factory.mktemp("ask")
    ds = build_lake(root / "data", root / "input")
    return Runtime(root / "data"), ds, root / "data"
