"""HTTP receivers over real HTTP (uvicorn on 127.0.0.1): /ingest/{source}, Splunk HEC,
Jamf and Kubernetes webhooks; 200 only once the rows are in the lake."""

from __future__ import annotations

import base64
import gzip
import json
import threading
from pathlib import Path

import duckdb
import httpx
import pytest

from mantissa.api.app import create_app
from mantissa.api.auth import TokenStore
from mantissa.runtime import Runtime
from tests.api.conftest import start_server


def lake_rows(data_dir: Path, source: str) -> list[tuple]:
    files = [str(f) for f in (data_dir / "lake").rglob("*.parquet") if f"logs/{source}/" in str(f)]
    if not files:
        return []
    return (
        duckdb.connect()
        .execute(
            "SELECT event_id, event_type, message, host FROM read_parquet(?, union_by_name=true)",
            [files],
        )
        .fetchall()
    )


@pytest.fixture
def env(data_dir: Path):
    (data_dir / "mantissa.yaml").write_text(
        "receivers:\n"
        "  http:\n"
        "    max_body_bytes: 200000\n"
        "    max_decompressed_bytes: 2000000\n"
        "    hec:\n"
        "      sourcetypes: {'okta:im2': okta}\n"
    )
    rt = Runtime(data_dir)
    store = TokenStore(rt.state)
    ingest = store.create("ingest", name="shipper")[1]
    viewer = store.create("viewer", name="v")[1]
    srv = start_server(create_app(rt))
    yield srv.url, ingest, viewer, data_dir
    srv.stop()


def okta_event(i: int) -> dict:
    return {
        "uuid": f"evt-{i:05d}",
        "published": "2026-11-29T06:00:00.000Z",
        "eventType": "user.session.start",
        "actor": {"alternateId": f"u{i}@example.com", "type": "User"},
        "outcome": {"result": "SUCCESS"},
    }


