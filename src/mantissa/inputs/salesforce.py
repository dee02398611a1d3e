"""Salesforce Event Monitoring log files (EventLogFile) and the Setup Audit Trail.

Auth (Salesforce Help, "OAuth 2.0 Client Credentials Flow" / "OAuth 2.0 JWT Bearer
Flow"), both at ``{base}/services/oauth2/token``:

* ``auth: client_credentials``: form ``grant_type=client_credentials``, ``client_id``,
  ``client_secret`` (a connected app with a *Run As* user; the My Domain URL is the base).
* ``auth: jwt_bearer``: form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
  and ``assertion``, a JWT signed RS256 with the connected app's certificate key:
  ``iss`` = consumer key, ``sub`` = username, ``aud`` = ``https://login.salesforce.com``
  (``test.salesforce.com`` for sandboxes), ``exp`` within 3 minutes.

The answer has ``access_token`` and ``instance_url`` but no lifetime (the org's session
timeout decides), so the token is re-issued every ``token_ttl_secs`` and after a 401
``INVALID_SESSION_ID``.

Data (REST API): ``GET /services/data/v{api_version}/query?q=<SOQL>``, then the
``nextRecordsUrl`` of each page until ``done``:

* ``SELECT Id, EventType, LogDate, LogFile, LogFileLength, Interval FROM EventLogFile
  WHERE LogDate >= <newest LogDate − late_file_secs> ORDER BY LogDate, Id``; each file's
  CSV is fetched from ``/services/data/v{v}/sobjects/EventLogFile/{Id}/LogFile`` and goes
  whole to the ``salesforce`` parser (one batch per file). Cursor: the newest ``LogDate``
  and the ids (with their ``LogDate``) already stored inside the late window: files of
  one hour or day are generated per event type at different times, so a file may appear
  after files of later hours; it is still picked up, and nothing is downloaded twice.
* ``SELECT ... FROM SetupAuditTrail WHERE CreatedDate >= <watermark> ORDER BY
  CreatedDate, Id``; records (JSON) page by page, same cursor shape on ``CreatedDate``.

Limits: ``Sforce-Limit-Info: api-usage=used/max`` on every answer; over a limit Salesforce
answers 403 ``REQUEST_LIMIT_EXCEEDED``: a concurrency limit is waited out, the rolling
24-hour request allowance is reported as an input error (waiting seconds cannot help).
Needs: *View Event Log Files* and *API Enabled* (EventLogFile), *View Setup and
Configuration* (SetupAuditTrail) for the integration user.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import orjson
from pydantic import field_validator

from mantissa.errors import ConfigError, InputAuthError, InputError
from mantissa.inputs.base import (
    Batch,
    Input,
    InputConfig,
    TokenCache,
    parse_duration,
    parse_time,
)

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
ELF_FIELDS = "Id, EventType, LogDate, LogFile, LogFileLength, Interval"
SAT_FIELDS = (
    "Id, Action, Section, CreatedDate, CreatedById, CreatedBy.Username, Display, "
    "DelegateUser, ResponsibleNamespacePrefix, CreatedByContext, CreatedByIssuer"
)


class SalesforceConfig(InputConfig):
    instance_url: str | None = None  # https://acme.my.salesforce.com
    auth: Literal["client_credentials", "jwt_bearer"] = "client_credentials"
    client_id: str | None = None
    client_secret: str | None = None
    #: jwt_bearer: the user the token acts for, and the PEM private key (``${env:...}``)
    username: str | None = None
    private_key: str | None = None
    audience: str = "https://login.salesforce.com"
    api_version: str = "60.0"
    event_log_files: bool = True
    #: only these EventLogFile event types (Login, API, RestApi, URI, ...); empty = all
    event_types: list[str] = []
    #: Hourly or Daily files only (orgs with hourly files get both); None = both
    log_interval: Literal["Hourly", "Daily"] | None = None
    #: how late a log file may appear after files of later hours/days (re-queried, ids kept)
    late_file_secs: float = 86400.0
    setup_audit_trail: bool = True
    #: records per query page (Sforce-Query-Options batchSize, 200-2000)
    page_size: int = 2000
    token_ttl_secs: float = 900.0

    @field_validator("late_file_secs", "token_ttl_secs", mode="before")
    @classmethod
    def _secs(cls, v: Any) -> float:
        return parse_duration(v)


def soql_datetime(t: dt.datetime) -> str:
    """A SOQL dateTime literal (``YYYY-MM-DDThh:mm:ssZ``, unquoted)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _second(value: Any) -> str | None:
    t = parse_time(value)
    return soql_datetime(t) if t is not None else None


