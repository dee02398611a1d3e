"""The playbook format: the module reference's YAML, field for field, as pydantic models.

Additions to the reference: an optional playbook ``id`` (default: slug of ``name``),
top-level ``vars``, step ``for_each`` and ``retries``, step ``on_deny`` and
``auto_approve_after_timeout`` (approvals), and ``trigger.schedule`` (cron).
:func:`json_schema` publishes the schema.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SLUG = re.compile(r"[^a-z0-9]+")
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,127}$"
STEP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
VERSION_PATTERN = r"^\d+\.\d+\.\d+$"


def slug(name: str) -> str:
    """``"Disable Compromised User"`` → ``"disable-compromised-user"``."""
    return _SLUG.sub("-", name.lower()).strip("-")[:128] or "playbook"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TriggerConditions(_Strict):
    rule_id: str | None = None  # a glob: "okta_*"
    severity: list[str] | None = None
    tags: list[str] | None = None

    @field_validator("severity", "tags", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Trigger(_Strict):
    type: Literal["alert", "schedule", "manual"] = "manual"
    conditions: TriggerConditions = Field(default_factory=TriggerConditions)
    #: cron expression (``type: schedule``), UTC
    schedule: str | None = None

    @model_validator(mode="after")
    def _cron(self) -> Trigger:
        if self.type == "schedule":
            if not self.schedule:
                raise ValueError("a schedule trigger needs `schedule: <cron expression>`")
            from croniter import croniter

            if not croniter.is_valid(self.schedule):
                raise ValueError(f"invalid cron expression {self.schedule!r}")
        return self


class Retries(_Strict):
    max_attempts: int = Field(ge=1, le=20)
    backoff_seconds: float = Field(default=5.0, ge=0, le=3600)


class Step(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN)
    name: str
    action_type: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    requires_approval: bool = False
    approval_timeout_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    depends_on: list[str] = Field(default_factory=list)
    condition: str | None = None
    on_failure: Literal["stop", "continue"] = "stop"
    timeout_seconds: int = Field(default=300, ge=1, le=86400)
    # additions
    for_each: str | None = None
    retries: Retries | None = None
    on_deny: Literal["fail", "skip"] = "fail"
    auto_approve_after_timeout: bool = False

    @field_validator("depends_on", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    author: str | None = None
    created_at: dt.datetime | None = None
    compliance: list[str] = Field(default_factory=list)


class Playbook(_Strict):
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    version: str = Field(default="1.0.0", pattern=VERSION_PATTERN)
    status: Literal["active", "inactive", "draft"] = "draft"
    description: str | None = None
    trigger: Trigger = Field(default_factory=Trigger)
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=Metadata)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        # YAML reads `version: 1.0` as a float
        if isinstance(v, int | float):
            v = str(v)
        if isinstance(v, str) and re.fullmatch(r"\d+(\.\d+)?", v):
            v = v + ".0" * (2 - v.count("."))
        return v

    @model_validator(mode="after")
    def _check(self) -> Playbook:
        if self.id is None:
            self.id = slug(self.name)
        ids = [s.id for s in self.steps]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate step ids: {', '.join(sorted(dup))}")
        known = set(ids)
        for s in self.steps:
            for d in s.depends_on:
                if d not in known:
                    raise ValueError(f"step {s.id}: depends_on names unknown step {d!r}")
        self.order()  # raises on a cycle
        return self

    @property
    def pid(self) -> str:
        assert self.id is not None
        return self.id

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def order(self) -> list[Step]:
        """Steps in ``depends_on`` order (file order among independent steps)."""
        done: list[str] = []
        pending = list(self.steps)
        while pending:
            for s in pending:
                if all(d in done for d in s.depends_on):
                    done.append(s.id)
                    pending.remove(s)
                    break
            else:
                raise ValueError(
                    "depends_on forms a cycle among: " + ", ".join(s.id for s in pending)
                )
        return [self.step(i) for i in done]


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the playbook format."""
    schema = Playbook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mantissa-log.dev/schemas/playbook.json"
    return schema
