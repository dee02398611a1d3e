"""The ``soar:`` section of ``mantissa.yaml``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApprovalConfig(BaseModel):
    """The reference's approval workflow settings."""

    model_config = ConfigDict(extra="forbid")
    #: action types that always need approval, whatever the step says
    required_for: list[str] = Field(default_factory=list)
    #: who may decide (names or groups); empty = anyone with role responder/admin
    approvers: list[str] = Field(default_factory=list)
    #: a destination id of the alerts config (Slack/Teams) that receives requests
    notification_channel: str | None = None
    timeout_seconds: int = Field(default=3600, ge=1)
    auto_approve_after_timeout: bool = False
    #: HMAC key for approval links (``${env:VAR}``); default: a key kept in the state store
    link_secret: str | None = None
    link_ttl_secs: int = Field(default=900, ge=30, le=86400)


class SoarConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    #: the only folder ``run_script`` may run scripts from (set by an admin)
    scripts_dir: str | None = None
    #: console base URL used in approval links
    console_url: str | None = None
    execution_timeout_seconds: int = Field(default=3600, ge=1)
    #: folders of playbooks imported when ``serve`` starts
    playbook_dirs: list[str] = Field(default_factory=list)


def soar_config(runtime: Any) -> SoarConfig:
    return runtime.config.section("soar", SoarConfig)
