"""PII redaction: unit cases, consistency, and a seeded corpus routed to every external
destination over real HTTP/SMTP with zero leaks (and the internal file destination
receiving the originals, so the check itself can fail)."""

from __future__ import annotations

import base64
import html
import json
import random
import string
from typing import Any

import pytest

from mantissa.alerts.model import Alert
from mantissa.alerts.redact import RedactionConfig, luhn_ok, redact_alert
from mantissa.alerts.service import AlertService
from tests.alerts import stubs
from tests.alerts.conftest import T0, candidate

KEY = b"k" * 32


def _alert(**kw: Any) -> Alert:
    alert_id = kw.pop("id", "al_test0001")
    c = candidate(**kw)
    return Alert(id=alert_id, created_at=T0, updated_at=T0, **c.model_dump())


def _red(text: str, **cfg: Any) -> str:
    a = redact_alert(_alert(description=text), RedactionConfig(**cfg), KEY)
    return a.description or ""


@pytest.mark.parametrize(
    ("text", "secret", "label"),
    [
        ("mail jane.doe+x@corp.example.com now", "jane.doe+x@corp.example.com", "EMAIL"),
        ("call +1 415 555 0132 asap", "415 555 0132", "PHONE"),
        ("call (415) 555-0132", "555-0132", "PHONE"),
        ("card 4111 1111 1111 1111 used", "4111 1111 1111 1111", "CARD"),
        ("card 378282246310005", "378282246310005", "CARD"),
        ("ssn 123-45-6789", "123-45-6789", "NATIONAL-ID"),
        ("nino AB123456C", "AB123456C", "NATIONAL-ID"),
        ("iban GB82WEST12345698765432", "GB82WEST12345698765432", "IBAN"),
        ("key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "AWS-KEY"),
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI",
            "SECRET",
        ),
        ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end", "wJalrXUtnFEMI", "AWS-SECRET"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
            "eyJzdWIiOiIxMjM0NSJ9",
            "JWT",
        ),
        ("Authorization: Bearer abcdef0123456789abcdef", "abcdef0123456789abcdef", "TOKEN"),
        ("dsn postgres://svc:Sup3rS3cret@db:5432/app", "Sup3rS3cret", "URL-PASSWORD"),
        ('{"password": "hunter2hunter2"}', "hunter2hunter2", "SECRET"),
        ("token xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012", "TOKEN"),
        ("gh ghp_" + "a1B2" * 9, "ghp_a1B2", "TOKEN"),
    ],
)
def test_each_kind_is_pseudonymised(text: str, secret: str, label: str) -> None:
    out = _red(text)
    assert secret not in out and f"[{label}-" in out, out


def test_lookalikes_are_kept() -> None:
    text = (
        "order 4111111111111112 at 2026-03-01T12:00:00Z id 550e8400-e29b-41d4-a716-446655440000 "
        "rule aws_console_root_login sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 ip 10.1.2.3"
    )
    assert _red(text) == text
    assert not luhn_ok("4111111111111112") and luhn_ok("4111111111111111")


def test_ips_and_users_only_when_configured() -> None:
    a = _alert(
        entities={"user": "jdoe", "ip": "198.51.100.7"},
        evidence_rows=[
            {"userName": "jdoe", "sourceIPAddress": "198.51.100.7", "msg": "jdoe logged in"}
        ],
    )
    plain = redact_alert(a, RedactionConfig(), KEY)
    assert plain.entities == {"user": "jdoe", "ip": "198.51.100.7"}
    red = redact_alert(a, RedactionConfig(ips=True, users=True), KEY)
    dumped = json.dumps(red.model_dump(mode="json"))
    assert "jdoe" not in dumped and "198.51.100.7" not in dumped
    # the same value has the same pseudonym everywhere in the alert
    assert red.evidence_rows[0]["userName"] == red.entities["user"]
    assert red.evidence_rows[0]["msg"] == f"{red.entities['user']} logged in"


