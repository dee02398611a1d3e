"""One identity run: normalized view → geo → baselines → detections → correlation → risk
→ alerts, over ``[start, end)``; and the incremental driver (watermark, daily chunks).

Everything happens in one guarded DuckDB session of the lake engine, kept by the runner
between windows: the normalized view is read into the temporary table ``ident``
(partition-pruned by the engine's own filter) and *extended* window by window — each run
reads only what it has not read yet, drops what fell out of the lookback, and re-reads
the whole lookback at most every hour (events that arrive later than the ingest delay);
geo-IP is looked up once per new source IP; the baselines are held as the session table
``bscal``/``bhist`` (loaded once, folded in by SQL, written back in bulk); every detection is a
columnar query. A catch-up (or full recompute) is therefore one pass over the lake.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from mantissa.alerts.model import AlertCandidate
from mantissa.engines.duckdb import _HIVE_TYPES
from mantissa.identity import baselines
from mantissa.identity.config import IdentityConfig, load
from mantissa.identity.detections.base import Context, registry
from mantissa.identity.view import PROVIDERS, _ts, identity_sql

log = logging.getLogger(__name__)

WATERMARK = ("identity", "watermark")
BASELINE_WATERMARK = baselines.BASELINE_WATERMARK
CHUNK = dt.timedelta(days=1)
#: a catch-up writes baselines (and advances the watermark) every this many chunks (and at
#: its end); a crash repeats the chunks since (alerts deduplicate)
FLUSH_EVERY = 31
#: the cached ``ident`` is re-read whole (late events) when older than this
REREAD_SECS = 3600.0
#: a catch-up reads the lake this far ahead at once (each read pays for listing the files)
PREFETCH = dt.timedelta(days=7)
_GEO_COLS = ("src_ip", "g_lat", "g_lon", "g_country", "g_net", "relay", "looked")

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


def _geo_rows(rows: list[tuple[str, bool]], cfg: IdentityConfig, runtime: Any) -> pa.Table:
    """Lat/lon/country/network for source IPs (``(ip, needs geo)``) from the offline geo-IP
    of the alerts enrichment, plus the relay flag (VPN/cloud/proxy) of each."""
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
    cols: dict[str, list[Any]] = {k: [] for k in _GEO_COLS}
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
        cols["looked"].append(bool(need and geo is not None))
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
                ("looked", pa.bool_()),
            ]
        ),
    )


@dataclass
class _Session:
    """The runner's DuckDB session: ``ident`` covers ``[lo, hi)``; ``bscal``/``bhist`` holds the
    baselines as of ``mark`` (``stored``: the watermark string last read from / written to
    the state store; ``pending``: folded windows not written yet)."""

    con: Any
    lo: dt.datetime | None = None
    hi: dt.datetime | None = None
    read_at: float = 0.0
    loaded: bool = False
    stored: str | None = None
    mark: dt.datetime | None = None
    pending: bool = False
    peer_day: dt.date | None = None  # the UTC day blpeer was derived for


class IdentityRun:
    """Runs the identity detections for one runtime. The runner keeps its DuckDB session
    (and the baselines in it) between windows when ``keep_session`` is true — the
    scheduler's long-lived runner does; otherwise each :meth:`run` / :meth:`catch_up`
    closes it when done."""

    def __init__(
        self, runtime: Any, config: IdentityConfig | None = None, *, keep_session: bool = False
    ) -> None:
        self.runtime = runtime
        self.config = config or load(runtime)
        self.keep_session = keep_session
        self._s: _Session | None = None
        self._hold = False  # inside a catch-up: keep the session between chunks
        self.phases: dict[str, float] = {}  # seconds per step of the last session()

    # -- session ----------------------------------------------------------------
    def _open(self) -> _Session:
        # identity keeps baselines in an in-process session: with Spark, Athena, BigQuery
        # or Synapse configured it reads the same lake through the embedded DuckDB
        engine = self.runtime.embedded_engine
        if self._s is None:
            self._s = _Session(con=engine.connect())
        return self._s

    def close(self) -> None:
        """Write pending baselines and close the session."""
        s, self._s = self._s, None
        if s is None:
            return
        try:
            if s.pending:
                baselines.flush(s.con, self.runtime.state, s.mark)
        finally:
            s.con.close()

    def _discard(self) -> None:
        s, self._s = self._s, None
        if s is not None:
            s.con.close()

    def _read(self, s: _Session, lo: dt.datetime, hi: dt.datetime, fresh: bool) -> None:
        """Read ``[lo, hi)`` of the normalized view, look up geo for its new source IPs,
        and store the rows enriched once (geo, relay flag, version-less device, MFA) in
        ``ident`` (replacing it when ``fresh``, else appending)."""
        con = s.con
        sql = self._partition_sql(lo, hi)
        if fresh:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ipgeo (src_ip VARCHAR, g_lat DOUBLE, g_lon DOUBLE, "
                "g_country VARCHAR, g_net VARCHAR, relay BOOLEAN, looked BOOLEAN)"
            )
            s.read_at = time.monotonic()
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE ident_new AS {sql}")
        except duckdb.Error:
            # partitions of one source disagree with the view's column union (an older
            # file layout): read through the lake's guarded views instead
            sql = self.runtime.engine.prepare(identity_sql(lo, hi, self.config.providers))
            con.execute(f"CREATE OR REPLACE TEMP TABLE ident_new AS {sql}")
        self._geo(s)
        enriched = f"""SELECT i.* EXCLUDE (lat, lon, asn, country),
  coalesce(i.country, g.g_country) AS country,
  coalesce(i.lat, g.g_lat) AS glat, coalesce(i.lon, g.g_lon) AS glon,
  coalesce(i.asn, g.g_net) AS net, coalesce(g.relay, false) AS relay,
  {_DEV} AS dev,
  CASE WHEN i.factor IN ('multiFactorAuthentication', 'Yes') THEN true
       WHEN i.factor IN ('singleFactorAuthentication', 'No') THEN false END AS mfa