def _before(literal: str, delta: dt.timedelta) -> str:
    """The SOQL dateTime ``delta`` before another one."""
    t = parse_time(literal)
    if t is None:
        raise InputError(f"salesforce: bad cursor time {literal!r}")
    return soql_datetime(t - delta)


class Salesforce(Input):
    type = "salesforce"
    source = "salesforce"
    config_model = SalesforceConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        if not (cfg.base_url or cfg.instance_url):
            raise InputError(
                f"input {self.id}: salesforce needs `instance_url` (https://acme.my.salesforce.com)"
            )
        self.base = self.base_url(cfg.instance_url or "")
        self.instance = self.base
        self.tokens = TokenCache(self._fetch_token, skew=0.0)
        self.ver = "v" + cfg.api_version.removeprefix("v")

    @property
    def cfg(self) -> SalesforceConfig:
        return self.config  # type: ignore[return-value]

    # -- auth ------------------------------------------------------------------------
    def _assertion(self) -> str:
        cfg = self.cfg
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ModuleNotFoundError:
            raise ConfigError(
                "salesforce jwt_bearer needs the package cryptography",
                hint="pip install 'mantissa-log[salesforce]'",
            ) from None
        if not cfg.username:
            raise ConfigError(f"input {self.id}: jwt_bearer needs `username`")
        try:
            key = serialization.load_pem_private_key(
                cfg.secret("private_key").encode(), password=None
            )
        except ValueError:
            raise ConfigError(
                f"input {self.id}: private_key is not an unencrypted PEM private key"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"input {self.id}: private_key must be an RSA key (RS256)")

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        claims = {
            "iss": cfg.secret("client_id"),
            "sub": cfg.username,
            "aud": cfg.audience,
            "exp": int(time.time()) + 170,  # Salesforce: at most 3 minutes ahead
        }
        signing_input = b64(b'{"alg":"RS256","typ":"JWT"}') + "." + b64(orjson.dumps(claims))
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64(sig)

    def _fetch_token(self) -> tuple[str, float]:
        cfg = self.cfg
        if cfg.auth == "jwt_bearer":
            form = {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self._assertion(),
            }
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": cfg.secret("client_id"),
                "client_secret": cfg.secret("client_secret"),
            }
        try:
            resp = self.http.client.post(
                self.base + "/services/oauth2/token",
                data=form,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise InputError(f"salesforce token endpoint: {type(exc).__name__}: {exc}") from None
        if resp.status_code in (400, 401, 403):
            raise InputAuthError(
                f"salesforce refused the {cfg.auth} grant ({resp.status_code}): "
                f"{self.error_detail(resp)}",
                hint="check the connected app (client id/secret or certificate), its "
                "Run As / pre-authorized user and the OAuth policies",
            )
        if resp.status_code >= 300:
            raise InputError(f"salesforce token endpoint: HTTP {resp.status_code}")
        try:
            body = orjson.loads(resp.content)
            token = str(body["access_token"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise InputError("salesforce token endpoint: no access_token in the answer") from None
        if not cfg.base_url and body.get("instance_url"):
            self.instance = str(body["instance_url"]).rstrip("/")
        return token, cfg.token_ttl_secs

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get()}", "Accept": "application/json"}

    def refresh_auth(self) -> bool:
        self.tokens.invalidate()
        return True

    def error_detail(self, resp: httpx.Response) -> str:
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            return resp.text[:200]
        if isinstance(body, list) and body and isinstance(body[0], dict):
            e = body[0]
            return f"{e.get('errorCode', '')}: {e.get('message', '')}"[:200]
        if isinstance(body, dict) and body.get("error"):
            return f"{body['error']}: {body.get('error_description', '')}"[:200]
        return super().error_detail(resp)

    def is_rate_limited(self, resp: httpx.Response) -> bool:
        if resp.status_code != 403 or b"REQUEST_LIMIT_EXCEEDED" not in resp.content:
            return False
        m = _USAGE.search(resp.headers.get("sforce-limit-info", ""))
        if m and int(m.group(1)) >= int(m.group(2)):
            raise InputError(
                f"salesforce: the org's API request allowance is used up ({m.group(0)})",
                hint="the rolling 24-hour limit frees up over time; raise it or poll less",
            )
        return True  # a concurrency limit: back off and retry

    # -- data ------------------------------------------------------------------------
    def query(self, soql: str) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """Pages of a SOQL query: (records, last page?)."""
        url = f"{self.instance}/services/data/{self.ver}/query"
        params: dict[str, str] | None = {"q": soql}
        headers = {"Sforce-Query-Options": f"batchSize={self.cfg.page_size}"}
        while True:
            body, _ = self.http.json("GET", url, params=params, headers=headers)
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise InputError("salesforce query: no `records` list in the answer")
            done = bool(body.get("done", True))
            nxt = body.get("nextRecordsUrl")
            if not done and not nxt:
                raise InputError("salesforce query: done=false without nextRecordsUrl")
            yield body["records"], done
            if done:
                return
            url, params = self.instance + str(nxt), None

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        cursor = dict(cursor or {})
        if self.cfg.setup_audit_trail:
            for batch in self._audit_trail(cursor):
                cursor = batch.cursor
                yield batch
        if self.cfg.event_log_files:
            yield from self._event_log_files(cursor)

    def _watermark(self, cursor: dict[str, Any], key: str) -> tuple[str, set[str]]:
        mark = cursor.get(key) or {}
        since = mark.get("since") or soql_datetime(self.backfill_from())
        return since, set(mark.get("ids") or [])

    def _audit_trail(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        since, seen = self._watermark(cursor, "setup_audit_trail")
        soql = (
            f"SELECT {SAT_FIELDS} FROM SetupAuditTrail WHERE CreatedDate >= {since} "
            "ORDER BY CreatedDate, Id"
        )
        for records, _done in self.query(soql):
            fresh = [r for r in records if r.get("Id") not in seen]
            for r in records:
                sec = _second(r.get("CreatedDate"))
                if sec is None:
                    raise InputError(f"salesforce SetupAuditTrail {r.get('Id')}: no CreatedDate")
                if sec != since:
                    since, seen = sec, set()
                seen.add(str(r.get("Id")))
            cursor = {**cursor, "setup_audit_trail": {"since": since, "ids": sorted(seen)}}
            yield Batch(
                fresh,
                cursor,
                last_event_time=parse_time(since) if fresh else None,
                name=f"{self.id}-setup-audit-trail.json",
            )

    def _event_log_files(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        cfg = self.cfg
        mark = cursor.get("event_log_files") or {}
        late = dt.timedelta(seconds=cfg.late_file_secs)
        # files already stored, by id → LogDate, for the files still inside the late window
        seen: dict[str, str] = dict(mark.get("files") or {})
        newest = mark.get("since")
        if newest:
            # files of an hour (or day) keep arriving after later ones: look back
            lo = _before(newest, late)
        else:
            lo = newest = soql_datetime(self.backfill_from())
        where = [f"LogDate >= {lo}"]
        if cfg.event_types:
            names = ", ".join("'" + t.replace("'", "") + "'" for t in cfg.event_types)
            where.append(f"EventType IN ({names})")
        if cfg.log_interval:
            where.append(f"Interval = '{cfg.log_interval}'")
        soql = (
            f"SELECT {ELF_FIELDS} FROM EventLogFile WHERE {' AND '.join(where)} "
            "ORDER BY LogDate, Id"
        )
        files: list[dict[str, Any]] = []
        for records, _done in self.query(soql):
            files.extend(records)
        for f in files:
            fid = str(f.get("Id"))
            day = _second(f.get("LogDate"))
            if day is None:
                raise InputError(f"salesforce EventLogFile {fid}: no LogDate")
            if fid in seen:
                continue
            data = self._download(f)
            seen[fid] = day
            newest = max(newest, day)
            floor = _before(newest, late)
            seen = {k: v for k, v in seen.items() if v >= floor}
            cursor = {**cursor, "event_log_files": {"since": newest, "files": seen}}
            yield Batch(
                [],
                cursor,
                last_event_time=parse_time(f.get("LogDate")),
                data=data,
                name=f"{self.id}-{f.get('EventType', 'elf')}-{day[:10]}-{fid}.csv",
            )

    def _download(self, f: dict[str, Any]) -> bytes:
        fid = str(f.get("Id"))
        path = f.get("LogFile") or f"/services/data/{self.ver}/sobjects/EventLogFile/{fid}/LogFile"
        resp = self.http.request("GET", self.instance + str(path))
        data = resp.content
        expected = f.get("LogFileLength")
        if isinstance(expected, int | float) and expected and len(data) < int(expected):
            raise InputError(
                f"salesforce EventLogFile {fid}: got {len(data)} of {int(expected)} bytes "
                "(truncated download); the checkpoint was not advanced"
            )
        return data
