"""The Input plugin and the collection framework in front of the parsers.

An :class:`Input` knows one vendor API: given the saved cursor it yields
:class:`Batch` es (events + the cursor that follows them). The framework owns the rest:

* scheduling (``interval``), the first-run backfill window (``start``);
* checkpoints: a batch's cursor is saved in the state store only after the batch is
  durably in the lake (``Pipeline.ingest_bytes`` publishes atomically and dedups on
  ``event_id``), so a crash re-fetches at most one batch and the re-fetch is harmless;
* HTTP with retries: exponential backoff with jitter on 5xx, timeouts and connection
  errors; ``Retry-After`` and the vendor's own rate-limit headers on 429 and when the
  remaining quota reaches zero; one token refresh on 401 for OAuth inputs, then a clear
  :class:`InputAuthError` that stops the loop for that input (no hammering);
* status per input (last cursor, last event time, lag, events and errors in the last
  hour, next run) kept in the state store for ``mantissa inputs status`` and the API;
* isolation: each input runs in its own thread; one failing never stops the others.

Defining a subclass with a ``type`` registers it; ``mantissa/inputs/okta.py`` ⇔
``type: okta`` in ``mantissa.yaml``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import importlib
import logging
import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mantissa.config import _config_error, resolve_secret
from mantissa.errors import ConfigError, InputAuthError, InputError, MantissaError
from mantissa.lake.deadletter import Rejection
from mantissa.lake.ingest import IngestSummary, Pipeline
from mantissa.sources.base import get_source

log = logging.getLogger("mantissa.inputs")

CURSOR_NS = "inputs.cursor"
STATUS_NS = "inputs.status"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> float:
    """``60s``, ``5m``, ``7d``, ``250ms`` or a number of seconds → seconds."""
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 60s, 5m, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    """RFC 3339 with milliseconds and ``Z`` (what Okta, GitHub, Graph accept)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> dt.datetime | None:
    """A vendor timestamp (ISO-8601 or epoch s/ms) → aware UTC datetime, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        v = float(value)
        v = v / 1000 if v > 1e11 else v
        return dt.datetime.fromtimestamp(v, dt.UTC)
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


class InputConfig(BaseModel):
    """Keys every input takes; each input type extends this with its own."""

    model_config = ConfigDict(extra="forbid")
    type: str
    interval: float = 60.0
    start: float = 7 * 86400.0
    base_url: str | None = None
    #: the parser (``mantissa sources``) the events go through; default per input type
    source: str | None = None
    enabled: bool = True
    timeout: float = 30.0
    max_retries: int = Field(default=6, ge=0)
    max_backoff: float = 300.0

    @field_validator("interval", "start", "timeout", "max_backoff", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    def secret(self, name: str) -> str:
        """The resolved value of secret field ``name`` (``${env:VAR}`` resolved now)."""
        raw = getattr(self, name)
        if not raw:
            raise ConfigError(f"input key {name!r} is required")
        value = resolve_secret(raw)
        assert value is not None
        return value


@dataclass
class Batch:
    """Events fetched in one request, and the cursor that follows them."""

    events: list[dict[str, Any]]
    cursor: dict[str, Any]
    #: newest event time in the batch (drives lag); None when the page was empty
    last_event_time: dt.datetime | None = None
    #: raw bytes to ingest instead of ``events`` (object-storage inputs: whole files)
    data: bytes | None = None
    name: str = ""
    #: run after the batch is durable and checkpointed (SQS delete, Pub/Sub ack)
    on_durable: Callable[[], None] | None = None
    #: records the input could not decode (bad base64, not JSON): dead-lettered with
    #: the batch, before its checkpoint, so nothing is dropped silently
    rejections: list[Rejection] = field(default_factory=list)


_REGISTRY: dict[str, type[Input]] = {}


class Input(ABC):
    """One vendor API. Subclasses set ``type``, ``source``, ``config_model`` and ``batches``."""

    type: ClassVar[str] = ""
    source: ClassVar[str] = ""
    config_model: ClassVar[type[InputConfig]] = InputConfig
    #: the vendor's documented delay before events are complete (Duo: 2 min, Google: hours)
    settle_secs: ClassVar[float] = 0.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("type"):
            _REGISTRY[cls.type] = cls

    def __init__(self, input_id: str, config: InputConfig, stop: threading.Event | None = None):
        self.id = input_id
        self.config = config
        self.stop = stop or threading.Event()
        self.http = Http(self)

    # -- what an input implements -------------------------------------------------
    @abstractmethod
    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        """Yield batches from ``cursor`` (None: first run, backfill from ``start``)."""

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request (fresh token when OAuth)."""
        return {}

    def refresh_auth(self) -> bool:
        """Drop a cached token after a 401; True when a retry with a new one may work."""
        return False

    def is_rate_limited(self, resp: httpx.Response) -> bool:
        """True when a non-429 answer means "slow down" (GitHub: 403 with quota 0)."""
        return False

    def rate_limit_wait(self, resp: httpx.Response) -> float | None:
        """Seconds to wait before the next request, from the vendor's rate-limit headers.

        Called on 429 and on every success (to pause when the quota is exhausted
        before being told 429). The default reads ``Retry-After`` on 429.
        """
        if resp.status_code == 429:
            return retry_after(resp)
        return None

    def error_detail(self, resp: httpx.Response) -> str:
        """The vendor's error summary from an error body (never the request's secrets)."""
        try:
            body = resp.json()
        except ValueError:
            return resp.text[:200]
        if isinstance(body, dict):
            for key in ("errorSummary", "message", "error_description", "error", "detail"):
                if body.get(key):
                    v = body[key]
                    return v if isinstance(v, str) else orjson.dumps(v).decode()[:200]
        return str(body)[:200]

    # -- helpers -------------------------------------------------------------------
    def base_url(self, default: str) -> str:
        return (self.config.base_url or default).rstrip("/")

    def backfill_from(self) -> dt.datetime:
        return utcnow() - dt.timedelta(seconds=self.config.start)

    def sleep(self, secs: float) -> None:
        """Interruptible sleep: returns early (raising) when the input is stopped."""
        if self.stop.wait(max(0.0, secs)):
            raise Stopped()


