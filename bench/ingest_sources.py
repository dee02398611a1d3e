"""Events/s per source (sources part A) on realistic synthetic volumes, through Pipeline.

    python bench/ingest_sources.py [--events 200000] [--sources okta,syslog,...]

For each source, writes N events in the vendor's delivery format (NDJSON, Records/records
documents, syslog/CEF/S3/VPC flow lines) with varied users, IPs, actions and times over
three days, then ingests the file into a fresh lake with the real :class:`Pipeline`
(framing, transform, dead-letter checks, dedup, atomic Parquet publish) and prints a
table: events, input MB, seconds, events/s, MB/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mantissa.lake.ingest import Pipeline
from mantissa.lake.storage import LocalStorage
from mantissa.sources.base import get_source

USERS = [f"user{i}@example.com" for i in range(500)]
IPS = [f"198.51.{i // 250}.{i % 250 + 1}" for i in range(1000)] + ["185.220.101.7"]
START = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def _t(rng: random.Random) -> dt.datetime:
    return START + dt.timedelta(
        seconds=rng.randint(0, 3 * 86400), microseconds=rng.randint(0, 999999)
    )


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def okta(rng: random.Random) -> str:
    u, ip, t = rng.choice(USERS), rng.choice(IPS), _t(rng)
    ok = rng.random() > 0.05
    return json.dumps(
        {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
            "published": _iso(t),
            "eventType": rng.choice(
                [
                    "user.session.start",
                    "user.authentication.sso",
                    "user.authentication.auth_via_mfa",
                    "policy.evaluate_sign_on",
                ]
            ),
            "version": "0",
            "severity": "INFO",
            "displayMessage": "User login to Okta",
            "actor": {"id": "00u" + u[:8], "type": "User", "alternateId": u, "displayName": u},
            "client": {
                "userAgent": {
                    "rawUserAgent": "Mozilla/5.0 Chrome/125.0",
                    "os": "Mac OS X",
                    "browser": "CHROME",
                },
                "zone": "null",
                "device": "Computer",
                "ipAddress": ip,
                "geographicalContext": {
                    "city": "Berlin",
                    "country": "Germany",
                    "geolocation": {"lat": 52.5, "lon": 13.4},
                },
            },
            "authenticationContext": {"authenticationStep": 0, "externalSessionId": "102x"},
            "outcome": {
                "result": "SUCCESS" if ok else "FAILURE",
                "reason": None if ok else "INVALID_CREDENTIALS",
            },
            "transaction": {"type": "WEB", "id": "Zx1", "detail": {}},
            "debugContext": {"debugData": {"requestUri": "/api/v1/authn"}},
            "request": {"ipChain": [{"ip": ip, "version": "V4"}]},
            "securityContext": {"asNumber": 64500, "isProxy": False},
        }
    )


def azure_ad(rng: random.Random) -> str:
    u, ip, t = rng.choice(USERS), rng.choice(IPS), _t(rng)
    code = 0 if rng.random() > 0.05 else 50126
    sid = str(uuid.UUID(int=rng.getrandbits(128)))
    return json.dumps(
        {
            "time": _iso(t),
            "resourceId": "/tenants/t1/providers/Microsoft.aadiam",
            "operationName": "Sign-in activity",
            "category": "SignInLogs",
            "tenantId": "t1",
            "resultType": str(code),
            "callerIpAddress": ip,
            "correlationId": sid,
            "Level": 4,
            "location": "DE",
            "properties": {
                "id": sid,
                "createdDateTime": _iso(t),
                "userPrincipalName": u,
                "ipAddress": ip,
                "appDisplayName": "Microsoft Teams",
                "clientAppUsed": "Browser",
                "userAgent": "Mozilla/5.0",
                "status": {"errorCode": code},
                "deviceDetail": {"operatingSystem": "Windows 10", "browser": "Edge"},
                "location": {"city": "Berlin", "countryOrRegion": "DE"},
            },
        }
    )


def azure_activity(rng: random.Random) -> str:
    u, ip, t = rng.choice(USERS), rng.choice(IPS), _t(rng)
    return json.dumps(
        {
            "time": _iso(t),
            "resourceId": f"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/"
            f"MICROSOFT.COMPUTE/VIRTUALMACHINES/VM{rng.randint(1, 99)}",
            "operationName": rng.choice(
                [
                    "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE",
                    "MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE",
                ]
            ),
            "category": "Administrative",
            "resultType": rng.choice(["Success", "Start", "Failure"]),
            "callerIpAddress": ip,
            "correlationId": str(uuid.UUID(int=rng.getrandbits(128))),
            "identity": {
                "claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": u}
            },
            "level": "Information",
            "properties": {"statusCode": "OK"},
        }
    )


def gcp_audit(rng: random.Random) -> str:
    u, ip, t = rng.choice(USERS), rng.choice(IPS), _t(rng)
    return json.dumps(
        {
            "insertId": uuid.UUID(int=rng.getrandbits(128)).hex[:12],
            "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Factivity",
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "status": {},
                "authenticationInfo": {"principalEmail": u},
                "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": "gcloud"},
                "serviceName": "compute.googleapis.com",
                "methodName": rng.choice(
                    ["v1.compute.instances.insert", "v1.compute.firewalls.patch"]
                ),
                "resourceName": "projects/p1/zones/z/instances/i1",
                "request": {"name": "i1"},
            },
            "resource": {"type": "gce_instance", "labels": {"project_id": "p1"}},
            "timestamp": _iso(t),
            "severity": "NOTICE",
            "receiveTimestamp": _iso(t),
        }
    )


def gcp_vpc_flow(rng: random.Random) -> str:
    ip, t = rng.choice(IPS), _t(rng)
    return json.dumps(
        {
            "insertId": uuid.UUID(int=rng.getrandbits(128)).hex[:12],
            "jsonPayload": {
                "connection": {
                    "src_ip": "10.128.0.5",
                    "src_port": rng.randint(1024, 65000),
                    "dest_ip": ip,
                    "dest_port": 443,
                    "protocol": 6,
                },
                "reporter": "SRC",
                "bytes_sent": str(rng.randint(100, 10**6)),
                "packets_sent": "12",
                "start_time": _iso(t),
                "end_time": _iso(t),
                "src_instance": {"project_id": "p1", "vm_name": "web-1", "zone": "z"},
            },
            "logName": "projects/p1/logs/compute.googleapis.com%2Fvpc_flows",
            "resource": {"type": "gce_subnetwork", "labels": {"project_id": "p1"}},
            "timestamp": _iso(t),
        }
    )


def guardduty(rng: random.Random) -> str:
    ip, t = rng.choice(IPS), _t(rng)
    fid = uuid.UUID(int=rng.getrandbits(128)).hex
    return json.dumps(
        {
            "version": "0",
            "detail-type": "GuardDuty Finding",
            "source": "aws.guardduty",
            "detail": {
                "schemaVersion": "2.0",
                "accountId": "123456789012",
                "region": "us-east-1",
                "id": fid,
                "type": "Recon:EC2/PortProbeUnprotectedPort",
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
                "service": {
                    "serviceName": "guardduty",
                    "action": {
                        "actionType": "PORT_PROBE",
                        "portProbeAction": {
                            "portProbeDetails": [{"remoteIpDetails": {"ipAddressV4": ip}}]
                        },
                    },
                    "count": 1,
                },
                "severity": 2,
                "createdAt": _iso(t),
                "updatedAt": _iso(t),
                "title": "Port probe",
            },
        }
    )


def aws_config(rng: random.Random) -> str:
    t = _t(rng)
    rid = f"i-{rng.getrandbits(40):010x}"
    return json.dumps(
        {
            "configurationItemVersion": "1.3",
            "configurationItemCaptureTime": _iso(t),
            "configurationStateId": str(rng.getrandbits(40)),
            "awsAccountId": "123456789012",
            "configurationItemStatus": "OK",
            "resourceType": "AWS::EC2::Instance",
            "resourceId": rid,
            "awsRegion": "us-east-1",
            "tags": {"team": "web"},
            "relationships": [],
            "configuration": {"instanceType": "t3.micro"},
        }
    )


def cloudtrail(rng: random.Random) -> str:
    u, ip, t = rng.choice(USERS), rng.choice(IPS), _t(rng)
    return json.dumps(
        {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser",
                "userName": u.split("@")[0],
                "arn": f"arn:aws:iam::1:user/{u}",
                "accountId": "1",
            },
            "eventTime": _iso(t)[:19] + "Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": rng.choice(["GetObject", "PutObject", "ListBuckets"]),
            "awsRegion": "us-east-1",
            "sourceIPAddress": ip,
            "userAgent": "aws-cli/2",
            "requestParameters": {"bucketName": "b", "key": "k"},
            "responseElements": None,
            "requestID": uuid.uuid4().hex,
            "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
            "readOnly": True,
            "eventType": "AwsApiCall",
            "recipientAccountId": "1",
        }
    )


def json_lines(rng: random.Random) -> str:
    u, ip, t = rng.choice(USERS), rng.choice(IPS), _t(rng)
    return json.dumps(
        {
            "timestamp": _iso(t),
            "level": "info",
            "event_type": "http",
            "user": u,
            "src_ip": ip,
            "http": {"url": "/api/v1/items", "status": 200},
        }
    )


def vpc_flow(rng: random.Random) -> str:
    ip, s = rng.choice(IPS), int(_t(rng).timestamp())
    return (
        f"2 123456789012 eni-0a1b2c3d4e5f6{rng.randint(0, 99):04d} {ip} 10.0.1.{rng.randint(2, 250)} "
        f"{rng.randint(1024, 65000)} {rng.choice([22, 443, 3389, 5432])} 6 {rng.randint(1, 500)} "
        f"{rng.randint(40, 10**6)} {s} {s + 60} {rng.choice(['ACCEPT', 'ACCEPT', 'REJECT'])} OK"
    )


def s3_access(rng: random.Random) -> str:
    ip, t = rng.choice(IPS), _t(rng)
    st = rng.choice([200, 200, 200, 403, 404])
    return (
        f"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be bucket-1 "
        f"[{t.strftime('%d/%b/%Y:%H:%M:%S')} +0000] {ip} arn:aws:iam::1:user/u{rng.randint(1, 99)} "
        f"{uuid.uuid4().hex[:16].upper()} REST.GET.OBJECT k/{rng.randint(1, 10**6)}.csv "
        f'"GET /bucket-1/k HTTP/1.1" {st} - {rng.randint(0, 10**6)} 1000 12 8 "-" '
        f'"aws-cli/2.15.30 Python/3.11.8" - hostid= SigV4 ECDHE-RSA-AES128-GCM-SHA256 '
        f"AuthHeader bucket-1.s3.amazonaws.com TLSv1.2 - -"
    )


def syslog(rng: random.Random) -> str:
    ip, t = rng.choice(IPS), _t(rng)
    user = rng.choice(USERS).split("@")[0]
    msg = rng.choice(
        [
            f"Accepted publickey for {user} from {ip} port 50122 ssh2",
            f"Failed password for invalid user {user} from {ip} port 4242 ssh2",
            f"pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)",
        ]
    )
    return f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')}+00:00 host{rng.randint(1, 20)} sshd[{rng.randint(100, 9999)}]: {msg}"


def cef(rng: random.Random) -> str:
    ip, t = rng.choice(IPS), _t(rng)
    return (
        f"CEF:0|Acme|Firewall|9.1|{rng.randint(100, 200)}|Connection {rng.choice(['allowed', 'blocked'])}|5|"
        f"src={ip} spt={rng.randint(1024, 65000)} dst=10.0.1.5 dpt=443 act={rng.choice(['allow', 'deny'])} "
        f"suser={rng.choice(USERS)} rt={int(t.timestamp() * 1000)} msg=Rule matched\\= policy 7 "
        f"cs1Label=Rule cs1=allow web"
    )


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "cloudtrail": cloudtrail,
    "vpc_flow": vpc_flow,
    "syslog": syslog,
    "cef": cef,
    "json_lines": json_lines,
    "s3_access": s3_access,
    "guardduty": guardduty,
    "aws_config": aws_config,
    "gcp_audit": gcp_audit,
    "gcp_vpc_flow": gcp_vpc_flow,
    "azure_activity": azure_activity,
    "azure_ad": azure_ad,
    "okta": okta,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--sources", default=",".join(GENERATORS))
    args = ap.parse_args()
    rng = random.Random(42)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mantissa-bench-") as tmp:
        for name in args.sources.split(","):
            gen = GENERATORS[name]
            f = Path(tmp) / f"{name}.log"
            with open(f, "w") as fh:
                for _ in range(args.events):
                    fh.write(gen(rng) + "\n")
            mb = f.stat().st_size / 1e6
            lake = Path(tmp) / f"lake-{name}"
            start = time.perf_counter()
            s = Pipeline(LocalStorage(lake), get_source(name)).ingest_paths([str(f)])
            secs = time.perf_counter() - start
            rows.append((name, s.events, s.rejected, mb, secs))
            f.unlink()
            print(
                f"{name:<16} {s.events:>9} events {s.rejected:>5} rejected {mb:8.1f} MB "
                f"{secs:7.2f} s {s.events / secs:>10,.0f} ev/s {mb / secs:6.1f} MB/s",
                file=sys.stderr,
            )
    print("\n| source | events | MB | seconds | events/s | MB/s |\n|---|---:|---:|---:|---:|---:|")
    for name, ev, _rej, mb, secs in rows:
        print(f"| {name} | {ev:,} | {mb:.1f} | {secs:.2f} | {ev / secs:,.0f} | {mb / secs:.1f} |")


if __name__ == "__main__":
    main()
