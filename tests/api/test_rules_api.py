"""``/rules`` over HTTP: list with filters, read, PUT validated Sigma YAML, enable/disable,
delete, run over a time range; nothing written outside the data dir."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from tests.api.test_endpoints import write_recent_cloudtrail

pytest.importorskip("mantissa.detect.rules", reason="the detection module is not installed")

RULE_ID = "0b5c1f0e-1111-4222-8333-944455556666"
RULE = f"""title: Reads of objects by carol
id: {RULE_ID}
status: test
level: medium
description: carol reading S3 objects (an API test rule).
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventName: GetObject
    userIdentity.userName: carol
  condition: selection
tags:
  - attack.collection
  - test.api
"""


@pytest.fixture
def eng(tokens):
    return bearer(tokens["engineer"])


def _put(client, headers, rule_id=RULE_ID, text=RULE, as_json=False):
    if as_json:
        return client.put(f"/rules/{rule_id}", json={"yaml": text}, headers=headers)
    return client.put(
        f"/rules/{rule_id}", content=text, headers={**headers, "content-type": "application/yaml"}
    )


def test_put_get_list_patch_delete(client, eng, data_dir, tokens):
    r = _put(client, eng)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == RULE_ID and body["table"] == "cloudtrail" and body["editable"] is True
    assert body["file"].startswith("rules/sigma/") and str(data_dir) not in r.text
    assert body["sql"] and "getobject" in body["sql"].lower()
    saved = list((data_dir / "rules").rglob("*.yml"))
    assert len(saved) == 1 and saved[0].read_text() == RULE

    assert _put(client, eng, as_json=True).status_code == 200  # replace
    viewer = bearer(tokens["viewer"])
    got = client.get(f"/rules/{RULE_ID}", headers=viewer).json()
    assert got["yaml"] == RULE and got["description"].startswith("carol")

    page = client.get("/rules", params={"tag": "test.api"}, headers=viewer).json()
    assert [x["id"] for x in page["items"]] == [RULE_ID] and page["total"] == 1
    assert "yaml" not in page["items"][0]
    page = client.get("/rules", params={"q": "reads of objects"}, headers=viewer).json()
    assert page["total"] == 1
    by_source = client.get("/rules", params={"source": "cloudtrail", "limit": 1000}, headers=viewer)
    assert RULE_ID in {x["id"] for x in by_source.json()["items"]}
    other = client.get("/rules", params={"source": "okta", "limit": 1000}, headers=viewer).json()
    assert RULE_ID not in {x["id"] for x in other["items"]}

    r = client.patch(f"/rules/{RULE_ID}", json={"enabled": False}, headers=eng)
    assert r.json()["enabled"] is False
    off = client.get("/rules", params={"enabled": "false", "limit": 1000}, headers=viewer).json()
    assert RULE_ID in {x["id"] for x in off["items"]}
    on = client.get("/rules", params={"enabled": "true", "limit": 1000}, headers=viewer).json()
    assert RULE_ID not in {x["id"] for x in on["items"]}

    assert client.delete(f"/rules/{RULE_ID}", headers=eng).status_code == 204
    assert client.get(f"/rules/{RULE_ID}", headers=viewer).status_code == 404
    assert not list((data_dir / "rules").rglob("*.yml"))


def test_list_sorting_and_paging(client, tokens):
    h = bearer(tokens["viewer"])
    full = client.get("/rules", params={"limit": 1000}, headers=h).json()
    if full["total"] < 3:
        pytest.skip("needs the built-in rule library")
    ids = [r["id"] for r in full["items"]]
    assert ids == sorted(ids)
    page = client.get("/rules", params={"limit": 2, "offset": 1}, headers=h).json()
    assert [r["id"] for r in page["items"]] == ids[1:3] and page["next_offset"] == 3
    by_level = client.get("/rules", params={"sort": "-level", "limit": 1000}, headers=h).json()
    ranks = ["informational", "low", "medium", "high", "critical"]
    levels = [ranks.index(r["level"]) for r in by_level["items"]]
    assert levels == sorted(levels, reverse=True)
    assert client.get("/rules", params={"sort": "yaml"}, headers=h).status_code == 422


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [
        ("title: [unclosed", 400, "rule_error"),
        (
            "title: no detection\nid: " + RULE_ID + "\nlogsource: {product: aws}\n",
            400,
            "rule_error",
        ),
        (RULE.replace(RULE_ID, str(uuid.uuid4())), 400, "rule_error"),  # id differs from path
        ("", 422, "invalid_request"),
    ],
)
def test_invalid_rules_are_refused_and_nothing_is_written(
    client, eng, data_dir, text, status, code
):
    r = _put(client, eng, text=text)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert not list((data_dir / "rules").rglob("*.yml"))


def test_put_json_body_must_hold_yaml(client, eng):
    r = client.put(f"/rules/{RULE_ID}", json={"rule": RULE}, headers=eng)
    assert r.status_code == 422


def test_builtin_rules_cannot_be_deleted(client, eng, tokens):
    page = client.get("/rules", params={"limit": 1000}, headers=eng).json()
    builtin = [r for r in page["items"] if r["builtin"]]
    if not builtin:
        pytest.skip("no built-in rules in this build")
    r = client.delete(f"/rules/{builtin[0]['id']}", headers=eng)
    assert r.status_code == 400 and "disable" in r.text
    assert client.get(f"/rules/{builtin[0]['id']}", headers=eng).status_code == 200


def test_rules_outside_the_data_dir_are_read_only(data_dir, tokens, tmp_path):
    from mantissa.api.app import create_app
    from mantissa.runtime import Runtime

    ext = tmp_path / "external" / "cloudtrail"
    ext.mkdir(parents=True)
    (ext / "carol.yml").write_text(RULE)
    (data_dir / "mantissa.yaml").write_text(f"detect:\n  rule_paths: [{ext.parent}]\n")
    with TestClient(create_app(Runtime(data_dir))) as c:
        h = bearer(tokens["engineer"])
        got = c.get(f"/rules/{RULE_ID}", headers=h).json()
        assert got["editable"] is False and got["file"] == "external:carol.yml"
        assert str(ext) not in c.get(f"/rules/{RULE_ID}", headers=h).text
        assert c.delete(f"/rules/{RULE_ID}", headers=h).status_code == 409
        assert _put(c, h).status_code == 409
    assert (ext / "carol.yml").read_text() == RULE


def test_run_rule_returns_matches_without_alerts(client, eng, cli, tmp_path: Path, tokens):
    write_recent_cloudtrail(tmp_path / "recent.ndjson", 4)
    assert cli("ingest", "-s", "cloudtrail", str(tmp_path / "recent.ndjson")).code == 0
    assert _put(client, eng).status_code == 201
    r = client.post(f"/rules/{RULE_ID}/run", json={}, headers=eng)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["matches"] >= 1 and out["rule_id"] == RULE_ID
    assert out["sql"] and out["columns"]
    old = client.post(
        f"/rules/{RULE_ID}/run",
        json={"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"},
        headers=eng,
    ).json()
    assert old["matches"] == 0
    bad = client.post(
        f"/rules/{RULE_ID}/run",
        json={"since": "2021-01-02T00:00:00Z", "until": "2021-01-01T00:00:00Z"},
        headers=eng,
    )
    assert bad.status_code == 422
    alerts = client.get("/alerts", headers=bearer(tokens["viewer"])).json()
    assert alerts["total"] == 0