class LongPollTimeout(InputError):
    """A long-poll request (``Http.request(..., long_poll=True)``) got no answer in time."""

    code = "input_long_poll_timeout"


class Stopped(MantissaError):
    """The input was asked to stop mid-cycle; nothing past the last checkpoint is lost."""

    code = "input_stopped"


def retry_after(resp: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP-date, RFC 9110 §10.2.3)."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


class Http:
    """httpx with the framework's retry, rate-limit and auth policy for one input."""

    def __init__(self, owner: Input) -> None:
        self.owner = owner
        cfg = owner.config
        self.client = httpx.Client(timeout=cfg.timeout, follow_redirects=False)
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; returns a 2xx response or raises InputError/InputAuthError."""
        owner, cfg = self.owner, self.owner.config
        failures = 0
        throttles = 0
        refreshed = False
        extra_headers = kwargs.pop("headers", None) or {}
        # a long poll (Pub/Sub pull) that times out reading means "nothing yet", not a fault
        long_poll = kwargs.pop("long_poll", False)
        while True:
            headers = {**owner.auth_headers(), **extra_headers}
            self.requests += 1
            try:
                resp = self.client.request(method, url, headers=headers, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if long_poll and isinstance(exc, httpx.ReadTimeout):
                    raise LongPollTimeout(f"{owner.type} {_safe_url(url)}: no answer yet") from None
                # timeouts, refused connections, TLS handshake failures: back off and retry
                failures += 1
                if failures > cfg.max_retries:
                    raise InputError(
                        f"{owner.type} {_safe_url(url)}: {type(exc).__name__}: {exc}"
                    ) from None
                self._backoff(failures)
                continue
            status = resp.status_code
            if status == 429 or owner.is_rate_limited(resp):
                self.rate_limited += 1
                throttles += 1
                if throttles > max(20, cfg.max_retries * 4):
                    raise InputError(
                        f"{owner.type}: still rate limited after {throttles - 1} waits",
                        hint="lower the polling rate or raise the vendor quota",
                    )
                wait = owner.rate_limit_wait(resp)
                if wait is None:
                    wait = _backoff_secs(throttles, cfg.max_backoff)
                log.info("input %s: 429, waiting %.1fs", owner.id, wait)
                owner.sleep(min(wait + 0.05, cfg.max_backoff))
                continue
            if status in (401, 403):
                if status == 401 and not refreshed and owner.refresh_auth():
                    refreshed = True
                    continue
                raise InputAuthError(
                    f"{owner.type} refused the credentials ({status}): {owner.error_detail(resp)}",
                    hint="check the token/key in the input config and its permissions",
                )
            if status >= 500 or status == 408:
                failures += 1
                if failures > cfg.max_retries:
                    raise InputError(
                        f"{owner.type} {_safe_url(url)}: HTTP {status} after "
                        f"{failures} attempts: {owner.error_detail(resp)}"
                    )
                wait = retry_after(resp) if status == 503 else None
                self._backoff(failures, wait)
                continue
            if status >= 400:
                raise InputError(
                    f"{owner.type} {_safe_url(url)}: HTTP {status}: {owner.error_detail(resp)}"
                )
            wait = owner.rate_limit_wait(resp)
            if wait:
                # quota exhausted: pause before the next call rather than earn a 429
                owner.sleep(min(wait, cfg.max_backoff))
            return resp

    def json(self, method: str, url: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        resp = self.request(method, url, **kwargs)
        try:
            return orjson.loads(resp.content), resp
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"{self.owner.type} {_safe_url(url)}: malformed JSON ({exc}); "
                "the checkpoint was not advanced"
            ) from None

    def _backoff(self, attempt: int, wait: float | None = None) -> None:
        self.retries += 1
        secs = wait if wait is not None else _backoff_secs(attempt, self.owner.config.max_backoff)
        self.owner.sleep(min(secs, self.owner.config.max_backoff))

    def close(self) -> None:
        self.client.close()


def _backoff_secs(attempt: int, cap: float) -> float:
    """Full-jitter exponential backoff (0.5 s, 1 s, 2 s ... capped)."""
    return min(cap, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def _safe_url(url: str) -> str:
    """The URL without its query string (which may carry signatures or tokens)."""
    return url.split("?", 1)[0]


class TokenCache:
    """An OAuth access token refreshed ``skew`` seconds before it expires."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], skew: float = 60.0) -> None:
        self.fetch = fetch
        self.skew = skew
        self.token: str | None = None
        self.expires_at = 0.0
        self.lock = threading.Lock()

    def get(self) -> str:
        with self.lock:
            if self.token is None or time.time() >= self.expires_at - self.skew:
                token, expires_in = self.fetch()
                self.token, self.expires_at = token, time.time() + expires_in
            return self.token

    def invalidate(self) -> None:
        with self.lock:
            self.token = None


