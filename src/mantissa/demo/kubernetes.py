"""Demo Kubernetes: API server audit log, with a privileged pod, an exec and secret reads.

Everyday: controllers and service accounts get/list/watch, deployments rolled out by the
CI service account, engineers reading pods and logs. Planted: with mallory's kubeconfig,
from the attacker's address: a privileged hostPID pod, ``exec`` into it, secrets listed
and read in ``kube-system`` (one read forbidden), a cluster-admin binding created.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Scenario

KUBECTL = "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819"
NAMESPACES = ["payments", "web", "api", "monitoring"]
RESOURCES = [
    ("pods", ""),
    ("deployments", "apps"),
    ("services", ""),
    ("configmaps", ""),
    ("replicasets", "apps"),
    ("endpoints", ""),
]


def _ts(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event(
    sc: Scenario,
    t: dt.datetime,
    user: str,
    groups: list[str],
    verb: str,
    resource: str,
    ns: str | None,
    name: str | None,
    ip: str,
    ua: str,
    code: int,
    group: str = "",
    sub: str | None = None,
    level: str = "Metadata",
    request: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The RequestReceived and ResponseComplete stages of one request."""
    prefix = f"/apis/{group}/v1" if group else "/api/v1"
    uri = (
        prefix + (f"/namespaces/{ns}" if ns else "") + f"/{resource}" + (f"/{name}" if name else "")
    )
    if sub:
        uri += f"/{sub}"
    obj: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if group:
        obj["apiGroup"] = group
    if ns:
        obj["namespace"] = ns
    if name:
        obj["name"] = name
    if sub:
        obj["subresource"] = sub
    audit_id = str(uuid.UUID(int=sc.rng.getrandbits(128)))
    common = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": groups},
        "sourceIPs": [ip],
        "userAgent": ua,
        "objectRef": obj,
        "requestReceivedTimestamp": _ts(t),
    }
    received = {**common, "stage": "RequestReceived", "stageTimestamp": _ts(t)}
    done_t = t + dt.timedelta(milliseconds=sc.rng.randrange(2, 80))
    done = {
        **common,
        "stage": "ResponseComplete",
        "stageTimestamp": _ts(done_t),
        "responseStatus": {"metadata": {}, "code": code},
        "annotations": {
            "authorization.k8s.io/decision": "allow" if code != 403 else "forbid",
            "authorization.k8s.io/reason": "RBAC: allowed" if code != 403 else "",
        },
    }
    if code == 403:
        done["responseStatus"].update({"status": "Failure", "reason": "Forbidden"})
    if request is not None and level != "Metadata":
        done["requestObject"] = request
    return [received, done]


def events(sc: Scenario) -> list[dict[str, Any]]:
    rng = sc.rng
    out: list[dict[str, Any]] = []
    controllers = [
        ("system:serviceaccount:kube-system:deployment-controller", "10.0.0.10"),
        ("system:serviceaccount:kube-system:replicaset-controller", "10.0.0.10"),
        ("system:kube-scheduler", "10.0.0.11"),
        ("system:serviceaccount:monitoring:prometheus", "10.244.3.7"),
    ]
    for _ in range(sc.days * 300):
        user, ip = rng.choice(controllers)
        res, group = rng.choice(RESOURCES)
        out += _event(
            sc,
            sc.start + dt.timedelta(seconds=rng.uniform(0, sc.days * 86400)),
            user,
            ["system:serviceaccounts", "system:authenticated"],
            rng.choice(["get", "list", "watch"]),
            res,
            rng.choice(NAMESPACES),
            None,
            ip,
            "kube-controller-manager/v1.29.2",
            200,
            group,
        )
    devs = [p for p in sc.people if p.department in ("engineering", "it")]
    for _ in range(sc.days * len(devs) * 5):
        p = rng.choice(devs)
        ns = rng.choice(NAMESPACES)
        verb, res, sub = rng.choice(
            [
                ("get", "pods", None),
                ("list", "pods", None),
                ("get", "pods", "log"),
                ("get", "deployments", None),
            ]
        )
        out += _event(
            sc,
            sc.work_time(),
            p.email,
            ["system:authenticated", "devs"],
            verb,
            res,
            ns,
            f"{ns}-{rng.randrange(9)}" if verb == "get" else None,
            p.ip,
            KUBECTL,
            200,
            "apps" if res == "deployments" else "",
            sub,
        )
    for _ in range(sc.days * 4):
        ns = rng.choice(NAMESPACES)
        out += _event(
            sc,
            sc.work_time(),
            "system:serviceaccount:ci:deployer",
            ["system:serviceaccounts"],
            "patch",
            "deployments",
            ns,
            ns,
            "10.244.1.50",
            "argocd-application-controller/v2.10.1",
            200,
            "apps",
        )
    # --- planted: privileged pod, exec, secrets, cluster-admin binding ---------------
    user = sc.people[10].email
    groups = ["system:authenticated", "devs"]
    ip = ATTACKER_IPS[1]
    t0 = sc.recent(4.8)
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "debug-tools", "namespace": "payments"},
        "spec": {
            "hostPID": True,
            "hostNetwork": True,
            "containers": [
                {
                    "name": "shell",
                    "image": "alpine:3.19",
                    "command": ["sleep", "infinity"],
                    "securityContext": {"privileged": True},
                    "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                }
            ],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        },
    }
    out += _event(
        sc,
        t0,
        user,
        groups,
        "create",
        "pods",
        "payments",
        None,
        ip,
        KUBECTL,
        201,
        level="RequestResponse",
        request=pod,
    )
    out += _event(
        sc,
        t0 + dt.timedelta(minutes=1),
        user,
        groups,
        "create",
        "pods",
        "payments",
        "debug-tools",
        ip,
        KUBECTL,
        101,
        sub="exec",
    )
    out += _event(
        sc,
        t0 + dt.timedelta(minutes=3),
        user,
        groups,
        "list",
        "secrets",
        "kube-system",
        None,
        ip,
        KUBECTL,
        200,
    )
    for i, name in enumerate(["cluster-admin-token", "aws-credentials", "db-root-password"]):
        out += _event(
            sc,
            t0 + dt.timedelta(minutes=4, seconds=10 * i),
            user,
            groups,
            "get",
            "secrets",
            "kube-system",
            name,
            ip,
            KUBECTL,
            403 if i == 0 else 200,
        )
    binding = {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "debug-admin"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "payments"}],
    }
    out += _event(
        sc,
        t0 + dt.timedelta(minutes=6),
        user,
        groups,
        "create",
        "clusterrolebindings",
        None,
        None,
        ip,
        KUBECTL,
        201,
        "rbac.authorization.k8s.io",
        level="RequestResponse",
        request=binding,
    )
    return out


@generator("kubernetes")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """The API server's log backend: ``audit.log`` one Event per line, rotated daily."""
    base = out_dir / "kubernetes"
    base.mkdir(parents=True, exist_ok=True)
    days: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(events(sc), key=lambda e: e["stageTimestamp"]):
        days.setdefault(e["stageTimestamp"][:10], []).append(e)
    files: list[Path] = []
    for day, evs in days.items():
        f = base / f"audit-{day}.log"
        f.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in evs))
        files.append(f)
    return files
