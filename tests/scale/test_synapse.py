"""Synapse engine through the real python-tds driver against the TDS stub in ``stub_tds.py``.

The stub checks the login (user, de-obfuscated password, database), the shape of the
OPENROWSET views ``lake register`` creates, and answers each T-SQL batch by running it on
DuckDB over the same local lake, so results are compared with DuckDB's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytds", reason="the synapse extra (python-tds) is not installed")

from mantissa.errors import BudgetExceeded, ConfigError, QueryError, QueryTimeout
from tests.scale.stub_tds import StubTds
from tests.scale.test_objectstore import cli_json, write_events

LAKE = "https://acmelake.dfs.core.windows.net/lake/prod"
PASSWORD = "S3cret-pass!"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    src = tmp_path / "ev.ndjson"
    write_events(src, 400, hours=3)
    cli_json(d, "ingest", "-s", "cloudtrail", str(src))
    return d


@pytest.fixture
def stub(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubTds]:
    monkeypatch.setenv("MANTISSA_SYNAPSE_PASSWORD", PASSWORD)
    s = StubTds("mantissa_reader", PASSWORD, {LAKE: data_dir / "lake"})
    yield s
    s.close()


def make_engine(data_dir: Path, stub: StubTds, **kw: Any) -> Any:
    from mantissa.runtime import Runtime

    opts: dict[str, Any] = {
        "server": "127.0.0.1",
        "port": stub.port,
        "user": "mantissa_reader",
        "encrypt": False,
        "lake_url": LAKE,
        "timeout_secs": 10,
        "login_timeout_secs": 5,
    }
    opts.update(kw)
    return Runtime(data_dir).make_engine("synapse", **opts)


@pytest.fixture
def engine(data_dir: Path, stub: StubTds) -> Iterator[Any]:
    eng = make_engine(data_dir, stub)
    eng.register()
    stub.batches.clear()
    yield eng
    eng.close()


def duck(data_dir: Path, sql: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
    from mantissa.runtime import Runtime

    return Runtime(data_dir).make_engine("duckdb").execute(sql, params).rows


def test_query_matches_duckdb_in_tsql(engine: Any, stub: StubTds, data_dir: Path) -> None:
    sql = (
        "SELECT user, count(*) AS n, min(event_time) AS first_seen, avg(length(user)) AS avg_len "
        "FROM cloudtrail WHERE event_time >= $since AND eventName <> $skip "
        "GROUP BY user ORDER BY n DESC, user LIMIT 20"
    )
    params = {"since": dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC), "skip": "ListBuckets"}
    res = engine.execute(sql, params)
    assert res.rows == duck(data_dir, sql, params) and len(res.rows) == 20
    assert res.rows[0][2].tzinfo is not None  # DATETIME2 comes back as aware UTC
    db, batch = stub.batches[-1]
    assert db == "mantissa"
    assert batch.startswith("SELECT TOP 20 [user]")  # T-SQL: TOP, bracket-quoted identifiers
    assert "[year]" in batch  # partition pruning → filepath() folder elimination
    assert stub.logins[-1]["user"] == "mantissa_reader" and stub.logins[-1]["app"] == "mantissa"
    g = engine.execute(
        "SELECT year, month, day, hour, count(*) AS n FROM cloudtrail GROUP BY 1, 2, 3, 4 "
        "ORDER BY 1, 2, 3, 4"
    )
    assert [r[3] for r in g.rows] == [0, 1, 2]  # GROUP BY ordinals rewritten for T-SQL
    assert "GROUP BY [year], [month]" in stub.batches[-1][1]


def test_register_views_idempotently(data_dir: Path, stub: StubTds) -> None:
    eng = make_engine(data_dir, stub)
    first = eng.register()
    assert {"object": "mantissa", "action": "created database"} in first
    assert {"object": "mantissa.dbo.cloudtrail", "action": "created view"} in first
    again = eng.register()
    assert not any(a["action"].startswith("created") for a in again)
    ddl = next(b for d, b in stub.batches if "OPENROWSET" in b and "[cloudtrail]" in b)
    assert f"BULK '{LAKE}/logs/cloudtrail/year=*/month=*/day=*/hour=*/*.parquet'" in ddl
    assert ddl.startswith("CREATE OR ALTER VIEW [dbo].[cloudtrail]")
    assert ("mantissa", "events") in stub.views
    sql = "SELECT source, count(*) AS n FROM events GROUP BY source"
    assert eng.execute(sql).rows == duck(data_dir, sql)


def test_login_and_missing_objects_are_explained(
    data_dir: Path, stub: StubTds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANTISSA_SYNAPSE_PASSWORD", "wrong")
    with pytest.raises(QueryError) as ei:
        make_engine(data_dir, stub).execute("SELECT count(*) FROM cloudtrail")
    assert "18456" in str(ei.value) and "MANTISSA_SYNAPSE_PASSWORD" in (ei.value.hint or "")
    assert "wrong" not in str(ei.value) + (ei.value.hint or "")  # the secret never leaks
    monkeypatch.setenv("MANTISSA_SYNAPSE_PASSWORD", PASSWORD)
    with pytest.raises(QueryError) as ei:  # database not created yet
        make_engine(data_dir, stub).execute("SELECT count(*) FROM cloudtrail")
    assert "4060" in str(ei.value) and "lake register --engine synapse" in (ei.value.hint or "")
    monkeypatch.delenv("MANTISSA_SYNAPSE_PASSWORD")
    with pytest.raises(ConfigError, match="password"):
        make_engine(data_dir, stub).execute("SELECT count(*) FROM cloudtrail")


def test_missing_view_and_budget(engine: Any, stub: StubTds, data_dir: Path) -> None:
    del stub.views[("mantissa", "cloudtrail")]
    with pytest.raises(QueryError) as ei:
        engine.execute("SELECT count(*) FROM cloudtrail")
    assert "208" in str(ei.value) and "lake register --engine synapse" in (ei.value.hint or "")
    capped = make_engine(data_dir, stub, max_query_bytes=10)
    with pytest.raises(BudgetExceeded, match="bytes in 3 files"):
        capped.execute("SELECT count(*) FROM cloudtrail")
    est = engine.estimate_cost("SELECT count(*) FROM cloudtrail")
    assert est.files == 3 and est.price_usd == pytest.approx(10 * 1024 * 1024 / 1e12 * 5)


def test_timeout(engine: Any, stub: StubTds, data_dir: Path) -> None:
    stub.delay_secs = 3.0
    slow = make_engine(data_dir, stub, timeout_secs=1.0)
    with pytest.raises(QueryTimeout):
        slow.execute("SELECT count(*) AS n FROM cloudtrail")
    stub.delay_secs = 0
    assert slow.execute("SELECT count(*) AS n FROM cloudtrail").rows == [[400]]


def test_register_needs_an_https_lake(data_dir: Path, stub: StubTds) -> None:
    with pytest.raises(ConfigError, match="ADLS"):
        make_engine(data_dir, stub, lake_url=None).register()


def test_engines_check(engine: Any, stub: StubTds) -> None:
    from mantissa.engines.check import run_checks

    out = run_checks(engine.storage, engine, since=None)
    assert out["ok"], out
    assert any(
        c["check"] == "engine sees cloudtrail" and "3 partitions" in c["detail"]
        for c in out["checks"]
    )


def test_cli_register_check_and_query(data_dir: Path, stub: StubTds) -> None:
    """From mantissa.yaml: the password only in the environment, never in the file."""
    (data_dir / "mantissa.yaml").write_text(
        "engine:\n  type: synapse\n  server: 127.0.0.1\n"
        f"  port: {stub.port}\n  user: mantissa_reader\n  encrypt: false\n  lake_url: {LAKE}\n"
    )
    out = cli_json(data_dir, "lake", "register", "--engine", "synapse")
    assert {"object": "mantissa.dbo.cloudtrail", "action": "created view"} in out["actions"]
    check = cli_json(data_dir, "engines", "check", "--since", "all")
    assert check["ok"] and check["engine"] == "synapse", check
    rows = cli_json(data_dir, "query", "--sql", "SELECT count(*) AS n FROM cloudtrail")
    assert rows["rows"] == [[400]]
    q = cli_json(data_dir, "query", "how many cloudtrail events by user")
    assert q["sql"] and q["rows"] == []  # the data is older than the question's 7 days
    assert "GROUP BY [user]" in stub.batches[-1][1]


def _certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it: (ca, chain, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return b.sign(signer, hashes.SHA256())

    ca_key, srv_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = cert("mantissa test CA", ca_key, "mantissa test CA", ca_key, True)
    srv = cert("127.0.0.1", srv_key, "mantissa test CA", ca_key, False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "chain.pem").write_bytes(srv.public_bytes(pem) + ca.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem"


def test_tls_with_certificate_validation(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default path: TLS inside TDS (handshake in PRELOGIN packets), the server's
    certificate checked against ``cafile`` and the host name."""
    pytest.importorskip("OpenSSL", reason="pyOpenSSL (the synapse extra) is not installed")
    monkeypatch.setenv("MANTISSA_SYNAPSE_PASSWORD", PASSWORD)
    ca, chain, key = _certificates(tmp_path)
    tls = StubTds("mantissa_reader", PASSWORD, {LAKE: data_dir / "lake"}, tls=(chain, key))
    try:
        eng = make_engine(data_dir, tls, encrypt=True, cafile=str(ca))
        eng.register()
        assert eng.execute("SELECT count(*) AS n FROM cloudtrail").rows == [[400]]
        assert tls.tls_sessions >= 2 and tls.logins[-1]["user"] == "mantissa_reader"
        eng.close()
        # a certificate from a CA the client does not trust is refused
        (tmp_path / "other").mkdir()
        other_ca, _, _ = _certificates(tmp_path / "other")
        with pytest.raises(QueryError, match="certificate verify failed"):
            make_engine(data_dir, tls, encrypt=True, cafile=str(other_ca)).execute(
                "SELECT count(*) FROM cloudtrail"
            )
        # and a client that cannot encrypt is turned away, as Synapse does
        with pytest.raises(QueryError, match="encryption"):
            make_engine(data_dir, tls, encrypt=False).execute("SELECT count(*) FROM cloudtrail")
    finally:
        tls.close()


