"""The demo step runs the shipped playbook on an identity alert and stops at an approval."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from mantissa.demo import DemoContext
from mantissa.soar.demo import soar_step


def test_demo_step_stops_at_approval(make_runtime: Any) -> None:
    rt = make_runtime()
    console = Console(record=True, width=200)
    ctx = DemoContext(runtime=rt, scenario=None, console=console, results={})
    soar_step(ctx)
    res = ctx.results["soar"]
    assert res["status"] == "waiting_approval" and res["approval"]
    assert any(c.startswith("DELETE /api/v1/users/") for c in res["okta_calls"])
    text = console.export_text()
    assert f"mantissa approvals approve {res['approval']}" in text
    assert f"/console/approvals/{res['approval']}" in text
