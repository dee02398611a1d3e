"""Demo VPC Flow Logs: default-format files per 5 minutes, with planted scans and exfil.

Planted: an SSH/RDP port scan from an attacker (many REJECTs across ports), then a large
outbound transfer from one instance to the attacker's address.
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Scenario

HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
SERVERS = [(f"eni-0a1b2c3d4e5f6{i:04d}", f"10.0.1.{20 + i}") for i in range(8)]
SERVICES = [(443, 6), (443, 6), (443, 6), (5432, 6), (6379, 6), (53, 17), (8080, 6)]


def lines(sc: Scenario) -> list[tuple[int, str]]:
    rng = sc.rng
    acct = sc.account_id
    out: list[tuple[int, str]] = []
    start = int(sc.start.timestamp())
    end = int(sc.end.timestamp())
    for t in range(start, end, 120):
        for _ in range(rng.randint(2, 6)):
            eni, ip = rng.choice(SERVERS)
            port, proto = rng.choice(SERVICES)
            peer = sc.person().ip if port in (443, 8080) else rng.choice(SERVERS)[1]
            pk = rng.randint(4, 400)
            out.append(
                (
                    t,
                    f"2 {acct} {eni} {peer} {ip} {rng.randint(32768, 60999)} {port} "
                    f"{proto} {pk} {pk * rng.randint(60, 1400)} {t} {t + 60} ACCEPT OK",
                )
            )
    # planted: port scan against the first server
    scan = int(sc.recent(7).timestamp())
    eni, ip = SERVERS[0]
    for i, port in enumerate(
        [
            21,
            22,
            23,
            25,
            80,
            110,
            135,
            139,
            443,
            445,
            1433,
            3306,
            3389,
            5432,
            5900,
            6379,
            8080,
            8443,
            9200,
            27017,
        ]
    ):
        out.append(
            (
                scan + i,
                f"2 {acct} {eni} {ATTACKER_IPS[3]} {ip} {40000 + i} {port} 6 1 44 "
                f"{scan + i} {scan + i + 60} REJECT OK",
            )
        )
    # planted: exfiltration, ~2.4 GB out to the attacker in 10 minutes
    ex = int(sc.recent(4).timestamp())
    eni, ip = SERVERS[3]
    for i in range(10):
        t = ex + 60 * i
        out.append(
            (
                t,
                f"2 {acct} {eni} {ip} {ATTACKER_IPS[0]} 51515 443 6 180000 "
                f"{240_000_000 + i} {t} {t + 60} ACCEPT OK",
            )
        )
    return out


@generator("vpc_flow")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Flow log files as S3 delivers them: gzip, header line, one file per hour."""
    base = out_dir / "vpc_flow"
    base.mkdir(parents=True, exist_ok=True)
    hours: dict[str, list[str]] = {}
    for t, line in sorted(lines(sc)):
        key = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y%m%dT%H00Z")
        hours.setdefault(key, []).append(line)
    files = []
    for h, ls in hours.items():
        f = base / f"{sc.account_id}_vpcflowlogs_us-east-1_fl-0abc_{h}_demo.log.gz"
        with gzip.open(f, "wt") as fh:
            fh.write(HEADER + "\n" + "\n".join(ls) + "\n")
        files.append(f)
    return files
