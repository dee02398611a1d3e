"""Demo Okta System Log: daily sign-ins, MFA and app SSO, plus planted attacks.

Planted: a password spray from a Tor exit against many users, then an MFA-fatigue push
storm on one account ending in an accepted push, a session from a new country, and an
admin role grant followed by MFA factor deactivation.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, ATTACKER_UA, Person, Scenario, iso_ms

APPS = ["Slack", "Google Workspace", "Salesforce", "GitHub", "AWS SSO", "Zoom", "Jira"]
COUNTRY = {"US": "United States", "GB": "United Kingdom", "DE": "Germany"}


def _event(
    sc: Scenario,
    t: dt.datetime,
    who: Person | None,
    event_type: str,
    result: str,
    message: str,
    ip: str,
    ua: str,
    *,
    reason: str | None = None,
    target: list[dict[str, Any]] | None = None,
    country: str | None = None,
    city: str | None = None,
    alternate_id: str | None = None,
) -> dict[str, Any]:
    rng = sc.rng
    return {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
        "published": iso_ms(t),
        "eventType": event_type,
        "version": "0",
        "severity": "INFO" if result in ("SUCCESS", "ALLOW") else "WARN",
        "displayMessage": message,
        "actor": {
            "id": f"00u{abs(hash(who.name if who else alternate_id)) % 10**17:017d}",
            "type": "User",
            "alternateId": alternate_id or (who.email if who else "unknown"),
            "displayName": who.name.title() if who else "unknown",
        },
        "client": {
            "userAgent": {"rawUserAgent": ua, "os": "Mac OS X", "browser": "CHROME"},
            "zone": "null",
            "device": "Computer",
            "ipAddress": ip,
            "geographicalContext": {
                "city": city or (who.city if who else None),
                "country": country or COUNTRY.get(who.country if who else "", "United States"),
            },
        },
        "authenticationContext": {"authenticationStep": 0, "externalSessionId": uuid.uuid4().hex},
        "outcome": {"result": result, "reason": reason},
        "target": target,
        "transaction": {"type": "WEB", "id": uuid.uuid4().hex[:20], "detail": {}},
        "debugContext": {"debugData": {"requestUri": "/idp/idx/authenticate"}},
        "securityContext": {"isProxy": ip in ATTACKER_IPS},
    }


def events(sc: Scenario) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rng = sc.rng
    for _ in range(sc.days):
        for p in sc.people:
            t = sc.work_time()
            out.append(
                _event(
                    sc,
                    t,
                    p,
                    "user.session.start",
                    "SUCCESS",
                    "User login to Okta",
                    p.ip,
                    p.user_agent,
                )
            )
            out.append(
                _event(
                    sc,
                    t + dt.timedelta(seconds=20),
                    p,
                    "user.authentication.auth_via_mfa",
                    "SUCCESS",
                    "Authentication of user via MFA",
                    p.ip,
                    p.user_agent,
                )
            )
            for _ in range(rng.randint(2, 6)):
                app = rng.choice(APPS)
                out.append(
                    _event(
                        sc,
                        sc.work_time(),
                        p,
                        "user.authentication.sso",
                        "SUCCESS",
                        "User single sign on to app",
                        p.ip,
                        p.user_agent,
                        target=[{"type": "AppInstance", "displayName": app}],
                    )
                )
            if rng.random() < 0.1:  # typo'd passwords happen
                out.append(
                    _event(
                        sc,
                        t - dt.timedelta(seconds=30),
                        p,
                        "user.session.start",
                        "FAILURE",
                        "User login to Okta",
                        p.ip,
                        p.user_agent,
                        reason="INVALID_CREDENTIALS",
                    )
                )
    # --- planted: password spray from a Tor exit ------------------------------------
    t0 = sc.recent(9)
    spray_ip = ATTACKER_IPS[1]
    for i, p in enumerate(sc.people):
        out.append(
            _event(
                sc,
                t0 + dt.timedelta(seconds=7 * i),
                p,
                "user.session.start",
                "FAILURE",
                "User login to Okta",
                spray_ip,
                ATTACKER_UA,
                reason="INVALID_CREDENTIALS",
                country="Netherlands",
                city="Amsterdam",
            )
        )
    # --- planted: MFA fatigue on niaj, who finally accepts ---------------------------
    victim = sc.people[11]
    t1 = sc.recent(6)
    out.append(
        _event(
            sc,
            t1,
            victim,
            "user.session.start",
            "SUCCESS",
            "User login to Okta",
            spray_ip,
            ATTACKER_UA,
            country="Netherlands",
            city="Amsterdam",
        )
    )
    for i in range(14):
        out.append(
            _event(
                sc,
                t1 + dt.timedelta(seconds=30 + 25 * i),
                victim,
                "system.push.send_factor_verify_push",
                "SUCCESS",
                "Push sent",
                spray_ip,
                ATTACKER_UA,
                country="Netherlands",
                city="Amsterdam",
            )
        )
        out.append(
            _event(
                sc,
                t1 + dt.timedelta(seconds=45 + 25 * i),
                victim,
                "user.mfa.okta_verify.deny_push",
                "FAILURE",
                "User rejected Okta push verify",
                victim.ip,
                "Okta Verify/9.0",
            )
        )
    out.append(
        _event(
            sc,
            t1 + dt.timedelta(minutes=7),
            victim,
            "user.authentication.auth_via_mfa",
            "SUCCESS",
            "Authentication of user via MFA",
            spray_ip,
            ATTACKER_UA,
            country="Netherlands",
            city="Amsterdam",
        )
    )
    # --- planted: privilege escalation and MFA removal --------------------------------
    admin = sc.people[0]
    out.append(
        _event(
            sc,
            t1 + dt.timedelta(minutes=12),
            victim,
            "user.account.privilege.grant",
            "SUCCESS",
            "Grant user privilege",
            spray_ip,
            ATTACKER_UA,
            target=[
                {
                    "type": "User",
                    "alternateId": victim.email,
                    "detailEntry": {"privilegeGranted": "Super administrator"},
                }
            ],
            country="Netherlands",
            city="Amsterdam",
        )
    )
    out.append(
        _event(
            sc,
            t1 + dt.timedelta(minutes=14),
            victim,
            "user.mfa.factor.deactivate",
            "SUCCESS",
            "Reset factor for user",
            spray_ip,
            ATTACKER_UA,
            target=[{"type": "User", "alternateId": admin.email}],
            country="Netherlands",
            city="Amsterdam",
        )
    )
    return out


@generator("okta")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """System Log API pages as a collector saves them: JSON arrays of up to 1000 events."""
    evs = sorted(events(sc), key=lambda e: e["published"])
    base = out_dir / "okta"
    base.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(0, len(evs), 1000):
        f = base / f"system-log-{i // 1000:04d}.json"
        f.write_text(json.dumps(evs[i : i + 1000]))
        files.append(f)
    return files
