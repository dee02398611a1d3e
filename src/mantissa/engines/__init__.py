"""Query engines: one module per engine, all behind :class:`QueryEngine`."""

from __future__ import annotations

import importlib

from mantissa.engines.base import CostEstimate, QueryEngine, QueryResult, engine_types

__all__ = ["CostEstimate", "QueryEngine", "QueryResult", "engine_types", "load_engine_module"]


def load_engine_module(engine_type: str) -> None:
    """Import ``mantissa.engines.<type>`` so that it registers itself (lazy, like sqlglot)."""
    importlib.import_module(f"mantissa.engines.{engine_type}")
