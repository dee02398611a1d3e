"""CrowdStrike Falcon Event Streams API: detections, audit and incident events.

Flow (Falcon docs "Event streams APIs"; FalconPy "Event Streams" service collection):

1. ``POST /oauth2/token`` with form ``client_id`` / ``client_secret`` → ``{"access_token",
   "expires_in"}`` (30 min); renewed 60 s before it expires.
2. Discover: ``GET /sensors/entities/datafeed/v2?appId=<label>&format=json`` with the
   bearer → ``resources[]``, one per partition: ``dataFeedURL``, ``sessionToken{token,
   expiration}``, ``refreshActiveSessionURL``, ``refreshActiveSessionInterval`` (s).
3. Read each partition: ``GET <dataFeedURL>&offset=<n>`` with ``Authorization: Token
   <sessionToken>``; a long-lived response of newline-delimited JSON events, each with
   ``metadata.offset``. We resume *at* the last stored offset and drop events at or
   below it: whether the API counts ``offset`` inclusively or not, nothing is skipped.
4. Before the session expires (~30 min), ``POST <refreshActiveSessionURL>`` with the
   bearer and ``action_name=refresh_active_stream_session``; a refused session token
   (401/403 when opening) means the session is gone: discover again, once.

A poll cycle reads every partition until it has been quiet for ``idle_secs`` (caught up)
or for at most ``max_stream_secs``; every ``batch_events`` events are one batch whose
cursor is the per-partition offset. A line that is not JSON is kept in the batch so the
parser dead-letters it with its reason; an event cut off at the end of the stream is an
input error and the offset stays at the last stored event.
Rate limits: 429 with ``X-RateLimit-RetryAfter`` (epoch seconds) and
``X-RateLimit-Remaining``. Needs: an API client with the *Event streams: Read* scope.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import field_validator

from mantissa.errors import InputAuthError, InputError
from mantissa.inputs.base import (
    Batch,
    Input,
    InputConfig,
    TokenCache,
    _backoff_secs,
    parse_duration,
    parse_time,
    retry_after,
)

log = logging.getLogger("mantissa.inputs.crowdstrike")
_APP_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


class CrowdStrikeConfig(InputConfig):
    client_id: str | None = None
    client_secret: str | None = None
    #: connection label (max 32 alphanumerics); one stream consumer per label
    app_id: str = "mantissa"
    batch_events: int = 5000
    #: a stream quiet this long is caught up: the cycle ends
    idle_secs: float = 5.0
    #: longest a cycle keeps one partition's stream open
    max_stream_secs: float = 300.0
    #: refresh the stream session this long before it is due
    refresh_margin_secs: float = 120.0

    @field_validator("idle_secs", "max_stream_secs", "refresh_margin_secs", mode="before")
    @classmethod
    def _secs(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, v: str) -> str:
        if not _APP_ID.match(v):
            raise ValueError("1-32 letters and digits (CrowdStrike appId)")
        return v


@dataclass
class Stream:
    """One partition's stream session, as discovery returned it."""

    partition: str
    url: str
    token: str
    refresh_url: str
    #: seconds between refreshes (what discovery granted, less the margin)
    interval: float
    refresh_due: float


class _SessionKeeper(threading.Thread):
    """Refreshes one open stream's session whenever it falls due."""

    def __init__(self, owner: CrowdStrike, stream: Stream) -> None:
        super().__init__(name=f"crowdstrike-refresh-{stream.partition}", daemon=True)
        self.owner, self.stream = owner, stream
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self.done.wait(max(0.0, self.stream.refresh_due - time.time())):
            try:
                self.owner.refresh(self.stream)
            except Exception as exc:  # the reader sees the stream end and rediscovers
                self.error = exc
                log.warning("crowdstrike: session refresh failed: %s", exc)
                return


class SessionGone(InputError):
    """The stream session token was refused: discover the streams again."""


