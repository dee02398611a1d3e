"""Microsoft 365: case-insensitive keys, ClientIP forms, per-workload outcome and user."""

from __future__ import annotations

import json

from tests.conftest import shared_or_skip
from tests.sources.saas import parse_text, reference_diffs


def _rec(**kw):
    base = {"CreationTime": "2024-03-04T08:00:00", "Id": "x", "Operation": "Op", "RecordType": 1}
    base.update(kw)
    return json.dumps(base)


def test_lower_cased_keys_match_and_canonical_spelling_wins(tmp_path):
    lines = [
        json.dumps(
            {
                "creationtime": "2024-03-04 08:00:00",
                "id": "a",
                "operation": "Set-Mailbox",
                "userid": "u@example.com",
                "clientip": "192.0.2.1",
                "recordtype": 1,
            }
        ),
        json.dumps(
            {
                "CreationTime": "2024-03-04T08:00:01",
                "creationtime": "1999-01-01T00:00:00",
                "Id": "b",
                "Operation": "Both",
                "operation": "lower",
                "RecordType": 1,
            }
        ),
    ]
    rows = {r["event_id"]: r for r in parse_text("microsoft_365", "\n".join(lines), tmp_path).rows}
    assert rows["a"]["Operation"] == "Set-Mailbox" and rows["a"]["UserId"] == "u@example.com"
    assert rows["a"]["src_ip"] == "192.0.2.1"
    assert rows["b"]["event_type"] == "Both" and rows["b"]["event_time"] == "2024-03-04T08:00:01Z"


def test_client_ip_forms(tmp_path):
    ips = {
        "1": ("[2001:db8::1]:443", "2001:db8::1"),
        "2": ("203.0.113.5:51000", "203.0.113.5"),
        "3": ("::ffff:198.51.100.7", "198.51.100.7"),
        "4": ("localhost", None),
    }
    body = "\n".join(_rec(Id=k, ClientIP=v[0]) for k, v in ips.items())
    rows = {r["event_id"]: r for r in parse_text("microsoft_365", body, tmp_path).rows}
    assert {k: rows[k]["src_ip"] for k in ips} == {k: v[1] for k, v in ips.items()}
    assert rows["4"]["ClientIP"] == "localhost"  # the vendor's value stays as sent


def test_failed_logon_is_a_failure_whatever_the_logging_status(tmp_path):
    body = "\n".join(
        [
            _rec(
                Id="f",
                Operation="UserLoginFailed",
                ResultStatus="Success",
                Workload="AzureActiveDirectory",
            ),
            _rec(
                Id="d",
                Operation="DlpRuleMatch",
                UserId="DlpAgent",
                ExchangeMetaData={"From": "eve@example.com"},
                PolicyDetails=[{"Rules": [{"Actions": ["BlockAccess", "NotifyUser"]}]}],
            ),
            _rec(
                Id="o",
                Operation="DlpRuleMatch",
                UserId="DlpAgent",
                SharePointMetaData={"From": "bob@example.com"},
                ExceptionInfo={"FalsePositive": True},
                PolicyDetails=[{"Rules": [{"Actions": ["BlockAccess"]}]}],
            ),
        ]
    )
    rows = {r["event_id"]: r for r in parse_text("microsoft_365", body, tmp_path).rows}
    assert rows["f"]["outcome"] == "failure"
    assert (rows["d"]["outcome"], rows["d"]["user"]) == ("failure", "eve@example.com")
    assert (rows["o"]["outcome"], rows["o"]["user"]) == ("success", "bob@example.com")


def test_wrong_types_everywhere_are_nulls_not_errors(tmp_path):
    body = _rec(
        Id="w",
        RecordType="x",
        Parameters="Identity=foo",
        ExternalAccess="maybe",
        Actor={"not": "a list"},
        UserType=[1],
    )
    parsed = parse_text("microsoft_365", body, tmp_path)
    assert parsed.summary.events == 1
    row = parsed.rows[0]
    assert row["RecordType"] is None and row["ExternalAccess"] is None
    assert json.loads(row["Parameters"]) == "Identity=foo"


def test_teams_reference_except_failed_logons(tmp_path):
    path = shared_or_skip("corpus", "microsoft_365", "elastic-beats__25-ms-teams-groups.log")
    compared, diffs = reference_diffs(
        "microsoft_365", path, tmp_path, {47, 48}, ("timestamp", "user", "src_ip", "outcome")
    )
    assert compared > 150 and not diffs, diffs
