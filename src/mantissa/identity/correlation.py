"""Cross-provider identity resolution and kill-chain incidents.

``identity_links`` maps each provider account to one canonical identity, with the kind
of link: ``explicit`` (``identity.links`` in mantissa.yaml) or ``inferred`` (an e-mail
address is its own identity; an account without ``@`` — an AWS IAM user, a role session
name, a Duo username — is linked to the one known e-mail address whose local part it
equals). Every identity alert maps to one of 8 kill-chain stages (its detection's
``stage``); an identity whose alerts span ``kill_chain.stages`` (3) stages within
``kill_chain.window_hours`` (24) gets a correlated ``identity.kill_chain`` incident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from mantissa.alerts.model import AlertCandidate, Severity
from mantissa.alerts.store import alerts as alerts_table
from mantissa.identity.config import IdentityConfig
from mantissa.identity.detections.base import STAGES, stage_of
from mantissa.state.store import as_utc, metadata, utcnow

links = sa.Table(
    "identity_links",
    metadata,
    sa.Column("account", sa.String(512), primary_key=True),
    sa.Column("identity", sa.String(320), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("evidence", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


class Resolver:
    """account → canonical identity, from the config, the links table and inference."""

    def __init__(self, runtime: Any, cfg: IdentityConfig, emails: Iterable[str] = ()) -> None:
        """``emails``: known e-mail accounts besides the stored baselines (a run's
        session holds users not written to the state store yet)."""
        self.explicit: dict[str, str] = {}
        for ident, accounts in cfg.links.items():
            for a in accounts:
                self.explicit[a.lower()] = ident.lower()
        self.runtime = runtime
        with runtime.state.engine.connect() as conn:
            self.stored = {
                r[0]: r[1] for r in conn.execute(sa.select(links.c.account, links.c.identity))
            }
            from mantissa.identity.baselines import baselines

            known = {r[0] for r in conn.execute(sa.select(baselines.c.user)) if "@" in r[0]}
        known |= {e for e in emails if "@" in e}
        self.by_local: dict[str, list[str]] = {}
        for e in sorted(known):
            self.by_local.setdefault(e.split("@", 1)[0], []).append(e)

    def resolve(self, account: str | None) -> tuple[str | None, str]:
        """(identity, kind) where kind is explicit | inferred | self."""
        if not account:
            return None, "self"
        a = account.lower()
        if a in self.explicit:
            return self.explicit[a], "explicit"
        if a in self.stored:
            return self.stored[a], "inferred"
        if "@" in a:
            return a, "self"
        name = a.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        cands = self.by_local.get(name, [])
        if len(cands) == 1:
            return cands[0], "inferred"
        return a, "self"

    def save(self, accounts: list[str]) -> None:
        """Persist explicit and inferred links for these accounts."""
        now = utcnow()
        rows = []
        for a in sorted({x.lower() for x in accounts if x}):
            ident, kind = self.resolve(a)
            if kind != "self" and ident and self.stored.get(a) != ident:
                rows.append({"account": a, "identity": ident, "kind": kind,
                             "evidence": "config" if kind == "explicit" else "e-mail local part",
                             "updated_at": now})  # fmt: skip
        if not rows:
            return
        with self.runtime.state.begin() as conn:
            conn.execute(links.delete().where(links.c.account.in_([r["account"] for r in rows])))
            conn.execute(links.insert(), rows)
        for r in rows:
            self.stored[r["account"]] = r["identity"]


def accounts_of(runtime: Any, identity: str) -> list[dict[str, Any]]:
    with runtime.state.engine.connect() as conn:
        rows = conn.execute(sa.select(links).where(links.c.identity == identity.lower())).mappings()
        return [dict(r) for r in rows]


def identity_alerts(runtime: Any, since: dt.datetime) -> list[dict[str, Any]]:
    """Identity alerts (rule ids ``identity.*``) seen since ``since``."""
    with runtime.state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                alerts_table.c.id, alerts_table.c.rule_id, alerts_table.c.severity,
                alerts_table.c.entities, alerts_table.c.first_seen, alerts_table.c.last_seen,
                alerts_table.c.description, alerts_table.c.status,
            )
            .where(alerts_table.c.rule_id.like("identity.%"))
            .where(alerts_table.c.last_seen >= since)
        ).mappings()  # fmt: skip
        out = []
        for r in rows:
            d = dict(r)
            d["first_seen"], d["last_seen"] = as_utc(d["first_seen"]), as_utc(d["last_seen"])
            out.append(d)
        return out


def incidents(
    runtime: Any, cfg: IdentityConfig, now: dt.datetime, resolver: Resolver | None = None
) -> list[AlertCandidate]:
    """Kill-chain incidents for identities that crossed ``kill_chain.stages`` stages."""
    kc = cfg.kill_chain
    since = now - dt.timedelta(hours=kc.window_hours)
    res = resolver or Resolver(runtime, cfg)
    by_ident: dict[str, list[dict[str, Any]]] = {}
    accounts = []
    for a in identity_alerts(runtime, since):
        if a["rule_id"] == "identity.kill_chain" or a["status"] == "false_positive":
            continue
        user = (a["entities"] or {}).get("user")
        accounts.append(user)
        ident, _ = res.resolve(user)
        if ident:
            by_ident.setdefault(ident, []).append(a)
    res.save([x for x in accounts if x])
    out = []
    for ident, items in by_ident.items():
        stages = {}
        for a in sorted(items, key=lambda x: x["first_seen"]):
            st = stage_of(a["rule_id"])
            if st:
                stages.setdefault(st, a)
        if len(stages) < kc.stages:
            continue
        ordered = [s for s in STAGES if s in stages]
        providers = sorted({(a["entities"] or {}).get("provider", "?") for a in items})
        text = (
            f"{ident} progressed through {len(ordered)} kill-chain stages in "
            f"{kc.window_hours} h: "
            + " → ".join(f"{s} ({stages[s]['rule_id'].removeprefix('identity.')})" for s in ordered)
            + f"; providers: {', '.join(providers)}"
        )
        out.append(
            AlertCandidate(
                rule_id="identity.kill_chain",
                rule_title="Identity attack progressing through the kill chain",
                severity=Severity.critical,
                tags=["identity.correlated", *(f"identity.stage.{s}" for s in ordered)],
                dedup_key=f"identity.kill_chain|{ident}",
                entities=_incident_entities(ident, providers, items),
                first_seen=min(a["first_seen"] for a in items),
                last_seen=max(a["last_seen"] for a in items),
                count=len(items),
                evidence_event_ids=[],
                evidence_rows=[
                    {
                        "alert_id": a["id"],
                        "rule_id": a["rule_id"],
                        "stage": stage_of(a["rule_id"]),
                        "severity": a["severity"],
                        "description": a["description"],
                    }
                    for a in items
                ][:20],
                source="identity",
                description=text,
            )
        )
    return out


def _incident_entities(
    ident: str, providers: list[str], items: list[dict[str, Any]]
) -> dict[str, str]:
    """What a response playbook acts on for a kill-chain incident: the identity, every
    provider account involved (``provider:account``), and the source IP, user id and
    session id of the latest alert that has them."""
    ents: dict[str, str] = {"user": ident, "provider": ",".join(providers)}
    accounts = sorted(
        {
            f"{e.get('provider', '?')}:{e['user']}"
            for e in ((a["entities"] or {}) for a in items)
            if e.get("user")
        }
    )
    ents["accounts"] = ",".join(accounts)
    for key in ("ip", "user_id", "session_id"):
        for a in sorted(items, key=lambda x: x["last_seen"], reverse=True):
            v = (a["entities"] or {}).get(key)
            if v:
                ents[key] = str(v)
                break
    return ents
