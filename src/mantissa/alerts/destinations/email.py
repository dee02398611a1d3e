"""``type: email``: HTML + text mail through SMTP (STARTTLS + AUTH) or Amazon SES.

SMTP: ``smtplib`` with ``STARTTLS`` (RFC 3207) before ``AUTH`` (RFC 4954) unless
``ssl: true`` (implicit TLS, port 465). 4xx replies and dropped connections are retried,
5xx replies and failed authentication are permanent. The ``Message-ID`` is derived from
the delivery id so a retried mail is recognisable as the same message.

SES: ``sesv2:SendEmail`` with a simple HTML + text body (boto3, the ``aws`` extra);
throttling and 5xx are retried.
"""

from __future__ import annotations

import html
import smtplib
import ssl as ssl_mod
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal

from pydantic import Field, model_validator

from mantissa.alerts.destinations.base import (
    Delivery,
    Destination,
    DestinationConfig,
    alert_facts,
    alert_summary,
)
from mantissa.errors import PermanentDeliveryError, RetryableDeliveryError


class EmailConfig(DestinationConfig):
    transport: Literal["smtp", "ses"] = "smtp"
    from_addr: str
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[Mantissa]"
    # smtp
    host: str | None = None
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = None  # ${env:SMTP_PASSWORD}
    #: CA bundle to trust (self-signed relays); default: the system store
    ca_file: str | None = None
    verify_tls: bool = True
    # ses
    region: str = "us-east-1"
    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None  # ${env:AWS_SECRET_ACCESS_KEY}
    configuration_set: str | None = None

    @model_validator(mode="after")
    def _transport(self) -> EmailConfig:
        if self.transport == "smtp" and not self.host:
            raise ValueError("host is required for transport smtp")
        return self


def render(delivery: Delivery) -> tuple[str, str, str]:
    """(subject, text, html) for an alert."""
    alert = delivery.alert
    subject = alert_summary(alert, delivery.kind, 200)
    facts = alert_facts(alert)
    text_lines = [subject, ""]
    if alert.description:
        text_lines += [alert.description, ""]
    text_lines += [f"{k}: {v}" for k, v in facts]
    if delivery.console_url:
        text_lines += ["", f"Open: {delivery.console_url}"]
    rows = "".join(
        f"<tr><th align='left' style='padding:2px 8px'>{html.escape(k)}</th>"
        f"<td style='padding:2px 8px'>{html.escape(v)}</td></tr>"
        for k, v in facts
    )
    desc = f"<p>{html.escape(alert.description)}</p>" if alert.description else ""
    link = (
        f"<p><a href='{html.escape(delivery.console_url)}'>Open alert</a></p>"
        if delivery.console_url
        else ""
    )
    body = (
        f"<html><body><h3>{html.escape(subject)}</h3>{desc}"
        f"<table style='border-collapse:collapse'>{rows}</table>{link}</body></html>"
    )
    return subject, "\n".join(text_lines) + "\n", body


