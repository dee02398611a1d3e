"""Threat-intel enrichment: local indicator lists, feeds refreshed from URLs, and optional
AbuseIPDB / VirusTotal look-ups with caching and rate-limit handling.

Feeds (``alerts.enrichment.threat_intel.feeds``) hold IPs, CIDRs, domains, URLs and file
hashes, as plain text (one per line, ``#`` comments), CSV (a column named ``indicator``,
``value``, ``ioc``, ``ip``, ``domain`` or ``hash``; optional ``type``/``description``),
JSON (a list of strings or of ``{"indicator"|"value", "type", "description"}``) or a
STIX 2.1 bundle (``indicator`` objects with simple ``[ipv4-addr:value = '...']``-style
patterns). A feed with ``url`` is downloaded to ``<data-dir>/intel/`` and refreshed after
``refresh_secs``; when the download fails the last good copy is used.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mantissa.alerts.enrich.geoip import ip_scope
from mantissa.config import resolve_secret
from mantissa.errors import ConfigError
from mantissa.state.store import StateStore

log = logging.getLogger(__name__)

_HASH = re.compile(r"^(?:[A-Fa-f0-9]{32}|[A-Fa-f0-9]{40}|[A-Fa-f0-9]{64})$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_STIX = re.compile(
    r"(ipv4-addr|ipv6-addr|domain-name|url|file:hashes\.'?[A-Za-z0-9-]+'?)(?::value)?\s*=\s*'([^']+)'"
)
_CSV_COLUMNS = ("indicator", "value", "ioc", "ip", "domain", "hash", "url", "cidr")


class FeedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    path: str | None = None
    url: str | None = None
    format: Literal["auto", "text", "csv", "json", "stix"] = "auto"
    refresh_secs: int = 86400
    headers: dict[str, str] = Field(default_factory=dict)  # ${env:VAR} allowed

    @model_validator(mode="after")
    def _where(self) -> FeedConfig:
        if not self.path and not self.url:
            raise ValueError("a feed needs path or url")
        return self


class LookupServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: str  # ${env:ABUSEIPDB_KEY} / ${env:VT_API_KEY}
    base_url: str | None = None
    cache_secs: int = 86400
    timeout_secs: float = 5.0
    #: stop asking after this many look-ups in one enrichment batch (free tiers are small)
    max_lookups_per_batch: int = 50


class ThreatIntelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    feeds: list[FeedConfig] = Field(default_factory=list)
    abuseipdb: LookupServiceConfig | None = None
    virustotal: LookupServiceConfig | None = None


class Indicators:
    """An in-memory indicator set with O(prefix lengths) CIDR matching."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}  # ip/domain/hash/url (lower) → meta
        self.nets: dict[
            tuple[int, int], dict[int, dict[str, Any]]
        ] = {}  # (ver, plen) → {int: meta}

    def __len__(self) -> int:
        return len(self.values) + sum(len(v) for v in self.nets.values())

    def add(
        self, raw: str, feed: str, type_: str | None = None, description: str | None = None
    ) -> bool:
        value = raw.strip().strip('"').strip()
        if not value or value.startswith("#"):
            return False
        meta = {"feed": feed, "type": type_, "description": description}
        if "/" in value and not value.lower().startswith(("http://", "https://")):
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                return False
            meta["type"] = "cidr"
            self.nets.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = {
                **meta,
                "value": str(net),
            }
            return True
        low = value.lower()
        if not type_:
            if ip_scope(low) is not None:
                type_ = "ip"
            elif _HASH.match(low):
                type_ = "hash"
            elif low.startswith(("http://", "https://")):
                type_ = "url"
            elif _DOMAIN.match(low):
                type_ = "domain"
            else:
                return False
        meta["type"] = type_
        self.values[low] = {**meta, "value": value}
        return True

    def match_ip(self, ip: str) -> dict[str, Any] | None:
        hit = self.values.get(ip.lower())
        if hit:
            return hit
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        n = int(addr)
        bits = 32 if addr.version == 4 else 128
        for (ver, plen), table in self.nets.items():
            if ver != addr.version:
                continue
            masked = n >> (bits - plen) << (bits - plen) if plen else 0
            if masked in table:
                return table[masked]
        return None

    def match_domain(self, domain: str) -> dict[str, Any] | None:
        parts = domain.lower().rstrip(".").split(".")
        for i in range(len(parts) - 1):  # the domain itself, then each parent
            hit = self.values.get(".".join(parts[i:]))
            if hit and hit["type"] == "domain":
                return hit
        return None

    def match_value(self, value: str) -> dict[str, Any] | None:
        return self.values.get(value.lower())