FROM ident_new i LEFT JOIN ipgeo g USING (src_ip)"""
        if fresh:
            con.execute(f"CREATE OR REPLACE TEMP TABLE ident AS {enriched}")
        else:
            con.execute(f"INSERT INTO ident {enriched}")
        con.execute("DROP TABLE ident_new")

    def _partition_sql(self, lo: dt.datetime, hi: dt.datetime) -> str:
        """The normalized view over ``[lo, hi)`` reading only the hour partitions in range
        of each identity table (listing a few directories instead of binding a view over
        every file of the lake); the lake's guarded views when no partition is in range."""
        from mantissa.lake.catalog import parse_partition, tables
        from mantissa.lake.writer import partition_key

        storage = self.runtime.storage
        specs = tables()
        hours = []
        h = lo.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        while h < hi:
            hours.append(h)
            h += dt.timedelta(hours=1)
        sources: dict[str, str] = {}
        for name in self.config.providers or list(PROVIDERS):
            spec = specs.get(name)
            if spec is None:
                continue
            uris = [
                storage.uri(o.key)
                for t in hours
                for o in storage.list(partition_key(spec.prefix, t.year, t.month, t.day, t.hour), ".parquet")
                if parse_partition(o.key)
            ]  # fmt: skip
            if uris:
                files = ", ".join("'" + u.replace("'", "''") + "'" for u in uris)
                sources[name] = (
                    f"read_parquet([{files}], hive_partitioning=true, union_by_name=true, "
                    f"hive_types={_HIVE_TYPES})"
                )
        if not sources:
            return self.runtime.engine.prepare(identity_sql(lo, hi, self.config.providers))
        return identity_sql(lo, hi, self.config.providers, sources)

    def _ident(
        self, s: _Session, lo: dt.datetime, end: dt.datetime, ahead: dt.datetime | None = None
    ) -> None:
        """Make ``ident`` cover ``[lo, end)``: extend the cached rows, else read afresh
        (reading up to ``ahead`` when given: the next windows of a catch-up)."""
        reuse = (
            s.lo is not None
            and s.hi is not None
            and s.lo <= lo <= s.hi
            and time.monotonic() - s.read_at < REREAD_SECS
        )
        upto = max(end, ahead or end)
        if not reuse:
            self._read(s, lo, upto, fresh=True)
            s.lo, s.hi = lo, upto
            return
        assert s.lo is not None and s.hi is not None
        if end > s.hi:
            if lo > s.lo:  # drop what fell out of the lookback (only when extending)
                s.con.execute("DELETE FROM ident WHERE event_time < ?", [lo])
                s.lo = lo
            self._read(s, s.hi, upto, fresh=False)
            s.hi = upto

    def _geo(self, s: _Session) -> None:
        """Geo-IP and relay flags for the new rows' source IPs not looked up yet."""
        con = s.con
        rows = con.execute(
            """SELECT i.src_ip, bool_or(i.lat IS NULL) FROM ident_new i LEFT JOIN ipgeo g USING (src_ip)
WHERE i.src_ip IS NOT NULL AND i.action IN ('login', 'sso', 'mfa_accept')
  AND (g.src_ip IS NULL OR (i.lat IS NULL AND NOT g.looked))
GROUP BY i.src_ip"""
        ).fetchall()
        if not rows:
            return
        con.register("ipgeo_arrow", _geo_rows(rows, self.config, self.runtime))
        con.execute("DELETE FROM ipgeo WHERE src_ip IN (SELECT src_ip FROM ipgeo_arrow)")
        con.execute("INSERT INTO ipgeo SELECT * FROM ipgeo_arrow")
        con.unregister("ipgeo_arrow")

    def _baselines(self, s: _Session) -> None:
        """Load ``bscal``/``bhist`` from the state store unless the session's copy is current."""
        stored = self.runtime.state.get(*BASELINE_WATERMARK)
        if s.loaded and stored == s.stored:
            return
        baselines.load_state(s.con, self.runtime.state)
        s.loaded, s.stored, s.pending, s.peer_day = True, stored, False, None
        s.mark = dt.datetime.fromisoformat(stored) if stored else None

    def resolver(self) -> Any:
        """Account → identity resolution that also knows the session's (unwritten) users."""
        from mantissa.identity.correlation import Resolver

        emails: list[str] = []
        if self._s is not None and self._s.loaded:
            emails = [
                r[0]
                for r in self._s.con.execute(
                    'SELECT "user" FROM bscal WHERE contains("user", \'@\')'
                ).fetchall()
            ]
        return Resolver(self.runtime, self.config, emails=emails)

    def session(
        self, start: dt.datetime, end: dt.datetime, ahead: dt.datetime | None = None
    ) -> Any:
        """The session, holding ``ev`` (``[start - lookback, end)``, geo, ``in_window``),
        ``bl`` and ``known_ips`` for a run over ``[start, end)``."""
        t0 = time.perf_counter()
        s = self._open()
        con = s.con
        lo = start - dt.timedelta(minutes=self.config.lookback_mins)
        self._ident(s, lo, end, ahead)
        t1 = time.perf_counter()
        # a view: the detections filter the enriched rows, nothing is copied per window
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW ev AS
SELECT *, (event_time >= {_ts(start)}) AS in_window FROM ident
WHERE event_time >= {_ts(lo)} AND event_time < {_ts(end)}"""
        )
        t2 = time.perf_counter()
        self._baselines(s)
        # bare accounts (IAM users, Duo usernames) also bring the e-mail identity they
        # resolve to, so identity-level facts (dormancy) see the person's other accounts
        bare = [
            r[0]
            for r in con.execute(
                'SELECT DISTINCT "user" FROM ev WHERE NOT contains("user", \'@\')'
            ).fetchall()
        ]
        linked: list[str] = []
        if bare:
            res = self.resolver()
            linked = sorted({x for x in (res.resolve(u)[0] for u in bare) if x})
        con.register("bl_extra_arrow", pa.table({"account": pa.array(linked, pa.string())}))
        con.execute("CREATE OR REPLACE TEMP TABLE bl_extra AS SELECT * FROM bl_extra_arrow")
        con.unregister("bl_extra_arrow")
        # the peer groups' typical day needs every lookback account's baseline: derived
        # once per UTC day; other windows derive the baselines their own accounts need
        full = s.peer_day != end.date() or end - start >= dt.timedelta(hours=1)
        sql, params = baselines.bl_sql(end, self.config.learning_days, window_only=not full)
        con.execute(f"CREATE OR REPLACE TEMP TABLE bl AS {sql}", params)
        if full:
            con.execute(f"CREATE OR REPLACE TEMP TABLE blpeer AS {baselines.PEER_SQL}")
            s.peer_day = end.date()
        self.phases = {"read": t1 - t0, "ev": t2 - t1, "bl": time.perf_counter() - t2}
        return con

    # -- runs -------------------------------------------------------------------
    def run(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        raise_alerts: bool = True,
        update_baselines: bool | None = None,
        only: list[str] | None = None,
        ahead: dt.datetime | None = None,
    ) -> RunResult:
        """Detect over ``[start, end)`` (with the lookback), fold the window into the
        baselines (unless already folded, or ``update_baselines`` is false), raise alerts,
        correlate kill chains, refresh risk. ``ahead``: read the lake up to there now
        (a catch-up's next windows)."""
        t0 = time.perf_counter()
        res = RunResult(start=start, end=end)
        try:
            con = self.session(start, end, ahead)
            s = self._s
            assert s is not None
            res.timings["load"] = time.perf_counter() - t0
            res.timings.update({f"load.{k}": v for k, v in self.phases.items()})
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
                update_baselines = s.mark is None or start >= s.mark
            if update_baselines:
                t = time.perf_counter()
                res.baselines_updated = baselines.fold(con)
                s.mark, s.pending = max(end, s.mark or end), True
                if not self._hold:
                    self._flush(s)
                res.timings["baselines"] = time.perf_counter() - t
            resolver = self.resolver()
        except Exception:
            self._discard()  # a half-built session must not be reused
            raise
        t = time.perf_counter()
        from mantissa.identity import correlation, risk

        res.candidates = risk.annotate(
            self.runtime, self.config, res.candidates, end, resolver=resolver
        )
        if raise_alerts and res.candidates:
            from mantissa.alerts.service import AlertService

            svc = AlertService(self.runtime)
            res.alerts = svc.raise_alerts(res.candidates)
            incidents = correlation.incidents(self.runtime, self.config, end, resolver=resolver)
            if incidents:
                res.candidates += incidents
                res.alerts += svc.raise_alerts(incidents)
        risk.refresh(self.runtime, self.config, end, resolver=resolver)
        res.timings["alerts"] = time.perf_counter() - t
        if not (self.keep_session or self._hold):
            self.close()
        res.seconds = time.perf_counter() - t0
        return res

    def _flush(self, s: _Session) -> None:
        if s.pending:
            baselines.flush(s.con, self.runtime.state, s.mark)
            s.pending = False
            s.stored = s.mark.isoformat() if s.mark else None

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
        chunks of one day, so baselines learn from each day before the next is judged —
        one pass over the lake in one session; baselines are written (and the watermark
        advanced) every ``FLUSH_EVERY`` chunks and at the end. ``dry_run``: find and
        explain only (no alert, no baseline update, no watermark)."""
        now = dt.datetime.now(dt.UTC)
        end = end or now
        mark = self._get(WATERMARK)
        start = start or mark or (end - dt.timedelta(hours=24))
        out: list[RunResult] = []
        t = start
        self._hold = True
        ok = False
        try:
            while t < end:
                nxt = min(t + CHUNK, end)
                out.append(
                    self.run(
                        t,
                        nxt,
                        raise_alerts=raise_alerts and not dry_run,
                        update_baselines=False if dry_run else None,
                        ahead=min(t + PREFETCH, end),
                    )
                )
                t = nxt
                last = t >= end
                if not dry_run and (last or len(out) % FLUSH_EVERY == 0):
                    if self._s is not None:
                        self._flush(self._s)
                    if mark is None or t > mark:
                        self.runtime.state.put(*WATERMARK, t.isoformat())
            ok = True
        finally:
            self._hold = False
            if not (self.keep_session and ok):
                self.close() if ok else self._discard()
        return out
