"""Demo CloudTrail: S3 log files with everyday API calls and planted attacks."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, ATTACKER_UA, Person, Scenario, iso

ROUTINE = [
    ("s3.amazonaws.com", "GetObject", True),
    ("s3.amazonaws.com", "PutObject", False),
    ("s3.amazonaws.com", "ListBuckets", True),
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("ec2.amazonaws.com", "RunInstances", False),
    ("iam.amazonaws.com", "ListUsers", True),
    ("sts.amazonaws.com", "AssumeRole", True),
    ("lambda.amazonaws.com", "ListFunctions20150331", True),
    ("kms.amazonaws.com", "Decrypt", True),
    ("cloudwatch.amazonaws.com", "GetMetricData", True),
    ("dynamodb.amazonaws.com", "DescribeTable", True),
    ("rds.amazonaws.com", "DescribeDBInstances", True),
]


def _event(
    sc: Scenario,
    t: dt.datetime,
    who: Person | None,
    source: str,
    name: str,
    ip: str,
    ua: str,
    req: Any = None,
    resp: Any = None,
    error: str | None = None,
    identity: dict[str, Any] | None = None,
    read_only: bool = True,
) -> dict[str, Any]:
    ident = identity or {
        "type": "IAMUser",
        "principalId": f"AIDA{abs(hash(who.name if who else 'x')) % 10**12:012d}",
        "arn": f"arn:aws:iam::{sc.account_id}:user/{who.name if who else 'unknown'}",
        "accountId": sc.account_id,
        "accessKeyId": f"AKIA{sc.rng.randrange(10**15):016d}",
        "userName": who.name if who else "unknown",
    }
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": iso(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": sc.rng.choice(["us-east-1", "us-east-1", "us-west-2", "eu-west-1"]),
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": req,
        "responseElements": resp,
        "requestID": str(uuid.UUID(int=sc.rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=sc.rng.getrandbits(128))),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": sc.account_id,
        "eventCategory": "Management",
    }
    if error:
        ev["errorCode"] = error
        ev["errorMessage"] = f"{error}: request was denied"
    return ev


def events(sc: Scenario, n_routine: int = 3000) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rng = sc.rng
    for _ in range(n_routine):
        p = sc.person()
        src, name, ro = rng.choice(ROUTINE)
        req = (
            {"bucketName": f"{p.department}-data", "key": f"reports/{rng.randrange(999)}.csv"}
            if src.startswith("s3")
            else None
        )
        err = "AccessDenied" if rng.random() < 0.02 else None
        out.append(
            _event(
                sc, sc.work_time(), p, src, name, p.ip, p.user_agent, req, None, err, read_only=ro
            )
        )
    for p in sc.people[:12]:
        t = sc.work_time()
        out.append(
            _event(
                sc,
                t,
                p,
                "signin.amazonaws.com",
                "ConsoleLogin",
                p.ip,
                p.user_agent,
                None,
                {"ConsoleLogin": "Success"},
                identity=None,
                read_only=False,
            )
        )
        out[-1]["additionalEventData"] = {
            "MFAUsed": "Yes",
            "LoginTo": "https://console.aws.amazon.com",
        }
    # --- planted attacks -------------------------------------------------------
    attacker = ATTACKER_IPS[0]
    root = {
        "type": "Root",
        "principalId": sc.account_id,
        "arn": f"arn:aws:iam::{sc.account_id}:root",
        "accountId": sc.account_id,
    }
    t0 = sc.recent(5)
    for i in range(12):  # console brute force on mallory, then success
        ev = _event(
            sc,
            t0 + dt.timedelta(seconds=20 * i),
            sc.people[10],
            "signin.amazonaws.com",
            "ConsoleLogin",
            attacker,
            ATTACKER_UA,
            None,
            {"ConsoleLogin": "Failure"},
            read_only=False,
        )
        ev["errorMessage"] = "Failed authentication"
        out.append(ev)
    ok = _event(
        sc,
        t0 + dt.timedelta(minutes=5),
        None,
        "signin.amazonaws.com",
        "ConsoleLogin",
        attacker,
        ATTACKER_UA,
        None,
        {"ConsoleLogin": "Success"},
        identity=root,
        read_only=False,
    )
    ok["additionalEventData"] = {"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com"}
    out.append(ok)
    steps = [
        ("iam.amazonaws.com", "CreateUser", {"userName": "backup-svc"}),
        (
            "iam.amazonaws.com",
            "AttachUserPolicy",
            {"userName": "backup-svc", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
        ("iam.amazonaws.com", "CreateAccessKey", {"userName": "backup-svc"}),
        (
            "cloudtrail.amazonaws.com",
            "StopLogging",
            {"name": f"arn:aws:cloudtrail:us-east-1:{sc.account_id}:trail/management"},
        ),
        (
            "s3.amazonaws.com",
            "PutBucketAcl",
            {
                "bucketName": "finance-data",
                "x-amz-acl": ["public-read"],
                "AccessControlPolicy": {
                    "AccessControlList": {
                        "Grant": [
                            {
                                "Grantee": {
                                    "URI": "http://acs.amazonaws.com/groups/global/AllUsers"
                                },
                                "Permission": "READ",
                            }
                        ]
                    }
                },
            },
        ),
        (
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            {
                "groupId": "sg-0a1b2c3d",
                "ipPermissions": {
                    "items": [
                        {
                            "ipProtocol": "tcp",
                            "fromPort": 22,
                            "toPort": 22,
                            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                        }
                    ]
                },
            },
        ),
        (
            "guardduty.amazonaws.com",
            "DeleteDetector",
            {"detectorId": "12abc34d567e8fa901bc2d34e56789f0"},
        ),
    ]
    for i, (src, name, req) in enumerate(steps):
        out.append(
            _event(
                sc,
                t0 + dt.timedelta(minutes=8 + 3 * i),
                None,
                src,
                name,
                attacker,
                ATTACKER_UA,
                req,
                None,
                identity=root,
                read_only=False,
            )
        )
    return out


@generator("cloudtrail")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """CloudTrail as delivered to S3: gzip files of {"Records": [...]} per 5 minutes."""
    evs = sorted(events(sc), key=lambda e: e["eventTime"])
    files: list[Path] = []
    base = out_dir / "cloudtrail"
    base.mkdir(parents=True, exist_ok=True)
    bucket: dict[str, list[dict[str, Any]]] = {}
    for e in evs:
        t = dt.datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00"))
        slot = t.replace(minute=t.minute - t.minute % 60, second=0)
        bucket.setdefault(slot.strftime("%Y%m%dT%H%MZ"), []).append(e)
    for slot, recs in bucket.items():
        f = base / f"{sc.account_id}_CloudTrail_us-east-1_{slot}_{uuid.uuid4().hex[:16]}.json.gz"
        with gzip.open(f, "wt") as fh:
            json.dump({"Records": recs}, fh)
        files.append(f)
    return files
