"""Running rules over a time window and turning matches into alerts.

:meth:`DetectionEngine.evaluate` compiles the selected rules, packs plain rules that read
the same table into one scan (see :mod:`mantissa.detect.query`), runs the units on the
configured engine (in parallel, ``detect.parallelism``), and turns every result group into
an :class:`~mantissa.alerts.model.AlertCandidate` (dedup key = rule + group-by values or
matched entity; evidence = event ids and at most 20 rows). :meth:`run` hands them to
``AlertService.raise_alerts`` (upsert, enrich, route, deliver).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from mantissa.detect.correlation import parse_duration
from mantissa.detect.dialects import render
from mantissa.detect.pipelines import detect_config
from mantissa.detect.query import CompiledRule, pack, unit_tree
from mantissa.detect.rules import Rule, RuleIndex
from mantissa.engines.base import to_jsonable
from mantissa.errors import ConfigError, MantissaError

INTERNAL_COLUMNS = {
    "rule_id",
    "ref",
    "bucket",
    "agg_field",
    "agg_value",
    "match_count",
    "first_seen",
    "last_seen",
    "rn",
}
STATS_NS = "detect.rule_stats"


@dataclass
class UnitResult:
    rule_ids: list[str]
    table: str
    sql: str
    rows: int = 0
    elapsed_ms: float = 0.0
    error: str | None = None


@dataclass
class Evaluation:
    """What one run found: alert candidates plus per-unit timings and errors."""

    start: dt.datetime | None
    end: dt.datetime | None
    candidates: list[Any] = field(default_factory=list)
    units: list[UnitResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    rules_run: list[str] = field(default_factory=list)


def parse_time(
    value: str | dt.datetime | None, now: dt.datetime | None = None
) -> dt.datetime | None:
    """An ISO-8601 time, or a duration ago (``24h``), as an aware UTC datetime."""
    if value is None or isinstance(value, dt.datetime):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value
    now = now or dt.datetime.now(dt.UTC)
    text = value.strip()
    try:
        return now - dt.timedelta(seconds=parse_duration(text))
    except ConfigError:
        pass
    try:
        v = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"invalid time {value!r}", hint="an ISO-8601 time (2026-11-28T10:00:00Z) or 24h"
        ) from None
    return v if v.tzinfo else v.replace(tzinfo=dt.UTC)


def _entities(row: dict[str, Any]) -> dict[str, str]:
    ent = {
        "user": row.get("user"),
        "ip": row.get("src_ip"),
        "host": row.get("host"),
        "service": row.get("service_name"),
        "trace_id": row.get("trace_id"),
    }
    return {k: str(v) for k, v in ent.items() if v not in (None, "")}


class DetectionEngine:
    """Runs enabled rules over a window of the lake; results become alerts."""

    def __init__(self, runtime: Any, index: RuleIndex | None = None, engine: Any = None) -> None:
        self.runtime = runtime
        self.cfg = detect_config(runtime)
        self.index = index or RuleIndex.load(runtime)
        self._engine = engine

    @property
    def engine(self) -> Any:
        return self._engine or self.runtime.engine

    # -- selection -------------------------------------------------------------------
    def select_rules(self, rule_ids: Iterable[str] | None = None) -> list[Rule]:
        if rule_ids:
            rules = [self.index.get(r) for r in rule_ids]
        else:
            rules = [r for r in self.index.rules if r.enabled]
        return [r for r in rules if r.generate and (r.table or r.kind == "correlation")]

    def compile(self, rules: list[Rule]) -> tuple[list[CompiledRule], dict[str, str]]:
        compiled, errors = [], {}
        for r in rules:
            try:
                compiled.append(self.index.compiled(r))
            except MantissaError as exc:
                errors[r.id] = exc.message
        return compiled, errors

    # -- running ---------------------------------------------------------------------
    def evaluate(
        self,
        start: dt.datetime | None,
        end: dt.datetime | None,
        rule_ids: Iterable[str] | None = None,
        rules: list[Rule] | None = None,
        seen_filter: dict[str, tuple[dt.datetime, dt.datetime]] | None = None,
    ) -> Evaluation:
        """Run rules over ``[start, end)``; nothing is stored."""
        from mantissa.detect.tuning import exclusions_for

        rules = rules if rules is not None else self.select_rules(rule_ids)
        ev = Evaluation(start, end)
        compiled, ev.errors = self.compile(rules)
        available = set(self.engine.tables())
        runnable = []
        for c in compiled:
            missing = [t for t in c.tables if t not in available]
            if missing:
                ev.errors[c.rule.id] = f"table {', '.join(missing)} is not available on this engine"
            else:
                runnable.append(c)
        exclusions = exclusions_for(self.runtime, runnable, extra=seen_filter)
        units = pack(runnable) if self.cfg.pack_rules else [[c] for c in runnable]
        by_id = {c.rule.id: c for c in runnable}

        session = DuckDBSession.open(self.engine) if units else None

        def run_unit(unit: list[CompiledRule]) -> tuple[UnitResult, list[dict[str, Any]]]:
            tree = unit_tree(unit, start, end, exclusions)
            sql = render(tree, "duckdb")
            res = UnitResult([c.rule.id for c in unit], ",".join(unit[0].tables), sql)
            t0 = time.perf_counter()
            try:
                if session is not None:
                    records = session.records(sql)
                elif hasattr(self.engine, "execute_tree"):
                    # cloud engines render the tree in their own dialect (no lossy transpile)
                    records = self.engine.execute_tree(tree).records()
                else:
                    records = self.engine.execute(sql).records()
            except MantissaError as exc:
                res.error = exc.message
                records = []
            res.elapsed_ms = (time.perf_counter() - t0) * 1000
            res.rows = len(records)
            return res, records

        workers = max(1, min(self.cfg.parallelism, len(units)))
        try:
            if workers > 1:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    results = list(pool.map(run_unit, units))
            else:
                results = [run_unit(u) for u in units]
            # a packed unit that failed runs again rule by rule: one rule an engine cannot
            # run (a column it does not allow, a function it lacks) must not silence the
            # other rules of its table
            retried: list[tuple[UnitResult, list[dict[str, Any]]]] = []
            for res, records in results:
                if res.error and len(res.rule_ids) > 1:
                    retried += [run_unit([by_id[rid]]) for rid in res.rule_ids]
                else:
                    retried.append((res, records))
            results = retried
        finally:
            if session is not None:
                session.close()
        for res, records in results:
            ev.units.append(res)
            if res.error:
                for rid in res.rule_ids:
                    ev.errors[rid] = res.error
                continue
            ev.rules_run += res.rule_ids
            ev.candidates += self._candidates(records, by_id, res.sql, start, end)
        return ev

    def _candidates(
        self,
        records: list[dict[str, Any]],
        by_id: dict[str, CompiledRule],
        sql: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
    ) -> list[Any]:
        from mantissa.alerts.model import AlertCandidate

        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for rec in records:
            gkeys = tuple(sorted((k, rec[k]) for k in rec if k.startswith("g") and k[1:].isdigit()))
            key = (rec["rule_id"], gkeys, rec.get("bucket"))
            groups.setdefault(key, []).append(rec)
        out = []
        for (rule_id, gkeys, _bucket), rows in groups.items():
            compiled = by_id[rule_id]
            rule = compiled.rule
            first = rows[0]
            # packed scans carry as many group columns as the widest rule: keep this rule's
            gvals = [str(v) for _, v in gkeys][: max(1, len(compiled.group_names))]
            if compiled.group_names:
                dedup_parts = [
                    f"{n}={v}" for n, v in zip(compiled.group_names, gvals, strict=False)
                ]
            else:
                dedup_parts = [f"entity={v}" for v in gvals]
            dedup = rule_id + "|" + "|".join(dedup_parts)
            if len(dedup) > 400:
                dedup = rule_id + "|" + hashlib.sha256(dedup.encode()).hexdigest()
            evidence = [
                {
                    k: to_jsonable(v)
                    for k, v in r.items()
                    if k not in INTERNAL_COLUMNS
                    and not (k.startswith("g") and k[1:].isdigit())
                    and not k.startswith("seq_")
                    and v is not None
                }
                for r in rows
            ]
            entities = _entities(first)
            for name, value in zip(compiled.group_names, gvals, strict=False):
                if value and name in ("user", "src_ip", "host", "service_name"):
                    entities[{"src_ip": "ip", "service_name": "service"}.get(name, name)] = value
            desc = rule.description
            if compiled.aggregation is not None:
                agg = compiled.aggregation
                by = ", ".join(dedup_parts)
                desc = (desc + "\n" if desc else "") + (
                    f"{agg.describe()}: observed {to_jsonable(first['agg_value'])}"
                    + (f" for {by}" if by else "")
                )
            out.append(
                AlertCandidate(
                    rule_id=rule_id,
                    rule_title=rule.title,
                    severity=rule.level,
                    tags=rule.tags,
                    dedup_key=dedup,
                    entities=entities,
                    first_seen=first["first_seen"],
                    last_seen=first["last_seen"],
                    count=int(first["match_count"]),
                    query=sql,
                    window_start=start,
                    window_end=end,
                    evidence_event_ids=[str(r["event_id"]) for r in rows if r.get("event_id")],
                    evidence_rows=evidence,
                    source=",".join(compiled.tables),
                    description=desc or None,
                )
            )
        return out

    def run(
        self,
        since: str | dt.timedelta | None = None,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        rule_ids: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """Run the enabled rules (or ``rule_ids``) over a window and raise the alerts.

        The window is ``since`` (a duration back from now) or ``start``/``end`` (``from``/
        ``to`` are accepted as keywords too); returns the alerts created or updated.
        """
        alerts, _ = self.run_window(
            since, start or kwargs.get("from"), end or kwargs.get("to"), rule_ids
        )
        return alerts

    def run_window(
        self,
        since: str | dt.timedelta | None = None,
        start: str | dt.datetime | None = None,
        end: str | dt.datetime | None = None,
        rule_ids: Iterable[str] | None = None,
    ) -> tuple[list[Any], Evaluation]:
        now = dt.datetime.now(dt.UTC)
        if since is not None and start is not None:
            raise ConfigError("give --since or --from/--to, not both")
        if isinstance(since, dt.timedelta):
            s: dt.datetime | None = now - since
        else:
            s = parse_time(since, now) if since is not None else parse_time(start, now)
        e = parse_time(end, now) if end is not None else now
        if s is None:
            s = now - dt.timedelta(hours=24)
        if s >= e:
            raise ConfigError("the window is empty: start must be before end")
        ev = self.evaluate(s, e, rule_ids)
        alerts = raise_alerts(self.runtime, ev.candidates)
        record_stats(self.runtime, ev, alerts)
        return alerts, ev


class DuckDBSession:
    """One locked-down DuckDB session shared by all queries of a run.

    Opening a session defines a view per table (reading every file's footer), which on a
    busy lake costs seconds; a run of many rules pays it once. Every statement still goes
    through the engine's guard and partition pruning (``prepare``), under its timeout and
    row cap; each thread gets its own cursor on the same locked database.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.con = engine.connect()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, engine: Any) -> DuckDBSession | None:
        if getattr(engine, "type", "") != "duckdb" or not hasattr(engine, "connect"):
            return None
        return cls(engine)

    def records(self, sql: str) -> list[dict[str, Any]]:
        import duckdb

        from mantissa.errors import QueryError, QueryTimeout

        final = self.engine.prepare(sql)
        with self._lock:
            cur = self.con.cursor()
        timer = threading.Timer(self.engine.timeout_secs, cur.interrupt)
        timer.start()
        try:
            res = cur.execute(final)
            cols = [d[0] for d in res.description or []]
            rows = res.fetchmany(self.engine.max_rows + 1)
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"detection query ran longer than {self.engine.timeout_secs:g}s",
                hint="narrow the window or raise engine.timeout_secs",
            ) from None
        except duckdb.Error as exc:
            raise QueryError(str(exc).split("\n")[0]) from None
        finally:
            timer.cancel()
            cur.close()
        if len(rows) > self.engine.max_rows:
            raise QueryError(
                f"a detection query returned more than {self.engine.max_rows} evidence rows",
                hint="raise engine.max_rows or tune the rule",
            )
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def close(self) -> None:
        self.con.close()