class CrowdStrike(Input):
    type = "crowdstrike"
    source = "crowdstrike"
    config_model = CrowdStrikeConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base = self.base_url("https://api.crowdstrike.com")
        self.tokens = TokenCache(self._fetch_token)

    @property
    def cfg(self) -> CrowdStrikeConfig:
        return self.config  # type: ignore[return-value]

    # -- auth ------------------------------------------------------------------------
    def _fetch_token(self) -> tuple[str, float]:
        try:
            resp = self.http.client.post(
                self.base + "/oauth2/token",
                data={
                    "client_id": self.cfg.secret("client_id"),
                    "client_secret": self.cfg.secret("client_secret"),
                },
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise InputError(f"crowdstrike /oauth2/token: {type(exc).__name__}: {exc}") from None
        if resp.status_code in (400, 401, 403):
            raise InputAuthError(
                f"crowdstrike refused the API client credentials ({resp.status_code}): "
                f"{self.error_detail(resp)}",
                hint="check client_id/client_secret and the 'Event streams: Read' scope",
            )
        if resp.status_code >= 300:
            raise InputError(f"crowdstrike /oauth2/token: HTTP {resp.status_code}")
        try:
            body = orjson.loads(resp.content)
            return str(body["access_token"]), float(body.get("expires_in", 1799))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise InputError("crowdstrike /oauth2/token: no access_token in the answer") from None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get()}", "Accept": "application/json"}

    def refresh_auth(self) -> bool:
        self.tokens.invalidate()
        return True

    def error_detail(self, resp: httpx.Response) -> str:
        try:
            body = orjson.loads(resp.content)
            errors = body.get("errors") if isinstance(body, dict) else None
            if errors and isinstance(errors[0], dict) and errors[0].get("message"):
                return str(errors[0]["message"])[:200]
        except (orjson.JSONDecodeError, IndexError):
            pass
        return super().error_detail(resp)

    def rate_limit_wait(self, resp: httpx.Response) -> float | None:
        after = resp.headers.get("x-ratelimit-retryafter")
        remaining = resp.headers.get("x-ratelimit-remaining")
        if resp.status_code == 429 or (remaining is not None and remaining.strip() == "0"):
            if after and after.strip().isdigit():
                return max(0.0, int(after) - time.time()) + 0.1
            return retry_after(resp) or (1.0 if resp.status_code == 429 else None)
        return None

    # -- streams -----------------------------------------------------------------------
    def discover(self) -> list[Stream]:
        """``GET /sensors/entities/datafeed/v2``: one session per partition."""
        body, _ = self.http.json(
            "GET",
            self.base + "/sensors/entities/datafeed/v2",
            params={"appId": self.cfg.app_id, "format": "json"},
        )
        resources = body.get("resources") if isinstance(body, dict) else None
        if not isinstance(resources, list):
            raise InputError("crowdstrike datafeed discovery: no `resources` list in the answer")
        out = []
        now = time.time()
        for r in resources:
            try:
                url = str(r["dataFeedURL"])
                token = str(r["sessionToken"]["token"])
                refresh_url = str(r["refreshActiveSessionURL"])
            except (KeyError, TypeError):
                raise InputError(
                    "crowdstrike datafeed discovery: a stream lacks its URLs"
                ) from None
            interval = float(r.get("refreshActiveSessionInterval") or 1800)
            due = now + interval
            expires = parse_time(r["sessionToken"].get("expiration"))
            if expires is not None:
                due = min(due, expires.timestamp())
            due -= self.cfg.refresh_margin_secs
            partition = httpx.URL(url).path.rstrip("/").rsplit("/", 1)[-1]
            out.append(Stream(partition, url, token, refresh_url, max(1.0, due - now), due))
        return out

    def refresh(self, stream: Stream) -> None:
        """Keep the stream session alive (``refresh_active_stream_session``)."""
        params = dict(httpx.URL(stream.refresh_url).params)
        params.setdefault("action_name", "refresh_active_stream_session")
        params.setdefault("appId", self.cfg.app_id)
        url = str(httpx.URL(stream.refresh_url).copy_with(query=None))
        self.http.request("POST", url, params=params, json={})
        stream.refresh_due = time.time() + stream.interval

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        offsets: dict[str, int] = {
            str(k): int(v) for k, v in ((cursor or {}).get("offsets") or {}).items()
        }
        for stream in self.discover():
            yield from self._partition(stream, offsets)

    def _partition(self, stream: Stream, offsets: dict[str, int]) -> Iterator[Batch]:
        cfg = self.cfg
        first_run = stream.partition not in offsets
        oldest = self.backfill_from().timestamp() * 1000 if first_run else None
        rediscovered = False
        cuts = 0
        deadline = time.monotonic() + cfg.max_stream_secs
        while True:
            offset = offsets.get(stream.partition)
            try:
                resp = self._open(stream, offset)
            except SessionGone:
                if rediscovered:
                    raise InputAuthError(
                        f"crowdstrike refused a fresh stream session for partition "
                        f"{stream.partition}",
                        hint="check the API client's 'Event streams: Read' scope",
                    ) from None
                rediscovered = True
                stream = self._rediscover(stream.partition)
                continue
            # the session is kept alive from a thread: a slow lake write between two
            # reads must not let it lapse
            keeper = _SessionKeeper(self, stream)
            keeper.start()
            try:
                yield from self._read(resp, stream, offsets, oldest, deadline)
                return
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # the connection was cut mid-stream: reopen from the last stored offset
                cuts += 1
                if cuts > cfg.max_retries:
                    raise InputError(
                        f"crowdstrike stream {stream.partition} keeps breaking: {exc}"
                    ) from None
                self.sleep(_backoff_secs(cuts, cfg.max_backoff))
                stream = self._rediscover(stream.partition)
            finally:
                keeper.done.set()
                resp.close()

    def _rediscover(self, partition: str) -> Stream:
        for s in self.discover():
            if s.partition == partition:
                return s
        raise InputError(f"crowdstrike: partition {partition} is no longer offered")

    def _open(self, stream: Stream, offset: int | None) -> httpx.Response:
        cfg = self.cfg
        client = self.http.client
        failures = throttles = 0
        while True:
            if time.time() >= stream.refresh_due:
                try:
                    self.refresh(stream)
                except InputAuthError:
                    raise
                except InputError:
                    raise SessionGone(
                        f"crowdstrike stream {stream.partition}: session gone"
                    ) from None
            url = httpx.URL(stream.url)
            if offset is not None:
                # httpx `params=` would replace the URL's own query (appId, partition)
                url = url.copy_merge_params({"offset": str(offset)})
            req = client.build_request(
                "GET",
                url,
                headers={"Authorization": f"Token {stream.token}", "Accept": "application/json"},
                timeout=httpx.Timeout(cfg.timeout, read=cfg.idle_secs),
            )
            try:
                resp = client.send(req, stream=True)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                failures += 1
                if failures > cfg.max_retries:
                    raise InputError(
                        f"crowdstrike stream {stream.partition}: {type(exc).__name__}: {exc}"
                    ) from None
                self.sleep(_backoff_secs(failures, cfg.max_backoff))
                continue
            status = resp.status_code
            if status < 300:
                return resp
            resp.read()
            resp.close()
            if status in (401, 403):
                raise SessionGone(f"crowdstrike stream {stream.partition}: session refused")
            if status == 429:
                throttles += 1
                self.http.rate_limited += 1
                if throttles > max(20, cfg.max_retries * 4):
                    raise InputError(
                        f"crowdstrike: still rate limited after {throttles - 1} waits",
                        hint="another consumer may share this app_id, or raise the quota",
                    )
                wait = self.rate_limit_wait(resp) or _backoff_secs(throttles, cfg.max_backoff)
                self.sleep(min(wait, cfg.max_backoff))
                continue
            if status >= 500 or status == 408:
                failures += 1
                if failures > cfg.max_retries:
                    raise InputError(
                        f"crowdstrike stream {stream.partition}: HTTP {status} after "
                        f"{failures} attempts: {self.error_detail(resp)}"
                    )
                self.sleep(_backoff_secs(failures, cfg.max_backoff))
                continue
            raise InputError(
                f"crowdstrike stream {stream.partition}: HTTP {status}: {self.error_detail(resp)}"
            )

    def _read(
        self,
        resp: httpx.Response,
        stream: Stream,
        offsets: dict[str, int],
        oldest: float | None,
        deadline: float,
    ) -> Iterator[Batch]:
        cfg = self.cfg
        lines: list[bytes] = []
        newest: float | None = None
        last: int | None = None
        pending = b""

        def flush() -> Batch | None:
            nonlocal lines, newest, last
            if last is None and not lines:
                return None
            if last is not None:
                offsets[stream.partition] = last
            batch = Batch(
                [],
                {"offsets": dict(offsets)},
                last_event_time=parse_time(newest) if newest is not None else None,
                data=b"\n".join(lines) if lines else None,
                name=f"{self.id}-p{stream.partition}.ndjson",
            )
            lines, newest, last = [], None, None
            return batch

        stored = offsets.get(stream.partition)
        chunks = resp.iter_bytes()
        while True:
            if self.stop.is_set() or time.monotonic() >= deadline:
                break
            try:
                chunk = next(chunks)
            except StopIteration:
                if pending.strip():
                    raise InputError(
                        f"crowdstrike stream {stream.partition}: the stream ended inside an "
                        f"event ({len(pending)} bytes of truncated JSON); the offset stays at "
                        "the last stored event"
                    ) from None
                break
            except httpx.ReadTimeout:
                break  # quiet for idle_secs: caught up
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                line = line.strip()
                if not line:
                    continue  # keep-alive newlines
                try:
                    ev = orjson.loads(line)
                    meta = ev["metadata"]
                    off = int(meta["offset"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    lines.append(line)  # the parser dead-letters it, with the reason
                    continue
                if stored is not None and off <= stored:
                    continue  # already in the lake (the resume point itself)
                last = off if last is None else max(last, off)
                created = meta.get("eventCreationTime")
                if oldest is not None and isinstance(created, int | float) and created < oldest:
                    continue  # before `start`: skipped on the first run, offset still moves
                lines.append(line)
                if isinstance(created, int | float):
                    newest = created if newest is None else max(newest, created)
                if len(lines) >= cfg.batch_events:
                    b = flush()
                    if b is not None:
                        yield b
        b = flush()
        if b is not None:
            yield b
