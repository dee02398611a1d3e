"""Risk score 0–100 per identity: weighted, decaying identity-alert signals with reasons.

score = 100 × (1 − exp(−Σ wᵢ · 2^(−ageᵢ / half_life) / 50)); weights per severity
(``identity.risk.weights``), half-life ``identity.risk.half_life_hours`` (72 h). An alert
marked false positive counts for nothing. Scores are kept in ``identity_risk`` and put on
each identity alert (``identity risk N/100`` in its description and the evidence).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa

from mantissa.alerts.model import AlertCandidate
from mantissa.identity.config import IdentityConfig
from mantissa.identity.correlation import Resolver, identity_alerts
from mantissa.state.store import as_utc, metadata, utcnow

risk_table = sa.Table(
    "identity_risk",
    metadata,
    sa.Column("identity", sa.String(320), primary_key=True),
    sa.Column("score", sa.Float, nullable=False, index=True),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("alerts", sa.Integer, nullable=False),
    sa.Column("last_alert", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

_HORIZON = dt.timedelta(days=30)


def _score(
    signals: list[tuple[str, str, dt.datetime, str]], cfg: IdentityConfig, now: dt.datetime
) -> tuple[float, list[dict[str, Any]]]:
    total = 0.0
    reasons = []
    for rule_id, sev, when, text in signals:
        age_h = max(0.0, (now - when).total_seconds() / 3600)
        w = cfg.risk.weights.get(sev, 10) * 2 ** (-age_h / cfg.risk.half_life_hours)
        total += w
        reasons.append({"rule_id": rule_id, "severity": sev, "at": when.isoformat(),
                        "points": round(w, 1), "why": (text or "")[:300]})  # fmt: skip
    reasons.sort(key=lambda r: -r["points"])
    return round(100 * (1 - math.exp(-total / 50)), 1), reasons


def _signals(
    runtime: Any, cfg: IdentityConfig, now: dt.datetime, res: Resolver
) -> dict[str, list[tuple[str, str, dt.datetime, str]]]:
    out: dict[str, list[tuple[str, str, dt.datetime, str]]] = {}
    for a in identity_alerts(runtime, now - _HORIZON):
        if a["status"] == "false_positive" or a["rule_id"] == "identity.kill_chain":
            continue
        ident, _ = res.resolve((a["entities"] or {}).get("user"))
        if ident:
            out.setdefault(ident, []).append(
                (a["rule_id"], a["severity"], a["last_seen"], a["description"])
            )
    return out


def annotate(
    runtime: Any,
    cfg: IdentityConfig,
    cands: list[AlertCandidate],
    now: dt.datetime,
    resolver: Resolver | None = None,
) -> list[AlertCandidate]:
    """Put each candidate's identity risk (stored signals + this run's) on it."""
    if not cands:
        return cands
    res = resolver or Resolver(runtime, cfg)
    sig = _signals(runtime, cfg, now, res)
    for c in cands:
        ident, _ = res.resolve(c.entities.get("user"))
        if ident:
            sig.setdefault(ident, []).append(
                (c.rule_id, str(c.severity), c.last_seen, c.description or "")
            )
    for c in cands:
        ident, kind = res.resolve(c.entities.get("user"))
        if not ident:
            continue
        score, reasons = _score(sig.get(ident, []), cfg, now)
        c.description = f"{c.description} (identity {ident}: risk {score:.0f}/100)"
        if c.evidence_rows:
            c.evidence_rows[0]["risk"] = {"identity": ident, "link": kind, "score": score,
                                          "reasons": [r["rule_id"] for r in reasons[:5]]}  # fmt: skip
    return cands


def refresh(
    runtime: Any, cfg: IdentityConfig, now: dt.datetime, resolver: Resolver | None = None
) -> int:
    """Recompute and store every identity's score."""
    sig = _signals(runtime, cfg, now, resolver or Resolver(runtime, cfg))
    rows = []
    for ident, s in sig.items():
        score, reasons = _score(s, cfg, now)
        rows.append({"identity": ident, "score": score, "reasons": reasons[:20], "alerts": len(s),
                     "last_alert": max(x[2] for x in s), "updated_at": utcnow()})  # fmt: skip
    with runtime.state.begin() as conn:
        conn.execute(risk_table.delete())
        if rows:
            conn.execute(risk_table.insert(), rows)
    return len(rows)


def top(runtime: Any, n: int = 20) -> list[dict[str, Any]]:
    with runtime.state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(risk_table).order_by(risk_table.c.score.desc()).limit(n)
        ).mappings()
        return [_row(r) for r in rows]


def of(runtime: Any, identity: str) -> dict[str, Any] | None:
    with runtime.state.engine.connect() as conn:
        r = (
            conn.execute(sa.select(risk_table).where(risk_table.c.identity == identity.lower()))
            .mappings()
            .first()
        )
        return _row(r) if r else None


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    for k in ("last_alert", "updated_at"):
        d[k] = as_utc(d[k]).isoformat() if d[k] else None
    return d