def raise_alerts(runtime: Any, candidates: list[Any]) -> list[Any]:
    """Hand candidates to the alert service (upsert, enrich, route, deliver)."""
    if not candidates:
        return []
    try:
        from mantissa.alerts.service import AlertService
    except ImportError:  # the alert service is optional in stripped-down installs
        from mantissa.alerts.store import AlertStore

        store = AlertStore(runtime.state)
        return [store.upsert(c)[0] for c in candidates]
    return list(AlertService(runtime).raise_alerts(candidates))


def record_stats(runtime: Any, ev: Evaluation, alerts: list[Any]) -> None:
    """Per-rule run history for ``rules health`` (last run, last match, alerts per day)."""
    now = dt.datetime.now(dt.UTC)
    day = now.date().isoformat()
    matched: dict[str, int] = {}
    for c in ev.candidates:
        matched[c.rule_id] = matched.get(c.rule_id, 0) + 1
    stats = runtime.state.items(STATS_NS)
    with runtime.state.begin() as conn:
        for rid in set(ev.rules_run) | set(ev.errors):
            st = dict(stats.get(rid) or {})
            st["runs"] = int(st.get("runs", 0)) + 1
            st["last_run"] = now.isoformat()
            st.setdefault("first_run", now.isoformat())
            if rid in ev.errors:
                st["last_error"] = ev.errors[rid]
            else:
                st.pop("last_error", None)
            if matched.get(rid):
                st["last_match"] = now.isoformat()
                per_day = dict(st.get("alerts_per_day") or {})
                per_day[day] = int(per_day.get(day, 0)) + matched[rid]
                st["alerts_per_day"] = dict(sorted(per_day.items())[-30:])
            runtime.state.put(STATS_NS, rid, st, conn)


def seen_predicate(column_time: str, wm: dt.datetime, last_run: dt.datetime) -> exp.Expression:
    """Rows not seen by the previous run: newer than the watermark, or ingested since."""
    from mantissa.detect.query import _ts

    return exp.or_(
        exp.GTE(this=exp.column(column_time, quoted=True), expression=_ts(wm)),
        exp.GTE(this=exp.column("ingested_at", quoted=True), expression=_ts(last_run)),
    )
