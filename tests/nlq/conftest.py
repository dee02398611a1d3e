"""The evaluation lake, built once per test session through the real parsers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.nlq.dataset import Dataset, build_lake


@pytest.fixture(scope="session")
def nlq_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Dataset]:
    from mantissa.runtime import Runtime

    root = tmp_path_factory.mktemp("nlq")
    ds = build_lake(root / "data", root / "input")
    return Runtime(root / "data"), ds
