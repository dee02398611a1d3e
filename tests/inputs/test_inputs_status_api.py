"""``GET /inputs/status`` (role viewer): the rows of ``mantissa inputs status --format json``."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.inputs.base import Runner, configured_inputs
from mantissa.runtime import Runtime
from tests.inputs.pubsub_stub import PubSubStub, rsa_key
from tests.inputs.test_pubsub import payloads, write_config


def test_status_endpoint_matches_the_cli(data_dir: Path, cli) -> None:
    sa, pub = rsa_key()
    stub = PubSubStub(pub, sa["client_email"])
    try:
        stub.publish(payloads(25))
        write_config(data_dir, stub, sa)
        cfg_text = (data_dir / "mantissa.yaml").read_text()
        (data_dir / "mantissa.yaml").write_text(
            cfg_text + "  broken:\n    type: gcp_vpc_flow\n"
            "    subscription: projects/p/subscriptions/s\n"
        )
        rt = Runtime(data_dir)
        runner = Runner(rt)
        for input_id, (cls, cfg) in configured_inputs(rt).items():
            runner.cycle(input_id, cls, cfg)
    finally:
        stub.close()
    cli_rows = json.loads(cli("inputs", "status", "--format", "json").out)["inputs"]
    _, viewer = TokenStore(rt.state).create("viewer", name="v")
    with TestClient(create_app(Runtime(data_dir))) as c:
        assert c.get("/inputs/status").status_code == 401
        r = c.get("/inputs/status", headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["config_error"] is None
    rows = {i["id"]: i for i in body["inputs"]}
    assert set(rows) == {c["id"] for c in cli_rows} == {"gcp", "broken"}
    ok, bad = rows["gcp"], rows["broken"]
    assert ok["state"] == "ok" and ok["events_last_hour"] == 25 and ok["errors_last_hour"] == 0
    assert ok["last_cursor"]["messages"] == 25 and ok["last_event_time"] and ok["lag_secs"] > 0
    assert bad["state"] == "error" and bad["errors_last_hour"] == 1
    assert "credentials_file" in bad["last_error"]["message"]
    cli_ok = {c["id"]: c for c in cli_rows}["gcp"]
    assert {k: v for k, v in cli_ok.items() if k != "lag_secs"} == {
        k: v for k, v in ok.items() if k not in ("lag_secs", "counters")
    }


def test_status_survives_a_broken_inputs_section(data_dir: Path) -> None:
    (data_dir / "mantissa.yaml").write_text("inputs:\n  x:\n    type: no_such_input\n")
    rt = Runtime(data_dir)
    _, viewer = TokenStore(rt.state).create("viewer", name="v")
    with TestClient(create_app(rt)) as c:
        r = c.get("/inputs/status", headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 200 and "no_such_input" in r.json()["config_error"]
