"""Snowflake account usage: LOGIN_HISTORY, QUERY_HISTORY, ACCESS_HISTORY with a time watermark.

Through ``snowflake-connector-python`` (``pip install 'mantissa-log[snowflake]'``): user +
password, or key-pair auth (``private_key``: a PEM RSA key; the connector signs the
``SNOWFLAKE_JWT`` login). Each view is read in closed time windows ``(since, until]``
on its time column, ordered by time and id::

    SELECT * FROM SNOWFLAKE.ACCOUNT_USAGE.LOGIN_HISTORY
    WHERE EVENT_TIMESTAMP > '<since>'::TIMESTAMP_LTZ AND EVENT_TIMESTAMP <= '<until>'::TIMESTAMP_LTZ
    ORDER BY EVENT_TIMESTAMP, EVENT_ID

``until`` never passes *now − latency*: Snowflake documents that rows reach the views
late ("Account Usage": latency up to 2 h for LOGIN_HISTORY, 45 min for QUERY_HISTORY,
3 h for ACCESS_HISTORY), so a window is read only once it is complete, and the cursor
(per view, the ``until`` of the last stored window) never skips a late row. Backfills
run in windows of ``window_secs`` so a crash re-reads at most one window (the lake's
dedup on ``login:EVENT_ID`` / ``query:QUERY_ID`` / ``access:QUERY_ID`` absorbs it).
The connector retries 429/5xx itself (bounded by ``timeout``) and renews an expired
session with its master token. Needs: a role with ``IMPORTED PRIVILEGES`` on the
``SNOWFLAKE`` database (or the ``GOVERNANCE_VIEWER`` / ``SECURITY_VIEWER`` database roles)
and a warehouse to run the queries; ACCESS_HISTORY needs Enterprise Edition.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
from pydantic import field_validator

from mantissa.errors import ConfigError, InputAuthError, InputError
from mantissa.inputs.base import Batch, Input, InputConfig, parse_duration, parse_time

#: view → (time column, id column, documented latency in seconds)
VIEWS: dict[str, tuple[str, str, float]] = {
    "LOGIN_HISTORY": ("EVENT_TIMESTAMP", "EVENT_ID", 2 * 3600.0),
    "QUERY_HISTORY": ("START_TIME", "QUERY_ID", 45 * 60.0),
    "ACCESS_HISTORY": ("QUERY_START_TIME", "QUERY_ID", 3 * 3600.0),
}
# connector error numbers that mean "these credentials are refused"
_AUTH_ERRNOS = {390100, 390101, 390102, 390144, 390145, 390318, 390422, 250001}


class SnowflakeConfig(InputConfig):
    account: str | None = None  # xy12345.eu-central-1, or orgname-accountname
    user: str | None = None
    password: str | None = None
    #: key-pair auth instead of a password: an unencrypted PEM private key (``${env:...}``)
    private_key: str | None = None
    role: str | None = None
    warehouse: str | None = None
    views: list[str] = list(VIEWS)
    #: override the documented latency per view (e.g. ``{LOGIN_HISTORY: 3h}``)
    latency: dict[str, float] = {}
    window_secs: float = 86400.0
    batch_rows: int = 10_000
    #: longest one window's query may run, the connector's retries of 429/5xx included
    query_timeout_secs: float = 600.0

    @field_validator("window_secs", "query_timeout_secs", mode="before")
    @classmethod
    def _secs(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("latency", mode="before")
    @classmethod
    def _latency(cls, v: Any) -> dict[str, float]:
        return {str(k).upper(): parse_duration(d) for k, d in (v or {}).items()}

    @field_validator("views")
    @classmethod
    def _views(cls, v: list[str]) -> list[str]:
        out = [x.upper() for x in v]
        unknown = sorted(set(out) - set(VIEWS))
        if unknown:
            raise ValueError(f"unknown views {unknown}; use {sorted(VIEWS)}")
        return out


def sql_time(t: dt.datetime) -> str:
    """A TIMESTAMP_LTZ literal in UTC with microseconds."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f +00:00")


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat() if v.tzinfo else v.isoformat() + "Z"
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


def _major() -> int:
    from importlib.metadata import version

    try:
        return int(version("snowflake-connector-python").split(".")[0])
    except (ValueError, LookupError):
        return 3


