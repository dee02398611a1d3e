"""The collector as a ``mantissa serve`` background service (and the syslog listeners)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from mantissa.api.background import register

log = logging.getLogger("mantissa.inputs")


@register(name="inputs")
def run_inputs(runtime: Any, stop: threading.Event) -> None:
    """Run every configured input (``inputs:``) until ``stop``; nothing configured: idle."""
    from mantissa.inputs.base import Runner, configured_inputs

    if not configured_inputs(runtime):
        stop.wait()
        return
    Runner(runtime).run_forever(stop)


@register(name="syslog")
def run_syslog(runtime: Any, stop: threading.Event) -> None:
    """Run the syslog listeners of ``receivers.syslog`` until ``stop``."""
    from mantissa.inputs.receiver import receivers_config

    listeners = receivers_config(runtime).syslog
    if not listeners:
        stop.wait()
        return
    from mantissa.inputs.syslog import SyslogServer

    servers = [SyslogServer(runtime, name, cfg) for name, cfg in listeners.items()]
    for s in servers:
        s.start()
    try:
        stop.wait()
    finally:
        for s in servers:
            s.close()
