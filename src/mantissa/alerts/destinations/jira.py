"""``type: jira``: Jira Cloud REST v3 issues with an Atlassian Document Format description.

* create: ``POST /rest/api/3/issue`` (201 ``{"id", "key", "self"}``), the description in
  ADF (https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/);
* no duplicates on retry: every issue carries the label ``mantissa-<alert id>`` and is
  looked up first with ``GET /rest/api/3/search/jql?jql=labels = "..."`` (the enhanced
  search that replaced ``/rest/api/3/search``);
* status changes: a comment (``POST /rest/api/3/issue/{key}/comment``) and, on close, the
  configured transition (``GET``/``POST /rest/api/3/issue/{key}/transitions``).

Auth is HTTP Basic with the account e-mail and an API token.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import Field

from mantissa.alerts.destinations.base import (
    Delivery,
    Destination,
    DestinationConfig,
    alert_facts,
    alert_summary,
)
from mantissa.errors import PermanentDeliveryError


class JiraConfig(DestinationConfig):
    base_url: str  # https://your-site.atlassian.net
    email: str
    api_token: str  # ${env:JIRA_API_TOKEN}
    project_key: str
    issue_type: str = "Task"
    labels: list[str] = Field(default_factory=lambda: ["mantissa", "security-alert"])
    #: severity → Jira priority name; empty = leave Jira's default priority
    priority_map: dict[str, str] = Field(default_factory=dict)
    #: transition applied when the alert is closed / marked false positive
    close_transition: str | None = "Done"


def _text(t: str, marks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": t}
    if marks:
        node["marks"] = marks
    return node


def _para(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(nodes)}


def adf_description(delivery: Delivery) -> dict[str, Any]:
    """The alert as an ADF document: summary paragraph, a facts table, evidence ids."""
    alert = delivery.alert
    content: list[dict[str, Any]] = [
        {
            "type": "heading",
            "attrs": {"level": 3},
            "content": [_text(alert_summary(alert, "trigger", 250))],
        }
    ]
    if alert.description:
        content.append(_para(_text(alert.description)))
    rows = []
    for k, v in alert_facts(alert):
        rows.append(
            {
                "type": "tableRow",
                "content": [
                    {"type": "tableHeader", "content": [_para(_text(k))]},
                    {"type": "tableCell", "content": [_para(_text(v or "-"))]},
                ],
            }
        )
    content.append({"type": "table", "content": rows})
    if alert.evidence_event_ids:
        content.append(_para(_text("Evidence events", [{"type": "strong"}])))
        content.append(
            {
                "type": "bulletList",
                "content": [
                    {"type": "listItem", "content": [_para(_text(e, [{"type": "code"}]))]}
                    for e in alert.evidence_event_ids[:20]
                ],
            }
        )
    if delivery.console_url:
        content.append(
            _para(
                _text(
                    "Open in Mantissa", [{"type": "link", "attrs": {"href": delivery.console_url}}]
                )
            )
        )
    return {"type": "doc", "version": 1, "content": content}


def alert_label(alert_id: str) -> str:
    # Jira labels cannot contain spaces; alert ids never do
    return f"mantissa-{alert_id}"


class Jira(Destination):
    type = "jira"
    Config = JiraConfig
    supports_updates = True
    delivery_guarantee = "effectively_once (search by label before create)"
    config: JiraConfig

    def _headers(self) -> dict[str, str]:
        token = base64.b64encode(
            f"{self.config.email}:{self.secret(self.config.api_token)}".encode()
        ).decode()
        return {
            "Authorization": f"Basic {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def find_issue(self, alert_id: str) -> dict[str, Any] | None:
        jql = f'project = "{self.config.project_key}" AND labels = "{alert_label(alert_id)}"'
        resp = self.http(
            "GET",
            self._url("/rest/api/3/search/jql"),
            params={"jql": jql, "fields": "status,summary", "maxResults": 1},
            headers=self._headers(),
        )
        issues = resp.json().get("issues") or []
        return issues[0] if issues else None

    def create_issue(self, delivery: Delivery) -> dict[str, Any]:
        alert = delivery.alert
        fields: dict[str, Any] = {
            "project": {"key": self.config.project_key},
            "issuetype": {"name": self.config.issue_type},
            "summary": alert_summary(alert, "trigger", 255),
            "description": adf_description(delivery),
            "labels": [*self.config.labels, alert_label(alert.id)],
        }
        priority = self.config.priority_map.get(alert.severity.value)
        if priority:
            fields["priority"] = {"name": priority}
        resp = self.http(
            "POST", self._url("/rest/api/3/issue"), json={"fields": fields}, headers=self._headers()
        )
        return resp.json()

    def comment(self, key: str, text: str) -> None:
        body = {"body": {"type": "doc", "version": 1, "content": [_para(_text(text))]}}
        self.http(
            "POST",
            self._url(f"/rest/api/3/issue/{key}/comment"),
            json=body,
            headers=self._headers(),
        )

    def transition(self, key: str, name: str) -> str | None:
        resp = self.http(
            "GET", self._url(f"/rest/api/3/issue/{key}/transitions"), headers=self._headers()
        )
        for t in resp.json().get("transitions") or []:
            if (
                str(t.get("name", "")).lower() == name.lower()
                or str((t.get("to") or {}).get("name", "")).lower() == name.lower()
            ):
                self.http(
                    "POST",
                    self._url(f"/rest/api/3/issue/{key}/transitions"),
                    json={"transition": {"id": str(t["id"])}},
                    headers=self._headers(),
                )
                return str(t["id"])
        return None

    def send(self, delivery: Delivery) -> dict[str, Any]:
        alert = delivery.alert
        key = (delivery.previous or {}).get("key")
        if not key:
            found = self.find_issue(alert.id)
            key = found.get("key") if found else None
        if delivery.kind in ("trigger", "escalate", "test"):
            if key:
                return {"key": key, "created": False}
            created = self.create_issue(delivery)
            return {"key": created.get("key"), "id": created.get("id"), "created": True}
        if not key:
            raise PermanentDeliveryError(
                f"jira: no issue labelled {alert_label(alert.id)} to update"
            )
        self.comment(key, f"Mantissa alert {alert.id} is now {alert.status.value}.")
        out: dict[str, Any] = {"key": key, "commented": True}
        if delivery.kind == "resolve" and self.config.close_transition:
            out["transition"] = self.transition(key, self.config.close_transition)
        return out
