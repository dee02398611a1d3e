"""One identity run: normalized view → geo → baselines → detections → correlation → risk
→ alerts, over ``[start, end)``; and the incremental driver (watermark, daily chunks).

The whole run happens in one guarded DuckDB session of the lake engine: the view is read
once into a temporary table (partition-pruned by the engine's own filter) and every
detection is a columnar query over it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mantissa.alerts.model import AlertCandidate
from mantissa.errors import ConfigError
from mantissa.identity import baselines
from mantissa.identity.config import IdentityConfig, load
from mantissa.identity.detections.base import Context, registry
from mantissa.identity.view import identity_sql

log = logging.getLogger(__name__)

WATERMARK = ("identity", "watermark")
BASELINE_WATERMARK = ("identity", "baseline_watermark")
CHUNK = dt.timedelta(days=1)

# version numbers out of user agents: a browser update is not a new device
_DEV = r"regexp_replace(lower(device), '[0-9]+([._][0-9]+)*', '', 'g')"


@dataclass
class RunResult:
    start: dt.datetime
    end: dt.datetime
    candidates: list[AlertCandidate] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)
    events: int = 0
    users: int = 0
    baselines_updated: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "events": self.events,
            "users": self.users,
            "baselines_updated": self.baselines_updated,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "errors": self.errors,
            "alerts": [
                a.to_dict() if hasattr(a, "to_dict") else a.model_dump(mode="json")
                for a in (self.alerts or self.candidates)
            ],
        }


_GEO: dict[str, Any] = {}  # one opened geo-IP database per configuration, per process


class Relays:
    """VPN / cloud / proxy / relay ranges: travel between them means nothing."""

    def __init__(self, cfg: IdentityConfig) -> None:
        self.nets = [
            ipaddress.ip_network(c, strict=False) for c in cfg.impossible_travel.relay_cidrs
        ]
        self.words = [w.lower() for w in cfg.impossible_travel.relay_org_keywords]

    def match(self, ip: str, org: str | None) -> bool:
        if self.nets:
            try:
                a = ipaddress.ip_address(ip)
                if any(a in n for n in self.nets):
                    return True
            except ValueError:
                return False
        o = (org or "").lower()
        return bool(o) and any(w in o for w in self.words)


def _geo_table(con: Any, cfg: IdentityConfig, runtime: Any) -> pa.Table:
    """Lat/lon/country/network for the window's source IPs without coordinates (offline
    geo-IP of the alerts enrichment), plus the relay flag for every IP."""
    from mantissa.alerts.enrich.geoip import GeoIP, GeoIPConfig

    try:
        gcfg = runtime.config.raw_section("alerts") or {}
        gcfg = (gcfg.get("enrichment") or {}).get("geoip") or {}
        key = repr(sorted(gcfg.items()))
        if key not in _GEO:
            _GEO[key] = GeoIP(GeoIPConfig.model_validate(gcfg))
        geo = _GEO[key]
    except Exception:  # no usable geo config: coordinates only from the events
        geo = None
    relays = Relays(cfg)
    rows = con.execute(
        "SELECT src_ip, bool_or(lat IS NULL) FROM ident WHERE src_ip IS NOT NULL "
        "AND action IN ('login', 'sso', 'mfa_accept') GROUP BY src_ip"
    ).fetchall()
    cols: dict[str, list[Any]] = {
        k: [] for k in ("src_ip", "g_lat", "g_lon", "g_country", "g_net", "relay")
    }
    for ip, need in rows:
        rec = geo.lookup(ip) if (geo is not None and need) else None
        rec = rec or {}
        net = rec.get("asn") or rec.get("as_org")
        cols["src_ip"].append(ip)
        cols["g_lat"].append(rec.get("lat"))
        cols["g_lon"].append(rec.get("lon"))
        cols["g_country"].append(rec.get("country"))
        cols["g_net"].append(str(net) if net is not None else None)
        cols["relay"].append(relays.match(ip, rec.get("as_org")))
    return pa.table(
        cols,
        schema=pa.schema(
            [
                ("src_ip", pa.string()),
                ("g_lat", pa.float64()),
                ("g_lon", pa.float64()),
                ("g_country", pa.string()),
                ("g_net", pa.string()),
                ("relay", pa.bool_()),
            ]
        ),
    )


class IdentityRun:
    """Runs the identity detections for one runtime."""

    def __init__(self, runtime: Any, config: IdentityConfig | None = None) -> None:
        self.runtime = runtime
        self.config = config or load(runtime)

    def session(self, start: dt.datetime, end: dt.datetime, con: Any = None) -> Any:
        """A guarded DuckDB session holding ``ident``, ``ev``, ``bl`` and ``known_ips``
        (``con``: reuse an open session, replacing its tables; opening one costs a lake
        listing)."""
        engine = self.runtime.engine
        if not hasattr(engine, "connect") or getattr(engine, "type", "") != "duckdb":
            raise ConfigError(
                "identity detections run on the embedded DuckDB engine",
                hint="set engine.type: duckdb (the lake can still be on S3/GCS/Azure)",
            )
        lookback = dt.timedelta(minutes=self.config.lookback_mins)
        sql = engine.prepare(identity_sql(start - lookback, end, self.config.providers))
        if con is None:
            con = engine.connect()
        for t in ("ident", "ev", "bl", "known_ips"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        con.execute(f"CREATE TEMP TABLE ident AS {sql}")
        con.register("ipgeo_arrow", _geo_table(con, self.config, self.runtime))
        con.execute(
            f"""CREATE TEMP TABLE ev AS