# -- config -------------------------------------------------------------------------


# the extra that carries an input's SDK, when it is not named after the input
_EXTRAS = {"s3": "aws", "gcp_audit": "gcp", "gcp_vpc_flow": "gcp", "azure_activity": "azure"}


def load_input_module(type_name: str) -> type[Input]:
    if type_name not in _REGISTRY:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", type_name):
            raise ConfigError(f"unknown input type {type_name!r}")
        try:
            importlib.import_module(f"mantissa.inputs.{type_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mantissa.inputs.{type_name}":
                raise ConfigError(
                    f"unknown input type {type_name!r}", hint="known: " + ", ".join(input_types())
                ) from None
            raise ConfigError(
                f"input type {type_name!r} needs the package {exc.name}",
                hint=f"pip install 'mantissa-log[{_EXTRAS.get(type_name, type_name)}]'",
            ) from None
    if type_name not in _REGISTRY:
        raise ConfigError(f"unknown input type {type_name!r}")
    return _REGISTRY[type_name]


def input_types() -> list[str]:
    import pkgutil

    from mantissa import inputs

    return sorted(
        m.name
        for m in pkgutil.iter_modules(inputs.__path__)
        if not m.name.startswith("_") and m.name not in ("base", "runner", "serve", "syslog")
    )


def configured_inputs(runtime: Any) -> dict[str, tuple[type[Input], InputConfig]]:
    """The ``inputs`` section of ``mantissa.yaml``, validated per input type."""
    raw = runtime.config.raw_section("inputs") or {}
    if not isinstance(raw, dict):
        raise ConfigError("inputs: must be a mapping of input id → settings")
    out: dict[str, tuple[type[Input], InputConfig]] = {}
    for input_id, body in raw.items():
        if not isinstance(body, dict) or "type" not in body:
            raise ConfigError(f"inputs.{input_id}: needs a `type` (e.g. okta)")
        cls = load_input_module(str(body["type"]))
        try:
            cfg = cls.config_model.model_validate(body)
        except ValidationError as exc:
            raise _config_error(exc, runtime.config.path, prefix=("inputs", input_id)) from None
        out[str(input_id)] = (cls, cfg)
    return out


# -- status -------------------------------------------------------------------------


@dataclass
class CycleResult:
    input: str
    ok: bool = True
    batches: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    error: str | None = None
    error_code: str | None = None
    cursor: dict[str, Any] | None = None
    seconds: float = 0.0
    summaries: list[IngestSummary] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "ok": self.ok,
            "batches": self.batches,
            "events": self.events,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "error": self.error,
            "error_code": self.error_code,
            "cursor": self.cursor,
            "seconds": round(self.seconds, 3),
        }


