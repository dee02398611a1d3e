"""Fixtures for the alert tests: state stores on SQLite and PostgreSQL, runtimes built from
a mantissa.yaml, stub vendor servers, alert candidates."""

from __future__ import annotations

import datetime as dt
import email
import socket
import uuid
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mantissa.alerts.model import AlertCandidate
from tests.alerts.stubs import Reply, Request, StubServer

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_available() -> str | None:
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(
            PG_URL.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"connect_timeout": 3},
        )
        with eng.connect() as c:
            c.exec_driver_sql("SELECT 1")
        eng.dispose()
        return None
    except Exception as exc:  # driver missing, server down
        return f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}); run scripts/test-deps.sh"


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh state store URL: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    why = _pg_available()
    if why:
        pytest.skip(why)
    import sqlalchemy as sa

    schema = "alerts_" + uuid.uuid4().hex[:10]
    eng = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        eng.dispose()


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_runtime(config: dict, state_url=None)`` → a Runtime over a fresh data dir."""
    from mantissa.runtime import Runtime

    made: list[Any] = []

    def make(
        config: dict[str, Any] | None = None,
        state_url: str | None = None,
        data_dir: Path | None = None,
    ) -> Runtime:
        d = data_dir or tmp_path / f"data{len(made)}"
        d.mkdir(parents=True, exist_ok=True)
        cfg = dict(config or {})
        # most tests have an empty lake: skip the user-context query unless asked for
        # (test_enrich covers it against a real lake)
        alerts_cfg = cfg.setdefault("alerts", {})
        alerts_cfg.setdefault("enrichment", {}).setdefault("user_context", {"enabled": False})
        if state_url:
            cfg.setdefault("state", {})["url"] = state_url
        (d / "mantissa.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        rt = Runtime(d)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        if "state" in rt.__dict__:
            rt.state.close()


@pytest.fixture
def stub() -> Iterator[Callable[[Callable[[Request], Reply]], StubServer]]:
    servers: list[StubServer] = []

    def start(handler: Callable[[Request], Reply]) -> StubServer:
        s = StubServer(handler)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def candidate(**kw: Any) -> AlertCandidate:
    base: dict[str, Any] = {
        "rule_id": "aws_console_root_login",
        "rule_title": "AWS root account console login",
        "severity": "high",
        "tags": ["attack.privilege_escalation", "attack.t1078.004"],
        "dedup_key": "aws_console_root_login|root",
        "entities": {"user": "root", "ip": "203.0.113.10"},
        "first_seen": T0,
        "last_seen": T0,
        "evidence_event_ids": ["ev-1"],
        "evidence_rows": [{"eventName": "ConsoleLogin", "sourceIPAddress": "203.0.113.10"}],
        "source": "cloudtrail",
    }
    base.update(kw)
    return AlertCandidate(**base)


SMTP_USER, SMTP_PASSWORD = "alerts@corp.example", "smtp-Pa55-word"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        assert session.authenticated, "message accepted without AUTH"
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(tmp_path: Path):
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == SMTP_USER
            and data.password.decode() == SMTP_PASSWORD
        )
        return AuthResult(success=ok, handled=False)

    inbox = _Inbox()
    port = _free_port()
    ctl = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=auth,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    ctl.start()
    try:
        yield {"port": port, "inbox": inbox, "ca_file": str(cert)}
    finally:
        ctl.stop()