SELECT i.* EXCLUDE (lat, lon, asn, country),
  coalesce(i.country, g.g_country) AS country,
  coalesce(i.lat, g.g_lat) AS glat, coalesce(i.lon, g.g_lon) AS glon,
  coalesce(i.asn, g.g_net) AS net, coalesce(g.relay, false) AS relay,
  {_DEV} AS dev,
  (i.event_time >= ?::TIMESTAMPTZ) AS in_window,
  CASE WHEN i.factor IN ('multiFactorAuthentication', 'Yes') THEN true
       WHEN i.factor IN ('singleFactorAuthentication', 'No') THEN false END AS mfa
FROM ident i LEFT JOIN ipgeo_arrow g USING (src_ip)""",
            [start],
        )
        con.unregister("ipgeo_arrow")
        users = [r[0] for r in con.execute('SELECT DISTINCT "user" FROM ev').fetchall()]
        targets = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT target FROM ev WHERE target IS NOT NULL"
            ).fetchall()
        ]
        # bare accounts (IAM users, Duo usernames) also bring the e-mail identity they
        # resolve to, so identity-level facts (dormancy) see the person's other accounts
        from mantissa.identity.correlation import Resolver

        resolver = Resolver(self.runtime, self.config)
        linked = {resolver.resolve(u)[0] for u in users if u and "@" not in u}
        wanted = set(users) | set(targets) | {x for x in linked if x}
        stored = baselines.load(self.runtime.state, sorted(wanted))
        con.register("bl_arrow", baselines.as_arrow(stored, end, self.config.learning_days))
        con.execute("CREATE TEMP TABLE bl AS SELECT * FROM bl_arrow")
        con.unregister("bl_arrow")
        ips = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT src_ip FROM ev WHERE src_ip IS NOT NULL"
            ).fetchall()
        ]
        con.register("kip_arrow", baselines.known_ip_arrow(self.runtime.state, ips))
        con.execute("CREATE TEMP TABLE known_ips AS SELECT * FROM kip_arrow")
        con.unregister("kip_arrow")
        return con

    def run(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        raise_alerts: bool = True,
        update_baselines: bool | None = None,
        only: list[str] | None = None,
        con: Any = None,
    ) -> RunResult:
        t0 = time.perf_counter()
        res = RunResult(start=start, end=end)
        own = con is None
        con = self.session(start, end, con)
        res.timings["load"] = time.perf_counter() - t0
        try:
            res.events, res.users = con.execute(
                'SELECT count(*), count(DISTINCT "user") FROM ev WHERE in_window'
            ).fetchone()
            ctx = Context(con=con, start=start, end=end, config=self.config)
            for name, cls in sorted(registry().items()):
                if only and name not in only:
                    continue
                det = cls()
                settings = getattr(self.config, name, None)
                if settings is not None and not getattr(settings, "enabled", True):
                    continue
                t = time.perf_counter()
                try:
                    res.candidates += det.run(ctx)
                except Exception as exc:  # one broken detection must not stop the rest
                    log.exception("identity detection %s failed", name)
                    res.errors[name] = str(exc).splitlines()[0]
                res.timings[name] = time.perf_counter() - t
            if update_baselines is None:
                mark = self._get(BASELINE_WATERMARK)
                update_baselines = mark is None or start >= mark
            if update_baselines:
                t = time.perf_counter()
                res.baselines_updated = baselines.update(self.runtime.state, con)
                self.runtime.state.put(*BASELINE_WATERMARK, end.isoformat())
                res.timings["baselines"] = time.perf_counter() - t
        finally:
            if own:
                con.close()
        t = time.perf_counter()
        from mantissa.identity import correlation, risk

        res.candidates = risk.annotate(self.runtime, self.config, res.candidates, end)
        if raise_alerts and res.candidates:
            from mantissa.alerts.service import AlertService

            svc = AlertService(self.runtime)
            res.alerts = svc.raise_alerts(res.candidates)
            incidents = correlation.incidents(self.runtime, self.config, end)
            if incidents:
                res.candidates += incidents
                res.alerts += svc.raise_alerts(incidents)
        risk.refresh(self.runtime, self.config, end)
        res.timings["alerts"] = time.perf_counter() - t
        res.seconds = time.perf_counter() - t0
        return res

    def _get(self, key: tuple[str, str]) -> dt.datetime | None:
        v = self.runtime.state.get(*key)
        return dt.datetime.fromisoformat(v) if v else None

    def catch_up(
        self,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        *,
        raise_alerts: bool = True,
        dry_run: bool = False,
    ) -> list[RunResult]:
        """Run from ``start`` (default: the watermark, else 24 h ago) to ``end`` (now) in
        chunks of one day, so baselines learn from each day before the next is judged.
        ``dry_run``: find and explain only (no alert, no baseline update, no watermark)."""
        now = dt.datetime.now(dt.UTC)
        end = end or now
        mark = self._get(WATERMARK)
        start = start or mark or (end - dt.timedelta(hours=24))
        out = []
        t = start
        con = None
        try:
            while t < end:
                nxt = min(t + CHUNK, end)
                if con is None:
                    con = self.runtime.engine.connect() if self._duckdb() else None
                out.append(
                    self.run(
                        t,
                        nxt,
                        raise_alerts=raise_alerts and not dry_run,
                        update_baselines=False if dry_run else None,
                        con=con,
                    )
                )
                t = nxt
                if not dry_run and (mark is None or t > mark):
                    self.runtime.state.put(*WATERMARK, t.isoformat())
        finally:
            if con is not None:
                con.close()
        return out

    def _duckdb(self) -> bool:
        return getattr(self.runtime.engine, "type", "") == "duckdb"
