"""Configuration: ``mantissa.yaml`` plus flags and environment.

The file is found at ``--config`` or ``<data-dir>/mantissa.yaml``. Sections are
``kind → id → {type, options}`` in the style of Vector. Core sections (``lake``,
``engine``, ``state``, ``ingest``, ``query``) are typed here; each module validates
its own section (``destinations``, ``routes``, ``inputs`` ...) through
:meth:`Config.section`. Secrets are written as ``${env:VAR}`` and resolved only when
used, never printed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mantissa.errors import ConfigError

DEFAULT_DATA_DIR = "./mantissa-data"
CONFIG_FILE_NAME = "mantissa.yaml"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Section(BaseModel):
    """Base of every config section: unknown keys are an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class LakeConfig(Section):
    url: str | None = None  # default: <data-dir>/lake
    endpoint_url: str | None = None


class EngineConfig(Section):
    model_config = ConfigDict(extra="allow")
    type: str = "duckdb"
    timeout_secs: float = 60.0
    max_rows: int = 100_000
    memory_limit: str = "2GB"
    threads: int | None = None


class StateConfig(Section):
    url: str | None = None  # default: sqlite:///<data-dir>/state.db


class IngestConfig(Section):
    batch_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 8 * 1024 * 1024
    max_future_secs: int = 24 * 3600
    min_event_time: str = "2000-01-01T00:00:00Z"
    timestamp_fields: list[str] = Field(
        default_factory=lambda: [
            "timestamp",
            "@timestamp",
            "time",
            "ts",
            "event_time",
            "eventTime",
            "date",
            "datetime",
            "published",
            "created_at",
            "createdAt",
        ]
    )


class Config(BaseModel):
    """The whole configuration; modules read their own sections with :meth:`section`."""

    model_config = ConfigDict(extra="allow")
    lake: LakeConfig = Field(default_factory=LakeConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    path: str | None = Field(default=None, exclude=True)

    def raw_section(self, name: str) -> Any:
        extra = self.model_extra or {}
        return extra.get(name)

    def section(self, name: str, model: type[BaseModel]) -> Any:
        """Validate section ``name`` with ``model``; errors name the file and line."""
        data = self.raw_section(name)
        try:
            return model.model_validate(data if data is not None else {})
        except ValidationError as exc:
            raise _config_error(exc, self.path, prefix=(name,)) from None


def resolve_secret(value: str | None) -> str | None:
    """Resolve ``${env:VAR}`` (and ``${env:VAR:-default}``) references at use time."""
    if value is None:
        return None

    def repl(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in os.environ:
            return os.environ[var]
        if default is not None:
            return default
        raise ConfigError(
            f"environment variable {var} is not set", hint="export it or fix the config"
        )

    return _ENV_REF.sub(repl, value)


def yaml_line(text: str, keys: tuple[Any, ...]) -> int | None:
    """The 1-based line of the value at ``keys`` (mapping keys / list indexes) in YAML ``text``."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(key):
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _line_of(path: str | None, keys: tuple[Any, ...]) -> int | None:
    if not path:
        return None
    try:
        return yaml_line(Path(path).read_text(), keys)
    except OSError:
        return None


def _config_error(
    exc: ValidationError, path: str | None, prefix: tuple[Any, ...] = ()
) -> ConfigError:
    first = exc.errors()[0]
    loc = prefix + tuple(first["loc"])
    line = _line_of(path, loc)
    where = f"{path}:{line}" if path and line else (path or "config")
    dotted = ".".join(str(p) for p in loc)
    return ConfigError(f"{where}: {dotted}: {first['msg']}")


def load_config(path: str | Path | None, data_dir: Path) -> Config:
    """Load the config from ``path`` or ``<data_dir>/mantissa.yaml`` (absent file = defaults)."""
    if path is None:
        candidate = data_dir / CONFIG_FILE_NAME
        path = candidate if candidate.exists() else None
    elif not Path(path).exists():
        raise ConfigError(f"config file {path} does not exist")
    if path is None:
        return Config()
    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, str(path)) from None
    cfg.path = str(path)
    return cfg


def default_data_dir() -> Path:
    return Path(os.environ.get("MANTISSA_HOME") or DEFAULT_DATA_DIR)
