"""Jamf input: OAuth client-credentials tokens renewed before they expire."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mantissa.inputs.base import Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.stubs import JamfStub


def run(data_dir: Path, stub: JamfStub, secret: str = "csecret"):
    (data_dir / "mantissa.yaml").write_text(
        f"inputs:\n  jamf:\n    type: jamf\n    url: https://acme.jamfcloud.com\n    base_url: {stub.url}\n"
        f"    client_id: cid\n    client_secret: {secret}\n    history_paths: [/api/v1/history-test]\n"
        "    page_size: 10\n    start: 1d\n"
    )
    rt = Runtime(data_dir)
    cls, cfg = configured_inputs(rt)["jamf"]
    return Runner(rt).cycle("jamf", cls, cfg)


def test_token_renewed_before_expiry(data_dir: Path) -> None:
    # tokens live 61 s and are renewed 60 s early: a 12-page read spans several tokens
    stub = JamfStub(ttl=61)
    try:
        stub.add(120, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
        stub.delay = 0.15
        res = run(data_dir, stub)
        assert res.ok, res.error
        assert res.events == 120
        assert stub.issued >= 2 and stub.expired_used == 0
        bad = run(data_dir, stub, secret="nope")
        assert bad.error_code == "input_auth_failed" and "nope" not in bad.error
    finally:
        stub.close()