class Snowflake(Input):
    type = "snowflake"
    source = "snowflake"
    config_model = SnowflakeConfig
    settle_secs: ClassVar[float] = 45 * 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        if not cfg.account or not cfg.user:
            raise InputError(f"input {self.id}: snowflake needs `account` and `user`")
        if not cfg.password and not cfg.private_key:
            raise InputError(f"input {self.id}: snowflake needs `password` or `private_key`")
        self.conn: Any = None

    @property
    def cfg(self) -> SnowflakeConfig:
        return self.config  # type: ignore[return-value]

    # -- connection ------------------------------------------------------------------
    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect`` (secrets resolved now)."""
        cfg = self.cfg
        args: dict[str, Any] = {
            "account": cfg.account,
            "user": cfg.user,
            "login_timeout": int(cfg.timeout),
            "client_session_keep_alive": False,
            "application": "MantissaLog",
            "session_parameters": {"TIMEZONE": "UTC", "QUERY_TAG": f"mantissa:{self.id}"},
        }
        if _major() >= 4:
            args["request_timeout"] = int(cfg.timeout)
            args["query_timeout"] = int(cfg.query_timeout_secs)
        else:  # 3.x: one wall-clock timeout for every request, retries included
            args["network_timeout"] = int(max(cfg.timeout, cfg.query_timeout_secs))
        if cfg.role:
            args["role"] = cfg.role
        if cfg.warehouse:
            args["warehouse"] = cfg.warehouse
        if cfg.private_key:
            from cryptography.hazmat.primitives import serialization

            try:
                key = serialization.load_pem_private_key(
                    cfg.secret("private_key").encode(), password=None
                )
            except ValueError:
                raise ConfigError(
                    f"input {self.id}: private_key is not an unencrypted PEM private key"
                ) from None
            args["authenticator"] = "SNOWFLAKE_JWT"
            args["private_key"] = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            args["password"] = cfg.secret("password")
        if cfg.base_url:
            # a proxy, PrivateLink name or a test server instead of <account>.snowflakecomputing.com
            url = httpx.URL(cfg.base_url)
            args["host"] = url.host
            args["protocol"] = url.scheme
            args["port"] = url.port or (443 if url.scheme == "https" else 80)
        return args

    def _connect(self) -> Any:
        try:
            import snowflake.connector
        except ModuleNotFoundError:
            raise ConfigError(
                "input type 'snowflake' needs the package snowflake-connector-python",
                hint="pip install 'mantissa-log[snowflake]'",
            ) from None
        # the connector's core probes cloud metadata endpoints (IMDS, GCE, Azure) at each
        # connect to report the platform in telemetry: not what a log collector should do
        os.environ.setdefault("SNOWFLAKE_DISABLE_PLATFORM_DETECTION", "true")
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        try:
            with warnings.catch_warnings():
                # the connector announces future defaults with FutureWarning on every connect
                warnings.simplefilter("ignore", FutureWarning)
                return snowflake.connector.connect(**self.connect_args())
        except snowflake.connector.errors.Error as exc:
            raise self._error(exc, "login") from None

    def _error(self, exc: Any, what: str) -> InputError:
        errno = getattr(exc, "errno", None)
        msg = getattr(exc, "raw_msg", None) or str(exc)
        text = f"snowflake {what}: {msg} (errno {errno})"
        if errno in _AUTH_ERRNOS:
            return InputAuthError(
                text, hint="check user, password or key-pair (RSA_PUBLIC_KEY) and the role"
            )
        return InputError(text + "; the checkpoint was not advanced")

    # -- data ------------------------------------------------------------------------
    def windows(self, view: str, since: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Closed windows from ``since`` up to *now − latency*."""
        latency = self.cfg.latency.get(view, VIEWS[view][2])
        horizon = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=latency)
        step = dt.timedelta(seconds=self.cfg.window_secs)
        while since < horizon:
            until = min(since + step, horizon)
            yield since, until
            since = until

    def query(self, view: str, since: dt.datetime, until: dt.datetime) -> str:
        ts, key, _ = VIEWS[view]
        return (
            f"SELECT * FROM SNOWFLAKE.ACCOUNT_USAGE.{view} "
            f"WHERE {ts} > '{sql_time(since)}'::TIMESTAMP_LTZ "
            f"AND {ts} <= '{sql_time(until)}'::TIMESTAMP_LTZ "
            f"ORDER BY {ts}, {key}"
        )

    def batches(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        import snowflake.connector

        cursor = dict(cursor or {})
        self.conn = self._connect()
        try:
            for view in self.cfg.views:
                saved = parse_time(cursor.get(view))
                since = saved or self.backfill_from()
                for lo, hi in self.windows(view, since):
                    sql = self.query(view, lo, hi)
                    try:
                        yield from self._window(view, sql, hi, cursor)
                    except snowflake.connector.errors.Error as exc:
                        raise self._error(exc, f"{view} query") from None
                    cursor = {**cursor, view: hi.isoformat()}
        finally:
            try:
                self.conn.close()
            except snowflake.connector.errors.Error:
                pass

    def _window(
        self, view: str, sql: str, until: dt.datetime, cursor: dict[str, Any]
    ) -> Iterator[Batch]:
        import snowflake.connector

        ts_col = VIEWS[view][0]
        cur = self.conn.cursor(snowflake.connector.DictCursor)
        try:
            cur.execute(sql)
            pending = cur.fetchmany(self.cfg.batch_rows)
            while True:
                nxt = cur.fetchmany(self.cfg.batch_rows) if pending else []
                rows = [{k: _jsonable(v) for k, v in r.items()} for r in pending]
                last = parse_time(rows[-1].get(ts_col)) if rows else None
                # the window's end is the checkpoint only once its last rows are stored
                done = not nxt
                yield Batch(
                    rows,
                    {**cursor, view: until.isoformat()} if done else dict(cursor),
                    last_event_time=last,
                    name=f"{self.id}-{view.lower()}.json",
                )
                if done:
                    return
                pending = nxt
        finally:
            cur.close()
