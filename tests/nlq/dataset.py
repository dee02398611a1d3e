"""The evaluation lake: vendor-native logs generated with known facts, ingested through
the real parsers. Each generated record also yields a plain-Python *fact* (what the
record means), from which the expected answers are computed without any SQL.

Sources: CloudTrail (S3 ``{"Records": [...]}`` gzip files), Okta System Log (API page
JSON arrays) and VPC Flow Logs (default v2 text). ``NOW`` is fixed: Wednesday
2026-11-25 15:30 UTC; data spans 16 days before it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOW = dt.datetime(2026, 11, 25, 15, 30, 0, tzinfo=dt.UTC)
TODAY = NOW.replace(hour=0, minute=0, second=0)
WEEK = TODAY - dt.timedelta(days=TODAY.weekday())
START = TODAY - dt.timedelta(days=16)
ACCOUNT = "123456789012"

# name, country ISO, country name, city, ip
PEOPLE = [
    ("alice", "US", "United States", "San Francisco", "198.51.100.10"),
    ("bob", "US", "United States", "New York", "198.51.100.11"),
    ("carol", "GB", "United Kingdom", "London", "203.0.113.12"),
    ("dave", "DE", "Germany", "Berlin", "192.0.2.13"),
    ("erin", "US", "United States", "Austin", "198.51.100.14"),
    ("frank", "CA", "Canada", "Toronto", "203.0.113.200"),
    ("grace", "GB", "United Kingdom", "Manchester", "203.0.113.16"),
    ("heidi", "DE", "Germany", "Munich", "192.0.2.17"),
    ("ivan", "US", "United States", "Seattle", "198.51.100.18"),
    ("judy", "FR", "France", "Paris", "192.0.2.150"),
    ("mallory", "US", "United States", "Chicago", "198.51.100.20"),
    ("trent", "US", "United States", "Boston", "198.51.100.21"),
]
ATTACKERS = [
    ("185.220.101.7", "RU", "Russia", "Moscow"),
    ("45.137.21.9", "CN", "China", "Beijing"),
    ("193.32.162.44", "BR", "Brazil", "Sao Paulo"),
]
ROUTINE = [
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "PutObject"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "RunInstances"),
    ("iam.amazonaws.com", "ListUsers"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("kms.amazonaws.com", "Decrypt"),
    ("lambda.amazonaws.com", "ListFunctions20150331"),
    ("dynamodb.amazonaws.com", "DescribeTable"),
]


@dataclass
class Fact:
    """What one generated record means, in the lake's normalized terms."""

    source: str
    time: dt.datetime
    event_type: str
    outcome: str
    user: str | None
    src_ip: str | None
    dst_ip: str | None = None
    country: str | None = None
    event_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    facts: list[Fact]
    files: dict[str, list[Path]]

    def where(self, **kw: Any) -> list[Fact]:
        out = []
        for f in self.facts:
            ok = True
            for k, v in kw.items():
                got = getattr(f, k) if hasattr(f, k) else f.extra.get(k)
                if callable(v):
                    ok = bool(v(got))
                elif isinstance(v, set | list | tuple):
                    ok = got in v
                else:
                    ok = got == v
                if not ok:
                    break
            if ok:
                out.append(f)
        return out


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class _Gen:
    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.facts: list[Fact] = []
        self.ct: list[dict[str, Any]] = []
        self.okta: list[dict[str, Any]] = []
        self.flows: list[str] = []

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    def when(self, lo: dt.datetime = START, hi: dt.datetime = NOW) -> dt.datetime:
        span = (hi - lo).total_seconds()
        return lo + dt.timedelta(seconds=int(self.rng.uniform(0, span - 1)))

    # -- CloudTrail ----------------------------------------------------------------
    def ct_event(
        self,
        t: dt.datetime,
        who: str | None,
        src: str,
        name: str,
        ip: str,
        req: Any = None,
        resp: Any = None,
        error: str | None = None,
        mfa: str | None = None,
    ) -> None:
        if who is None:
            ident: dict[str, Any] = {
                "type": "Root",
                "principalId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:root",
                "accountId": ACCOUNT,
            }
        else:
            ident = {
                "type": "IAMUser",
                "principalId": f"AIDA{abs(hash(who)) % 10**12:012d}",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/{who}",
                "accountId": ACCOUNT,
                "accessKeyId": f"AKIA{self.rng.randrange(10**15):016d}",
                "userName": who,
            }
        eid = self.uid()
        rec: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": ident,
            "eventTime": _iso(t),
            "eventSource": src,
            "eventName": name,
            "awsRegion": self.rng.choice(["us-east-1", "us-east-1", "us-west-2", "eu-west-1"]),
            "sourceIPAddress": ip,
            "userAgent": "aws-cli/2.15.30 Python/3.11.8",
            "requestParameters": req,
            "responseElements": resp,
            "requestID": self.uid(),
            "eventID": eid,
            "readOnly": name.startswith(("Get", "List", "Describe")),
            "eventType": "AwsApiCall" if name != "ConsoleLogin" else "AwsConsoleSignIn",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        }
        if error:
            rec["errorCode"] = error
            rec["errorMessage"] = "denied"
        if mfa is not None:
            rec["additionalEventData"] = {
                "MFAUsed": mfa,
                "LoginTo": "https://console.aws.amazon.com",
            }
        self.ct.append(rec)
        failed = error is not None or (
            name == "ConsoleLogin" and (resp or {}).get("ConsoleLogin") == "Failure"
        )
        self.facts.append(
            Fact(
                "cloudtrail",
                t,
                name,
                "failure" if failed else "success",
                who or "root",
                ip,
                event_id=eid,
                extra={
                    "service": src,
                    "error": error,
                    "bucket": (req or {}).get("bucketName") if isinstance(req, dict) else None,
                    "mfa": mfa,
                    "region": rec["awsRegion"],
                },
            )
        )

    def cloudtrail(self) -> None:
        rng = self.rng
        for _ in range(1100):
            name, _, _, _, ip = rng.choice(PEOPLE)
            src, api = rng.choice(ROUTINE)
            req = (
                {"bucketName": f"{name}-reports", "key": "a.csv"}
                if src.startswith("s3") and api != "ListBuckets"
                else None
            )
            err = "AccessDenied" if rng.random() < 0.04 else None
            self.ct_event(self.when(), name, src, api, ip, req, None, err)
        # console logins (success, mostly with MFA)
        for i in range(140):
            name, _, _, _, ip = rng.choice(PEOPLE)
            mfa = "No" if i % 14 == 0 else "Yes"
            self.ct_event(
                self.when(),
                name,
                "signin.amazonaws.com",
                "ConsoleLogin",
                ip,
                None,
                {"ConsoleLogin": "Success"},
                mfa=mfa,
            )
        for _ in range(22):
            name, _, _, _, ip = rng.choice(PEOPLE)
            self.ct_event(
                self.when(),
                name,
                "signin.amazonaws.com",
                "ConsoleLogin",
                ip,
                None,
                {"ConsoleLogin": "Failure"},
                mfa="No",
            )
        # brute force on mallory yesterday evening, then root from the attacker
        t0 = TODAY - dt.timedelta(hours=3)
        for i in range(15):
            self.ct_event(
                t0 + dt.timedelta(seconds=30 * i),
                "mallory",
                "signin.amazonaws.com",
                "ConsoleLogin",
                "185.220.101.7",
                None,
                {"ConsoleLogin": "Failure"},
                mfa="No",
            )
        self.ct_event(
            dt.datetime(2026, 11, 12, 9, 0, 5, tzinfo=dt.UTC),
            None,
            "signin.amazonaws.com",
            "ConsoleLogin",
            "198.51.100.21",
            None,
            {"ConsoleLogin": "Success"},
            mfa="Yes",
        )
        t1 = TODAY - dt.timedelta(hours=1, minutes=50)
        self.ct_event(
            t1,
            None,
            "signin.amazonaws.com",
            "ConsoleLogin",
            "185.220.101.7",
            None,
            {"ConsoleLogin": "Success"},
            mfa="No",
        )
        steps = [
            ("iam.amazonaws.com", "CreateUser", {"userName": "backup-svc"}),
            (
                "iam.amazonaws.com",
                "AttachUserPolicy",
                {
                    "userName": "backup-svc",
                    "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
                },
            ),
            ("iam.amazonaws.com", "CreateAccessKey", {"userName": "backup-svc"}),
            ("cloudtrail.amazonaws.com", "StopLogging", {"name": "management"}),
            ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", {"groupId": "sg-1"}),
            ("guardduty.amazonaws.com", "DeleteDetector", {"detectorId": "abc"}),
            ("s3.amazonaws.com", "PutBucketAcl", {"bucketName": "finance-data"}),
        ]
        for i, (src, api, req) in enumerate(steps):
            self.ct_event(
                t1 + dt.timedelta(minutes=5 + 4 * i), None, src, api, "185.220.101.7", req
            )
        # IAM admin work: users created, policies attached
        self.ct_event(
            dt.datetime(2026, 11, 18, 10, 15, tzinfo=dt.UTC),
            "alice",
            "iam.amazonaws.com",
            "CreateUser",
            "198.51.100.10",
            {"userName": "svc-ci"},
        )
        self.ct_event(
            dt.datetime(2026, 11, 23, 14, 2, tzinfo=dt.UTC),
            "trent",
            "iam.amazonaws.com",
            "CreateUser",
            "198.51.100.21",
            {"userName": "svc-etl"},
        )
        self.ct_event(
            dt.datetime(2026, 11, 23, 14, 5, tzinfo=dt.UTC),
            "trent",
            "iam.amazonaws.com",
            "AttachRolePolicy",
            "198.51.100.21",
            {"roleName": "etl"},
        )
        self.ct_event(
            dt.datetime(2026, 11, 17, 11, 0, tzinfo=dt.UTC),
            "alice",
            "iam.amazonaws.com",
            "AddUserToGroup",
            "198.51.100.10",
            {"groupName": "admins", "userName": "bob"},
        )
        # buckets: 3 created today by mallory, 2 last week by bob, one deleted this week
        for i, h in enumerate((9, 11, 13)):
            self.ct_event(
                TODAY + dt.timedelta(hours=h, minutes=7),
                "mallory",
                "s3.amazonaws.com",
                "CreateBucket",
                "198.51.100.20",
                {"bucketName": f"tmp-export-{i}"},
            )
        for d in (17, 19):
            self.ct_event(
                dt.datetime(2026, 11, d, 16, 0, tzinfo=dt.UTC),
                "bob",
                "s3.amazonaws.com",
                "CreateBucket",
                "198.51.100.11",
                {"bucketName": f"logs-{d}"},
            )
        self.ct_event(
            dt.datetime(2026, 11, 24, 8, 30, tzinfo=dt.UTC),
            "dave",
            "s3.amazonaws.com",
            "DeleteBucket",
            "192.0.2.13",
            {"bucketName": "old-archive"},
        )
        self.ct_event(
            dt.datetime(2026, 11, 20, 13, 45, tzinfo=dt.UTC),
            "erin",
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            "198.51.100.14",
            {"groupId": "sg-2"},
        )

    # -- Okta ----------------------------------------------------------------------
    def okta_event(
        self,
        t: dt.datetime,
        email: str,
        etype: str,
        result: str,
        ip: str,
        iso: str,
        cname: str,
        city: str,
    ) -> None:
        eid = self.uid()
        self.okta.append(
            {
                "uuid": eid,
                "published": _iso_ms(t),
                "eventType": etype,
                "version": "0",
                "severity": "INFO" if result == "SUCCESS" else "WARN",
                "legacyEventType": None,
                "displayMessage": etype,
                "actor": {
                    "id": f"00u{abs(hash(email)) % 10**10}",
                    "type": "User",
                    "alternateId": email,
                    "displayName": email.split("@")[0].title(),
                },
                "client": {
                    "userAgent": {
                        "rawUserAgent": "Mozilla/5.0",
                        "os": "Mac OS X",
                        "browser": "CHROME",
                    },
                    "zone": "null",
                    "device": "Computer",
                    "ipAddress": ip,
                    "geographicalContext": {
                        "city": city,
                        "state": None,
                        "country": cname,
                        "postalCode": None,
                        "geolocation": {"lat": 1.0, "lon": 2.0},
                    },
                },
                "outcome": {
                    "result": result,
                    "reason": None if result == "SUCCESS" else "INVALID_CREDENTIALS",
                },
                "target": [],
                "transaction": {"type": "WEB", "id": self.uid(), "detail": {}},
                "debugContext": {"debugData": {}},
                "authenticationContext": {"externalSessionId": "x"},
                "securityContext": {},
                "request": {"ipChain": [{"ip": ip}]},
            }
        )
        outcome = {
            "SUCCESS": "success",
            "ALLOW": "success",
            "FAILURE": "failure",
            "DENY": "failure",
        }.get(result, "unknown")
        self.facts.append(Fact("okta", t, etype, outcome, email, ip, country=iso, event_id=eid))

    def okta_log(self) -> None:
        rng = self.rng
        for _ in range(220):
            name, iso, cname, city, ip = rng.choice(PEOPLE)
            t = self.when()
            self.okta_event(
                t, f"{name}@example.com", "user.session.start", "SUCCESS", ip, iso, cname, city
            )
            self.okta_event(
                t + dt.timedelta(seconds=20),
                f"{name}@example.com",
                "user.authentication.auth_via_mfa",
                "SUCCESS",
                ip,
                iso,
                cname,
                city,
            )
        for _ in range(30):
            name, iso, cname, city, ip = rng.choice(PEOPLE)
            self.okta_event(
                self.when(),
                f"{name}@example.com",
                "user.session.start",
                "FAILURE",
                ip,
                iso,
                cname,
                city,
            )
        # password spraying from abroad against carol and bob
        for i in range(24):
            ip, iso, cname, city = ATTACKERS[i % 3]
            victim = ("carol", "bob")[i % 2]
            self.okta_event(
                self.when(TODAY - dt.timedelta(days=4), NOW),
                f"{victim}@example.com",
                "user.session.start",
                "FAILURE",
                ip,
                iso,
                cname,
                city,
            )
        # MFA fatigue on bob yesterday, then one success from Russia
        tb = TODAY - dt.timedelta(hours=10)
        for i in range(9):
            self.okta_event(
                tb + dt.timedelta(minutes=2 * i),
                "bob@example.com",
                "user.mfa.okta_verify.deny_push",
                "FAILURE",
                "185.220.101.7",
                "RU",
                "Russia",
                "Moscow",
            )
        self.okta_event(
            tb + dt.timedelta(minutes=25),
            "bob@example.com",
            "user.session.start",
            "SUCCESS",
            "185.220.101.7",
            "RU",
            "Russia",
            "Moscow",
        )
        for _ in range(6):
            name, iso, cname, city, ip = rng.choice(PEOPLE)
            self.okta_event(
                self.when(),
                f"{name}@example.com",
                "user.authentication.auth_via_mfa",
                "FAILURE",
                ip,
                iso,
                cname,
                city,
            )
        # privilege grants, password resets, lockouts
        self.okta_event(
            dt.datetime(2026, 11, 24, 9, 12, tzinfo=dt.UTC),
            "alice@example.com",
            "user.account.privilege.grant",
            "SUCCESS",
            "198.51.100.10",
            "US",
            "United States",
            "San Francisco",
        )
        self.okta_event(
            dt.datetime(2026, 11, 19, 15, 40, tzinfo=dt.UTC),
            "trent@example.com",
            "user.account.privilege.grant",
            "SUCCESS",
            "198.51.100.21",
            "US",
            "United States",
            "Boston",
        )
        for name in ("judy", "frank", "ivan", "judy"):
            p = next(x for x in PEOPLE if x[0] == name)
            self.okta_event(
                self.when(),
                f"{name}@example.com",
                "user.account.reset_password",
                "SUCCESS",
                p[4],
                p[1],
                p[2],
                p[3],
            )
        for name in ("carol", "carol", "bob"):
            self.okta_event(
                self.when(TODAY - dt.timedelta(days=3), NOW),
                f"{name}@example.com",
                "user.account.lock",
                "SUCCESS",
                "45.137.21.9",
                "CN",
                "China",
                "Beijing",
            )

    # -- VPC flow ------------------------------------------------------------------
    def flow(
        self, t: dt.datetime, src: str, dst: str, dport: int, nbytes: int, action: str
    ) -> None:
        start = int(t.timestamp())
        end = start + 30
        pkts = max(1, nbytes // 900)
        self.flows.append(
            f"2 {ACCOUNT} eni-0a1b2c3d {src} {dst} {self.rng.randrange(32768, 60999)} {dport} 6 {pkts} {nbytes} {start} {end} {action} OK"
        )
        self.facts.append(
            Fact(
                "vpc_flow",
                dt.datetime.fromtimestamp(end, dt.UTC),
                action.lower(),
                "success" if action == "ACCEPT" else "failure",
                None,
                src,
                dst,
                extra={"bytes": nbytes, "dstport": dport},
            )
        )

    def vpc(self) -> None:
        rng = self.rng
        hosts = [f"10.0.1.{i}" for i in range(5, 30)]
        external = ["52.94.1.1", "142.250.72.14", "151.101.1.69", "104.16.132.229"]
        for _ in range(700):
            self.flow(
                self.when(),
                rng.choice(hosts),
                rng.choice(external),
                rng.choice([443, 443, 443, 80, 53]),
                rng.randrange(400, 90_000),
                "ACCEPT",
            )
        for _ in range(60):
            self.flow(
                self.when(TODAY - dt.timedelta(days=2), NOW),
                "45.137.21.9",
                rng.choice(hosts),
                22,
                rng.randrange(40, 200),
                "REJECT",
            )
        for i in range(5):
            self.flow(
                TODAY - dt.timedelta(hours=2) + dt.timedelta(minutes=7 * i),
                "10.0.1.23",
                "185.220.101.7",
                443,
                250_000_000 + i * 1_000_000,
                "ACCEPT",
            )


def generate(out: Path, seed: int = 11) -> Dataset:
    """Write the native files under ``out`` and return the facts and files."""
    g = _Gen(seed)
    g.cloudtrail()
    g.okta_log()
    g.vpc()
    files: dict[str, list[Path]] = {"cloudtrail": [], "okta": [], "vpc_flow": []}
    (out / "cloudtrail").mkdir(parents=True, exist_ok=True)
    recs = sorted(g.ct, key=lambda r: r["eventTime"])
    for i in range(0, len(recs), 400):
        p = out / "cloudtrail" / f"{ACCOUNT}_CloudTrail_us-east-1_{i:05d}.json.gz"
        with gzip.open(p, "wt") as fh:
            json.dump({"Records": recs[i : i + 400]}, fh)
        files["cloudtrail"].append(p)
    (out / "okta").mkdir(parents=True, exist_ok=True)
    for i in range(0, len(g.okta), 500):
        p = out / "okta" / f"page-{i:05d}.json"
        p.write_text(json.dumps(g.okta[i : i + 500]))
        files["okta"].append(p)
    (out / "vpc_flow").mkdir(parents=True, exist_ok=True)
    p = out / "vpc_flow" / "flows.log"
    p.write_text("\n".join(g.flows) + "\n")
    files["vpc_flow"].append(p)
    return Dataset(g.facts, files)


def build_lake(data_dir: Path, work: Path, seed: int = 11) -> Dataset:
    """Generate, then ingest every file through the real parsers into ``data_dir``."""
    from mantissa.lake.ingest import Pipeline, ingest_connection
    from mantissa.runtime import Runtime
    from mantissa.sources.base import get_source

    ds = generate(work, seed)
    rt = Runtime(data_dir)
    con = ingest_connection()
    for source, paths in ds.files.items():
        pipe = Pipeline(rt.storage, get_source(source), rt.config.ingest, con=con)
        summary = pipe.ingest_paths([str(p) for p in paths])
        assert summary.rejected == 0, (source, summary.to_dict())
    return ds
