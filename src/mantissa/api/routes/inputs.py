"""``GET /inputs/status`` (role viewer): the health of each collector input.

The same rows as ``mantissa inputs status --format json``: last cursor, last event
time, lag, events and errors in the last hour, last and next run, last error. An
``inputs:`` section that no longer validates still answers with what the state store
knows, plus the config error, so the console can show both.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from mantissa.api.auth import Principal, Role, require
from mantissa.errors import ConfigError
from mantissa.inputs.base import STATUS_NS, status_view, statuses

router = APIRouter(tags=["inputs"])


class InputStatus(BaseModel):
    id: str
    type: str | None
    source: str | None
    enabled: bool
    configured: bool
    state: str
    last_cursor: dict[str, Any] | None
    last_event_time: str | None
    lag_secs: float | None
    events_last_hour: int
    errors_last_hour: int
    events_total: int
    last_run: str | None
    last_success: str | None
    next_run: str | None
    last_error: dict[str, Any] | None
    interval_secs: float | None
    counters: dict[str, Any] | None = None


class InputsStatusOut(BaseModel):
    inputs: list[InputStatus]
    #: the ``inputs:`` config error, when the section does not validate
    config_error: str | None = None


@router.get("/inputs/status", response_model=InputsStatusOut)
def inputs_status(
    request: Request, _: Principal = Depends(require(Role.viewer))
) -> InputsStatusOut:
    """Per-input health, as ``mantissa inputs status --format json`` lists it."""
    rt = request.app.state.runtime
    try:
        rows = statuses(rt)
        error = None
    except ConfigError as exc:
        docs = rt.state.items(STATUS_NS)
        rows = [status_view(i, None, None, d) for i, d in docs.items()]
        error = exc.message
    return InputsStatusOut(inputs=[InputStatus(**r) for r in rows], config_error=error)
