"""PII and secret redaction for alerts leaving for external destinations.

Every string in the alert (title, description, entities, dedup key, query, evidence
rows, enrichment; dict keys too) is scanned for e-mail addresses, phone numbers, payment
card numbers (Luhn-checked), national ids (US SSN, UK NINO, Canadian SIN, Indian
Aadhaar, IBAN), and secrets (AWS access keys and secret keys, JWTs, bearer tokens,
passwords in URLs, ``password=``/``token=``-style pairs, Slack/GitHub/Google/Stripe
tokens, private key blocks); optionally IP addresses and user names.

Each value is replaced by a pseudonym such as ``[EMAIL-5c1e0a9b]``: the same value gets
the same pseudonym everywhere in one alert (so a reader can still follow "the same
user did X then Y"), and a different one in another alert (pseudonyms are keyed with
the alert id and a per-installation secret, so they cannot be joined across alerts or
reversed by hashing guesses).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from mantissa.alerts.model import Alert

# fields that are structure, not content
_KEEP = {
    "id",
    "severity",
    "status",
    "created_at",
    "updated_at",
    "first_seen",
    "last_seen",
    "window_start",
    "window_end",
    "count",
    "suppress_secs",
    "rule_id",
}

# keys in evidence rows / entities whose values are user names
USER_KEYS = {
    "user",
    "user_id",
    "username",
    "user_name",
    "actor",
    "principal",
    "principalid",
    "login",
    "account",
    "userprincipalname",
    "upn",
    "displayname",
    "actor.alternateid",
    "useridentity.username",
    "useridentity.principalid",
}


class RedactionConfig(BaseModel):
    """``alerts.redaction`` in mantissa.yaml."""

    model_config = ConfigDict(extra="forbid")

    emails: bool = True
    phones: bool = True
    cards: bool = True
    national_ids: bool = True
    secrets: bool = True
    ips: bool = False
    users: bool = False
    #: extra literal values or regexes (whole match replaced) to treat as PII
    extra_patterns: list[str] = []


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass
class _Rule:
    label: str
    pattern: re.Pattern[str]
    group: int = 0  # the group that is the sensitive value (0 = whole match)
    check: Callable[[str], bool] | None = None
    #: a cheap precondition: "digit" = the text has a digit, else a substring it must have
    needs: str | None = None


_SECRET_RULES = [
    _Rule(
        "PRIVATE-KEY",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S
        ),
    ),
    _Rule("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")),
    _Rule("URL-PASSWORD", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:([^\s@/]+)@"), 1),
    _Rule("TOKEN", re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})"), 1),
    _Rule("TOKEN", re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/=]{12,})"), 1),
    _Rule(
        "AWS-KEY",
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    ),
    _Rule("TOKEN", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    _Rule("TOKEN", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    _Rule("TOKEN", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    _Rule("TOKEN", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    # key = value / "key": "value" where the key names a secret, in any case style
    # (password, client_secret, secretAccessKey, x-api-key, sessionToken ...)
    _Rule(
        "SECRET",
        re.compile(
            r"(?i)\b[\w.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|"
            r"private[_-]?key|credentials?|passphrase)[\w-]*"
            r"""(?:["']?\s*[:=]\s*["']?)([^\s"'&,;}{]{4,})"""
        ),
        1,
    ),
    # a bare AWS secret access key: 40 chars of base64 with mixed case and a digit
    _Rule(
        "AWS-SECRET",
        re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
        0,
        lambda s: bool(re.search(r"[a-z]", s) and re.search(r"[A-Z]", s) and re.search(r"\d", s)),
    ),
]

_EMAIL = _Rule(
    "EMAIL", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
)

_CARD = _Rule(
    "CARD",
    re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
    0,
    lambda s: 13 <= len(re.sub(r"\D", "", s)) <= 19 and luhn_ok(re.sub(r"\D", "", s)),
)

_NATIONAL = [
    _Rule("NATIONAL-ID", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
    _Rule("NATIONAL-ID", re.compile(r"\b\d{3}[ -]\d{3}[ -]\d{3}\b")),  # Canadian SIN
    _Rule("NATIONAL-ID", re.compile(r"\b[2-9]\d{3} \d{4} \d{4}\b")),  # Aadhaar
    _Rule(
        "NATIONAL-ID",
        re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
    ),  # UK NINO
    _Rule(
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        0,
        lambda s: _iban_ok(s),
    ),
]

_PHONE = [
    # international: +<country> then 6..14 more digits with common separators
    _Rule(
        "PHONE",
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\d])"),
        0,
        lambda s: 8 <= len(re.sub(r"\D", "", s)) <= 15,
    ),
    # North American: (415) 555-0132, 415-555-0132, 415.555.0132
    _Rule("PHONE", re.compile(r"(?<![\w.])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\w.])")),
]

_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}:?[0-9A-Fa-f]{0,4}(?![\w:])|::1\b")


for _r in [_CARD, *_NATIONAL, *_PHONE]:
    _r.needs = "digit"
_EMAIL.needs = "@"
_DIGIT = re.compile(r"\d")


def _iban_ok(s: str) -> bool:
    s = s.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in rearranged)
    return int(num) % 97 == 1


def _valid_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


@dataclass
class Redactor:
    """Pseudonymises sensitive values; one instance per alert keeps pseudonyms consistent."""

    config: RedactionConfig
    key: bytes
    found: dict[str, str] = field(default_factory=dict)  # value → pseudonym

    def __post_init__(self) -> None:
        rules: list[_Rule] = []
        if self.config.secrets:
            rules += _SECRET_RULES
        if self.config.emails:
            rules.append(_EMAIL)
        if self.config.cards:
            rules.append(_CARD)
        if self.config.national_ids:
            rules += _NATIONAL
        if self.config.phones:
            rules += _PHONE
        for pat in self.config.extra_patterns:
            rules.append(_Rule("CUSTOM", re.compile(pat)))
        if self.config.ips:
            rules.append(_Rule("IP", _IPV4, 0, _valid_ip))
            rules.append(_Rule("IP", _IPV6, 0, _valid_ip))
        self.rules = rules
        self.literals: dict[str, str] = {}

    def pseudonym(self, label: str, value: str) -> str:
        p = self.found.get(value)
        if p is None:
            digest = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:8]
            p = f"[{label}-{digest}]"
            self.found[value] = p
        return p

    def add_literal(self, label: str, value: str) -> None:
        """Always replace this exact value (user names known from entities)."""
        if value and len(value) >= 2 and not value.startswith("["):
            self.literals[value] = self.pseudonym(label, value)

    def text(self, s: str) -> str:
        if not s:
            return s
        for lit in sorted(self.literals, key=len, reverse=True):
            if lit in s:
                s = s.replace(lit, self.literals[lit])
        if len(s) < 4:
            return s
        has_digit = _DIGIT.search(s) is not None
        for rule in self.rules:
            if rule.needs == "digit":
                if not has_digit:
                    continue
            elif rule.needs and rule.needs not in s:
                continue
            s = rule.pattern.sub(functools.partial(self._sub, rule=rule), s)
        return s

    def _sub(self, m: re.Match[str], rule: _Rule) -> str:
        value = m.group(rule.group)
        if value is None or value.startswith("["):
            return m.group(0)
        if rule.check is not None and not rule.check(value):
            return m.group(0)
        whole = m.group(0)
        start, end = m.start(rule.group) - m.start(0), m.end(rule.group) - m.start(0)
        return whole[:start] + self.pseudonym(rule.label, value) + whole[end:]

    def value(self, v: Any, key: str | None = None) -> Any:
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int | float):
            s = str(v)
            r = self.text(s)
            return v if r == s else r
        if isinstance(v, dict):
            return {self.text(str(k)): self.value(val, str(k)) for k, val in v.items()}
        if isinstance(v, list | tuple):
            return [self.value(x) for x in v]
        return v


def _collect_users(obj: Any, out: set[str], key: str = "") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _collect_users(v, out, str(k).lower())
    elif isinstance(obj, list):
        for x in obj:
            _collect_users(x, out, key)
    elif isinstance(obj, str) and key.rsplit(".", 1)[-1] in USER_KEYS | {
        k.rsplit(".", 1)[-1] for k in USER_KEYS
    }:
        out.add(obj)


def redact_alert(alert: Alert, config: RedactionConfig, key: bytes) -> Alert:
    """A copy of ``alert`` with sensitive values replaced by per-alert pseudonyms."""
    r = Redactor(config, hmac.new(key, alert.id.encode(), hashlib.sha256).digest())
    data = alert.model_dump(mode="json")
    if config.users:
        users: set[str] = set()
        for k in ("user", "user_id"):
            if alert.entities.get(k):
                users.add(alert.entities[k])
        _collect_users(data.get("evidence_rows"), users)
        _collect_users(data.get("enrichment"), users)
        for u in users:
            r.add_literal("USER", u)
    out: dict[str, Any] = {}
    for k, v in data.items():
        out[k] = v if k in _KEEP else r.value(v, k)
    return Alert.model_validate(out)