def _minute(t: dt.datetime) -> int:
    return int(t.timestamp() // 60)


def record_status(store: Any, input_id: str, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into the input's status document; ``events``/``errors`` add up
    into per-minute buckets so the last hour can be reported."""
    now = utcnow()
    doc = store.get(STATUS_NS, input_id, {}) or {}
    buckets: list[list[int]] = [b for b in doc.get("minutes", []) if b[0] > _minute(now) - 60]
    add_events = changes.pop("events", 0)
    add_errors = changes.pop("errors", 0)
    if add_events or add_errors:
        if buckets and buckets[-1][0] == _minute(now):
            buckets[-1][1] += add_events
            buckets[-1][2] += add_errors
        else:
            buckets.append([_minute(now), add_events, add_errors])
        doc["events_total"] = doc.get("events_total", 0) + add_events
    doc["minutes"] = buckets
    doc.update(changes)
    doc["updated_at"] = iso(now)
    store.put(STATUS_NS, input_id, doc)
    return doc


def status_view(
    input_id: str, cls: type[Input] | None, cfg: InputConfig | None, doc: dict[str, Any]
) -> dict[str, Any]:
    """What ``inputs status`` shows for one input (the JSON contract)."""
    now = utcnow()
    floor = _minute(now) - 60
    minutes = [b for b in doc.get("minutes", []) if b[0] > floor]
    last_event = doc.get("last_event_time")
    lag = None
    if last_event:
        t = parse_time(last_event)
        lag = round((now - t).total_seconds(), 1) if t else None
    return {
        "id": input_id,
        "type": cfg.type if cfg else doc.get("type"),
        "source": (cfg.source if cfg and cfg.source else (cls.source if cls else None))
        or doc.get("source"),
        "enabled": cfg.enabled if cfg else False,
        "configured": cfg is not None,
        "state": doc.get("state", "never_run"),
        "last_cursor": doc.get("last_cursor"),
        "last_event_time": last_event,
        "lag_secs": lag,
        "events_last_hour": sum(b[1] for b in minutes),
        "errors_last_hour": sum(b[2] for b in minutes),
        "events_total": doc.get("events_total", 0),
        "last_run": doc.get("last_run"),
        "last_success": doc.get("last_success"),
        "next_run": doc.get("next_run"),
        "last_error": doc.get("last_error"),
        "interval_secs": cfg.interval if cfg else None,
        **({"counters": doc["counters"]} if doc.get("counters") else {}),
    }


def statuses(runtime: Any) -> list[dict[str, Any]]:
    """Status of every configured input (and of removed ones that still have state)."""
    configured = configured_inputs(runtime)
    docs = runtime.state.items(STATUS_NS)
    out = [status_view(i, cls, cfg, docs.get(i, {})) for i, (cls, cfg) in configured.items()]
    out += [status_view(i, None, None, d) for i, d in docs.items() if i not in configured]
    return out


# -- running ------------------------------------------------------------------------


class Runner:
    """Runs inputs: one cycle (``collect --once``) or forever, one thread per input."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._pipelines: dict[tuple[int, str], Pipeline] = {}
        self._lock = threading.Lock()

    def _pipeline(self, source_name: str) -> Pipeline:
        # one DuckDB connection per thread and source: connections are not thread-safe
        key = (threading.get_ident(), source_name)
        with self._lock:
            if key not in self._pipelines:
                rt = self.runtime
                src = get_source(
                    source_name, {"timestamp_fields": rt.config.ingest.timestamp_fields}
                )
                self._pipelines[key] = Pipeline(rt.storage, src, rt.config.ingest)
            return self._pipelines[key]

    def cycle(
        self,
        input_id: str,
        cls: type[Input],
        cfg: InputConfig,
        stop: threading.Event | None = None,
    ) -> CycleResult:
        """One poll: fetch from the saved cursor until caught up, checkpointing each batch."""
        state = self.runtime.state
        result = CycleResult(input_id)
        started = time.perf_counter()
        source_name = cfg.source or cls.source
        record_status(
            state,
            input_id,
            type=cfg.type,
            source=source_name,
            state="running",
            last_run=iso(utcnow()),
        )
        inp: Input | None = None
        cursor = state.get(CURSOR_NS, input_id)
        try:
            inp = cls(input_id, cfg, stop)
            pipeline = self._pipeline(source_name)
            for batch in inp.batches(cursor):
                summary = IngestSummary(source_name)
                if batch.rejections:
                    pipeline.dead_letter(batch.rejections, summary)
                if batch.data is not None or batch.events:
                    body = batch.data
                    if body is None:
                        body = b"\n".join(orjson.dumps(e) for e in batch.events)
                    # durable first: the lake write publishes atomically ...
                    pipeline.ingest_bytes(body, batch.name or f"{input_id}.ndjson", summary)
                # ... then the checkpoint, so a crash in between re-fetches (dedup absorbs it)
                state.put(CURSOR_NS, input_id, batch.cursor)
                if batch.on_durable is not None:
                    batch.on_durable()
                cursor = batch.cursor
                result.batches += 1
                result.events += summary.events
                result.rejected += summary.rejected
                result.duplicates += summary.duplicates
                changes: dict[str, Any] = {"last_cursor": batch.cursor, "events": summary.events}
                if summary.rejected:
                    changes["errors"] = 1
                    changes["last_error"] = {
                        "at": iso(utcnow()),
                        "code": "rejected_rows",
                        "message": f"{summary.rejected} rows dead-lettered: "
                        + ", ".join(f"{k} ({v})" for k, v in summary.reasons.items()),
                    }
                if batch.last_event_time is not None:
                    changes["last_event_time"] = iso(batch.last_event_time)
                record_status(state, input_id, **changes)
        except Stopped:
            result.error, result.error_code = "stopped", Stopped.code
        except MantissaError as exc:
            result.ok = False
            result.error, result.error_code = str(exc), exc.code
        except Exception as exc:  # a bug or an SDK error: report it, keep other inputs going
            log.exception("input %s failed", input_id)
            result.ok = False
            result.error, result.error_code = f"{type(exc).__name__}: {exc}", "input_error"
        finally:
            if inp is not None:
                inp.http.close()
        result.cursor = cursor
        result.seconds = time.perf_counter() - started
        now = iso(utcnow())
        if result.ok:
            record_status(state, input_id, state="ok", last_success=now)
        else:
            record_status(
                state,
                input_id,
                state="auth_failed" if result.error_code == InputAuthError.code else "error",
                errors=1,
                last_error={"at": now, "code": result.error_code, "message": result.error},
            )
        return result

    def run_input(
        self, input_id: str, cls: type[Input], cfg: InputConfig, stop: threading.Event
    ) -> None:
        """Poll ``input_id`` every ``interval`` until ``stop``; errors back off, auth stops."""
        failures = 0
        while not stop.is_set():
            result = self.cycle(input_id, cls, cfg, stop)
            if stop.is_set():
                break
            if result.error_code == InputAuthError.code:
                log.error("input %s stopped: %s", input_id, result.error)
                record_status(self.runtime.state, input_id, next_run=None)
                return
            if result.ok:
                failures = 0
                wait = cfg.interval
            else:
                failures += 1
                wait = min(cfg.interval * 2 ** min(failures, 6), max(cfg.interval, 3600.0))
                log.warning("input %s: %s (retry in %.0fs)", input_id, result.error, wait)
            record_status(
                self.runtime.state,
                input_id,
                next_run=iso(utcnow() + dt.timedelta(seconds=wait)),
            )
            stop.wait(wait)

    def run_forever(self, stop: threading.Event, only: list[str] | None = None) -> None:
        """Run every enabled input in its own thread until ``stop`` is set."""
        threads = []
        for input_id, (cls, cfg) in configured_inputs(self.runtime).items():
            if not cfg.enabled or (only and input_id not in only):
                continue
            t = threading.Thread(
                target=self._guard,
                args=(input_id, cls, cfg, stop),
                name=f"input-{input_id}",
                daemon=True,
            )
            t.start()
            threads.append(t)
        stop.wait()
        for t in threads:
            t.join(timeout=30)

    def _guard(
        self, input_id: str, cls: type[Input], cfg: InputConfig, stop: threading.Event
    ) -> None:
        try:
            self.run_input(input_id, cls, cfg, stop)
        except Exception:  # isolation: never let one input take the process down
            log.exception("input %s crashed", input_id)
