"""Demo GitHub: enterprise audit-log stream, with a repository made public and a new PAT.

Everyday: clones and fetches, pull requests opened and merged, workflow runs, the odd team
change. Planted: from the attacker's address, mallory creates a personal access token,
clones every repository she can reach, makes ``payments`` public, and removes its branch
protection.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Person, Scenario

ORG = "example-org"
REPOS = ["payments", "web", "api", "infra", "mobile", "docs", "data-pipeline", "auth"]


def _event(
    sc: Scenario,
    t: dt.datetime,
    p: Person | None,
    action: str,
    ip: str | None = None,
    country: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    ms = int(t.timestamp() * 1000)
    ev: dict[str, Any] = {
        "@timestamp": ms,
        "_document_id": uuid.UUID(int=sc.rng.getrandbits(128)).hex[:22],
        "action": action,
        "actor": p.name if p else "github-actions[bot]",
        "actor_id": 1000 + (sc.people.index(p) if p else 99),
        "actor_is_bot": p is None,
        "business": "example-enterprise",
        "business_id": 12,
        "created_at": ms,
        "org": ORG,
        "org_id": 424242,
        "operation_type": fields.pop("operation_type", "access"),
    }
    if p is not None:
        ev["actor_ip"] = ip or p.ip
        ev["actor_location"] = {"country_code": country or p.country}
        ev["user_agent"] = p.user_agent
    ev.update(fields)
    return ev


def events(sc: Scenario) -> list[dict[str, Any]]:
    rng = sc.rng
    out: list[dict[str, Any]] = []
    devs = [p for p in sc.people if p.department in ("engineering", "it")]
    for _ in range(sc.days * len(devs) * 6):
        p = rng.choice(devs)
        repo = f"{ORG}/{rng.choice(REPOS)}"
        out.append(
            _event(
                sc,
                sc.work_time(),
                p,
                rng.choice(["git.clone", "git.fetch", "git.push"]),
                repo=repo,
                repository=repo,
                repository_public=False,
                transport_protocol_name="ssh",
            )
        )
    for _ in range(sc.days * len(devs)):
        p = rng.choice(devs)
        repo = f"{ORG}/{rng.choice(REPOS)}"
        # merged two hours later: opened early enough that the merge is not in the future
        t = min(sc.work_time(), sc.end - dt.timedelta(hours=2, minutes=5))
        out.append(_event(sc, t, p, "pull_request.create", repo=repo, operation_type="create"))
        out.append(
            _event(
                sc,
                t + dt.timedelta(hours=2),
                rng.choice(devs),
                "pull_request.merge",
                repo=repo,
                operation_type="modify",
            )
        )
        out.append(
            _event(
                sc,
                t + dt.timedelta(hours=2, minutes=4),
                None,
                "workflows.completed_workflow_run",
                repo=repo,
                name="CI",
                conclusion="success" if rng.random() > 0.1 else "failure",
                operation_type="modify",
            )
        )
    for _ in range(sc.days):
        admin = next(p for p in sc.people if p.admin)
        out.append(
            _event(
                sc,
                sc.work_time(),
                admin,
                "team.add_member",
                team=f"{ORG}/devs",
                user=rng.choice(devs).name,
                operation_type="modify",
            )
        )
    # --- planted: token, mass clone, repository made public -------------------------
    mallory = sc.people[10]
    ip = ATTACKER_IPS[1]
    t0 = sc.recent(5)
    out.append(
        _event(
            sc,
            t0,
            mallory,
            "personal_access_token.request_created",
            ip,
            "NL",
            user=mallory.name,
            token_id=55501,
            programmatic_access_type="Fine-grained personal access token",
            token_scopes="contents:read,administration:write,metadata:read",
            operation_type="create",
        )
    )
    out.append(
        _event(
            sc,
            t0 + dt.timedelta(seconds=20),
            mallory,
            "personal_access_token.access_granted",
            ip,
            "NL",
            user=mallory.name,
            token_id=55501,
            operation_type="create",
        )
    )
    for i, r in enumerate(REPOS):
        repo = f"{ORG}/{r}"
        out.append(
            _event(
                sc,
                t0 + dt.timedelta(minutes=2, seconds=15 * i),
                mallory,
                "git.clone",
                ip,
                "NL",
                repo=repo,
                repository=repo,
                repository_public=False,
                transport_protocol_name="http",
                programmatic_access_type="Fine-grained personal access token",
            )
        )
    out.append(
        _event(
            sc,
            t0 + dt.timedelta(minutes=6),
            mallory,
            "repo.access",
            ip,
            "NL",
            repo=f"{ORG}/payments",
            previous_visibility="private",
            visibility="public",
            public_repo=True,
            operation_type="modify",
        )
    )
    out.append(
        _event(
            sc,
            t0 + dt.timedelta(minutes=7),
            mallory,
            "protected_branch.destroy",
            ip,
            "NL",
            repo=f"{ORG}/payments",
            branch="main",
            name="main",
            operation_type="remove",
        )
    )
    return out


@generator("github")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """Audit-log streaming output: one NDJSON file per day (as written to S3 / Blob)."""
    base = out_dir / "github"
    base.mkdir(parents=True, exist_ok=True)
    days: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(events(sc), key=lambda e: e["@timestamp"]):
        day = dt.datetime.fromtimestamp(e["@timestamp"] / 1000, dt.UTC).strftime("%Y-%m-%d")
        days.setdefault(day, []).append(e)
    files: list[Path] = []
    for day, evs in days.items():
        f = base / f"audit-{day}.json"
        f.write_text("".join(json.dumps(e) + "\n" for e in evs))
        files.append(f)
    return files