class Email(Destination):
    type = "email"
    Config = EmailConfig
    supports_updates = True
    config: EmailConfig

    def message(self, delivery: Delivery) -> EmailMessage:
        subject, text, body = render(delivery)
        msg = EmailMessage()
        msg["Subject"] = f"{self.config.subject_prefix} {subject}".strip()
        msg["From"] = self.config.from_addr
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = formatdate(usegmt=True)
        domain = self.config.from_addr.rsplit("@", 1)[-1] or "mantissa.local"
        msg["Message-ID"] = f"<{delivery.idempotency_key.replace(':', '.')}@{domain}>"
        msg["X-Mantissa-Alert-Id"] = delivery.alert.id
        msg.set_content(text)
        msg.add_alternative(body, subtype="html")
        return msg

    def send(self, delivery: Delivery) -> dict[str, Any]:
        if self.config.transport == "ses":
            return self._send_ses(delivery)
        return self._send_smtp(delivery)

    def _tls(self) -> ssl_mod.SSLContext:
        ctx = ssl_mod.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl_mod.CERT_NONE
        return ctx

    def _send_smtp(self, delivery: Delivery) -> dict[str, Any]:
        cfg = self.config
        msg = self.message(delivery)
        host = f"{cfg.host}:{cfg.port}"
        try:
            smtp: smtplib.SMTP
            if cfg.ssl:
                smtp = smtplib.SMTP_SSL(
                    cfg.host or "", cfg.port, timeout=cfg.timeout_secs, context=self._tls()
                )
            else:
                smtp = smtplib.SMTP(cfg.host or "", cfg.port, timeout=cfg.timeout_secs)
            with smtp:
                smtp.ehlo()
                if cfg.starttls and not cfg.ssl:
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                if cfg.username:
                    smtp.login(cfg.username, self.secret(cfg.password) or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(
                f"email: {host} refused the login ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(f"email: {host} does not support {exc}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(
                f"email: {host} refused every recipient: {sorted(exc.recipients)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            msg_ = f"email: {host} answered {exc.smtp_code}"
            if 400 <= exc.smtp_code < 500:
                raise RetryableDeliveryError(msg_) from None
            raise PermanentDeliveryError(msg_) from None
        except ssl_mod.SSLError as exc:
            raise PermanentDeliveryError(f"email: TLS with {host} failed: {exc.reason}") from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise RetryableDeliveryError(
                f"email: cannot talk to {host}: {type(exc).__name__}"
            ) from None
        return {"transport": "smtp", "message_id": msg["Message-ID"], "refused": sorted(refused)}

    def _send_ses(self, delivery: Delivery) -> dict[str, Any]:
        try:
            import boto3
            from botocore.config import Config as BotoConfig
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise PermanentDeliveryError(
                "email: transport ses needs boto3", hint="pip install 'mantissa-log[aws]'"
            ) from None
        cfg = self.config
        subject, text, body = render(delivery)
        kw: dict[str, Any] = {
            "region_name": cfg.region,
            "config": BotoConfig(
                connect_timeout=cfg.timeout_secs,
                read_timeout=cfg.timeout_secs,
                retries={"max_attempts": 1},  # the outbox owns retries
            ),
        }
        if cfg.endpoint_url:
            kw["endpoint_url"] = cfg.endpoint_url
        if cfg.aws_access_key_id:
            kw["aws_access_key_id"] = self.secret(cfg.aws_access_key_id)
            kw["aws_secret_access_key"] = self.secret(cfg.aws_secret_access_key)
        client = boto3.client("sesv2", **kw)
        req: dict[str, Any] = {
            "FromEmailAddress": cfg.from_addr,
            "Destination": {"ToAddresses": list(cfg.to)},
            "Content": {
                "Simple": {
                    "Subject": {
                        "Data": f"{cfg.subject_prefix} {subject}".strip(),
                        "Charset": "UTF-8",
                    },
                    "Body": {
                        "Text": {"Data": text, "Charset": "UTF-8"},
                        "Html": {"Data": body, "Charset": "UTF-8"},
                    },
                }
            },
            "EmailTags": [{"Name": "mantissa_alert", "Value": delivery.alert.id}],
        }
        if cfg.configuration_set:
            req["ConfigurationSetName"] = cfg.configuration_set
        try:
            resp = client.send_email(**req)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            msg = f"email: SES refused the message: {code}"
            if (
                code in ("TooManyRequestsException", "Throttling", "ThrottlingException")
                or status >= 500
            ):
                raise RetryableDeliveryError(msg) from None
            raise PermanentDeliveryError(msg) from None
        except BotoCoreError as exc:
            raise RetryableDeliveryError(f"email: cannot reach SES: {type(exc).__name__}") from None
        return {"transport": "ses", "message_id": resp.get("MessageId")}
