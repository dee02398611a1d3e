"""The outbox worker of ``mantissa serve``: delivers queued, retried and escalated
notifications while the server runs (several servers share the work through leases)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from mantissa.api.background import register

log = logging.getLogger("mantissa.alerts")


@register(name="alert-delivery")
def deliver_forever(runtime: Any, stop: threading.Event) -> None:
    """Flush the alert outbox every ``alerts.delivery.poll_secs`` until ``stop`` is set."""
    from mantissa.alerts.service import AlertService

    svc = AlertService(runtime)
    poll = svc.settings.delivery.poll_secs
    try:
        while not stop.is_set():
            if svc.router.destinations:
                res = svc.deliver(timeout_secs=poll)
                if res.delivered or res.dead:
                    log.info(
                        "alert delivery: %d delivered, %d dead, %d pending",
                        res.delivered,
                        res.dead,
                        res.pending,
                    )
            stop.wait(poll)
    finally:
        svc.close()