def parse_feed(text: str, name: str, fmt: str, into: Indicators) -> int:
    """Add the indicators in ``text`` to ``into``; returns how many were added."""
    stripped = text.lstrip()
    if fmt == "auto":
        if stripped.startswith(("{", "[")):
            fmt = "json"
        elif "," in stripped.split("\n", 1)[0]:
            fmt = "csv"
        else:
            fmt = "text"
    n = 0
    if fmt == "text":
        for line in text.splitlines():
            n += into.add(line.split("#", 1)[0], name)
        return n
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        cols = {c.lower().strip(): c for c in reader.fieldnames or []}
        col = next((cols[c] for c in _CSV_COLUMNS if c in cols), None)
        if col is None:
            raise ConfigError(
                f"threat intel feed {name}: no indicator column ({', '.join(_CSV_COLUMNS)})"
            )
        for row in reader:
            n += into.add(
                row.get(col) or "",
                name,
                row.get(cols.get("type", "")) or None,
                row.get(cols.get("description", "")) or None,
            )
        return n
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"threat intel feed {name}: invalid JSON: {exc}") from None
    if isinstance(data, dict) and (data.get("type") == "bundle" or "objects" in data):
        for obj in data.get("objects") or []:
            if obj.get("type") != "indicator":
                continue
            for m in _STIX.finditer(obj.get("pattern") or ""):
                kind = m.group(1)
                t = (
                    "hash"
                    if kind.startswith("file:hashes")
                    else {
                        "ipv4-addr": None,
                        "ipv6-addr": None,
                        "domain-name": "domain",
                        "url": "url",
                    }[kind]
                )
                n += into.add(m.group(2), name, t, obj.get("name") or obj.get("description"))
        return n
    items = data.get("indicators", data.get("data", [])) if isinstance(data, dict) else data
    for item in items or []:
        if isinstance(item, str):
            n += into.add(item, name)
        elif isinstance(item, dict):
            v = next(
                (
                    item[k]
                    for k in ("indicator", "value", "ioc", "ip", "domain", "hash")
                    if k in item
                ),
                None,
            )
            if v:
                n += into.add(str(v), name, item.get("type"), item.get("description"))
    return n


