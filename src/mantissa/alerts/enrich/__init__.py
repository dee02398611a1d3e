"""Enrichment, offline first: geo-IP, threat intel and user context for new alerts.

:class:`Enricher` works on a batch of alerts at once (one lake query for all their
users, one pass over the indicator sets) and returns an ``enrichment`` document per
alert: ``{"geoip": {ip: {...}}, "threat_intel": {"matches": [...], "reputation": {...}},
"users": {user: {...}}, "observables": {"ips", "domains", "hashes"}}``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mantissa.alerts.enrich.geoip import GeoIP, GeoIPConfig, ip_scope
from mantissa.alerts.enrich.threat_intel import ThreatIntel, ThreatIntelConfig
from mantissa.alerts.enrich.user_context import UserContext, UserContextConfig
from mantissa.alerts.model import Alert

log = logging.getLogger(__name__)

MAX_OBSERVABLES = 20
_HASH = re.compile(r"^(?:[A-Fa-f0-9]{32}|[A-Fa-f0-9]{40}|[A-Fa-f0-9]{64})$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)
_URL_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://([^/:@\s]+)", re.I)
_DOMAIN_KEYS = ("domain", "hostname", "fqdn", "query", "dns", "url", "host", "server_name", "sni")
_HASH_KEYS = ("md5", "sha1", "sha256", "hash", "sha")


class EnrichmentConfig(BaseModel):
    """``alerts.enrichment`` in mantissa.yaml."""

    model_config = ConfigDict(extra="forbid")
    geoip: GeoIPConfig = Field(default_factory=GeoIPConfig)
    threat_intel: ThreatIntelConfig = Field(default_factory=ThreatIntelConfig)
    user_context: UserContextConfig = Field(default_factory=UserContextConfig)


def observables(alert: Alert) -> dict[str, list[str]]:
    """IPs, domains and hashes named by the alert's entities and evidence rows."""
    ips: dict[str, None] = {}
    domains: dict[str, None] = {}
    hashes: dict[str, None] = {}

    def visit(key: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                visit(str(k).lower(), x)
            return
        if isinstance(v, list):
            for x in v[:50]:
                visit(key, x)
            return
        if not isinstance(v, str) or not v or len(v) > 2048:
            return
        s = v.strip()
        if ip_scope(s) is not None:
            ips.setdefault(s)
            return
        leaf = key.rsplit(".", 1)[-1]
        if any(h in leaf for h in _HASH_KEYS) and _HASH.match(s):
            hashes.setdefault(s.lower())
            return
        if any(d in leaf for d in _DOMAIN_KEYS):
            m = _URL_HOST.match(s)
            host = (m.group(1) if m else s).lower().rstrip(".")
            if _DOMAIN.match(host) and ip_scope(host) is None:
                domains.setdefault(host)

    for k, v in alert.entities.items():
        visit(k, v)
    for row in alert.evidence_rows:
        visit("", row)
    return {
        "ips": list(ips)[:MAX_OBSERVABLES],
        "domains": list(domains)[:MAX_OBSERVABLES],
        "hashes": list(hashes)[:MAX_OBSERVABLES],
    }


class Enricher:
    """Runs every enabled enrichment over a batch of alerts."""

    def __init__(self, config: EnrichmentConfig | None = None, runtime: Any = None) -> None:
        self.config = config or EnrichmentConfig()
        self.runtime = runtime
        self.geoip = GeoIP(self.config.geoip) if self.config.geoip.enabled else None
        self.intel = (
            ThreatIntel(
                self.config.threat_intel,
                data_dir=getattr(runtime, "data_dir", None),
                state=getattr(runtime, "state", None) if runtime is not None else None,
            )
            if self.config.threat_intel.enabled
            else None
        )
        self.users = (
            UserContext(self.config.user_context, runtime)
            if self.config.user_context.enabled
            else None
        )

    def enrich(self, alerts: list[Alert]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        user_times: dict[str, Any] = {}
        for a in alerts:
            obs = observables(a)
            doc: dict[str, Any] = {"observables": obs}
            if self.geoip is not None:
                geo = {ip: g for ip in obs["ips"] if (g := self.geoip.lookup(ip))}
                if geo:
                    doc["geoip"] = geo
            if self.intel is not None:
                try:
                    matches = self.intel.match(obs["ips"], obs["domains"], obs["hashes"])
                    rep = self.intel.reputation(obs["ips"])
                except Exception as exc:  # intel is best effort: never lose the alert over it
                    log.warning("threat intel failed: %s", type(exc).__name__)
                    matches, rep = [], {}
                if matches or rep:
                    doc["threat_intel"] = {"matches": matches, "reputation": rep}
            out[a.id] = doc
            user = a.entities.get("user")
            if user:
                prev = user_times.get(user)
                user_times[user] = a.last_seen if prev is None else max(prev, a.last_seen)
        if self.users is not None and user_times:
            ctx = self.users.lookup(user_times)
            for a in alerts:
                u = a.entities.get("user")
                if u and u in ctx:
                    out[a.id]["users"] = {u: ctx[u]}
        return out
