"""Kubernetes audit: stages, EventList, AKS string-wrapped events, GKE LogEntries."""

from __future__ import annotations

import json

from tests.sources.saas import parse_text

EV = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "a1",
    "verb": "get",
    "user": {"username": "u"},
    "sourceIPs": ["192.0.2.3"],
    "objectRef": {"resource": "secrets", "namespace": "ns", "name": "s"},
    "requestReceivedTimestamp": "2024-03-04T09:00:00Z",
}


def test_each_stage_is_its_own_event(tmp_path):
    recv = {**EV, "stage": "RequestReceived"}
    done = {**EV, "stage": "ResponseComplete", "responseStatus": {"code": 200}}
    parsed = parse_text("kubernetes", json.dumps(recv) + "\n" + json.dumps(done), tmp_path)
    assert parsed.summary.events == 2 and parsed.summary.duplicates == 0
    assert sorted(r["outcome"] for r in parsed.rows) == ["success", "unknown"]


def test_aks_log_as_object_and_bad_string(tmp_path):
    recs = {
        "records": [
            {
                "category": "kube-audit",
                "resourceId": "/x/managedClusters/c1",
                "properties": {
                    "log": {**EV, "stage": "ResponseComplete", "responseStatus": {"code": 403}}
                },
            },
            {"category": "kube-audit", "properties": {"log": "{not json"}},
        ]
    }
    parsed = parse_text("kubernetes", json.dumps(recs), tmp_path)
    assert [(r["host"], r["outcome"]) for r in parsed.rows] == [("c1", "failure")]
    assert parsed.summary.rejected == 1


def test_gke_audit_log_entry(tmp_path):
    entry = {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "dev@example.com"},
            "methodName": "io.k8s.core.v1.pods.exec.create",
            "serviceName": "k8s.io",
            "resourceName": "core/v1/namespaces/prod/pods/api-0/exec",
            "requestMetadata": {
                "callerIp": "198.51.100.9",
                "callerSuppliedUserAgent": "kubectl/v1.29",
            },
            "status": {"code": 7, "message": "forbidden"},
        },
        "insertId": "i-1",
        "timestamp": "2024-03-04T09:00:00.5Z",
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "gke-prod"}},
    }
    row = parse_text("kubernetes", json.dumps(entry), tmp_path).rows[0]
    assert (row["user"], row["src_ip"], row["verb"], row["host"], row["outcome"]) == (
        "dev@example.com",
        "198.51.100.9",
        "create",
        "gke-prod",
        "failure",
    )
