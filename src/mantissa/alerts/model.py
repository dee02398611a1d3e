"""The alert model: what a detection produces (:class:`AlertCandidate`) and what is stored
(:class:`Alert`), with its severity and status vocabularies."""

from __future__ import annotations

import datetime as dt
import os
import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_EVIDENCE_ROWS = 20
MAX_EVIDENCE_IDS = 200
DEFAULT_SUPPRESS_SECS = 3600

ENTITY_KEYS = (
    "user",
    "ip",
    "host",
    "resource",
    "provider",
    "user_id",
    "session_id",
    "service",
    "trace_id",
)


class Severity(StrEnum):
    """Alert severity, ordered from ``informational`` to ``critical``."""

    informational = "informational"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    def rank(self) -> int:
        """0 for informational … 4 for critical (compare severities with this)."""
        return _SEVERITY_ORDER.index(self)

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """Accept the Sigma spellings too (``info``/``informational``, any case)."""
        if isinstance(value, Severity):
            return value
        v = str(value).strip().lower()
        return cls(_SEVERITY_ALIASES.get(v, v))


_SEVERITY_ORDER = list(Severity)
_SEVERITY_ALIASES = {"info": "informational", "information": "informational", "crit": "critical"}


class AlertStatus(StrEnum):
    """Where an alert is in its life; ``open`` and ``acknowledged`` are the active ones."""

    open = "open"
    acknowledged = "acknowledged"
    closed = "closed"
    false_positive = "false_positive"

    @property
    def active(self) -> bool:
        return self in (AlertStatus.open, AlertStatus.acknowledged)


def _utc(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    return v


class AlertCandidate(BaseModel):
    """What a detection produces: one match (or one group of matches) to alert on."""

    model_config = ConfigDict(extra="forbid")

    rule_id: str
    rule_title: str
    severity: Severity
    tags: list[str] = Field(default_factory=list)
    dedup_key: str
    entities: dict[str, str] = Field(default_factory=dict)
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int = 1
    query: str | None = None
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    evidence_event_ids: list[str] = Field(default_factory=list)
    evidence_rows: list[dict[str, Any]] = Field(default_factory=list)
    source: str | None = None
    description: str | None = None
    suppress_secs: int | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: Any) -> Any:
        return Severity.parse(v) if isinstance(v, str) else v

    @field_validator("first_seen", "last_seen", "window_start", "window_end", mode="after")
    @classmethod
    def _tz(cls, v: Any) -> Any:
        return _utc(v)

    @field_validator("entities", mode="before")
    @classmethod
    def _entities(cls, v: Any) -> Any:
        # drop empty values: an alert "for user None" helps nobody and breaks routing globs
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items() if val not in (None, "")}
        return v

    @field_validator("evidence_rows", mode="after")
    @classmethod
    def _bound_rows(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return v[:MAX_EVIDENCE_ROWS]

    @field_validator("evidence_event_ids", mode="after")
    @classmethod
    def _bound_ids(cls, v: list[str]) -> list[str]:
        return v[:MAX_EVIDENCE_IDS]


class Alert(AlertCandidate):
    """A stored alert: a candidate plus identity, status history, enrichment and deliveries."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: AlertStatus = AlertStatus.open
    history: list[dict[str, Any]] = Field(default_factory=list)
    enrichment: dict[str, Any] = Field(default_factory=dict)
    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    created_at: dt.datetime
    updated_at: dt.datetime

    @field_validator("created_at", "updated_at", mode="after")
    @classmethod
    def _tz2(cls, v: Any) -> Any:
        return _utc(v)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (ISO timestamps), the shape of ``alerts show --format json``."""
        return self.model_dump(mode="json")


def new_alert_id() -> str:
    """A time-ordered id: ``al_`` + 12 hex digits of milliseconds + 8 random hex digits."""
    return f"al_{int(time.time() * 1000):012x}{os.urandom(4).hex()}"
