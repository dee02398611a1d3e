"""The lake in GCS (gcp-storage-emulator) and Azure Blob (Azurite) on 127.0.0.1.

Each store gets the same checks as S3 (tests/scale/test_objectstore.py): ingest, query
(DuckDB reading through the store's fsspec filesystem), stats, compaction, a writer
killed mid-ingest (nothing uncommitted visible, the re-run adds no duplicates), and the
bad-input cases: a wrong bucket, a denied permission, a file in the lake that is not
Parquet. Credentials come the way the SDKs read them: ``STORAGE_EMULATOR_HOST`` for the
GCS emulator (anonymous), ``AZURE_STORAGE_CONNECTION_STRING`` for Azurite.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.scale.conftest import free_port, wait_port
from tests.scale.test_compact import _check_compaction
from tests.scale.test_objectstore import cli_json, write_events

# Azurite's well-known development account (documented in Azurite's README).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_binary() -> str | None:
    """Azurite's blob server: $MANTISSA_AZURITE, PATH, or scripts/test-deps.sh's cache."""
    cands = [
        os.environ.get("MANTISSA_AZURITE", ""),
        shutil.which("azurite-blob") or "",
        str(
            Path(os.environ.get("MANTISSA_AZURITE_DIR", Path.home() / ".cache/mantissa-azurite"))
            / "node_modules/.bin/azurite-blob"
        ),
    ]
    return next((c for c in cands if c and os.access(c, os.X_OK)), None)


def azure_conn(port: int, key: str = AZURITE_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator (PyPI) serving the GCS JSON API on a free local port."""
    pytest.importorskip("gcsfs", reason="the gcp extra (gcsfs) is not installed")
    pytest.importorskip(
        "gcp_storage_emulator",
        reason="gcp-storage-emulator is not installed: pip install -e '.[dev]'",
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gcp_storage_emulator", "start"),
            *("--host", "127.0.0.1", "--port", str(port), "--in-memory"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Azurite's blob service (npm, installed by scripts/test-deps.sh) on a free local port."""
    pytest.importorskip("adlfs", reason="the azure extra (adlfs) is not installed")
    binary = azurite_binary()
    if binary is None:
        pytest.skip("Azurite is not installed: run scripts/test-deps.sh (npm install azurite)")
    port = free_port()
    proc = subprocess.Popen(
        [
            *(binary, "--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--location", str(tmp_path_factory.mktemp("azurite")), "--silent"),
            # telemetry would call out to the internet; the tests stay on 127.0.0.1
            *("--disableTelemetry", "--skipApiVersionCheck", "--loose"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, timeout=60)
        yield port
    finally:
        _stop(proc)


@dataclass
class CloudLake:
    kind: str  # "gcs" | "azure"
    scheme: str
    bucket: str
    data: Path

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/prod/lake"

    def storage(self) -> Any:
        from mantissa.lake.objectstore import ObjectStorage

        return ObjectStorage(self.url)

    def keys(self, prefix: str = "") -> list[str]:
        """Every object under the lake's ``prefix`` (data, markers, strays), as lake keys."""
        st = self.storage()
        base = f"{self.bucket}/prod/lake/{prefix}".rstrip("/")
        try:
            found = st.fs.find(base)
        except FileNotFoundError:
            return []
        root = f"{self.bucket}/prod/lake/"
        return [p.strip("/").removeprefix(root) for p in found]


def _configure(kind: str, mp: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """Point the process (and its children) at the emulator; returns the URL scheme."""
    if kind == "gcs":
        mp.setenv("STORAGE_EMULATOR_HOST", request.getfixturevalue("gcs_emulator"))
        mp.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        return "gs"
    port = request.getfixturevalue("azurite")
    mp.setenv("AZURE_STORAGE_CONNECTION_STRING", azure_conn(port))
    return "az"


@pytest.fixture(params=["gcs", "azure"])
def cloud(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CloudLake:
    """A fresh bucket (GCS) or container (Azure) and a data dir whose lake is in it."""
    scheme = _configure(request.param, monkeypatch, request)
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    data = tmp_path / "data"
    data.mkdir()
    lake = CloudLake(request.param, scheme, bucket, data)
    lake.storage().fs.mkdir(bucket)  # creates the bucket / container
    (data / "mantissa.yaml").write_text(f'lake:\n  url: "{lake.url}"\n')
    return lake


def cli_error(data: Path, *args: str) -> str:
    """Run the CLI in-process, expecting a failure; returns what it printed."""
    from mantissa.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["--data-dir", str(data), *args])
    text = " ".join((out.getvalue() + err.getvalue()).split())
    assert code != 0, text
    return text


def cli_report(data: Path, *args: str) -> Any:
    """Run a CLI command that may exit non-zero (a failed check) and parse its JSON."""
    from mantissa.cli.main import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        run(["--data-dir", str(data), *args, "--format", "json"])
    return json.loads(buf.getvalue())


def _count(data: Path) -> list[Any]:
    return cli_json(
        data, "query", "--sql", "SELECT count(*), count(DISTINCT event_id) FROM cloudtrail"
    )["rows"][0]


def test_ingest_query_stats(cloud: CloudLake, tmp_path: Path) -> None:
    src = tmp_path / "ev.ndjson"
    write_events(src, 1200, hours=3)
    assert cli_json(cloud.data, "ingest", "-s", "cloudtrail", str(src))["events"] == 1200
    keys = cloud.keys("logs/cloudtrail")
    assert len([k for k in keys if k.endswith(".parquet")]) == 3
    assert len([k for k in keys if "/_commits/" in k]) == 3
    assert not list(cloud.data.rglob("*.parquet")), "no lake file may stay on the local disk"
    q = cli_json(
        cloud.data,
        "query",
        "--sql",
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d, min(event_time) AS t "
        "FROM cloudtrail WHERE eventName = 'DeleteBucket'",
    )
    assert q["rows"] == [[172, 172, "2026-03-01T00:00:00Z"]]
    again = cli_json(cloud.data, "ingest", "-s", "cloudtrail", str(src))
    assert again["events"] == 0 and again["duplicates"] == 1200
    (ct,) = [s for s in cli_json(cloud.data, "stats") if s["table"] == "cloudtrail"]
    assert ct["rows"] == 1200 and ct["partitions"] == 3 and ct["max_files_per_partition"] == 1


@pytest.mark.slow
def test_compaction(cloud: CloudLake, tmp_path: Path) -> None:
    res = _check_compaction(cloud.data, tmp_path)
    assert res["files_removed"] == 10
    data = [k for k in cloud.keys("logs/cloudtrail") if k.endswith(".parquet")]
    assert len(data) == 2, "the merged-away small files are deleted from the store"
    markers = [k for k in cloud.keys("logs/cloudtrail") if "/_commits/" in k]
    assert len(markers) == 2, "spent markers are deleted, one marker per merged file stays"


@pytest.mark.slow
def test_killed_writer_then_rerun(cloud: CloudLake, tmp_path: Path) -> None:
    n = 40_000
    src = tmp_path / "big.ndjson"
    write_events(src, n, hours=4)
    with open(cloud.data / "mantissa.yaml", "a") as fh:
        fh.write("ingest:\n  batch_bytes: 1000000\n")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mantissa.cli.main", "--data-dir", str(cloud.data)),
            *("ingest", "-s", "cloudtrail", str(src), "-f", "json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if sum(1 for k in cloud.keys("logs/") if "/_commits/" in k) >= 6:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    got, distinct = _count(cloud.data)
    assert got == distinct and 0 < got < n, "the kill should land mid-ingest"
    cli_json(cloud.data, "ingest", "-s", "cloudtrail", str(src))
    assert _count(cloud.data) == [n, n]


def test_uncommitted_and_foreign_files_are_invisible(cloud: CloudLake, tmp_path: Path) -> None:
    src = tmp_path / "ev.ndjson"
    write_events(src, 300, hours=1)
    cli_json(cloud.data, "ingest", "-s", "cloudtrail", str(src))
    st = cloud.storage()
    (key,) = [k for k in cloud.keys("logs/cloudtrail") if k.endswith(".parquet")]
    part = key.rsplit("/", 1)[0]
    body = st.fs.cat_file(f"{cloud.bucket}/prod/lake/{key}")
    # a killed writer's upload (never committed) and a stray non-Parquet object
    st.fs.pipe_file(f"{cloud.bucket}/prod/lake/{part}/ffff-orphan.parquet", body)
    st.fs.pipe_file(f"{cloud.bucket}/prod/lake/{part}/README.txt", b"not data")
    assert _count(cloud.data) == [300, 300]


def test_wrong_bucket_then_fixed(cloud: CloudLake, tmp_path: Path) -> None:
    src = tmp_path / "ev.ndjson"
    write_events(src, 100, hours=1)
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    (cloud.data / "mantissa.yaml").write_text(f'lake:\n  url: "{cloud.scheme}://{missing}/x"\n')
    what = "bucket" if cloud.kind == "gcs" else "container"
    for args in (("ingest", "-s", "cloudtrail", str(src)), ("query", "--sql", "SELECT 1")):
        text = cli_error(cloud.data, *args)
        assert f"{cloud.scheme}://{missing}/x" in text, text
        assert f"{what} '{missing}' does not exist" in text and "fix lake.url" in text, text
    # nothing half-written: once the bucket exists the same input lands whole
    cloud.storage().fs.mkdir(missing)
    assert cli_json(cloud.data, "ingest", "-s", "cloudtrail", str(src))["events"] == 100
    assert _count(cloud.data) == [100, 100]


def test_not_parquet_in_lake(cloud: CloudLake, tmp_path: Path) -> None:
    src = tmp_path / "ev.ndjson"
    write_events(src, 200, hours=2)
    cli_json(cloud.data, "ingest", "-s", "cloudtrail", str(src))
    st = cloud.storage()
    part = next(k for k in cloud.keys("logs/cloudtrail") if k.endswith(".parquet")).rsplit("/", 1)
    junk = tmp_path / "junk.parquet"
    junk.write_text("eventTime,eventName\n2026-03-01T00:00:00Z,GetObject\n" * 20)
    bad_key = f"{part[0]}/0000-exported.parquet"
    st.publish({bad_key: junk})  # committed like a real batch: every engine would read it
    text = cli_error(cloud.data, "query", "--sql", "SELECT count(*) FROM cloudtrail")
    assert bad_key.rsplit("/", 1)[1] in text and "engines check --deep" in text, text
    check = cli_report(cloud.data, "engines", "check", "--deep")
    assert check["ok"] is False
    (files,) = [c for c in check["checks"] if c["check"] == "table cloudtrail files"]
    assert files["status"] == "error" and bad_key in files["detail"]
    assert "move them out of the lake" in files["hint"]


class _Deny(BaseHTTPRequestHandler):
    """GCS's JSON API answering 403 as documented (error.code/message/errors[].reason)."""

    def _deny(self) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": 403,
                    "message": "anonymous caller does not have storage.objects.list access "
                    "to the Google Cloud Storage bucket.",
                    "errors": [{"message": "forbidden", "domain": "global", "reason": "forbidden"}],
                }
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _deny

    def log_message(self, *args: Any) -> None:
        pass


def test_permission_denied(
    cloud: CloudLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "ev.ndjson"
    write_events(src, 50, hours=1)
    server: ThreadingHTTPServer | None = None
    if cloud.kind == "gcs":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Deny)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"127.0.0.1:{server.server_address[1]}")
        fix = "roles/storage.objectAdmin"
    else:
        port = int(os.environ["AZURE_STORAGE_CONNECTION_STRING"].split(":")[-1].split("/")[0])
        wrong = "A" * 86 + "=="  # a well-formed key Azurite rejects (SharedKey signature)
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure_conn(port, wrong))
        fix = "Storage Blob Data Contributor"
    try:
        for args in (("ingest", "-s", "cloudtrail", str(src)), ("query", "--sql", "SELECT 1")):
            text = cli_error(cloud.data, *args)
            assert f"{cloud.url}" in text and "permission denied" in text and fix in text, text
            assert "AccountKey" not in text and "A" * 20 not in text, "no secret in errors"
        check = cli_report(cloud.data, "engines", "check")
        assert check["ok"] is False and any(
            c["status"] == "error" and "permission denied" in c["detail"] for c in check["checks"]
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
