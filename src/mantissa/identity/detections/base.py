"""What an identity detection is: SQL over the run's ``ev`` table, then explained alerts.

A detection module defines a :class:`Detection` subclass (registered by being defined)
whose :meth:`Detection.find` runs one columnar query in the run's DuckDB session and
returns one row per finding; :meth:`Detection.explain` turns a row into plain words.
Tables in the session (see :mod:`mantissa.identity.run`):

``ev``  normalized identity events over ``[start - lookback, end)`` with geo (``glat``,
        ``glon``, ``net`` = ASN or AS org, ``relay`` = VPN/cloud/proxy), a version-less
        ``dev`` and ``in_window`` (event inside ``[start, end)``)
``bl``  per-user baselines (lists of countries, nets, devices, IPs; hour-of-day counts;
        daily volumes; ``learning`` true while younger than the learning period)
``known_ips``  source IPs any user signed in from successfully in the baselines
``blpeer``  peer group → median of its members' median working day (``bl`` of all the
        lookback's accounts; a long-lived runner recomputes it once per UTC day)
"""

from __future__ import annotations

import datetime as dt
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from mantissa.alerts.model import AlertCandidate, Severity
from mantissa.identity.config import IdentityConfig

#: the kill-chain stages, in order
STAGES = (
    "reconnaissance",
    "initial_access",
    "credential_access",
    "persistence",
    "privilege_escalation",
    "defense_evasion",
    "lateral_movement",
    "impact",
)

_REGISTRY: dict[str, type[Detection]] = {}


@dataclass
class Context:
    """One run: the DuckDB session holding ``ev``/``bl``, the window and the config."""

    con: Any
    start: dt.datetime
    end: dt.datetime
    config: IdentityConfig

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


class Detection(ABC):
    """Base class: ``id`` (``identity.<name>``), ``name`` (config section), title, stage."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    stage: ClassVar[str] = "initial_access"
    severity: ClassVar[str] = "medium"
    attack: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    @property
    def id(self) -> str:
        return f"identity.{self.name}"

    def settings(self, cfg: IdentityConfig) -> Any:
        return getattr(cfg, self.name)

    @abstractmethod
    def find(self, ctx: Context) -> list[dict[str, Any]]:
        """Rows of findings; each has at least ``user``, ``first_seen``, ``last_seen``,
        ``n``, ``ids`` (evidence event ids) and whatever :meth:`explain` words."""
        ...  # each detection module defines it

    @abstractmethod
    def explain(self, row: dict[str, Any], ctx: Context) -> tuple[str, Severity, dict[str, Any]]:
        """(plain-words description, severity, baseline values compared)."""
        ...

    def dedup(self, row: dict[str, Any]) -> str:
        return f"{self.id}|{row.get('user') or row.get('src_ip')}"

    def run(self, ctx: Context) -> list[AlertCandidate]:
        out = []
        for row in self.find(ctx):
            text, sev, baseline = self.explain(row, ctx)
            ents = {
                "provider": row.get("provider"),
                "user": row.get("user"),
                "user_id": row.get("user_id"),
                "session_id": row.get("session_id"),
                "ip": row.get("src_ip"),
            }
            observed = {
                k: _plain(v)
                for k, v in row.items()
                if k not in ("ids", "first_seen", "last_seen") and v is not None
            }
            out.append(
                AlertCandidate(
                    rule_id=self.id,
                    rule_title=self.title,
                    severity=sev,
                    tags=[f"identity.stage.{self.stage}", *self.attack],
                    dedup_key=self.dedup(row),
                    entities=ents,
                    first_seen=row["first_seen"],
                    last_seen=row["last_seen"],
                    count=int(row.get("n") or 1),
                    window_start=ctx.start,
                    window_end=ctx.end,
                    evidence_event_ids=[str(i) for i in (row.get("ids") or []) if i],
                    evidence_rows=[{"observed": observed, "baseline": baseline}],
                    source="identity",
                    description=text,
                )
            )
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 2)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v][:20]
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)


def registry() -> dict[str, type[Detection]]:
    """Every detection, by name (imports the detection modules)."""
    import importlib
    import pkgutil

    from mantissa.identity import detections as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "base":
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return dict(_REGISTRY)


def stage_of(rule_id: str) -> str | None:
    det = registry().get(rule_id.removeprefix("identity."))
    return det.stage if det else None


def ago(t: dt.datetime, since: dt.datetime) -> str:
    mins = (t - since).total_seconds() / 60
    return f"{mins:.0f} min" if mins < 120 else f"{mins / 60:.1f} h"
