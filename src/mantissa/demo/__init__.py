"""``mantissa demo``: one command that shows the whole product on generated data.

Each source contributes a generator (``demo/<source>.py``, decorated with
:func:`generator`) that writes a realistic sample in the vendor's native format, with
a few planted attacks. Each later module (detect, alerts, ask, identity, apm, soar)
contributes a step (decorated with :func:`step`) that runs after ingest, in ``order``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mantissa.demo.scenario import Scenario

GeneratorFn = Callable[[Scenario, Path], list[Path]]
StepFn = Callable[["DemoContext"], None]


@dataclass
class _Step:
    name: str
    order: int
    fn: StepFn


_GENERATORS: dict[str, GeneratorFn] = {}
_STEPS: list[_Step] = []


def generator(source: str) -> Callable[[GeneratorFn], GeneratorFn]:
    """Register ``fn(scenario, out_dir) -> files`` as the demo generator for ``source``."""

    def deco(fn: GeneratorFn) -> GeneratorFn:
        _GENERATORS[source] = fn
        return fn

    return deco


def step(name: str, order: int) -> Callable[[StepFn], StepFn]:
    """Register a demo step that runs after ingest (lower ``order`` first)."""

    def deco(fn: StepFn) -> StepFn:
        _STEPS.append(_Step(name, order, fn))
        return fn

    return deco


@dataclass
class DemoContext:
    runtime: Any
    scenario: Scenario
    console: Any
    results: dict[str, Any]


def load_all() -> None:
    from mantissa import demo as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("scenario", "run") and not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    # Modules outside this package register steps when imported.
    for name in DEMO_STEP_MODULES:
        importlib.import_module(name)


def generators() -> dict[str, GeneratorFn]:
    load_all()
    return dict(sorted(_GENERATORS.items()))


def steps() -> list[_Step]:
    load_all()
    seen: dict[str, _Step] = {s.name: s for s in _STEPS}
    return sorted(seen.values(), key=lambda s: s.order)


# Modules that contribute demo steps (detections, alerts, questions ...); one line each.
DEMO_STEP_MODULES: list[str] = [
    "mantissa.alerts.demo",
    "mantissa.api.demo",
    "mantissa.detect.demo",
    "mantissa.identity.demo",
    "mantissa.apm.demo",
    "mantissa.ask.demo",
    "mantissa.soar.demo",
]
