"""Demo Microsoft 365: Management Activity API content blobs, with an inbox forwarding rule.

Everyday: Azure AD sign-ins (a few failures), mailbox access, SharePoint/OneDrive file
activity, the odd Teams change. Planted: from the attacker's address, mallory's session
creates an inbox rule forwarding mail to an outside address and deletes the copies, then
sets mailbox-level forwarding, and searches the mailbox.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Person, Scenario

ORG_ID = "8a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b"


def _ts(t: dt.datetime) -> str:
    # the API's CreationTime: UTC, no zone designator
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _base(
    sc: Scenario,
    t: dt.datetime,
    p: Person,
    op: str,
    workload: str,
    rt: int,
    ip: str,
    status: str | None = "Succeeded",
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "CreationTime": _ts(t),
        "Id": str(uuid.UUID(int=sc.rng.getrandbits(128))),
        "Operation": op,
        "OrganizationId": ORG_ID,
        "RecordType": rt,
        "UserKey": f"10032000{abs(sc.people.index(p)):08X}",
        "UserType": 0,
        "Version": 1,
        "Workload": workload,
        "ClientIP": ip,
        "UserId": p.email,
    }
    if status is not None:
        rec["ResultStatus"] = status
    return rec


def _login(sc: Scenario, t: dt.datetime, p: Person, ip: str, ua: str, ok: bool) -> dict[str, Any]:
    rec = _base(
        sc,
        t,
        p,
        "UserLoggedIn" if ok else "UserLoginFailed",
        "AzureActiveDirectory",
        15,
        ip,
        "Success" if ok else "Failed",
    )
    rec.update(
        {
            "ObjectId": "00000003-0000-0ff1-ce00-000000000000",
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "ResultStatusDetail", "Value": "Success" if ok else "Invalid password"},
                {"Name": "UserAgent", "Value": ua},
                {"Name": "RequestType", "Value": "OAuth2:Authorize"},
            ],
            "Actor": [{"ID": p.email, "Type": 5}],
            "ActorContextId": ORG_ID,
            "ActorIpAddress": ip,
            "Target": [{"ID": "00000003-0000-0ff1-ce00-000000000000", "Type": 0}],
            "TargetContextId": ORG_ID,
            "ApplicationId": "00000002-0000-0ff1-ce00-000000000000",
        }
    )
    if not ok:
        rec["LogonError"] = "InvalidUserNameOrPassword"
        rec["ErrorNumber"] = "50126"
    return rec


def _exchange_admin(
    sc: Scenario, t: dt.datetime, p: Person, ip: str, op: str, params: dict[str, str]
) -> dict[str, Any]:
    rec = _base(sc, t, p, op, "Exchange", 1, f"{ip}:{sc.rng.randrange(20000, 65000)}", "True")
    rec.update(
        {
            "ObjectId": f"EURPR01A002.prod.outlook.com/Microsoft Exchange Hosted Organizations/"
            f"{sc.domain}/{p.name}",
            "ExternalAccess": False,
            "OrganizationName": f"{sc.domain.split('.')[0]}.onmicrosoft.com",
            "OriginatingServer": "AM6PR01MB4535 (15.20.7362.019)",
            "Parameters": [{"Name": k, "Value": v} for k, v in params.items()],
        }
    )
    return rec


def records(sc: Scenario) -> list[dict[str, Any]]:
    rng = sc.rng
    out: list[dict[str, Any]] = []
    for _ in range(sc.days * len(sc.people) * 2):
        p = sc.person()
        out.append(_login(sc, sc.work_time(), p, p.ip, p.user_agent, rng.random() > 0.04))
    for _ in range(sc.days * len(sc.people) * 4):
        p = sc.person()
        rec = _base(sc, sc.work_time(), p, "MailItemsAccessed", "Exchange", 50, p.ip)
        rec.update(
            {
                "MailboxOwnerUPN": p.email,
                "ClientInfoString": "Client=OWA;Action=ViaProxy",
                "OperationProperties": [{"Name": "MailAccessType", "Value": "Bind"}],
                "LogonType": 0,
                "ExternalAccess": False,
            }
        )
        out.append(rec)
    for _ in range(sc.days * len(sc.people) * 4):
        p = sc.person()
        op = rng.choice(
            ["FileAccessed", "FileAccessed", "FileModified", "FileDownloaded", "FileUploaded"]
        )
        f = rng.choice(["plan.docx", "budget.xlsx", "notes.md", "deck.pptx"])
        rec = _base(sc, sc.work_time(), p, op, "SharePoint", 6, p.ip, None)
        rec.update(
            {
                "ObjectId": f"https://example.sharepoint.com/sites/{p.department}/Shared Documents/{f}",
                "EventSource": "SharePoint",
                "ItemType": "File",
                "SiteUrl": f"https://example.sharepoint.com/sites/{p.department}/",
                "SourceFileName": f,
                "SourceFileExtension": f.rsplit(".", 1)[1],
                "SourceRelativeUrl": "Shared Documents",
                "UserAgent": p.user_agent,
            }
        )
        out.append(rec)
    for _ in range(sc.days):
        p = sc.person()
        rec = _base(sc, sc.work_time(), p, "MemberAdded", "MicrosoftTeams", 25, p.ip, None)
        rec.update(
            {
                "TeamName": f"{p.department.title()} team",
                "Members": [{"UPN": sc.person().email, "Role": 1}],
            }
        )
        out.append(rec)
    # --- planted: mailbox takeover with forwarding ----------------------------------
    mallory = sc.people[10]
    ip = ATTACKER_IPS[1]
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
    t0 = sc.recent(5.4)
    out.append(_login(sc, t0, mallory, ip, ua, True))
    out.append(
        _exchange_admin(
            sc,
            t0 + dt.timedelta(minutes=3),
            mallory,
            ip,
            "New-InboxRule",
            {
                "Mailbox": mallory.email,
                "Name": ".",
                "ForwardTo": "drop.box.7731@gmail.com",
                "DeleteMessage": "True",
                "MarkAsRead": "True",
                "StopProcessingRules": "True",
                "SubjectOrBodyContainsWords": "invoice;payment;wire",
            },
        )
    )
    out.append(
        _exchange_admin(
            sc,
            t0 + dt.timedelta(minutes=5),
            mallory,
            ip,
            "Set-Mailbox",
            {
                "Identity": mallory.email,
                "ForwardingSmtpAddress": "smtp:drop.box.7731@gmail.com",
                "DeliverToMailboxAndForward": "False",
            },
        )
    )
    rec = _base(
        sc,
        t0 + dt.timedelta(minutes=7),
        mallory,
        "SearchQueryInitiatedExchange",
        "Exchange",
        132,
        ip,
    )
    rec.update({"QueryText": "password OR wire transfer", "QuerySource": "Owa"})
    out.append(rec)
    return out


@generator("microsoft_365")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Content blobs as the Management Activity API serves them: a JSON array per content
    type and day."""
    base = out_dir / "microsoft_365"
    base.mkdir(parents=True, exist_ok=True)
    ctype = {
        "AzureActiveDirectory": "Audit.AzureActiveDirectory",
        "Exchange": "Audit.Exchange",
        "SharePoint": "Audit.SharePoint",
    }
    blobs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records(sc):
        key = (ctype.get(r["Workload"], "Audit.General"), r["CreationTime"][:10])
        blobs.setdefault(key, []).append(r)
    files: list[Path] = []
    for (ct, hour), recs in sorted(blobs.items()):
        f = base / f"{ct}-{hour}.json"
        f.write_text(json.dumps(recs))
        files.append(f)
    return files
