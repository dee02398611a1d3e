"""Ingest benchmark for the SaaS / identity / endpoint sources: events/s per source.

    python bench/ingest_saas.py [--events 100000] [--sources duo,github] [--keep]

For each source, generates N realistic records in the vendor's delivery format (NDJSON
of API records or audit events; Salesforce as an EventLogFile CSV body; Google Workspace
as activities with one or two events each), then runs the full CLI path
``mantissa ingest --source S FILE --format json`` in a subprocess (framing, JSON
transform, normalization, dead-letter checks, dedup, atomic Parquet publish) and prints
rows/s, MB/s and the peak RSS of the run.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"
T0 = 1_764_000_000  # 2025-11-24
SPAN = 3 * 86400


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _load(path: str) -> list[dict[str, Any]]:
    """Records of a fixture file (JSON document with a list, or NDJSON)."""
    text = (FIX / path).read_text()
    try:
        doc = json.loads(text)
    except ValueError:
        return [json.loads(x) for x in text.splitlines() if x.strip().startswith("{")]
    if isinstance(doc, list):
        return doc
    for key in ("items", "entries", "records"):
        if isinstance(doc.get(key), list):
            return doc[key]
    if isinstance(doc.get("response"), dict):
        return doc["response"]["authlogs"]
    return [doc]


Mut = Callable[[dict[str, Any], random.Random, int, float], None]


def _ip(rng: random.Random) -> str:
    return f"{rng.choice([198, 203, 192])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _user(rng: random.Random) -> str:
    return f"user{rng.randrange(2000)}@example.com"


def _gws(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["id"]["time"] = _iso(t)
    r["id"]["uniqueQualifier"] = str(rng.getrandbits(63))
    r["actor"]["email"] = _user(rng)
    r["ipAddress"] = _ip(rng)


def _m365(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["CreationTime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    r["Id"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r["UserId"] = _user(rng)
    r["ClientIP"] = _ip(rng)


def _duo(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["timestamp"] = int(t)
    r["isotimestamp"] = _iso(t)
    r["txid"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r["user"]["name"] = _user(rng)
    r["access_device"]["ip"] = _ip(rng)


def _cs(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["timestamp"] = str(int(t * 1000))
    r["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r["aid"] = f"{rng.getrandbits(128):032x}"
    r["aip"] = _ip(rng)


def _jamf(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["webhook"]["eventTimestamp"] = int(t * 1000)
    r["webhook"]["id"] = i
    if isinstance(r["event"].get("computer"), dict):
        r["event"]["computer"]["serialNumber"] = f"C02{rng.randrange(10**9):09d}"
        r["event"]["computer"]["ipAddress"] = _ip(rng)


def _slack(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["date_create"] = int(t)
    r["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r["actor"]["user"]["email"] = _user(rng)
    r["context"]["ip_address"] = _ip(rng)


def _github(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["@timestamp"] = r["created_at"] = int(t * 1000)
    r["_document_id"] = uuid.UUID(int=rng.getrandbits(128)).hex[:22]
    r["actor"] = f"user{rng.randrange(2000)}"
    r["actor_ip"] = _ip(rng)


def _k8s(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["requestReceivedTimestamp"] = r["stageTimestamp"] = _iso(t)
    r["auditID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r["user"]["username"] = _user(rng)
    r["sourceIPs"] = [_ip(rng)]


def _docker(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    if "timeNano" in r:
        r["time"] = int(t)
        r["timeNano"] = int(t * 1e9) + rng.randrange(10**6)
        r["Actor"]["ID"] = f"{rng.getrandbits(256):064x}"
    else:
        r["time"] = _iso(t)


def _snow(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["QUERY_ID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r["USER_NAME"] = f"USER{rng.randrange(500)}"
    key = "QUERY_START_TIME" if "QUERY_START_TIME" in r else "START_TIME"
    r[key] = time.strftime("%Y-%m-%d %H:%M:%S.000 +0000", time.gmtime(t))


def _sf(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["TIMESTAMP"] = time.strftime("%Y%m%d%H%M%S", time.gmtime(t)) + ".000"
    r["TIMESTAMP_DERIVED"] = _iso(t)
    r["REQUEST_ID"] = f"{rng.getrandbits(64):x}"
    r["USER_NAME"] = _user(rng)
    r["SOURCE_IP"] = r["CLIENT_IP"] = _ip(rng)


def _op(r: dict[str, Any], rng: random.Random, i: int, t: float) -> None:
    r["timestamp"] = _iso(t)
    r["uuid"] = f"{rng.getrandbits(130):026X}"[:26]
    r["target_user"]["email"] = _user(rng)
    r["client"]["ip_address"] = _ip(rng)


# source → (fixture with templates, mutator, file suffix)
PLAN: dict[str, tuple[str, Mut, str]] = {
    "google_workspace": ("google_workspace/activities-list.json", _gws, "ndjson"),
    "microsoft_365": ("microsoft_365/content-blob.json", _m365, "ndjson"),
    "duo": ("duo/authlogs-response.json", _duo, "ndjson"),
    "crowdstrike": ("crowdstrike/fdr.ndjson", _cs, "ndjson"),
    "jamf": ("jamf/webhooks.ndjson", _jamf, "ndjson"),
    "slack_audit": ("slack_audit/audit-logs-response.json", _slack, "ndjson"),
    "github": ("github/org-audit-log-api.json", _github, "ndjson"),
    "kubernetes": ("kubernetes/webhook-eventlist.json", _k8s, "ndjson"),
    "docker": ("docker/events.log", _docker, "log"),
    "snowflake": ("snowflake/query_and_access_history.ndjson", _snow, "ndjson"),
    "salesforce": ("salesforce/eventlogfile-login.csv", _sf, "csv"),
    "onepassword": ("onepassword/signinattempts-response.json", _op, "ndjson"),
}


def generate(source: str, path: Path, n: int, seed: int = 1) -> None:
    fixture, mutate, kind = PLAN[source]
    rng = random.Random(seed)
    if kind == "csv":
        with open(FIX / fixture, newline="") as fh:
            templates = list(csv.DictReader(fh))
        with open(path, "w", newline="") as out:
            w = csv.DictWriter(out, fieldnames=list(templates[0]), quoting=csv.QUOTE_ALL)
            w.writeheader()
            for i in range(n):
                r = dict(templates[i % len(templates)])
                mutate(r, rng, i, T0 + (i * SPAN) / n)
                w.writerow(r)
        return
    templates = [t for t in _load(fixture) if _usable(source, t)]
    with open(path, "w") as out:
        for i in range(n):
            r = copy.deepcopy(templates[i % len(templates)])
            mutate(r, rng, i, T0 + (i * SPAN) / n)
            out.write(json.dumps(r, separators=(",", ":")) + "\n")


def _usable(source: str, rec: dict[str, Any]) -> bool:
    """Templates the mutator can vary (skip the fixtures' deliberately bad records)."""
    need = {
        "crowdstrike": "event_simpleName",
        "jamf": "event",
        "docker": "time",
        "snowflake": "QUERY_ID",
        "duo": "access_device",
        "onepassword": "target_user",
        "slack_audit": "context",
        "kubernetes": "user",
    }.get(source)
    if source == "jamf":
        return (
            isinstance(rec.get("event"), dict)
            and bool(rec["event"])
            and "webhookEvent" in rec.get("webhook", {})
        )
    return need is None or need in rec


def run(source: str, path: Path, data_dir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mantissa.cli.main", "--data-dir", str(data_dir), "ingest",
             "--source", source, str(path), "--format", "json"],
            stdout=out, stderr=err,
        )  # fmt: skip
        # this child's own peak RSS (RUSAGE_CHILDREN would be the max over all runs)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        secs = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{source}: ingest failed ({proc.returncode}): {stderr[-2000:]}")
    summary = json.loads(stdout)
    return {
        "source": source,
        "rows": summary["events"],
        "rejected": summary["rejected"],
        "seconds": secs,
        "mb": path.stat().st_size / 1e6,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="records per source")
    ap.add_argument("--sources", default=",".join(PLAN), help="comma-separated source ids")
    ap.add_argument("--keep", action="store_true", help="keep the generated files and lakes")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mantissa-bench-saas-"))
    results = []
    try:
        print(
            f"{'source':<18}{'rows':>10}{'rej':>6}{'MB':>8}{'sec':>8}{'rows/s':>10}{'MB/s':>8}"
            f"{'peak RSS':>10}"
        )
        for source in args.sources.split(","):
            path = work / f"{source}.{PLAN[source][2]}"
            generate(source, path, args.events)
            r = run(source, path, work / f"lake-{source}")
            results.append(r)
            print(
                f"{source:<18}{r['rows']:>10}{r['rejected']:>6}{r['mb']:>8.1f}{r['seconds']:>8.2f}"
                f"{r['rows'] / r['seconds']:>10,.0f}{r['mb'] / r['seconds']:>8.1f}"
                f"{r['peak_rss_mb']:>9.0f}M",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(work / f"lake-{source}", ignore_errors=True)
                os.unlink(path)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    total_rows = sum(r["rows"] for r in results)
    total_s = sum(r["seconds"] for r in results)
    if total_s:
        print(
            f"{'all':<18}{total_rows:>10}{'':>6}{sum(r['mb'] for r in results):>8.1f}"
            f"{total_s:>8.2f}{total_rows / total_s:>10,.0f}"
        )


if __name__ == "__main__":
    main()
