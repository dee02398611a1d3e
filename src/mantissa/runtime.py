"""The runtime: one object that opens what a command needs, lazily.

CLI commands, the API and the scheduler all get the lake storage, the query engine
and the state store from here, built from ``--data-dir`` and ``mantissa.yaml``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from mantissa.config import Config, default_data_dir, load_config
from mantissa.engines import load_engine_module
from mantissa.engines.base import QueryEngine, engine_types
from mantissa.errors import ConfigError
from mantissa.lake.storage import Storage, open_storage
from mantissa.state.store import StateStore


class Runtime:
    def __init__(
        self,
        data_dir: str | Path | None = None,
        config_path: str | Path | None = None,
        config: Config | None = None,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = config or load_config(config_path, self.data_dir)

    @cached_property
    def storage(self) -> Storage:
        return open_storage(
            self.config.lake.url, self.data_dir / "lake", self.config.lake.endpoint_url
        )

    @cached_property
    def engine(self) -> QueryEngine:
        return self.make_engine()

    @cached_property
    def embedded_engine(self) -> QueryEngine:
        """DuckDB over the same lake (local or object store), whatever ``engine.type`` is.

        For work that needs an in-process session (identity baselines: temp tables and
        many small statements); the configured engine serves queries and detections.
        """
        if self.config.engine.type == "duckdb":
            return self.engine
        return self.make_engine("duckdb")

    def make_engine(self, engine_type: str | None = None, **overrides: Any) -> QueryEngine:
        cfg = self.config.engine
        etype = engine_type or cfg.type
        try:
            load_engine_module(etype)
        except ModuleNotFoundError:
            raise ConfigError(
                f"unknown engine type {etype!r}", hint="known: " + ", ".join(engine_types())
            ) from None
        cls = engine_types()[etype]
        options = cfg.model_dump(exclude={"type"})
        options.update(overrides)
        return cls(self.storage, **options)

    @cached_property
    def state(self) -> StateStore:
        return StateStore.for_data_dir(self.data_dir, self.config.state.url)
