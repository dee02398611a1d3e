"""The evaluation set: analyst questions and their true answers computed in plain Python.

Each case is one information need with the phrasings analysts actually use (paraphrases,
typos, different time words). ``expect(ds)`` computes the answer from the generated
facts — never from SQL. Kinds:

    count     one number                      ids       the set of matching event ids
    last      the time of the newest match    first     the time of the oldest match
    top       ordered [(key, value)]          groups    {key: value} for every group
    compare   (current, previous) counts      pct       a percentile of a measure
    decline   the question must be declined (it cannot be answered from this lake)
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.nlq.dataset import NOW, TODAY, WEEK, Dataset, Fact

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
WINDOWS = {
    "today": (TODAY, NOW),
    "yesterday": (TODAY - D, TODAY),
    "this_week": (WEEK, NOW),
    "last_week": (WEEK - 7 * D, WEEK),
    "24h": (NOW - 24 * H, NOW),
    "6h": (NOW - 6 * H, NOW),
    "7d": (NOW - 7 * D, NOW),
    "3d": (NOW - 3 * D, NOW),
    "2d": (NOW - 2 * D, NOW),
    "14d": (NOW - 14 * D, NOW),
    "90d": (NOW - 90 * D, NOW),
}
US = "US"


@dataclass
class Case:
    intent: str
    kind: str
    questions: list[str]
    expect: Callable[[Dataset], Any]


def sel(ds: Dataset, window: str, pred: Callable[[Fact], bool] = lambda f: True) -> list[Fact]:
    lo, hi = WINDOWS[window]
    return [f for f in ds.facts if lo <= f.time < hi and pred(f)]


def is_login(f: Fact) -> bool:
    return (f.source == "cloudtrail" and f.event_type == "ConsoleLogin") or (
        f.source == "okta" and f.event_type in ("user.session.start", "user.authentication.sso")
    )


def failed(f: Fact) -> bool:
    return f.outcome == "failure"


def who(name: str) -> Callable[[Fact], bool]:
    return lambda f: f.user in (name, f"{name}@example.com")


def ct(name: str) -> Callable[[Fact], bool]:
    return lambda f: f.source == "cloudtrail" and f.event_type == name


def ids(facts: list[Fact]) -> list[tuple[str, str]]:
    """The matching events as sorted (source, time) pairs — a multiset, so duplicates count."""
    return sorted((f.source, f.time.isoformat()) for f in facts)


def top(facts: list[Fact], key: Callable[[Fact], Any], k: int) -> list[tuple[Any, int]]:
    c = Counter(key(f) for f in facts)
    return sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]


def groups(facts: list[Fact], key: Callable[[Fact], Any]) -> dict[Any, int]:
    return dict(Counter(key(f) for f in facts))


def newest(facts: list[Fact]) -> dt.datetime | None:
    return max((f.time for f in facts), default=None)


def oldest(facts: list[Fact]) -> dt.datetime | None:
    return min((f.time for f in facts), default=None)


def quantile(values: list[float], q: float) -> float:
    # linear interpolation, as quantile_cont / numpy's default
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


PRIV = {"AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy", "PutUserPolicy", "PutRolePolicy",
        "PutGroupPolicy", "AddUserToGroup", "CreatePolicyVersion", "SetDefaultPolicyVersion",
        "UpdateAssumeRolePolicy"}  # fmt: skip
SG = {"AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
      "RevokeSecurityGroupEgress", "CreateSecurityGroup", "DeleteSecurityGroup"}  # fmt: skip


def is_priv(f: Fact) -> bool:
    return (f.source == "cloudtrail" and f.event_type in PRIV) or (
        f.source == "okta"
        and f.event_type
        in (
            "user.account.privilege.grant",
            "group.user_membership.add",
            "application.user_membership.add",
        )
    )


CASES: list[Case] = [
    # ---- search ---------------------------------------------------------------------------
    Case(
        "search",
        "ids",
        [
            "Show me all failed logins this week",
            "failed sign-ins this week",
            "list unsuccessful logins so far this week",
            "any failed authentication attempts this week?",
            "faild logins this week",
        ],
        lambda ds: ids(sel(ds, "this_week", lambda f: is_login(f) and failed(f))),
    ),
    Case(
        "search",
        "ids",
        [
            "Show me all failed logins from outside the US this week",
            "failed logins outside the United States this week",
            "non-US failed sign-ins this week",
            "failed logins not from the US this week",
        ],
        lambda ds: ids(
            sel(
                ds,
                "this_week",
                lambda f: is_login(f) and failed(f) and f.country is not None and f.country != US,
            )
        ),
    ),
    Case(
        "search",
        "ids",
        [
            "Show me the buckets created in the last 24 hours",
            "s3 buckets created in the past 24h",
            "new buckets in the last day",
            "bucket creation events in the last 24 hours",
        ],
        lambda ds: ids(sel(ds, "24h", ct("CreateBucket"))),
    ),
    Case(
        "search",
        "ids",
        [
            "IAM users created last week",
            "show new iam users from last week",
            "user creation events last week",
        ],
        lambda ds: ids(sel(ds, "last_week", ct("CreateUser"))),
    ),
    Case(
        "search",
        "ids",
        [
            "everything involving 185.220.101.7 yesterday",
            "show all activity for 185.220.101.7 yesterday",
            "185.220.101.7 yesterday",
        ],
        lambda ds: ids(sel(ds, "yesterday", lambda f: "185.220.101.7" in (f.src_ip, f.dst_ip))),
    ),
    Case(
        "search",
        "ids",
        [
            "events from 185.220.101.7 yesterday",
            "what came from 185.220.101.7 yesterday?",
            "show me everything originating from 185.220.101.7 yesterday",
        ],
        lambda ds: ids(sel(ds, "yesterday", lambda f: f.src_ip == "185.220.101.7")),
    ),
    Case(
        "search",
        "ids",
        [
            "What did mallory do in the last 6 hours?",
            "mallory's activity in the past 6 hours",
            "show everything by mallory in the last six hours",
        ],
        lambda ds: ids(sel(ds, "6h", who("mallory"))),
    ),
    Case(
        "search",
        "ids",
        [
            "Was CloudTrail logging stopped this week?",
            "did anyone stop cloudtrail logging this week",
            "StopLogging events this week",
        ],
        lambda ds: ids(sel(ds, "this_week", ct("StopLogging"))),
    ),
    Case(
        "search",
        "ids",
        [
            "security group changes in the last 7 days",
            "show security group modifications in the past week",
            "any changes to security groups over the last 7 days?",
            "scurity group changes in the last 7 days",
        ],
        lambda ds: ids(sel(ds, "7d", lambda f: f.source == "cloudtrail" and f.event_type in SG)),
    ),
    Case(
        "search",
        "ids",
        [
            "console logins without MFA this week",
            "show aws console logins with no mfa this week",
            "which console sign-ins this week were without MFA?",
        ],
        lambda ds: ids(
            sel(ds, "this_week", lambda f: ct("ConsoleLogin")(f) and f.extra.get("mfa") == "No")
        ),
    ),
    Case(
        "search",
        "ids",
        [
            "privilege grants this week",
            "show me privilege escalations this week",
            "were admin rights granted to anyone this week?",
        ],
        lambda ds: ids(sel(ds, "this_week", is_priv)),
    ),
    Case(
        "search",
        "ids",
        [
            "account lockouts this week",
            "show locked out accounts this week",
        ],
        lambda ds: ids(
            sel(
                ds,
                "this_week",
                lambda f: f.source == "okta" and f.event_type == "user.account.lock",
            )
        ),
    ),
    Case(
        "search",
        "ids",
        [
            "logins from Russia in the last 7 days",
            "russian logins in the past week",
            "sign-ins from RU in the last 7 days",
        ],
        lambda ds: ids(sel(ds, "7d", lambda f: is_login(f) and f.country == "RU")),
    ),
    Case(
        "search",
        "ids",
        [
            "failed logins for carol this week",
            "failed logins for carol@example.com this week",
            "show carol's failed sign-ins this week",
        ],
        lambda ds: ids(
            sel(ds, "this_week", lambda f: is_login(f) and failed(f) and who("carol")(f))
        ),
    ),
    Case(
        "search",
        "ids",
        [
            "successful logins from outside the US in the last 3 days",
            "successful sign-ins from non-US locations in the past 3 days",
        ],
        lambda ds: ids(
            sel(
                ds,
                "3d",
                lambda f: (
                    is_login(f)
                    and f.outcome == "success"
                    and f.country is not None
                    and f.country != US
                ),
            )
        ),
    ),
    Case(
        "search",
        "ids",
        [
            "okta sign-ins from Germany this week",
            "german okta logins this week",
        ],
        lambda ds: ids(
            sel(ds, "this_week", lambda f: f.source == "okta" and is_login(f) and f.country == "DE")
        ),
    ),
    Case(
        "search",
        "ids",
        [
            "new access keys created this week",
            "access key creation this week",
            "CreateAccessKey this week",
        ],
        lambda ds: ids(sel(ds, "this_week", ct("CreateAccessKey"))),
    ),
    Case(
        "search",
        "ids",
        [
            "DeleteBucket events in the last 3 days",
            "buckets deleted in the past 3 days",
        ],
        lambda ds: ids(sel(ds, "3d", ct("DeleteBucket"))),
    ),
    Case(
        "search",
        "ids",
        [
            "flows to 185.220.101.7 yesterday",
            "connections to 185.220.101.7 yesterday",
        ],
        lambda ds: ids(
            sel(ds, "yesterday", lambda f: f.source == "vpc_flow" and f.dst_ip == "185.220.101.7")
        ),
    ),
    # ---- count ----------------------------------------------------------------------------
    Case(
        "count",
        "count",
        [
            "How many failed console logins yesterday?",
            "count of failed aws console logins yesterday",
            "number of unsuccessful console sign-ins yesterday",
            "how many failed console logins were there yesterday",
        ],
        lambda ds: len(sel(ds, "yesterday", lambda f: ct("ConsoleLogin")(f) and failed(f))),
    ),
    Case(
        "count",
        "count",
        [
            "how many events yesterday",
            "total number of events yesterday",
            "how many log events did we get yesterday?",
        ],
        lambda ds: len(sel(ds, "yesterday")),
    ),
    Case(
        "count",
        "count",
        [
            "how many events came from 198.51.100.0/24 today",
            "count events from 198.51.100.0/24 today",
        ],
        lambda ds: len(sel(ds, "today", lambda f: (f.src_ip or "").startswith("198.51.100."))),
    ),
    Case(
        "count",
        "count",
        [
            "how many MFA push denials for bob",
            "count denied pushes for bob in the last 7 days",
            "how many times did bob deny an mfa push?",
        ],
        lambda ds: len(
            sel(
                ds,
                "7d",
                lambda f: f.event_type == "user.mfa.okta_verify.deny_push" and who("bob")(f),
            )
        ),
    ),
    Case(
        "count",
        "count",
        [
            "how many password resets in the past two weeks",
            "number of password resets over the last 14 days",
        ],
        lambda ds: len(
            sel(
                ds,
                "14d",
                lambda f: f.source == "okta" and f.event_type == "user.account.reset_password",
            )
        ),
    ),
    Case(
        "count",
        "count",
        [
            "how many rejected flows in the last 2 days",
            "count of rejected connections in the past 2 days",
            "number of blocked flows in the last two days",
        ],
        lambda ds: len(sel(ds, "2d", lambda f: f.source == "vpc_flow" and f.outcome == "failure")),
    ),
    Case(
        "count",
        "count",
        [
            "how many rejected connections to port 22 today",
            "count rejected flows on port 22 today",
        ],
        lambda ds: len(
            sel(
                ds,
                "today",
                lambda f: (
                    f.source == "vpc_flow"
                    and f.outcome == "failure"
                    and f.extra.get("dstport") == 22
                ),
            )
        ),
    ),
    Case(
        "count",
        "count",
        [
            "how many instances were launched yesterday",
            "number of RunInstances calls yesterday",
        ],
        lambda ds: len(sel(ds, "yesterday", ct("RunInstances"))),
    ),
    Case(
        "count",
        "count",
        [
            "how many api calls did erin make yesterday",
            "count erin's aws api calls yesterday",
        ],
        lambda ds: len(
            sel(ds, "yesterday", lambda f: f.source == "cloudtrail" and f.user == "erin")
        ),
    ),
    Case(
        "count",
        "count",
        [
            "how many distinct users signed in to okta today",
            "number of unique users with okta logins today",
        ],
        lambda ds: len(
            {f.user for f in sel(ds, "today", lambda f: f.source == "okta" and is_login(f))}
        ),
    ),
    Case(
        "count",
        "count",
        [
            "how many access denied errors this week",
            "count AccessDenied errors this week",
            "number of access-denied api calls this week",
        ],
        lambda ds: len(
            sel(
                ds,
                "this_week",
                lambda f: f.source == "cloudtrail" and f.extra.get("error") == "AccessDenied",
            )
        ),
    ),
    Case(
        "count",
        "count",
        [
            "how many okta events today",
            "total okta log volume today",
        ],
        lambda ds: len(sel(ds, "today", lambda f: f.source == "okta")),
    ),
    # ---- last / first seen ---------------------------------------------------------------
    Case(
        "last_seen",
        "last",
        [
            "When was the last time root was used?",
            "when was root last used",
            "last root activity",
            "most recent root account usage",
        ],
        lambda ds: newest(sel(ds, "90d", lambda f: f.user == "root")),
    ),
    Case(
        "last_seen",
        "last",
        [
            "when did root last log in",
            "last console login by root",
            "when was the root account's most recent login?",
        ],
        lambda ds: newest(
            sel(
                ds,
                "90d",
                lambda f: (
                    f.user == "root" and f.event_type == "ConsoleLogin" and f.outcome == "success"
                ),
            )
        ),
    ),
    Case(
        "last_seen",
        "last",
        [
            "when did mallory last log in?",
            "last time mallory logged in",
        ],
        lambda ds: newest(
            sel(ds, "90d", lambda f: is_login(f) and who("mallory")(f) and f.outcome == "success")
        ),
    ),
    Case(
        "last_seen",
        "last",
        [
            "when was the last time someone created a bucket",
            "latest bucket creation",
        ],
        lambda ds: newest(sel(ds, "90d", ct("CreateBucket"))),
    ),
    Case(
        "last_seen",
        "last",
        [
            "when was 45.137.21.9 last seen",
            "most recent activity from 45.137.21.9",
        ],
        lambda ds: newest(sel(ds, "90d", lambda f: "45.137.21.9" in (f.src_ip, f.dst_ip))),
    ),
    Case(
        "first_seen",
        "first",
        [
            "when was 193.32.162.44 first seen",
            "first time 193.32.162.44 appeared",
        ],
        lambda ds: oldest(sel(ds, "90d", lambda f: "193.32.162.44" in (f.src_ip, f.dst_ip))),
    ),
    # ---- top-k ----------------------------------------------------------------------------
    Case(
        "top_k",
        "top",
        [
            "top 5 users by api calls today",
            "which 5 users made the most api calls today",
            "busiest 5 aws users today",
        ],
        lambda ds: top(sel(ds, "today", lambda f: f.source == "cloudtrail"), lambda f: f.user, 5),
    ),
    Case(
        "top_k",
        "top",
        [
            "Which IPs had the most failed logins yesterday?",
            "top source ips for failed logins yesterday",
            "ips with the most failed sign-ins yesterday",
        ],
        lambda ds: top(
            sel(ds, "yesterday", lambda f: is_login(f) and failed(f)), lambda f: f.src_ip, 10
        ),
    ),
    Case(
        "top_k",
        "top",
        [
            "top 3 event types in cloudtrail this week",
            "3 most common cloudtrail events this week",
        ],
        lambda ds: top(
            sel(ds, "this_week", lambda f: f.source == "cloudtrail"), lambda f: f.event_type, 3
        ),
    ),
    Case(
        "top_k",
        "top",
        [
            "top countries for failed okta logins this week",
            "which countries had the most failed okta sign-ins this week",
        ],
        lambda ds: top(
            sel(ds, "this_week", lambda f: f.source == "okta" and is_login(f) and failed(f)),
            lambda f: {
                "US": "United States",
                "GB": "United Kingdom",
                "DE": "Germany",
                "CA": "Canada",
                "FR": "France",
                "RU": "Russia",
                "CN": "China",
                "BR": "Brazil",
            }[f.country],
            10,
        ),
    ),
    Case(
        "top_k",
        "top",
        [
            "top 5 destination ips by bytes yesterday",
            "which 5 destinations received the most bytes yesterday",
        ],
        lambda ds: sorted(
            (
                (k, v)
                for k, v in _sum_by(
                    sel(ds, "yesterday", lambda f: f.source == "vpc_flow"), lambda f: f.dst_ip
                ).items()
            ),
            key=lambda kv: (-kv[1], kv[0]),
        )[:5],
    ),
    Case(
        "top_k",
        "top",
        [
            "who had the most failed logins this week",
            "users with the most failed sign-ins this week",
        ],
        lambda ds: top(
            sel(ds, "this_week", lambda f: is_login(f) and failed(f)), lambda f: f.user, 10
        ),
    ),
    # ---- breakdown ------------------------------------------------------------------------
    Case(
        "breakdown",
        "groups",
        [
            "Who created IAM users this week?",
            "who created new users this week",
        ],
        lambda ds: groups(sel(ds, "this_week", ct("CreateUser")), lambda f: f.user),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "break down access denied errors by user this week",
            "access denied errors per user this week",
            "AccessDenied by user this week",
        ],
        lambda ds: groups(
            sel(
                ds,
                "this_week",
                lambda f: f.source == "cloudtrail" and f.extra.get("error") == "AccessDenied",
            ),
            lambda f: f.user,
        ),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "events per source today",
            "how many events by source today",
            "breakdown of today's events by log source",
        ],
        lambda ds: groups(sel(ds, "today"), lambda f: f.source),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "api calls by service this week",
            "cloudtrail events per service this week",
            "break down aws api calls by service this week",
        ],
        lambda ds: groups(
            sel(ds, "this_week", lambda f: f.source == "cloudtrail"), lambda f: f.extra["service"]
        ),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "which buckets were created in the last 24 hours?",
            "buckets created in the last 24 hours by bucket name",
        ],
        lambda ds: groups(sel(ds, "24h", ct("CreateBucket")), lambda f: f.extra["bucket"]),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "who deleted the guardduty detector?",
            "who disabled guardduty",
        ],
        lambda ds: groups(sel(ds, "7d", ct("DeleteDetector")), lambda f: f.user),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "okta events by event type today",
            "count of okta events per event type today",
        ],
        lambda ds: groups(sel(ds, "today", lambda f: f.source == "okta"), lambda f: f.event_type),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "failed okta logins by country this week",
            "failed okta sign-ins per country this week",
        ],
        lambda ds: groups(
            sel(ds, "this_week", lambda f: f.source == "okta" and is_login(f) and failed(f)),
            lambda f: {
                "US": "United States",
                "GB": "United Kingdom",
                "DE": "Germany",
                "CA": "Canada",
                "FR": "France",
                "RU": "Russia",
                "CN": "China",
                "BR": "Brazil",
            }[f.country],
        ),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "who assumed roles today",
            "AssumeRole calls by user today",
        ],
        lambda ds: groups(sel(ds, "today", ct("AssumeRole")), lambda f: f.user),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "failed logins per hour yesterday",
            "hourly failed logins yesterday",
        ],
        lambda ds: groups(
            sel(ds, "yesterday", lambda f: is_login(f) and failed(f)),
            lambda f: f.time.replace(minute=0, second=0),
        ),
    ),
    Case(
        "breakdown",
        "groups",
        [
            "aws api calls by region this week",
            "cloudtrail events per region this week",
        ],
        lambda ds: _regions(ds),
    ),
    # ---- compare --------------------------------------------------------------------------
    Case(
        "compare",
        "compare",
        [
            "Compare failed logins this week vs last week",
            "failed logins this week compared to last week",
            "were there more failed logins this week than last week?",
        ],
        lambda ds: (
            len(sel(ds, "this_week", lambda f: is_login(f) and failed(f))),
            len(sel(ds, "last_week", lambda f: is_login(f) and failed(f))),
        ),
    ),
    Case(
        "compare",
        "compare",
        [
            "okta failures today vs yesterday",
            "compare failed okta events today versus yesterday",
        ],
        lambda ds: (
            len(sel(ds, "today", lambda f: f.source == "okta" and failed(f))),
            len(sel(ds, "yesterday", lambda f: f.source == "okta" and failed(f))),
        ),
    ),
    Case(
        "compare",
        "compare",
        [
            "compare access denied errors today vs yesterday",
        ],
        lambda ds: (
            len(sel(ds, "today", lambda f: f.extra.get("error") == "AccessDenied")),
            len(sel(ds, "yesterday", lambda f: f.extra.get("error") == "AccessDenied")),
        ),
    ),
    # ---- percentile -----------------------------------------------------------------------
    Case(
        "percentile",
        "pct",
        [
            "p95 bytes per flow today",
            "95th percentile of flow bytes today",
        ],
        lambda ds: quantile(
            [f.extra["bytes"] for f in sel(ds, "today", lambda f: f.source == "vpc_flow")], 0.95
        ),
    ),
    Case(
        "percentile",
        "pct",
        [
            "median bytes of accepted flows this week",
            "p50 bytes for accepted vpc flows this week",
        ],
        lambda ds: quantile(
            [
                f.extra["bytes"]
                for f in sel(
                    ds, "this_week", lambda f: f.source == "vpc_flow" and f.outcome == "success"
                )
            ],
            0.5,
        ),
    ),
    Case(
        "percentile",
        "pct",
        [
            "p99 bytes of flow logs yesterday",
        ],
        lambda ds: quantile(
            [f.extra["bytes"] for f in sel(ds, "yesterday", lambda f: f.source == "vpc_flow")], 0.99
        ),
    ),
    # ---- declined -------------------------------------------------------------------------
    Case(
        "decline",
        "decline",
        [
            "what's the weather in Paris today?",
            "show me the marketing team's logins today",
            "how many tickets were closed last week",
            "list all jira issues assigned to bob",
            "what is our quarterly revenue",
            "which laptops are missing patches",
            "show printer jobs from yesterday",
            "how many critical vulnerabilities do we have",
            "what's the status of the firewall upgrade project",
            "who approved the budget for the new office",
            "summarize the phishing emails received today",
        ],
        lambda ds: None,
    ),
]


def _sum_by(facts: list[Fact], key: Callable[[Fact], Any]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for f in facts:
        out[key(f)] = out.get(key(f), 0) + int(f.extra.get("bytes", 0))
    return out


def _regions(ds: Dataset) -> dict[Any, int]:
    return groups(
        sel(ds, "this_week", lambda f: f.source == "cloudtrail"), lambda f: f.extra["region"]
    )
