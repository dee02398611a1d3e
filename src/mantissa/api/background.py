"""Background services that ``mantissa serve`` runs beside the API.

A service is ``fn(runtime, stop_event)`` that runs until ``stop_event`` is set. Register
one with :func:`register` (usable as a decorator) from a module that ``create_app``
imports (a route module), or add the module's import path to :data:`SERVICE_MODULES`.
Each service runs in its own thread under a supervisor: if it crashes it is restarted
with backoff, so one failing scheduler does not take the API down.

The detection scheduler (``mantissa.detect.scheduler.Scheduler``) is registered here
and runs when that module is installed.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mantissa.serve")

ServiceFn = Callable[[Any, threading.Event], None]

# Modules that register background services; one line each.
SERVICE_MODULES: list[str] = [
    "mantissa.alerts.serve",
    "mantissa.identity.serve",
]


@dataclass
class Service:
    name: str
    fn: ServiceFn


_SERVICES: dict[str, Service] = {}


def register(fn: ServiceFn | None = None, *, name: str | None = None) -> Any:
    """Register ``fn(runtime, stop_event)`` to run while ``serve`` runs."""

    def deco(f: ServiceFn) -> ServiceFn:
        key = name or f"{f.__module__}.{f.__qualname__}"
        _SERVICES[key] = Service(key, f)
        return f

    return deco(fn) if fn is not None else deco


def services() -> list[Service]:
    for mod in SERVICE_MODULES:
        importlib.import_module(mod)
    return list(_SERVICES.values())


@register(name="detection-scheduler")
def detection_scheduler(runtime: Any, stop: threading.Event) -> None:
    """Run scheduled detections (``mantissa.detect.scheduler``) until ``stop`` is set."""
    try:
        from mantissa.detect.scheduler import Scheduler
    except ModuleNotFoundError:
        log.warning("detection scheduler not installed in this build; not scheduling rules")
        stop.wait()
        return
    Scheduler(runtime).run_forever(stop)


class Supervisor:
    """Runs every registered service in a thread; restarts crashed ones with backoff."""

    def __init__(self, runtime: Any, on_state: Callable[[str, bool], None] | None = None):
        self.runtime = runtime
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.on_state = on_state or (lambda _name, _up: None)

    def start(self, only: list[str] | None = None) -> list[str]:
        started = []
        for svc in services():
            if only is not None and svc.name not in only:
                continue
            t = threading.Thread(
                target=self._run, args=(svc,), name=f"mantissa-{svc.name}", daemon=True
            )
            t.start()
            self.threads.append(t)
            started.append(svc.name)
        return started

    def _run(self, svc: Service) -> None:
        backoff = 1.0
        while not self.stop_event.is_set():
            self.on_state(svc.name, True)
            try:
                svc.fn(self.runtime, self.stop_event)
                if self.stop_event.is_set():
                    break
                log.warning("background service %s returned; restarting", svc.name)
            except Exception:
                log.exception(
                    "background service %s crashed; restarting in %.0fs", svc.name, backoff
                )
            self.on_state(svc.name, False)
            if self.stop_event.wait(backoff):
                break
            backoff = min(backoff * 2, 60.0)
        self.on_state(svc.name, False)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
        self.threads.clear()