def test_encryption_refused_by_a_server_without_tls(data_dir: Path, stub: StubTds) -> None:
    """Without ``encrypt: false`` the driver insists on TLS; this stub offers none."""
    pytest.importorskip("OpenSSL", reason="pyOpenSSL (the synapse extra) is not installed")
    with pytest.raises(QueryError) as ei:
        make_engine(data_dir, stub, encrypt=True).execute("SELECT count(*) FROM cloudtrail")
    assert "encryption" in str(ei.value) and "encrypt: false" in (ei.value.hint or "")


@pytest.mark.slow
def test_detections_on_synapse_match_duckdb(
    tmp_path: Path, stub: StubTds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CloudTrail and Okta rule libraries over their sample events: same alerts on both.

    Detections reach Synapse as T-SQL rendered from the rule trees (``execute_tree``);
    the stub runs it on DuckDB, so this checks the rendering round-trips to the same
    rows, not Synapse's own semantics.
    """
    import glob
    import json
    import shutil

    import yaml

    duck_dir, syn_dir = tmp_path / "duck", tmp_path / "syn"
    duck_dir.mkdir()
    for source in ("cloudtrail", "okta"):
        events = []
        for f in sorted(glob.glob(f"src/mantissa/rules/sigma/{source}/*.samples.yml")):
            doc = yaml.safe_load(Path(f).read_text())
            events += [e for e in doc.get("match") or [] if isinstance(e, dict)]
        src = tmp_path / f"{source}.ndjson"
        src.write_text("".join(json.dumps(e, default=str) + "\n" for e in events))
        cli_json(duck_dir, "ingest", "-s", source, str(src))
    window = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-11-29T00:00:00Z")
    expected = cli_json(duck_dir, "detect", "run", *window)
    syn_dir.mkdir()
    shutil.copytree(duck_dir / "lake", syn_dir / "lake")
    stub.storage[LAKE] = syn_dir / "lake"
    eng = make_engine(syn_dir, stub)
    eng.register()
    monkeypatch.setattr("mantissa.runtime.Runtime.make_engine", lambda self, *a, **k: eng)
    got = cli_json(syn_dir, "detect", "run", *window)

    def key(alerts: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return sorted((a["rule_id"], a["count"]) for a in alerts)

    assert len(expected) >= 30 and {a["source"] for a in expected} == {"cloudtrail", "okta"}
    assert key(got) == key(expected)
    assert any("DATEDIFF_BIG(SECOND" in b for _, b in stub.batches)
    assert any(
        "OPENJSON(" in b for _, b in stub.batches
    )  # Okta's target[] matching  # T-SQL from the dialect layer


def test_percentile_question_runs_in_tsql(tmp_path: Path, stub: StubTds) -> None:
    """A question's plan renders in T-SQL directly (APPROX_PERCENTILE_CONT ... WITHIN
    GROUP), not transpiled from DuckDB's quantile_cont; the answer equals DuckDB's."""
    import time

    now = int(time.time())
    lines = [
        f"2 123456789012 eni-1 10.0.0.{i} 10.0.1.9 4{i:03d} 443 6 10 {1000 * (i + 1)} "
        f"{now - 120} {now - 60} ACCEPT OK"
        for i in range(40)
    ]
    src = tmp_path / "flows.log"
    src.write_text("\n".join(lines) + "\n")
    duck_dir = tmp_path / "duck"
    duck_dir.mkdir()
    cli_json(duck_dir, "ingest", "-s", "vpc_flow", str(src))
    expected = cli_json(duck_dir, "query", "p95 bytes per flow today")
    assert expected["rows"], expected
    (duck_dir / "mantissa.yaml").write_text(
        "engine:\n  type: synapse\n  server: 127.0.0.1\n"
        f"  port: {stub.port}\n  user: mantissa_reader\n  encrypt: false\n  lake_url: {LAKE}\n"
    )
    stub.storage[LAKE] = duck_dir / "lake"
    cli_json(duck_dir, "lake", "register", "--engine", "synapse")
    got = cli_json(duck_dir, "query", "p95 bytes per flow today")
    assert got["rows"] == expected["rows"], (got, expected)
    assert "APPROX_PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY [bytes])" in stub.batches[-1][1]


def test_lake_https_url_from_azure_lake_urls() -> None:
    from mantissa.engines.synapse import lake_https_url

    assert (
        lake_https_url("az://lake/prod/", "acct") == "https://acct.dfs.core.windows.net/lake/prod"
    )
    assert (
        lake_https_url("abfss://lake@acct.dfs.core.windows.net/prod", None)
        == "https://acct.dfs.core.windows.net/lake/prod"
    )
    assert lake_https_url("az://lake/prod", None) is None  # no account: register says how
    assert lake_https_url("/var/lib/mantissa/lake", "acct") is None