def test_ingest_ndjson_gzip_and_array(env) -> None:
    url, ingest, _viewer, data_dir = env
    body = b"\n".join(json.dumps(okta_event(i)).encode() for i in range(100))
    r = httpx.post(
        f"{url}/ingest/okta",
        content=gzip.compress(body),
        headers={"Authorization": f"Bearer {ingest}", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["events"] == 100
    assert len(lake_rows(data_dir, "okta")) == 100  # durable when acknowledged
    # a JSON array of the same + 50 new: dedup on event_id
    arr = [okta_event(i) for i in range(50, 150)]
    r = httpx.post(f"{url}/ingest/okta", json=arr, headers={"Authorization": f"Bearer {ingest}"})
    assert r.status_code == 200 and r.json()["events"] == 50
    assert len(lake_rows(data_dir, "okta")) == 150
    # a broken line is dead-lettered, the rest stored
    r = httpx.post(
        f"{url}/ingest/okta",
        content=json.dumps(okta_event(999)).encode() + b"\n{not json",
        headers={"Authorization": f"Bearer {ingest}"},
    )
    assert r.status_code == 200 and r.json()["events"] == 1 and r.json()["rejected"] == 1


def test_ingest_auth_limits_and_errors(env) -> None:
    url, ingest, viewer, _ = env
    assert httpx.post(f"{url}/ingest/okta", content=b"{}").status_code == 401
    r = httpx.post(
        f"{url}/ingest/okta", content=b"{}", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert r.status_code == 403
    h = {"Authorization": f"Bearer {ingest}"}
    assert httpx.post(f"{url}/ingest/nosuchsource", content=b"{}", headers=h).status_code == 404
    assert httpx.post(f"{url}/ingest/okta", content=b"x" * 300000, headers=h).status_code == 413
    bomb = gzip.compress(b" " * 5_000_000)
    r = httpx.post(f"{url}/ingest/okta", content=bomb, headers={**h, "Content-Encoding": "gzip"})
    assert r.status_code == 413
    r = httpx.post(f"{url}/ingest/okta", content=b"xx", headers={**h, "Content-Encoding": "gzip"})
    assert r.status_code == 400


def test_hec_event_endpoint(env) -> None:
    url, ingest, viewer, data_dir = env
    # the documented request format: concatenated event objects, Authorization: Splunk <token>
    body = (
        json.dumps(
            {"time": 1764396000.5, "host": "web-1", "sourcetype": "nginx", "event": "GET / 200"}
        )
        + json.dumps(
            {
                "time": 1764396001,
                "host": "web-2",
                "event": {"action": "login", "user": "bob"},
                "fields": {"env": "prod"},
            }
        )
        + "\n"
        + json.dumps({"sourcetype": "okta:im2", "event": okta_event(7)})
    )
    r = httpx.post(
        f"{url}/services/collector/event",
        content=body,
        headers={"Authorization": f"Splunk {ingest}"},
    )
    assert r.status_code == 200 and r.json() == {"text": "Success", "code": 0}
    rows = lake_rows(data_dir, "json_lines")
    assert len(rows) == 2
    assert {row[3] for row in rows} == {"web-1", "web-2"}
    assert [row[0] for row in lake_rows(data_dir, "okta")] == ["evt-00007"]
    # HEC's error answers
    r = httpx.post(f"{url}/services/collector/event", content=body)
    assert r.status_code == 401 and r.json()["code"] == 2
    r = httpx.post(
        f"{url}/services/collector/event", content=body, headers={"Authorization": "Splunk wrong"}
    )
    assert r.status_code == 403 and r.json()["code"] == 4
    r = httpx.post(
        f"{url}/services/collector/event",
        content=body,
        headers={"Authorization": f"Splunk {viewer}"},
    )
    assert r.status_code == 403 and r.json()["code"] == 4
    h = {"Authorization": f"Splunk {ingest}"}
    r = httpx.post(f"{url}/services/collector/event", content=b"", headers=h)
    assert r.status_code == 400 and r.json()["code"] == 5
    r = httpx.post(f"{url}/services/collector/event", content=b'{"event":"a"}{"event":', headers=h)
    assert r.status_code == 400 and r.json() == {
        "text": "Invalid data format",
        "code": 6,
        "invalid-event-number": 1,
    }
    r = httpx.post(f"{url}/services/collector/event", content=b'{"time":1}', headers=h)
    assert r.status_code == 400 and r.json()["code"] == 12
    r = httpx.get(f"{url}/services/collector/health")
    assert r.json()["code"] == 17


@pytest.mark.slow
def test_hec_concurrent_senders_all_durable(env) -> None:
    url, ingest, _, data_dir = env
    errors: list[str] = []

    def sender(k: int) -> None:
        with httpx.Client(timeout=120) as c:
            for b in range(5):
                lines = "".join(
                    json.dumps(
                        {"time": 1764396000 + i, "host": f"h{k}", "event": f"s{k} b{b} e{i}"}
                    )
                    + "\n"
                    for i in range(40)
                )
                for _ in range(50):  # honour 429 / 503 like a shipper does
                    r = c.post(
                        f"{url}/services/collector/event",
                        content=lines,
                        headers={"Authorization": f"Splunk {ingest}"},
                    )
                    if r.status_code not in (429, 503):
                        break
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(lake_rows(data_dir, "json_lines")) == 10 * 5 * 40


def test_jamf_and_kubernetes_webhooks(env) -> None:
    url, ingest, viewer, _data_dir = env
    hook = {
        "webhook": {
            "id": 1,
            "name": "added",
            "webhookEvent": "ComputerAdded",
            "eventTimestamp": 1764396000000,
        },
        "event": {"udid": "ABC", "deviceName": "mac-1", "serialNumber": "C02", "username": "alice"},
    }
    basic = base64.b64encode(f"jamf:{ingest}".encode()).decode()
    r = httpx.post(
        f"{url}/ingest/webhooks/jamf", json=hook, headers={"Authorization": f"Basic {basic}"}
    )
    assert r.status_code == 200 and r.json()["events"] == 1, r.text
    bad = base64.b64encode(b"jamf:nope").decode()
    assert (
        httpx.post(
            f"{url}/ingest/webhooks/jamf", json=hook, headers={"Authorization": f"Basic {bad}"}
        ).status_code
        == 401
    )
    event_list = {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "items": [
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": f"a-{i}",
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/namespaces/default/secrets",
                "verb": "list",
                "user": {"username": "system:admin"},
                "sourceIPs": ["10.0.0.1"],
                "responseStatus": {"code": 200},
                "requestReceivedTimestamp": "2026-11-29T06:00:00.000000Z",
                "stageTimestamp": "2026-11-29T06:00:00.100000Z",
            }
            for i in range(3)
        ],
    }
    r = httpx.post(
        f"{url}/ingest/webhooks/kubernetes",
        json=event_list,
        headers={"Authorization": f"Bearer {ingest}"},
    )
    assert r.status_code == 200 and r.json()["events"] == 3, r.text
    r = httpx.post(
        f"{url}/ingest/webhooks/kubernetes",
        json={"kind": "Event"},
        headers={"Authorization": f"Bearer {ingest}"},
    )
    assert r.status_code == 400
    r = httpx.post(
        f"{url}/ingest/webhooks/kubernetes",
        json=event_list,
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert r.status_code == 403