def test_pseudonyms_consistent_within_and_different_across_alerts() -> None:
    text = "a@x.example then a@x.example and b@x.example"
    a1 = redact_alert(_alert(id="al_1", description=text), RedactionConfig(), KEY).description or ""
    a2 = redact_alert(_alert(id="al_2", description=text), RedactionConfig(), KEY).description or ""
    p = a1.split()
    assert p[0] == p[2] != p[4]
    assert a1 != a2  # cannot be joined across alerts


# -- the seeded corpus ------------------------------------------------------------------------------
def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for d in string.digits:
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice(string.digits) for _ in range(18))
    num = int("".join(str(int(c, 36)) for c in bban + "DE00"))
    return f"DE{98 - num % 97:02d}{bban}"


def _b64url(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def corpus(seed: int, n: int) -> tuple[list[Any], list[str]]:
    """``n`` candidates carrying seeded PII in every field; returns them and the PII values."""
    rng = random.Random(seed)
    pii: list[str] = []
    cands = []
    for i in range(n):
        tok = lambda k, alphabet=string.ascii_letters + string.digits: "".join(  # noqa: E731
            rng.choice(alphabet) for _ in range(k)
        )
        email = f"{tok(6, string.ascii_lowercase)}.{tok(5, string.ascii_lowercase)}{i}@corp{i % 3}.example.com"
        phone = rng.choice(
            [
                f"+1 415 555 {rng.randint(1000, 9999)}",
                f"+44 20 7946 {rng.randint(1000, 9999)}",
                f"({rng.randint(200, 999)}) 555-{rng.randint(1000, 9999)}",
            ]
        )
        card = _luhn_complete(rng.choice(["4", "51", "55", "37"]), 15 if i % 4 == 3 else 16, rng)
        card_fmt = " ".join(card[j : j + 4] for j in range(0, len(card), 4)) if i % 2 else card
        ssn = f"{rng.randint(100, 665):03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999):04d}"
        nino = f"{rng.choice('ABCEGHJ')}{rng.choice('ABCEGHJ')}{rng.randint(100000, 999999)}{rng.choice('ABCD')}"
        akid = "AKIA" + tok(16, string.ascii_uppercase + string.digits)
        secret = tok(20) + "/" + tok(18) + "7"
        jwt = f"eyJ{_b64url({'alg': 'HS256'})[3:]}.{_b64url({'sub': tok(8), 'n': i})}.{tok(43, string.ascii_letters + string.digits + '_-')}"
        bearer = tok(40)
        db_pw = tok(14) + "9"
        pw = tok(12) + "x1"
        ghp = "ghp_" + tok(36)
        iban = _iban(rng)
        pem = (
            "-----BEGIN RSA PRIVATE KEY-----\n"
            + tok(64)
            + "\n"
            + tok(64)
            + "\n-----END RSA PRIVATE KEY-----"
        )
        values = [
            email,
            phone,
            card_fmt,
            ssn,
            nino,
            akid,
            secret,
            jwt,
            bearer,
            db_pw,
            pw,
            ghp,
            iban,
            pem,
        ]
        pii += values
        cands.append(
            candidate(
                rule_id=f"corpus.rule{i}",
                rule_title=f"Suspicious activity by {email}",
                dedup_key=f"corpus.rule{i}|{email}",
                entities={"user": email, "ip": "203.0.113.5"},
                description=f"User {email} (phone {phone}) paid with {card_fmt}; SSN {ssn}; NINO {nino}.",
                query=f"SELECT * FROM okta WHERE \"user\" = '{email}'",
                evidence_event_ids=[f"ev-{i}"],
                evidence_rows=[
                    {
                        "user": email,
                        "cc": card_fmt,
                        "iban": iban,
                        "requestParameters": json.dumps(
                            {
                                "accessKeyId": akid,
                                "secretAccessKey": secret,
                                "nested": {"password": pw},
                            }
                        ),
                    },
                    {
                        "headers": f"Authorization: Bearer {bearer}",
                        "jwt": jwt,
                        "dsn": f"mysql://app:{db_pw}@db.internal:3306/prod",
                        "note": f"token {ghp}",
                        "key": pem,
                    },
                ],
            )
        )
    return cands, pii


def _leaks(text: str, values: list[str]) -> list[str]:
    found = []
    for v in values:
        forms = {v, json.dumps(v)[1:-1], html.escape(v), html.escape(v, quote=False)}
        if any(f in text for f in forms):
            found.append(v)
    return found


@pytest.mark.slow
def test_seeded_corpus_reaches_no_external_destination(make_runtime, stub, tmp_path) -> None:

    pd = stubs.PagerDutyStub()
    jira = stubs.JiraStub()
    sn = stubs.ServiceNowStub()
    recv = stubs.WebhookReceiver()
    servers = {
        "slack": stub(stubs.slack_webhook),
        "teams": stub(stubs.teams),
        "pd": stub(pd),
        "jira": stub(jira),
        "sn": stub(sn),
        "hook": stub(recv),
    }
    out_file = tmp_path / "internal.jsonl"
    dests = {
        "slack": {"type": "slack", "webhook_url": servers["slack"].url + stubs.SLACK_HOOK_PATH},
        "teams": {
            "type": "teams",
            "webhook_url": f"{servers['teams'].url}{stubs.TEAMS_PATH}"
            f"?api-version=2016-06-01&sig={stubs.TEAMS_SIG}",
        },
        "pd": {
            "type": "pagerduty",
            "routing_key": stubs.PD_ROUTING_KEY,
            "url": servers["pd"].url + "/v2/enqueue",
        },
        "jira": {
            "type": "jira",
            "base_url": servers["jira"].url,
            "email": stubs.JIRA_EMAIL,
            "api_token": stubs.JIRA_TOKEN,
            "project_key": "SEC",
        },
        "sn": {
            "type": "servicenow",
            "instance_url": servers["sn"].url,
            "username": stubs.SNOW_USER,
            "password": stubs.SNOW_PASSWORD,
        },
        "hook": {
            "type": "webhook",
            "url": servers["hook"].url + "/hook",
            "secret": stubs.WEBHOOK_SECRET,
        },
        "internal": {"type": "file", "path": str(out_file)},
    }
    svc = AlertService(
        make_runtime(
            {
                "destinations": dests,
                "routes": [{"match": {}, "to": list(dests)}],
                "alerts": {"delivery": {"flush_timeout_secs": 30}},
            }
        )
    )
    cands, pii = corpus(seed=20260301, n=12)
    alerts = svc.raise_alerts(cands)
    for a in alerts:
        assert {d["status"] for d in a.deliveries} == {"delivered"}, a.deliveries
    sent = "\n".join(
        r.body.decode() + json.dumps(r.query) for s in servers.values() for r in s.journal
    )
    assert sum(len(s.journal) for s in servers.values()) >= 6 * len(cands)
    assert _leaks(sent, pii) == []
    # the internal destination got the originals, so the check above can fail
    internal = out_file.read_text()
    assert len(_leaks(internal, pii)) > len(pii) * 0.9
    # and the stored alerts keep the originals for analysts
    assert cands[0].entities["user"] == svc.store.get(alerts[0].id).entities["user"]


@pytest.mark.slow
def test_seeded_corpus_email_has_no_pii(make_runtime, smtp_server) -> None:
    from tests.alerts.conftest import SMTP_PASSWORD, SMTP_USER

    svc = AlertService(
        make_runtime(
            {
                "destinations": {
                    "mail": {
                        "type": "email",
                        "host": "127.0.0.1",
                        "port": smtp_server["port"],
                        "username": SMTP_USER,
                        "password": SMTP_PASSWORD,
                        "ca_file": smtp_server["ca_file"],
                        "from_addr": "mantissa@corp.example",
                        "to": ["soc@corp.example"],
                    }
                },
                "routes": [{"match": {}, "to": ["mail"]}],
            }
        )
    )
    cands, pii = corpus(seed=7, n=5)
    svc.raise_alerts(cands)
    msgs = smtp_server["inbox"].messages
    assert len(msgs) == 5
    text = "\n".join(
        str(m["Subject"]) + p.get_content()
        for m in msgs
        for p in m.walk()
        if p.get_content_maintype() == "text"
    )
    assert _leaks(text, pii) == []
