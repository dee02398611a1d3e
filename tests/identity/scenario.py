"""Evaluation scenario: weeks of benign identity activity for a few hundred users, in each
provider's native log format (Okta System Log, Entra ID sign-in/audit exports, Duo
authentication logs, CloudTrail, Google Workspace Admin SDK Reports activities, Microsoft
365 Management Activity API records), plus labelled attacks of every technique at random
times and users inside the scored days — including a kill chain that crosses Okta/Duo,
Google Workspace, Microsoft 365 and AWS for one person.

Benign behaviour is written as carefully as the attacks: work hours by time zone, quiet
weekends, typo'd passwords, off-hours sign-ins from home, real trips at airliner speeds
(with airport time), VPN users on a relay range, new laptops at home or the office,
browser updates, helpdesk factor resets, automation accounts creating tokens, admins
granting roles in the change window, and users who go quiet.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (city, ISO country, Okta country name, lat, lon, UTC offset hours)
CITIES = [
    ("San Francisco", "US", "United States", 37.77, -122.42, -8),
    ("New York", "US", "United States", 40.71, -74.01, -5),
    ("London", "GB", "United Kingdom", 51.51, -0.13, 0),
    ("Berlin", "DE", "Germany", 52.52, 13.40, 1),
    ("Bangalore", "IN", "India", 12.97, 77.59, 5),
    ("Sydney", "AU", "Australia", -33.87, 151.21, 10),
]
TRIP_CITIES = [
    ("Paris", "FR", "France", 48.86, 2.35),
    ("Tokyo", "JP", "Japan", 35.68, 139.69),
    ("Chicago", "US", "United States", 41.88, -87.63),
    ("Madrid", "ES", "Spain", 40.42, -3.70),
    ("Singapore", "SG", "Singapore", 1.35, 103.82),
]
ATTACK_PLACES = [
    ("Moscow", "RU", "Russia", 55.76, 37.62),
    ("Lagos", "NG", "Nigeria", 6.52, 3.38),
    ("Sao Paulo", "BR", "Brazil", -23.55, -46.63),
    ("Hanoi", "VN", "Vietnam", 21.03, 105.85),
]
UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Edg/{v}.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
]
NEW_LAPTOP_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 15_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
ATTACK_UAS = [
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Linux; Android 9; SM-G960F) AppleWebKit/537.36 Chrome/{v}.0 Mobile",
]
TOOL_UA = "python-requests/2.31.0"
APPS = ["Slack", "Salesforce", "Jira", "GitHub", "Zoom", "Workday", "Google Drive"]
DEPTS = ["engineering", "sales", "finance", "support", "marketing"]
VPN_CIDR = "100.127.0.0/16"  # the corporate VPN / secure web gateway egress range


@dataclass
class User:
    i: int
    email: str
    name: str
    idp: str  # okta | azure_ad
    city: tuple[Any, ...]
    dept: str
    office_ip: str
    home_ip: str
    asn_home: int
    ua: str
    vpn: bool = False
    engineer: bool = False
    role: str = "user"  # user | helpdesk | automation | itadmin
    dormant_after: int | None = None  # stops being active after this day
    trip: tuple[int, int, tuple[Any, ...]] | None = None  # (day, days, place)
    new_laptop_day: int | None = None
    home_used: bool = False
    gws: bool = False  # also signs in to Google Workspace (Gmail, Drive) directly
    m365: bool = False  # Entra ID sign-ins also land in the Microsoft 365 audit log

    @property
    def iam(self) -> str:
        """The person's AWS IAM user (engineers; the kill-chain victim's is linked
        explicitly, the others by e-mail local part)."""
        return self.name

    @property
    def uid(self) -> str:
        return f"00u{self.i:017d}"


@dataclass
class Attack:
    technique: str
    user: str | None
    ip: str | None
    start: dt.datetime
    end: dt.datetime
    event_ids: set[str] = field(default_factory=set)


# which detections count as catching each technique
EXPECTED = {
    "brute_force": {"identity.brute_force"},
    "password_spray": {"identity.password_spray"},
    "distributed_spray": {"identity.password_spray"},
    "credential_stuffing": {"identity.credential_stuffing"},
    "mfa_fatigue": {"identity.mfa_fatigue"},
    "mfa_bypass": {"identity.mfa_bypass"},
    "mfa_downgrade": {"identity.mfa_bypass"},
    "impossible_travel": {"identity.impossible_travel"},
    "unusual_time": {"identity.unusual_time"},
    "new_country": {"identity.new_country"},
    "new_asn": {"identity.new_asn"},
    "new_device": {"identity.new_device"},
    "volume_spike": {"identity.volume_spike"},
    "privilege_escalation_chain": {"identity.privilege_escalation_chain"},
    "self_grant": {"identity.self_grant"},
    "off_hours_grant": {"identity.off_hours_grant"},
    "dormant_account": {"identity.dormant_account"},
    "new_api_token": {"identity.new_api_token"},
    "m365_password_spray": {"identity.password_spray"},
    "gws_brute_force": {"identity.brute_force"},
    "gws_mfa_disable": {"identity.mfa_bypass"},
    "cross_provider_kill_chain": {"identity.kill_chain"},
}

#: the AWS IAM user of the kill-chain victim, linked to their e-mail only by configuration
KILL_CHAIN_IAM = "adm-ops7"
GWS_CUSTOMER = "C03az79cb"
M365_ORG = "4f1e2d3c-0000-4b5a-9c8d-7e6f5a4b3c2d"


class World:
    """Deterministic for a seed: ``days`` of history ending at ``end``; the last
    ``scored_days`` carry the attacks and are the days false alerts are counted on."""

    def __init__(self, seed: int = 1, users: int = 200, days: int = 16, scored_days: int = 2,
                 end: dt.datetime | None = None) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.days = days
        self.scored_days = scored_days
        end = end or dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        # three days back: attacks moved into business hours stay in the past
        self.end = (end - dt.timedelta(days=3)).replace(hour=0)
        self.start = self.end - dt.timedelta(days=days)
        self.score_start = self.end - dt.timedelta(days=scored_days)
        self.okta: list[dict[str, Any]] = []
        self.azure: list[dict[str, Any]] = []
        self.duo: list[dict[str, Any]] = []
        self.cloudtrail: list[dict[str, Any]] = []
        self.gws: list[dict[str, Any]] = []
        self.m365: list[dict[str, Any]] = []
        self.attacks: list[Attack] = []
        self.kill_chain_user: User | None = None
        self._ip = 0
        self.users = [self._user(i) for i in range(users)]

    # -- people ---------------------------------------------------------------
    def ip(self, block: int = 64) -> str:
        """A fresh address (CGNAT space: never looked up in geo-IP; the IdPs give geo)."""
        self._ip += 1
        n = self._ip + self.rng.randrange(7)
        self._ip = n
        return f"100.{block + (n >> 16) % 60}.{(n >> 8) & 255}.{n & 255}"

    def _user(self, i: int) -> User:
        r = self.rng
        city = CITIES[i % len(CITIES)]
        name = f"user{i:04d}"
        u = User(
            i=i, email=f"{name}@corp.example", name=name,
            idp="okta" if i % 2 == 0 else "azure_ad", city=city, dept=DEPTS[i % len(DEPTS)],
            office_ip=f"100.100.{CITIES.index(city)}.{1 + i % 4}", home_ip=self.ip(),
            asn_home=7000 + r.randrange(40), ua=r.choice(UAS), vpn=r.random() < 0.1,
            engineer=i % 5 == 0, gws=i % 4 == 0, m365=i % 4 == 1,
        )  # fmt: skip
        if r.random() < 0.12:
            place = r.choice([p for p in TRIP_CITIES if p[1] != city[1]])
            u.trip = (r.randrange(2, self.days - 4), r.randrange(2, 5), place)
        if r.random() < 0.05:
            u.new_laptop_day = r.randrange(3, self.days)
            if u.trip and u.trip[0] - 1 <= u.new_laptop_day <= u.trip[0] + u.trip[1]:
                u.new_laptop_day = None
        if i in (1, 2):
            u.role = "helpdesk"
        elif i in (3,):
            u.role = "automation"
        elif i in (8, 14):  # London: grants land inside the UTC change window
            u.role = "itadmin"
        elif i in (7, 9, 11):
            u.dormant_after = 1
        return u

    def local(self, u: User, day: int, hour: float) -> dt.datetime:
        return self.start + dt.timedelta(days=day, hours=hour - u.city[5])

    # -- native records ---------------------------------------------------------
    def okta_event(self, t: dt.datetime, u: User | None, etype: str, result: str, ip: str,
                   ua: str, place: tuple[Any, ...], asn: int, *, email: str | None = None,
                   target: list[dict[str, Any]] | None = None, reason: str | None = None) -> str:  # fmt: skip
        eid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.okta.append({
            "uuid": eid, "published": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
            "eventType": etype, "version": "0", "severity": "INFO" if result == "SUCCESS" else "WARN",
            "displayMessage": etype,
            "actor": {"id": u.uid if u else f"00u{abs(hash(email)) % 10**17:017d}", "type": "User",
                      "alternateId": u.email if u else email, "displayName": u.name if u else "unknown"},
            "client": {"userAgent": {"rawUserAgent": ua}, "zone": "null", "device": "Computer",
                       "ipAddress": ip, "geographicalContext": {
                           "city": place[0], "country": place[2],
                           "geolocation": {"lat": place[3], "lon": place[4]}}},
            "authenticationContext": {"authenticationStep": 0,
                                      "externalSessionId": "trs" + uuid.UUID(int=self.rng.getrandbits(128)).hex[:20]},
            "outcome": {"result": result, "reason": reason},
            "target": target,
            "securityContext": {"asNumber": asn, "asOrg": f"AS{asn}", "isProxy": False},
            "transaction": {"type": "WEB", "id": uuid.uuid4().hex[:20], "detail": {}},
        })  # fmt: skip
        return eid

    def azure_signin(self, t: dt.datetime, u: User | None, ip: str, ua: str, place: tuple[Any, ...],
                     code: int = 0, *, upn: str | None = None, mfa: bool = True) -> str:  # fmt: skip
        eid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.azure.append({
            "time": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "resourceId": "/tenants/t/providers/Microsoft.aadiam",
            "operationName": "Sign-in activity", "operationVersion": "1.0", "category": "SignInLogs",
            "tenantId": "t", "resultType": str(code), "resultSignature": "None", "durationMs": 0,
            "callerIpAddress": ip, "correlationId": str(uuid.uuid4()), "identity": u.name if u else upn,
            "Level": 4, "location": place[1],
            "properties": {
                "id": eid, "createdDateTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "userPrincipalName": u.email if u else upn, "userId": f"id-{u.i}" if u else None,
                "appDisplayName": self.rng.choice(APPS), "ipAddress": ip, "userAgent": ua,
                "clientAppUsed": "Browser", "correlationId": str(uuid.uuid4()),
                "conditionalAccessStatus": "success" if code == 0 else "notApplied",
                "authenticationRequirement": "multiFactorAuthentication" if mfa else "singleFactorAuthentication",
                "isInteractive": True,
                "status": {"errorCode": code, "failureReason": None if code == 0 else "Invalid username or password"},
                "deviceDetail": {"deviceId": "", "operatingSystem": "MacOs", "browser": "Chrome"},
                "location": {"city": place[0], "state": "", "countryOrRegion": place[1],
                             "geoCoordinates": {"latitude": place[3], "longitude": place[4]}},
            },
        })  # fmt: skip
        return eid

    def azure_audit(
        self, t: dt.datetime, actor: str, ip: str, op: str, target: str, role: str | None
    ) -> str:
        eid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        props = (
            [{"displayName": "Role.DisplayName", "oldValue": None, "newValue": f'"{role}"'}]
            if role
            else []
        )
        self.azure.append({
            "time": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "resourceId": "/tenants/t/providers/Microsoft.aadiam",
            "operationName": op, "operationVersion": "1.0", "category": "AuditLogs", "tenantId": "t",
            "resultSignature": "None", "durationMs": 0, "callerIpAddress": ip,
            "correlationId": str(uuid.uuid4()), "Level": 4,
            "properties": {"id": eid, "category": "RoleManagement", "activityDisplayName": op,
                           "activityDateTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "loggedByService": "Core Directory", "operationType": "Assign",
                           "result": "success",
                           "initiatedBy": {"user": {"userPrincipalName": actor, "ipAddress": ip}},
                           "targetResources": [{"type": "User", "userPrincipalName": target,
                                                "modifiedProperties": props}]},
        })  # fmt: skip
        return eid

    def duo_auth(self, t: dt.datetime, u: User, result: str, reason: str, ip: str) -> str:
        txid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.duo.append({
            "access_device": {"browser": "Chrome", "ip": ip, "location": {"city": u.city[0], "country": u.city[2]}},
            "application": {"key": "DIAPP", "name": "Okta"},
            "auth_device": {"ip": u.home_ip, "name": f"iPhone ({u.name})",
                            "location": {"city": u.city[0], "country": u.city[2]}},
            "email": u.email, "event_type": "authentication", "factor": "duo_push",
            "isotimestamp": t.isoformat(), "reason": reason, "result": result,
            "timestamp": int(t.timestamp()), "txid": txid,
            "user": {"groups": ["Duo Users", u.dept], "key": f"DU{u.i:018d}", "name": u.name},
        })  # fmt: skip
        return txid

    def trail(self, t: dt.datetime, user: str, name: str, ip: str, ua: str, *, ok: bool = True,
              req: dict[str, Any] | None = None, mfa: str = "Yes", source: str = "iam.amazonaws.com") -> str:  # fmt: skip
        eid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        ev: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{abs(hash(user)) % 10**12:012d}",
                             "arn": f"arn:aws:iam::123456789012:user/{user}", "accountId": "123456789012",
                             "userName": user},
            "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": source, "eventName": name,
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": ua, "requestParameters": req,
            "eventID": eid, "readOnly": False, "eventType": "AwsConsoleSignIn" if name == "ConsoleLogin" else "AwsApiCall",
            "managementEvent": True, "recipientAccountId": "123456789012", "eventCategory": "Management",
        }  # fmt: skip
        if name == "ConsoleLogin":
            ev["eventSource"] = "signin.amazonaws.com"
            ev["responseElements"] = {"ConsoleLogin": "Success" if ok else "Failure"}
            ev["additionalEventData"] = {
                "MFAUsed": mfa,
                "LoginTo": "https://console.aws.amazon.com",
            }
            if not ok:
                ev["errorMessage"] = "Failed authentication"
        self.cloudtrail.append(ev)
        return eid

    def gws_activity(self, t: dt.datetime, u: User | None, app: str, name: str, ip: str,
                     region: str | None, params: dict[str, Any], *, email: str | None = None,
                     etype: str | None = None) -> str:  # fmt: skip
        """A Google Workspace Admin SDK Reports activity (``activities.list`` item) with one
        event; returns the event id the ``google_workspace`` source gives it."""
        uq = str(self.rng.randrange(-(2**63), 2**63))
        when = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        plist = []
        for k, v in params.items():
            if isinstance(v, bool):
                plist.append({"name": k, "boolValue": v})
            elif isinstance(v, list):
                plist.append({"name": k, "multiValue": v})
            else:
                plist.append({"name": k, "value": v})
        act = {
            "kind": "admin#reports#activity",
            "id": {"time": when, "uniqueQualifier": uq, "applicationName": app,
                   "customerId": GWS_CUSTOMER},
            "etag": f'"eval/{self.rng.getrandbits(64):x}"',
            "actor": {"callerType": "USER", "email": u.email if u else email,
                      "profileId": str(104000000000000000000 + (u.i if u else 999999))},
            "ipAddress": ip,
            "events": [{"type": etype or app, "name": name, "parameters": plist}],
        }  # fmt: skip
        if region:
            act["networkInfo"] = {"regionCode": region}
        self.gws.append(act)
        return uq

    def gws_login(self, t: dt.datetime, u: User, ip: str, region: str | None, ok: bool = True) -> str:  # fmt: skip
        params: dict[str, Any] = {"login_type": "google_password",
                                  "login_challenge_method": ["password", "google_authenticator"],
                                  "is_second_factor": False, "is_suspicious": False}  # fmt: skip
        if not ok:
            params["login_failure_type"] = "login_failure_invalid_password"
        return self.gws_activity(t, u, "login", "login_success" if ok else "login_failure", ip,
                                 region, params, etype="login")  # fmt: skip

    def m365_record(self, t: dt.datetime, user: str, op: str, ip: str, *, ua: str | None = None,
                    ok: bool = True, extra: dict[str, Any] | None = None) -> str:  # fmt: skip
        """An Office 365 Management Activity API audit record (a content-blob entry)."""
        rid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        rec: dict[str, Any] = {
            "CreationTime": t.strftime("%Y-%m-%dT%H:%M:%S"), "Id": rid, "Operation": op,
            "OrganizationId": M365_ORG, "RecordType": 15, "ResultStatus": "Success" if ok else "Failed",
            "UserKey": f"1003200{abs(hash(user)) % 10**9:09d}", "UserType": 0, "Version": 1,
            "Workload": "AzureActiveDirectory", "ClientIP": ip, "UserId": user,
            "ObjectId": "00000003-0000-0ff1-ce00-000000000000",
            "AzureActiveDirectoryEventType": 1 if op.startswith("UserLog") else 0,
            "ActorContextId": M365_ORG, "ActorIpAddress": ip, "TargetContextId": M365_ORG,
            "Actor": [{"ID": user, "Type": 5}],
            "Target": [{"ID": "00000003-0000-0ff1-ce00-000000000000", "Type": 0}],
        }  # fmt: skip
        if op.startswith("UserLog"):
            rec["ExtendedProperties"] = [
                {"Name": "ResultStatusDetail", "Value": "Success" if ok else "Invalid password"},
                {"Name": "UserAgent", "Value": ua or ""},
                {"Name": "RequestType", "Value": "Login:login"},
            ]
            if not ok:
                rec["LogonError"] = "InvalidUserNameOrPassword"
        rec.update(extra or {})
        self.m365.append(rec)
        return rid

    # -- benign ---------------------------------------------------------------
    def home_place(self, u: User) -> tuple[Any, ...]:
        c = u.city
        return (c[0], c[1], c[2], c[3], c[4])

    def signin(self, u: User, t: dt.datetime, ip: str, ua: str, place: tuple[Any, ...], asn: int,
               apps: int, typo: bool = False, spread_mins: float = 540) -> list[str]:  # fmt: skip
        ids = []
        if u.idp == "okta":
            if typo:
                ids.append(self.okta_event(t - dt.timedelta(seconds=40), u, "user.session.start", "FAILURE",
                                           ip, ua, place, asn, reason="INVALID_CREDENTIALS"))  # fmt: skip
            ids.append(self.okta_event(t, u, "user.session.start", "SUCCESS", ip, ua, place, asn))
            ids.append(
                self.duo_auth(t + dt.timedelta(seconds=15), u, "success", "user_approved", ip)
            )
            for k in range(apps):
                tt = t + dt.timedelta(minutes=self.rng.uniform(1, spread_mins))
                ids.append(self.okta_event(tt, u, "user.authentication.sso", "SUCCESS", ip, ua, place, asn,
                                           target=[{"type": "AppInstance", "displayName": APPS[k % len(APPS)]}]))  # fmt: skip
        else:
            if typo:
                ids.append(self.azure_signin(t - dt.timedelta(seconds=40), u, ip, ua, place, 50126))
                if u.m365:
                    ids.append(self.m365_record(t - dt.timedelta(seconds=39), u.email,
                                                "UserLoginFailed", ip, ua=ua, ok=False))  # fmt: skip
            for k in range(1 + apps // 2):
                tt = t + dt.timedelta(minutes=0 if k == 0 else self.rng.uniform(1, spread_mins))
                ids.append(self.azure_signin(tt, u, ip, ua, place))
                if u.m365:  # the same sign-in as Exchange Online / SharePoint audits it
                    ids.append(self.m365_record(tt + dt.timedelta(seconds=2), u.email,
                                                "UserLoggedIn", ip, ua=ua))  # fmt: skip
        if u.gws:  # Gmail / Drive: straight to Google, from the same network
            tg = t + dt.timedelta(minutes=self.rng.uniform(2, 20))
            if typo and self.rng.random() < 0.5:
                ids.append(self.gws_login(tg - dt.timedelta(seconds=30), u, ip, place[1], ok=False))
            ids.append(self.gws_login(tg, u, ip, place[1]))
        return ids

    def benign(self) -> None:
        r = self.rng
        for d in range(self.days):
            weekday = (self.start + dt.timedelta(days=d)).weekday()
            for u in self.users:
                if u.dormant_after is not None and d > u.dormant_after:
                    continue
                if weekday >= 5 and r.random() > 0.08:
                    continue
                ua = u.ua.format(v=120 + d // 6)  # browsers update every ~6 days
                if u.new_laptop_day is not None and d >= u.new_laptop_day:
                    ua = NEW_LAPTOP_UA
                    if d == u.new_laptop_day:
                        ip = u.office_ip  # IT hands out laptops at the office
                place, asn = self.home_place(u), 6000 + CITIES.index(u.city)
                ip = u.office_ip
                if r.random() < 0.3 and u.new_laptop_day != d:
                    ip, asn = u.home_ip, u.asn_home
                if u.vpn:
                    ip, asn = f"100.127.{r.randrange(4)}.{r.randrange(1, 250)}", 9009
                    place = r.choice(CITIES)[:5]  # the VPN egress sits anywhere
                on_trip = bool(u.trip and u.trip[0] <= d < u.trip[0] + u.trip[1])
                if u.trip and d == u.trip[0] + u.trip[1]:
                    # the flight home: the first sign-in back waits for the flight
                    tp = u.trip[2]
                    km = _km(u.city[3], u.city[4], tp[3], tp[4])
                    start = self.local(u, d, 7) + dt.timedelta(hours=km / 750 + 4)
                    self.signin(u, start, ip, ua, place, asn, r.randint(1, 4))
                    continue
                if u.trip and on_trip:
                    tp = u.trip[2]
                    place, asn = tp, 8000 + TRIP_CITIES.index(tp)
                    ip = f"100.120.{TRIP_CITIES.index(tp)}.{u.i % 250}"
                    if d == u.trip[0]:
                        # the flight: last sign-in at home the evening before, airport and
                        # flight time add up to well under airliner speed
                        km = _km(u.city[3], u.city[4], tp[3], tp[4])
                        start = self.local(u, d, 7) + dt.timedelta(hours=km / 750 + 4)
                        self.signin(u, start, ip, ua, place, asn, r.randint(1, 4))
                        continue
                if ip == u.home_ip:
                    u.home_used = True
                start_h = r.uniform(7.5, 10.0)
                self.signin(u, self.local(u, d, start_h), ip, ua, place, asn, r.randint(2, 7),
                            typo=r.random() < 0.08)  # fmt: skip
                if r.random() < 0.04 and not on_trip and u.home_used:  # evening e-mail from home
                    self.signin(u, self.local(u, d, r.uniform(19, 22.5)), u.home_ip, ua,
                                self.home_place(u), u.asn_home, 1, spread_mins=30)  # fmt: skip
                if u.engineer and weekday < 5 and r.random() < 0.6:
                    self.trail(self.local(u, d, start_h + 1), u.name, "ConsoleLogin", ip, ua)
                if u.role == "helpdesk" and weekday < 5:
                    for _ in range(r.randint(1, 2)):
                        tgt = r.choice(self.users)
                        self.okta_event(self.local(u, d, r.uniform(10, 16)), u, "user.mfa.factor.reset_all",
                                        "SUCCESS", u.office_ip, ua, self.home_place(u), 6000,
                                        target=[{"type": "User", "alternateId": tgt.email}])  # fmt: skip
                if u.role == "automation" and d % 2 == 0:
                    self.okta_event(self.local(u, d, 11), u, "system.api_token.create", "SUCCESS",
                                    u.office_ip, ua, self.home_place(u), 6000,
                                    target=[{"type": "Token", "displayName": f"ci-{d}"}])  # fmt: skip
                if u.role == "itadmin" and weekday < 5 and d % 4 == 1:
                    # Workspace: delegated admin roles, inside the change window
                    tgt = r.choice([x for x in self.users if x.role == "user" and x.gws])
                    self.gws_activity(self.local(u, d, r.uniform(10, 16)), u, "admin", "ASSIGN_ROLE",
                                      u.office_ip, u.city[1],
                                      {"ROLE_NAME": "Help Desk Admin", "USER_EMAIL": tgt.email},
                                      etype="DELEGATED_ADMIN_SETTINGS")  # fmt: skip
                if u.role == "itadmin" and weekday < 5 and d % 5 == 2:
                    # Entra ID roles as the Microsoft 365 audit log records them
                    tgt = r.choice([x for x in self.users if x.role == "user" and x.m365])
                    self.m365_record(self.local(u, d, r.uniform(10, 16)), u.email, "Add member to role.",
                                     u.office_ip, extra={
                                         "ModifiedProperties": [{"Name": "Role.DisplayName", "NewValue": "Reports Reader", "OldValue": ""}],
                                         "Target": [{"ID": f"User_{uuid.UUID(int=tgt.i)}", "Type": 2},
                                                    {"ID": tgt.email, "Type": 5}]})  # fmt: skip
                if u.role == "itadmin" and weekday < 5 and d % 3 == 0:
                    tgt = r.choice([x for x in self.users if x.role == "user"])
                    self.okta_event(self.local(u, d, r.uniform(10, 16)), u, "user.account.privilege.grant",
                                    "SUCCESS", u.office_ip, ua, self.home_place(u), 6000,
                                    target=[{"type": "User", "alternateId": tgt.email,
                                             "detailEntry": {"privilegeGranted": "Read-only administrator"}}])  # fmt: skip

    # -- attacks --------------------------------------------------------------
    def attack_time(self) -> dt.datetime:
        return self.score_start + dt.timedelta(
            seconds=self.rng.uniform(3600, self.scored_days * 86400 - 7200)
        )

    def victim(self, idp: str | None = None, used: set[int] | None = None) -> User:
        pool = [u for u in self.users if u.role == "user" and u.dormant_after is None and not u.vpn
                and u.trip is None and (idp is None or u.idp == idp) and (used is None or u.i not in used)]  # fmt: skip
        v = self.rng.choice(pool)
        if used is not None:
            used.add(v.i)
        return v

    def attacks_all(self) -> None:
        r = self.rng
        used: set[int] = set()
        far = r.choice(ATTACK_PLACES)
        # brute force then success (Okta)
        v, t, ip = self.victim("okta", used), self.attack_time(), self.ip(90)
        a = Attack("brute_force", v.email, ip, t, t + dt.timedelta(minutes=8))
        for k in range(14):
            a.event_ids.add(self.okta_event(t + dt.timedelta(seconds=25 * k), v, "user.session.start", "FAILURE",
                                            ip, TOOL_UA, far, 4000, reason="INVALID_CREDENTIALS"))  # fmt: skip
        a.event_ids.add(self.okta_event(t + dt.timedelta(minutes=7), v, "user.session.start", "SUCCESS", ip,
                                        TOOL_UA, far, 4000))  # fmt: skip
        self.attacks.append(a)
        # password spray from one IP (Entra ID)
        t, ip = self.attack_time(), self.ip(91)
        a = Attack("password_spray", None, ip, t, t + dt.timedelta(minutes=20))
        for k, u in enumerate(r.sample([u for u in self.users if u.idp == "azure_ad"], 30)):
            a.event_ids.add(
                self.azure_signin(t + dt.timedelta(seconds=35 * k), u, ip, TOOL_UA, far, 50126)
            )
        self.attacks.append(a)
        # distributed spray (Okta): 40 residential-proxy IPs, browser UA
        t = self.attack_time()
        a = Attack("distributed_spray", None, None, t, t + dt.timedelta(minutes=40))
        ua = ATTACK_UAS[1].format(v=118)
        for k, u in enumerate(r.sample([u for u in self.users if u.idp == "okta"], 40)):
            a.event_ids.add(self.okta_event(t + dt.timedelta(seconds=55 * k), u, "user.session.start", "FAILURE",
                                            self.ip(92), ua, r.choice(ATTACK_PLACES), 4100 + k,
                                            reason="INVALID_CREDENTIALS"))  # fmt: skip
        self.attacks.append(a)
        # credential stuffing (Okta): leaked list incl. people who never worked here
        t = self.attack_time()
        a = Attack("credential_stuffing", None, None, t, t + dt.timedelta(minutes=30))
        okta_users = [u for u in self.users if u.idp == "okta"]
        targets = [u.email for u in r.sample(okta_users, 35)] + [
            f"former{k}@corp.example" for k in range(20)
        ]
        ips = [self.ip(93) for _ in range(25)]
        for k, email in enumerate(targets):
            u = next((x for x in okta_users if x.email == email), None)
            a.event_ids.add(self.okta_event(t + dt.timedelta(seconds=30 * k), u, "user.session.start", "FAILURE",
                                            ips[k % len(ips)], TOOL_UA, far, 4200, email=email,
                                            reason="INVALID_CREDENTIALS" if u else "UNKNOWN_USER"))  # fmt: skip
        self.attacks.append(a)
        # MFA fatigue then accepted (Okta + Duo)
        v, t, ip = self.victim("okta", used), self.attack_time(), self.ip(94)
        a = Attack("mfa_fatigue", v.email, ip, t, t + dt.timedelta(minutes=15))
        a.event_ids.add(
            self.okta_event(t, v, "user.session.start", "SUCCESS", ip, TOOL_UA, far, 4300)
        )
        for k in range(7):
            a.event_ids.add(self.duo_auth(t + dt.timedelta(seconds=60 * k + 20), v, "denied",
                                          "user_mistake" if k % 2 else "no_response", ip))  # fmt: skip
        a.event_ids.add(
            self.duo_auth(t + dt.timedelta(minutes=9), v, "success", "user_approved", ip)
        )
        self.attacks.append(a)
        # MFA bypass: a compromised non-helpdesk account resets another user's factors
        v, w, t, ip = (
            self.victim("okta", used),
            self.victim("okta", used),
            self.attack_time(),
            self.ip(95),
        )
        a = Attack("mfa_bypass", w.email, ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.okta_event(t, v, "user.mfa.factor.reset_all", "SUCCESS", ip, v.ua.format(v=130),
                                        self.home_place(v), 4400,
                                        target=[{"type": "User", "alternateId": w.email}]))  # fmt: skip
        self.attacks.append(a)
        # MFA downgrade: single-factor sign-in for an always-MFA Entra ID user
        v, t = self.victim("azure_ad", used), self.attack_time()
        a = Attack("mfa_downgrade", v.email, v.office_ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(
            self.azure_signin(t, v, v.office_ip, v.ua.format(v=130), self.home_place(v), mfa=False)
        )
        self.attacks.append(a)
        # impossible travel: home sign-in, then 40 min later from far away (Okta)
        v, t = self.victim("okta", used), self.attack_time()
        ip = self.ip(96)
        a = Attack("impossible_travel", v.email, ip, t, t + dt.timedelta(minutes=45))
        a.event_ids.add(self.okta_event(t, v, "user.session.start", "SUCCESS", v.office_ip, v.ua.format(v=130),
                                        self.home_place(v), 6000))  # fmt: skip
        a.event_ids.add(self.okta_event(t + dt.timedelta(minutes=40), v, "user.session.start", "SUCCESS", ip,
                                        v.ua.format(v=130), far, 4500))  # fmt: skip
        self.attacks.append(a)
        # unusual time: 03:00 local, from a new IP in the home network's country
        v = self.victim("okta", used)
        day = (self.score_start - self.start).days + r.randrange(self.scored_days)
        t, ip = self.local(v, day, 3 + r.random()), self.ip(97)
        if t < self.score_start:
            t += dt.timedelta(days=1)
        a = Attack("unusual_time", v.email, ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.okta_event(t, v, "user.session.start", "SUCCESS", ip, v.ua.format(v=130),
                                        self.home_place(v), v.asn_home))  # fmt: skip
        self.attacks.append(a)
        # new country + new device, long after the last sign-in (no travel alert)
        v, t, ip = self.victim("azure_ad", used), self.attack_time(), self.ip(98)
        a = Attack("new_country", v.email, ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.azure_signin(t, v, ip, ATTACK_UAS[0], far))
        self.attacks.append(a)
        # new ASN + new device, home country (Okta)
        v, t, ip = self.victim("okta", used), self.attack_time(), self.ip(99)
        a = Attack("new_asn", v.email, ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.okta_event(t, v, "user.session.start", "SUCCESS", ip, ATTACK_UAS[0],
                                        self.home_place(v), 4600))  # fmt: skip
        self.attacks.append(a)
        # new device from a new IP on the user's own ISP (Okta)
        v, t, ip = self.victim("okta", used), self.attack_time(), self.ip(100)
        a = Attack("new_device", v.email, ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.okta_event(t, v, "user.session.start", "SUCCESS", ip, ATTACK_UAS[0],
                                        self.home_place(v), v.asn_home))  # fmt: skip
        self.attacks.append(a)
        # volume spike: a session token scraping every app (Okta SSO)
        v, t = self.victim("okta", used), self.attack_time()
        a = Attack("volume_spike", v.email, v.office_ip, t, t + dt.timedelta(hours=2))
        for k in range(150):
            a.event_ids.add(self.okta_event(t + dt.timedelta(seconds=45 * k), v, "user.authentication.sso", "SUCCESS",
                                            v.office_ip, v.ua.format(v=130), self.home_place(v), 6000,
                                            target=[{"type": "AppInstance", "displayName": APPS[k % 7]}]))  # fmt: skip
        self.attacks.append(a)
        # escalation chain: an admin grants a role (in hours), the grantee uses it at once (Entra ID)
        admin, v = self.users[8], self.victim("azure_ad", used)
        t = _business_hours(self.attack_time(), admin)
        a = Attack(
            "privilege_escalation_chain", v.email, admin.office_ip, t, t + dt.timedelta(minutes=30)
        )
        a.event_ids.add(self.azure_audit(t, admin.email, admin.office_ip, "Add member to role", v.email,
                                         "Privileged Role Administrator"))  # fmt: skip
        a.event_ids.add(self.azure_audit(t + dt.timedelta(minutes=12), v.email, v.office_ip, "Add member to role",
                                         self.victim("azure_ad", used).email, "Global Administrator"))  # fmt: skip
        self.attacks.append(a)
        # self grant (CloudTrail): an engineer attaches AdministratorAccess to themself
        v = next(u for u in self.users if u.engineer and u.role == "user" and u.i not in used)
        used.add(v.i)
        t = _business_hours(self.attack_time(), v)
        a = Attack("self_grant", v.name, v.office_ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.trail(t, v.name, "AttachUserPolicy", v.office_ip, "aws-cli/2.15",
                                   req={"userName": v.name, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))  # fmt: skip
        self.attacks.append(a)
        # off-hours admin grant: Saturday/Sunday night (Okta)
        admin = self.users[14]
        sat = self.score_start
        while sat.weekday() != 5:
            sat -= dt.timedelta(days=1)
        t = sat + dt.timedelta(hours=2, minutes=r.randrange(50))
        if t < self.score_start:
            t = self.score_start + dt.timedelta(hours=1, minutes=r.randrange(50))
            t = t if not (t.weekday() < 5 and 7 <= t.hour < 19) else t.replace(hour=2)
        tgt = self.victim("okta", used)
        a = Attack("off_hours_grant", tgt.email, admin.office_ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.okta_event(t, admin, "user.account.privilege.grant", "SUCCESS", admin.office_ip,
                                        admin.ua.format(v=130), self.home_place(admin), 6000,
                                        target=[{"type": "User", "alternateId": tgt.email,
                                                 "detailEntry": {"privilegeGranted": "Super administrator"}}]))  # fmt: skip
        self.attacks.append(a)
        # dormant account wakes up
        v, t, ip = self.users[7], self.attack_time(), self.ip(101)
        a = Attack("dormant_account", v.email, ip, t, t + dt.timedelta(minutes=5))
        if v.idp == "okta":
            a.event_ids.add(
                self.okta_event(
                    t, v, "user.session.start", "SUCCESS", ip, TOOL_UA, self.home_place(v), 4700
                )
            )
        else:
            a.event_ids.add(self.azure_signin(t, v, ip, TOOL_UA, self.home_place(v)))
        self.attacks.append(a)
        # API token by a user who never made one (Okta)
        v = self.victim("okta", used)
        t = _business_hours(self.attack_time(), v)
        a = Attack("new_api_token", v.email, v.office_ip, t, t + dt.timedelta(minutes=5))
        a.event_ids.add(self.okta_event(t, v, "system.api_token.create", "SUCCESS", v.office_ip, v.ua.format(v=130),
                                        self.home_place(v), 6000, target=[{"type": "Token", "displayName": "x"}]))  # fmt: skip
        self.attacks.append(a)
        self.attacks_more()

    def attacks_more(self) -> None:
        """Attacks in Google Workspace and Microsoft 365, and a kill chain across Okta/Duo,
        Google Workspace, Microsoft 365 and AWS for one person."""
        r = self.rng
        used = {u.i for u in self.users if any(a.user in (u.email, u.name) for a in self.attacks)}
        far = r.choice(ATTACK_PLACES)
        # password spray against Microsoft 365 (UserLoginFailed) from one IP
        t, ip = self.attack_time(), self.ip(102)
        a = Attack("m365_password_spray", None, ip, t, t + dt.timedelta(minutes=25))
        for k, u in enumerate(
            r.sample([u for u in self.users if u.m365], min(24, sum(u.m365 for u in self.users)))
        ):
            a.event_ids.add(self.m365_record(t + dt.timedelta(seconds=50 * k), u.email, "UserLoginFailed",
                                             ip, ua=TOOL_UA, ok=False))  # fmt: skip
        self.attacks.append(a)
        # brute force against a Google account, then the password works
        v = self.victim_where(lambda u: u.gws, used)
        t, ip = self.attack_time(), self.ip(103)
        a = Attack("gws_brute_force", v.email, ip, t, t + dt.timedelta(minutes=9))
        for k in range(13):
            a.event_ids.add(
                self.gws_login(t + dt.timedelta(seconds=30 * k), v, ip, far[1], ok=False)
            )
        a.event_ids.add(self.gws_login(t + dt.timedelta(minutes=8), v, ip, far[1]))
        self.attacks.append(a)
        # kill chain for one person across providers: Okta push bombing accepted (credential
        # access) → Google 2-step verification turned off (defense evasion) → the person's
        # AWS IAM user attaches AdministratorAccess to itself (privilege escalation) →
        # Microsoft 365 sign-in from the attacker's IP
        v = self.victim_where(lambda u: u.idp == "okta" and u.gws, used)
        self.kill_chain_user = v
        t, ip = _business_hours(self.attack_time(), v), self.ip(104)
        a = Attack("cross_provider_kill_chain", v.email, ip, t, t + dt.timedelta(minutes=70))
        a.event_ids.add(
            self.okta_event(t, v, "user.session.start", "SUCCESS", ip, TOOL_UA, far, 4800)
        )
        for k in range(6):
            a.event_ids.add(
                self.duo_auth(t + dt.timedelta(seconds=50 * k + 20), v, "denied", "no_response", ip)
            )
        a.event_ids.add(
            self.duo_auth(t + dt.timedelta(minutes=7), v, "success", "user_approved", ip)
        )
        b = Attack(
            "gws_mfa_disable",
            v.email,
            ip,
            t + dt.timedelta(minutes=25),
            t + dt.timedelta(minutes=30),
        )
        b.event_ids.add(self.gws_activity(t + dt.timedelta(minutes=25), v, "user_accounts", "2sv_disable", ip,
                                          far[1], {}, etype="2sv_change"))  # fmt: skip
        a.event_ids |= b.event_ids
        a.event_ids.add(self.trail(t + dt.timedelta(minutes=45), KILL_CHAIN_IAM, "AttachUserPolicy", ip,
                                   "aws-cli/2.15", req={"userName": KILL_CHAIN_IAM,
                                                        "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))  # fmt: skip
        a.event_ids.add(
            self.m365_record(t + dt.timedelta(minutes=60), v.email, "UserLoggedIn", ip, ua=TOOL_UA)
        )
        self.attacks += [a, b]

    def victim_where(self, cond: Any, used: set[int]) -> User:
        pool = [u for u in self.users if u.role == "user" and u.dormant_after is None and not u.vpn
                and u.trip is None and cond(u) and u.i not in used]  # fmt: skip
        v = self.rng.choice(pool)
        used.add(v.i)
        return v

    # -- files ----------------------------------------------------------------
    def write(self, out: Path) -> dict[str, list[Path]]:
        """Native files per source: Okta API pages, Entra ID hourly exports, Duo API pages,
        CloudTrail gzip files."""
        out.mkdir(parents=True, exist_ok=True)
        files: dict[str, list[Path]] = {"okta": [], "azure_ad": [], "duo": [], "cloudtrail": [],
                                        "google_workspace": [], "microsoft_365": []}  # fmt: skip
        okta = sorted(self.okta, key=lambda e: e["published"])
        for i in range(0, len(okta), 5000):
            f = out / f"okta-{i // 5000:04d}.json"
            f.write_text(json.dumps(okta[i : i + 5000]))
            files["okta"].append(f)
        az = sorted(self.azure, key=lambda e: e["time"])
        for i in range(0, len(az), 5000):
            f = out / f"azure-{i // 5000:04d}.json"
            f.write_text(json.dumps({"records": az[i : i + 5000]}))
            files["azure_ad"].append(f)
        duo = sorted(self.duo, key=lambda e: e["timestamp"])
        for i in range(0, len(duo), 5000):
            f = out / f"duo-{i // 5000:04d}.json"
            f.write_text(json.dumps({"stat": "OK", "response": {"authlogs": duo[i : i + 5000],
                                                                "metadata": {}}}))  # fmt: skip
            files["duo"].append(f)
        # Workspace: activities.list pages (newest first, as the API returns them)
        gws = sorted(self.gws, key=lambda e: e["id"]["time"], reverse=True)
        for i in range(0, len(gws), 1000):
            f = out / f"gws-{i // 1000:04d}.json"
            f.write_text(json.dumps({"kind": "admin#reports#activities",
                                     "etag": f'"eval/{i}"', "items": gws[i : i + 1000]}))  # fmt: skip
            files["google_workspace"].append(f)
        # Microsoft 365: content blobs (a JSON array of audit records each)
        m365 = sorted(self.m365, key=lambda e: e["CreationTime"])
        for i in range(0, len(m365), 2000):
            f = out / f"m365-{i // 2000:04d}.json"
            f.write_text(json.dumps(m365[i : i + 2000]))
            files["microsoft_365"].append(f)
        f = out / "123456789012_CloudTrail_us-east-1_all.json.gz"
        with gzip.open(f, "wt") as fh:
            json.dump({"Records": sorted(self.cloudtrail, key=lambda e: e["eventTime"])}, fh)
        files["cloudtrail"].append(f)
        return files


def _business_hours(t: dt.datetime, u: User) -> dt.datetime:
    """Move ``t`` into a weekday 09:00–17:00 UTC (an attack inside the change window)."""
    del u
    while not (t.weekday() < 5 and 9 <= t.hour < 17):
        t += dt.timedelta(minutes=47)
    return t


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(h))


def build(seed: int, users: int, days: int, out: Path) -> tuple[World, dict[str, list[Path]]]:
    w = World(seed=seed, users=users, days=days)
    w.benign()
    w.attacks_all()
    return w, w.write(out)