class ThreatIntel:
    """Indicator feeds plus optional reputation services."""

    def __init__(
        self,
        config: ThreatIntelConfig,
        data_dir: Path | None = None,
        state: StateStore | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.state = state
        self.transport = transport
        self.indicators = Indicators()
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._blocked_until: dict[str, float] = {}
        self.feed_status: dict[str, dict[str, Any]] = {}

    # -- feeds ------------------------------------------------------------------------
    def load(self, force: bool = False) -> Indicators:
        with self._lock:
            if self._loaded_at and not force and time.time() - self._loaded_at < 300:
                return self.indicators
            ind = Indicators()
            for feed in self.config.feeds:
                text = self._feed_text(feed)
                if text is None:
                    continue
                try:
                    count = parse_feed(text, feed.name, feed.format, ind)
                except ConfigError as exc:
                    self.feed_status[feed.name] = {"error": exc.message}
                    log.warning("%s", exc.message)
                    continue
                self.feed_status[feed.name] = {
                    **self.feed_status.get(feed.name, {}),
                    "indicators": count,
                }
            self.indicators = ind
            self._loaded_at = time.time()
            return ind

    def _feed_text(self, feed: FeedConfig) -> str | None:
        if feed.path:
            p = Path(feed.path).expanduser()
            if not p.is_absolute() and self.data_dir is not None:
                p = self.data_dir / p
            try:
                return p.read_text(errors="replace")
            except OSError as exc:
                self.feed_status[feed.name] = {"error": f"cannot read {p}: {exc.strerror}"}
                return None
        cache = (
            (self.data_dir or Path("."))
            / "intel"
            / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', feed.name)}.feed"
        )
        fresh = cache.exists() and time.time() - cache.stat().st_mtime < feed.refresh_secs
        if not fresh:
            try:
                headers = {k: resolve_secret(v) or "" for k, v in feed.headers.items()}
                with httpx.Client(timeout=30, transport=self.transport) as client:
                    resp = client.get(feed.url or "", headers=headers)
                    resp.raise_for_status()
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp")
                tmp.write_bytes(resp.content)
                tmp.replace(cache)
                self.feed_status[feed.name] = {"refreshed_at": dt.datetime.now(dt.UTC).isoformat()}
            except (httpx.HTTPError, OSError) as exc:
                self.feed_status[feed.name] = {"error": f"refresh failed: {type(exc).__name__}"}
                log.warning(
                    "threat intel feed %s: refresh failed (%s); using the cached copy",
                    feed.name,
                    type(exc).__name__,
                )
        return cache.read_text(errors="replace") if cache.exists() else None

    # -- matching ---------------------------------------------------------------------
    def match(self, ips: list[str], domains: list[str], hashes: list[str]) -> list[dict[str, Any]]:
        ind = self.load()
        out: list[dict[str, Any]] = []
        for ip in ips:
            hit = ind.match_ip(ip)
            if hit:
                out.append({"observable": ip, "kind": "ip", **hit})
        for d in domains:
            hit = ind.match_domain(d)
            if hit:
                out.append({"observable": d, "kind": "domain", **hit})
        for h in hashes:
            hit = ind.match_value(h)
            if hit:
                out.append({"observable": h, "kind": "hash", **hit})
        return out

    # -- reputation services -------------------------------------------------------------
    def reputation(self, ips: list[str]) -> dict[str, dict[str, Any]]:
        """AbuseIPDB / VirusTotal verdicts for public IPs (cached in the state store)."""
        out: dict[str, dict[str, Any]] = {}
        public = [ip for ip in dict.fromkeys(ips) if ip_scope(ip) == "public"]
        for svc, cfg in (
            ("abuseipdb", self.config.abuseipdb),
            ("virustotal", self.config.virustotal),
        ):
            if cfg is None:
                continue
            budget = cfg.max_lookups_per_batch
            for ip in public:
                cached = self._cache_get(svc, ip, cfg.cache_secs)
                if cached is not None:
                    out.setdefault(ip, {})[svc] = cached
                    continue
                if budget <= 0 or time.time() < self._blocked_until.get(svc, 0):
                    continue
                budget -= 1
                verdict = self._ask(svc, cfg, ip)
                if verdict is not None:
                    out.setdefault(ip, {})[svc] = verdict
                    self._cache_put(svc, ip, verdict)
        return out

    def _ask(self, svc: str, cfg: LookupServiceConfig, ip: str) -> dict[str, Any] | None:
        key = resolve_secret(cfg.api_key) or ""
        params: dict[str, str] = {}
        if svc == "abuseipdb":
            # https://docs.abuseipdb.com/#check-endpoint
            url = (cfg.base_url or "https://api.abuseipdb.com/api/v2").rstrip("/") + "/check"
            params = {"ipAddress": ip, "maxAgeInDays": "90"}
            headers = {"Key": key, "Accept": "application/json"}
        else:
            # https://docs.virustotal.com/reference/ip-info
            base = (cfg.base_url or "https://www.virustotal.com/api/v3").rstrip("/")
            url = f"{base}/ip_addresses/{ip}"
            headers = {"x-apikey": key, "Accept": "application/json"}
        try:
            with httpx.Client(timeout=cfg.timeout_secs, transport=self.transport) as client:
                resp = client.get(url, params=params, headers=headers)
        except httpx.HTTPError:
            return None
        if resp.status_code == 429:
            retry = resp.headers.get("retry-after") or resp.headers.get("x-ratelimit-reset")
            try:
                wait = float(retry) if retry else 60.0
            except ValueError:
                wait = 60.0
            # X-RateLimit-Reset of AbuseIPDB is an epoch time; Retry-After is seconds
            self._blocked_until[svc] = wait if wait > 1e9 else time.time() + wait
            return None
        if not resp.is_success:
            return None
        try:
            data = resp.json().get("data") or {}
        except ValueError:
            return None
        if svc == "abuseipdb":
            return {
                "abuse_confidence": data.get("abuseConfidenceScore"),
                "total_reports": data.get("totalReports"),
                "country": data.get("countryCode"),
                "isp": data.get("isp"),
                "is_tor": data.get("isTor"),
            }
        stats = (data.get("attributes") or {}).get("last_analysis_stats") or {}
        return {
            "malicious": stats.get("malicious", 0),
            "suspicious": stats.get("suspicious", 0),
            "harmless": stats.get("harmless", 0),
        }

    def _cache_get(self, svc: str, ip: str, ttl: int) -> dict[str, Any] | None:
        if self.state is None:
            return None
        doc = self.state.get("intel_cache", f"{svc}:{ip}")
        if doc and time.time() - doc.get("at", 0) < ttl:
            return doc["verdict"]
        return None

    def _cache_put(self, svc: str, ip: str, verdict: dict[str, Any]) -> None:
        if self.state is not None:
            self.state.put("intel_cache", f"{svc}:{ip}", {"at": time.time(), "verdict": verdict})
