"""The email destination: SMTP with STARTTLS + AUTH against a real aiosmtpd server, and
Amazon SES (sesv2 SendEmail) against moto in server mode."""

from __future__ import annotations

from typing import Any

import pytest

from mantissa.alerts.service import AlertService
from tests.alerts.conftest import SMTP_PASSWORD, SMTP_USER, _free_port, candidate


def _svc(make_runtime: Any, dest: dict[str, Any]) -> AlertService:
    return AlertService(
        make_runtime(
            {
                "destinations": {"mail": {"backoff_base_secs": 0.05, **dest}},
                "routes": [{"match": {}, "to": ["mail"]}],
                "alerts": {
                    "delivery": {"flush_timeout_secs": 5},
                    "enrichment": {"user_context": {"enabled": False}},
                },
            }
        )
    )


def test_smtp_starttls_auth_html_and_text(make_runtime, smtp_server, monkeypatch) -> None:
    monkeypatch.setenv("T_SMTP_PASSWORD", SMTP_PASSWORD)
    svc = _svc(
        make_runtime,
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": smtp_server["port"],
            "username": SMTP_USER,
            "password": "${env:T_SMTP_PASSWORD}",
            "ca_file": smtp_server["ca_file"],
            "from_addr": "mantissa@corp.example",
            "to": ["soc@corp.example", "oncall@corp.example"],
        },
    )
    [alert] = svc.raise_alerts([candidate(description="Root <b>login</b> & friends")])
    assert alert.deliveries[0]["status"] == "delivered", alert.deliveries
    [msg] = smtp_server["inbox"].messages
    assert smtp_server["inbox"].envelopes[0].rcpt_tos == ["soc@corp.example", "oncall@corp.example"]
    assert msg["Subject"].startswith("[Mantissa] [HIGH] AWS root account console login")
    assert msg["Message-ID"].startswith(f"<{alert.id}.mail.trigger@")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Root <b>login</b> & friends" in text and f"Alert id: {alert.id}" in text
    assert "Root &lt;b&gt;login&lt;/b&gt; &amp; friends" in html  # escaped, not injected


def test_smtp_wrong_password_is_permanent(make_runtime, smtp_server) -> None:
    svc = _svc(
        make_runtime,
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": smtp_server["port"],
            "username": SMTP_USER,
            "password": "wrong-password",
            "ca_file": smtp_server["ca_file"],
            "from_addr": "mantissa@corp.example",
            "to": ["soc@corp.example"],
        },
    )
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "dead" and d["attempts"] == 1 and "refused the login" in d["last_error"]
    assert "wrong-password" not in str(alert.to_dict())
    assert smtp_server["inbox"].messages == []


def test_smtp_untrusted_certificate_is_refused(make_runtime, smtp_server) -> None:
    svc = _svc(
        make_runtime,
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": smtp_server["port"],
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "from_addr": "mantissa@corp.example",
            "to": ["soc@corp.example"],
        },
    )
    [alert] = svc.raise_alerts([candidate()])
    assert alert.deliveries[0]["status"] == "dead" and "TLS" in alert.deliveries[0]["last_error"]
    assert smtp_server["inbox"].messages == []


@pytest.fixture
def moto_ses():
    pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_ses_through_moto_server(make_runtime, moto_ses, monkeypatch) -> None:
    import boto3

    monkeypatch.setenv("T_AWS_SECRET", "testing-secret")
    kw = {
        "region_name": "eu-west-1",
        "endpoint_url": moto_ses,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing-secret",
    }
    boto3.client("sesv2", **kw).create_email_identity(EmailIdentity="mantissa@corp.example")
    svc = _svc(
        make_runtime,
        {
            "type": "email",
            "transport": "ses",
            "region": "eu-west-1",
            "endpoint_url": moto_ses,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "${env:T_AWS_SECRET}",
            "from_addr": "mantissa@corp.example",
            "to": ["soc@corp.example"],
        },
    )
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "delivered" and d["response"]["message_id"], d
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
    assert len(sent) == 1
    msg = sent[0]
    assert msg.destinations["ToAddresses"] == ["soc@corp.example"]
    assert "AWS root account console login" in msg.subject
    assert alert.id in msg.body  # moto keeps the HTML part


def test_ses_unverified_sender_is_permanent(make_runtime, moto_ses) -> None:
    svc = _svc(
        make_runtime,
        {
            "type": "email",
            "transport": "ses",
            "region": "eu-west-1",
            "endpoint_url": moto_ses,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "from_addr": "nobody@unverified.example",
            "to": ["soc@corp.example"],
        },
    )
    [alert] = svc.raise_alerts([candidate()])
    d = alert.deliveries[0]
    assert d["status"] == "dead" and "SES refused" in d["last_error"]
