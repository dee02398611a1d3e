"""The outbox worker that ``mantissa serve`` runs: delivers what was queued, then stops."""

from __future__ import annotations

import threading
import time

from mantissa.alerts.service import AlertService
from tests.alerts.conftest import candidate


def test_serve_worker_delivers_queued_alerts(make_runtime) -> None:
    from mantissa.alerts.serve import deliver_forever
    from mantissa.api.background import services

    assert "alert-delivery" in {s.name for s in services()}
    rt = make_runtime(
        {
            "destinations": {"audit": {"type": "file"}},
            "routes": [{"match": {}, "to": ["audit"]}],
            "alerts": {"delivery": {"poll_secs": 0.1}},
        }
    )
    [a] = AlertService(rt).raise_alerts([candidate()], flush=False)
    assert a.deliveries[0]["status"] == "pending"
    stop = threading.Event()
    t = threading.Thread(target=deliver_forever, args=(rt, stop), daemon=True)
    t.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        if AlertService(rt).store.get(a.id).deliveries[0]["status"] == "delivered":
            break
        time.sleep(0.1)
    stop.set()
    t.join(timeout=10)
    assert not t.is_alive()
    assert AlertService(rt).store.get(a.id).deliveries[0]["status"] == "delivered"
