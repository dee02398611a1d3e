"""Demo CrowdStrike: FDR telemetry from the laptops and Event Streams detections.

Everyday: process launches, DNS lookups and outbound connections on each person's laptop.
Planted: on mallory's laptop Word spawns an encoded PowerShell that beacons to the
attacker, dumps LSASS with comsvcs.dll (Falcon detects and kills it), and the attacker
tries remote logons to a file server.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Person, Scenario

CID = "c0ffee00c0ffee00c0ffee00c0ffee00"
PROCS = [
    ("chrome.exe", '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"'),
    ("outlook.exe", '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"'),
    ("teams.exe", '"C:\\Users\\u\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe"'),
    ("git.exe", "git fetch --all"),
    ("code.exe", '"C:\\Program Files\\Microsoft VS Code\\Code.exe"'),
]
DOMAINS = ["www.google.com", "outlook.office365.com", "github.com", "slack.com", "api.example.com"]


def _host(p: Person) -> str:
    return f"{p.department[:3]}-laptop-{p.name}"


def _fdr(sc: Scenario, t: dt.datetime, p: Person, name: str, **fields: Any) -> dict[str, Any]:
    host = _host(p)
    aid = f"{sc.people.index(p):032x}"
    rec = {
        "event_simpleName": name,
        "name": f"{name}V5",
        "aid": aid,
        "aip": p.ip,
        "cid": CID,
        "id": str(uuid.UUID(int=sc.rng.getrandbits(128))),
        "timestamp": str(int(t.timestamp() * 1000)),
        "ContextTimeStamp": f"{t.timestamp():.3f}",
        "event_platform": "Win",
        "ConfigBuild": "1007.3.0017806.1",
        "ComputerName": host,
    }
    rec.update({k: str(v) for k, v in fields.items()})
    return rec


def events(sc: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = sc.rng
    fdr: list[dict[str, Any]] = []
    for _ in range(sc.days * len(sc.people) * 8):
        p = sc.person()
        t = sc.work_time()
        kind = rng.random()
        if kind < 0.4:
            img, cmd = rng.choice(PROCS)
            fdr.append(
                _fdr(
                    sc,
                    t,
                    p,
                    "ProcessRollup2",
                    UserName=p.name,
                    CommandLine=cmd,
                    ImageFileName=f"\\Device\\HarddiskVolume3\\{img}",
                    ParentBaseFileName="explorer.exe",
                )
            )
        elif kind < 0.75:
            fdr.append(_fdr(sc, t, p, "DnsRequest", DomainName=rng.choice(DOMAINS), RequestType=1))
        else:
            fdr.append(
                _fdr(
                    sc,
                    t,
                    p,
                    "NetworkConnectIP4",
                    LocalAddressIP4="10.20.30.40",
                    LocalPort=rng.randrange(49152, 65535),
                    RemoteAddressIP4=f"140.82.{rng.randrange(256)}.{rng.randrange(256)}",
                    RemotePort=443,
                    Protocol=6,
                )
            )
    mallory = sc.people[10]
    t0 = sc.recent(4.6)
    fdr.append(
        _fdr(
            sc,
            t0,
            mallory,
            "ProcessRollup2",
            UserName=mallory.name,
            ParentBaseFileName="WINWORD.EXE",
            ImageFileName="\\Device\\HarddiskVolume3\\Windows\\System32\\"
            "WindowsPowerShell\\v1.0\\powershell.exe",
            CommandLine="powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBi",
        )
    )
    fdr.append(
        _fdr(
            sc,
            t0 + dt.timedelta(seconds=5),
            mallory,
            "DnsRequest",
            DomainName="cdn-update.badcdn.example",
            RequestType=1,
        )
    )
    for i in range(6):
        fdr.append(
            _fdr(
                sc,
                t0 + dt.timedelta(seconds=10 + 60 * i),
                mallory,
                "NetworkConnectIP4",
                LocalAddressIP4="10.20.30.40",
                LocalPort=50000 + i,
                RemoteAddressIP4=ATTACKER_IPS[0],
                RemotePort=443,
                Protocol=6,
            )
        )
    for i in range(5):
        rec = _fdr(
            sc,
            t0 + dt.timedelta(minutes=12, seconds=8 * i),
            mallory,
            "UserLogonFailed2",
            UserName="administrator",
            LogonDomain="CORP",
            LogonType=3,
            RemoteAddressIP4="10.20.30.40",
        )
        rec["ComputerName"] = "fs-01"
        fdr.append(rec)
    host = _host(mallory)
    t1 = t0 + dt.timedelta(minutes=8)
    detections = [
        {
            "metadata": {
                "customerIDString": CID,
                "offset": 90001 + i,
                "eventType": et,
                "eventCreationTime": int((t1 + dt.timedelta(seconds=i)).timestamp() * 1000),
                "version": "1.0",
            },
            "event": ev,
        }
        for i, (et, ev) in enumerate(
            [
                (
                    "DetectionSummaryEvent",
                    {
                        "ComputerName": host,
                        "UserName": mallory.name,
                        "LocalIP": "10.20.30.40",
                        "DetectName": "Credential Dumping",
                        "DetectDescription": "A process attempted to dump LSASS memory using comsvcs.dll.",
                        "Severity": 4,
                        "SeverityName": "High",
                        "FileName": "rundll32.exe",
                        "CommandLine": "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 "
                        "C:\\Users\\Public\\l.dmp full",
                        "Tactic": "Credential Access",
                        "Technique": "OS Credential Dumping",
                        "PatternDispositionFlags": {"Detect": True, "KillProcess": True},
                        "ProcessStartTime": int(t1.timestamp()),
                        "ProcessId": 38684386611,
                        "SensorId": f"{sc.people.index(mallory):032x}",
                    },
                ),
                (
                    "IncidentSummaryEvent",
                    {
                        "IncidentStartTime": int(t0.timestamp()),
                        "IncidentEndTime": int(t1.timestamp()),
                        "FineScore": 82,
                        "State": "open",
                        "LateralMovement": 1,
                        "FalconHostLink": "https://falcon.crowdstrike.com/crowdscore/incidents/demo",
                    },
                ),
            ]
        )
    ]
    return fdr, detections


@generator("crowdstrike")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """FDR batches (NDJSON) and the Event Streams output a collector saved (pretty-printed)."""
    base = out_dir / "crowdstrike"
    base.mkdir(parents=True, exist_ok=True)
    fdr, detections = events(sc)
    f1 = base / "fdr-data.json"
    f1.write_text("".join(json.dumps(r) + "\n" for r in sorted(fdr, key=lambda r: r["timestamp"])))
    f2 = base / "event-stream.json"
    f2.write_text("\n".join(json.dumps(d, indent=4) for d in detections) + "\n")
    return [f1, f2]
