"""Ingest a :class:`~tests.identity.scenario.World` through the real parsers, run the
identity detections day by day (baselines learn as they would in production) and score
recall per technique and false alerts per 1,000 users per day."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.identity.scenario import EXPECTED, KILL_CHAIN_IAM, VPN_CIDR, World, build

EVAL_CONFIG = {
    # alerts go through the alert path (dedup, store, correlation); the user-context
    # lookups of the enrichment are not what is evaluated here
    "alerts": {"enrichment": {"user_context": {"enabled": False}}},
    "identity": {
        "impossible_travel": {"relay_cidrs": [VPN_CIDR]},
        # the scenario spans 16 days; production default is 30
        "dormant_account": {"days": 10},
    },
}


@dataclass
class Score:
    users: int
    scored_days: int
    recall: dict[str, bool] = field(default_factory=dict)
    false_alerts: list[Any] = field(default_factory=list)
    alerts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    #: how the kill-chain victim's accounts resolve: account -> (identity, link kind)
    links: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    #: providers named by the kill-chain incident of the victim
    kill_chain_providers: list[str] = field(default_factory=list)

    @property
    def false_per_1000_user_days(self) -> float:
        return len(self.false_alerts) / (self.users / 1000) / self.scored_days

    def summary(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "scored_days": self.scored_days,
            "recall": self.recall,
            "techniques_detected": sum(self.recall.values()),
            "techniques": len(self.recall),
            "alerts": self.alerts,
            "false_alerts": len(self.false_alerts),
            "false_per_1000_users_per_day": round(self.false_per_1000_user_days, 3),
            "false_alert_rules": sorted({c.rule_id for c in self.false_alerts}),
            "kill_chain_providers": self.kill_chain_providers,
            "links": {k: list(v) for k, v in self.links.items()},
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }


def _linked(c: Any, a: Any) -> bool:
    if set(c.evidence_event_ids) & a.event_ids:
        return True
    ents = c.entities
    who = {ents.get("user"), ents.get("ip")} - {None}
    near = c.first_seen <= a.end + dt.timedelta(hours=1) and c.last_seen >= a.start - dt.timedelta(
        hours=1
    )
    names = {a.user, a.ip, (a.user or "").split("@")[0]} - {None, ""}
    return near and bool(who & names)


def evaluate(tmp: Path, seed: int = 1, users: int = 150, days: int = 16) -> tuple[World, Score]:
    from mantissa.identity.run import IdentityRun
    from mantissa.lake.ingest import Pipeline, ingest_connection
    from mantissa.runtime import Runtime
    from mantissa.sources.base import get_source

    t0 = time.perf_counter()
    world, files = build(seed, users, days, tmp / "input")
    t1 = time.perf_counter()
    cfg = tmp / "mantissa.yaml"
    victim = world.kill_chain_user
    assert victim is not None
    conf = {
        **EVAL_CONFIG,
        "identity": {**EVAL_CONFIG["identity"], "links": {victim.email: [KILL_CHAIN_IAM]}},
    }
    cfg.write_text(yaml.safe_dump(conf))
    rt = Runtime(data_dir=tmp / "data", config_path=cfg)
    con = ingest_connection()
    for source, paths in files.items():
        summ = Pipeline(rt.storage, get_source(source), rt.config.ingest, con=con).ingest_paths(
            [str(p) for p in paths]
        )
        assert summ.rejected == 0, (source, summ.to_dict())
    t2 = time.perf_counter()
    end = max(a.end for a in world.attacks) + dt.timedelta(hours=1)
    # alerts go through the alert path: kill-chain incidents correlate stored alerts
    results = IdentityRun(rt).catch_up(world.start, max(end, world.end), raise_alerts=True)
    t3 = time.perf_counter()
    cands = [c for r in results for c in r.candidates if c.last_seen >= world.score_start]
    errors = {k: v for r in results for k, v in r.errors.items()}
    assert not errors, errors
    score = Score(users=users, scored_days=world.scored_days, alerts=len(cands))
    score.seconds = {"generate": t1 - t0, "ingest": t2 - t1, "detect": t3 - t2}
    for a in world.attacks:
        score.recall[a.technique] = any(
            c.rule_id in EXPECTED[a.technique] and _linked(c, a) for c in cands
        )
    for c in cands:
        if not any(_linked(c, a) for a in world.attacks):
            score.false_alerts.append(c)
    from mantissa.identity.config import load
    from mantissa.identity.correlation import Resolver

    res = Resolver(rt, load(rt))
    for acct in (
        victim.email,
        KILL_CHAIN_IAM,
        victim.name,
        f"arn:aws:iam::123456789012:user/{victim.name}",
    ):
        score.links[acct] = res.resolve(acct)
    for c in cands:
        if c.rule_id == "identity.kill_chain" and c.entities.get("user") == victim.email:
            score.kill_chain_providers = sorted(set(c.entities.get("provider", "").split(",")))
    rt.state.close()
    return world, score
