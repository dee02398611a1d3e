"""The :class:`StateStore`: one SQLAlchemy Core code path for SQLite and PostgreSQL.

Modules declare their tables on the shared :data:`metadata` (alerts, rule state,
executions, approvals, baselines, input cursors ...) and get them created by
:meth:`StateStore.migrate`. Small keyed documents (watermarks, sessions, cursors) go
through :meth:`get` / :meth:`put`; fleets coordinate with :meth:`acquire_lease`.
SQLite runs in WAL mode with a busy timeout so several processes can share the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from mantissa.errors import StateError

metadata = sa.MetaData()

SCHEMA_VERSION = 1

kv = sa.Table(
    "kv",
    metadata,
    sa.Column("namespace", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

schema_info = sa.Table(
    "schema_info",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("migrated_at", sa.DateTime(timezone=True), nullable=False),
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(v: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: read them as UTC."""
    if v is None:
        return None
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class StateStore:
    """Durable state behind one interface; ``url`` is a SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        kwargs: dict[str, Any] = {"future": True}
        if self.dialect == "sqlite":
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = sa.create_engine(url, **kwargs)
        except Exception as exc:  # bad URL, missing driver
            raise StateError(f"cannot open state store: {exc}") from None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.migrate()

    @classmethod
    def for_data_dir(cls, data_dir: Path, url: str | None = None) -> StateStore:
        return cls(url or f"sqlite:///{(data_dir / 'state.db').resolve()}")

    def migrate(self) -> None:
        """Create missing tables (idempotent; safe to run from several processes)."""
        _import_table_modules()
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.OperationalError as exc:
            raise StateError(f"cannot reach the state store {self.safe_url}: {exc.orig}") from None
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # another process created the same table at the same moment
            metadata.create_all(self.engine, checkfirst=True)
        with self.begin() as conn:
            row = conn.execute(
                sa.select(schema_info.c.version).where(schema_info.c.id == 1)
            ).first()
            if row is None:
                try:
                    conn.execute(
                        schema_info.insert().values(
                            id=1, version=SCHEMA_VERSION, migrated_at=utcnow()
                        )
                    )
                except sa.exc.IntegrityError:
                    pass

    @property
    def safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed on exit, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    # -- keyed documents -------------------------------------------------------
    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(kv.c.value).where(kv.c.namespace == namespace, kv.c.key == key)
            ).first()
        return default if row is None else row[0]

    def put(self, namespace: str, key: str, value: Any, conn: Connection | None = None) -> None:
        if conn is None:
            with self.begin() as c:
                self.put(namespace, key, value, c)
            return
        updated = conn.execute(
            kv.update()
            .where(kv.c.namespace == namespace, kv.c.key == key)
            .values(value=value, updated_at=utcnow())
        ).rowcount
        if not updated:
            conn.execute(
                kv.insert().values(namespace=namespace, key=key, value=value, updated_at=utcnow())
            )

    def items(self, namespace: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(kv.c.key, kv.c.value).where(kv.c.namespace == namespace))
            return {r[0]: r[1] for r in rows}

    def delete(self, namespace: str, key: str) -> None:
        with self.begin() as conn:
            conn.execute(kv.delete().where(kv.c.namespace == namespace, kv.c.key == key))

    # -- leases ---------------------------------------------------------------
    def acquire_lease(
        self, name: str, owner: str, ttl_secs: float, conn: Connection | None = None
    ) -> bool:
        """Take or renew lease ``name`` for ``owner``; False while another owner holds it.

        With ``conn`` (a connection inside a transaction) the lease is taken in that
        transaction and commits with it."""
        if conn is None:
            with self.begin() as c:
                return self.acquire_lease(name, owner, ttl_secs, c)
        now = utcnow()
        params = {"w_name": name, "w_owner": owner, "w_now": now}
        res = conn.execute(
            _LEASE_RENEW, {**params, "v_expires": now + dt.timedelta(seconds=ttl_secs)}
        )
        if res.rowcount:
            return True
        try:
            with conn.begin_nested():
                conn.execute(
                    _LEASE_INSERT,
                    {
                        "name": name,
                        "owner": owner,
                        "expires_at": now + dt.timedelta(seconds=ttl_secs),
                    },
                )
            return True
        except sa.exc.IntegrityError:
            return False

    def release_lease(self, name: str, owner: str, conn: Connection | None = None) -> None:
        if conn is None:
            with self.begin() as c:
                self.release_lease(name, owner, c)
            return
        conn.execute(_LEASE_DELETE, {"w_name": name, "w_owner": owner})

    def close(self) -> None:
        self.engine.dispose()


# lease statements built once (executions take and drop a lease each: bench/soar.py)
_LEASE_RENEW = (
    leases.update()
    .where(leases.c.name == sa.bindparam("w_name"))
    .where(
        sa.or_(
            leases.c.owner == sa.bindparam("w_owner"),
            leases.c.expires_at < sa.bindparam("w_now", type_=leases.c.expires_at.type),
        )
    )
    .values(
        owner=sa.bindparam("w_owner"),
        expires_at=sa.bindparam("v_expires", type_=leases.c.expires_at.type),
    )
)
_LEASE_INSERT = leases.insert()
_LEASE_DELETE = leases.delete().where(
    leases.c.name == sa.bindparam("w_name"), leases.c.owner == sa.bindparam("w_owner")
)


def _import_table_modules() -> None:
    """Import the modules that declare tables on :data:`metadata`."""
    import importlib

    for mod in TABLE_MODULES:
        importlib.import_module(mod)


# Modules that declare state tables; each adds itself here in one line.
TABLE_MODULES: list[str] = [
    "mantissa.alerts.store",
    "mantissa.api.auth",
    "mantissa.soar.schema",
    "mantissa.identity.baselines",
    "mantissa.identity.correlation",
    "mantissa.identity.risk",
    "mantissa.detect.runs",
]
