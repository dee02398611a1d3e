"""Network blocking backends: AWS WAFv2 IP sets (LockToken), Cloudflare IP Access rules,
Route 53 sinkhole records."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop

VENDORS = ("aws_waf", "cloudflare")


def cidr(ip: str) -> str:
    try:
        net = ipaddress.ip_network(ip, strict=False)
    except ValueError:
        raise ActionError(f"not an IP address or CIDR: {ip[:64]!r}") from None
    return str(net)


def aws_client(ctx: ActionContext, conn: Any, service: str) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    kid = conn.secret("access_key_id")
    secret = conn.secret("secret_access_key")
    if kid:
        ctx.secrets.extend([kid, secret or ""])
    return boto3.client(
        service,
        endpoint_url=conn.base_url,
        region_name=conn.option("region", "us-east-1"),
        aws_access_key_id=kid,
        aws_secret_access_key=secret,
        config=BotoConfig(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=min(10, ctx.remaining()),
            read_timeout=min(60, ctx.remaining()),
        ),
    )


def aws_call(ctx: ActionContext, client: Any, op: str, **kw: Any) -> Any:
    if ctx.dry_run:
        ctx.requests.append(
            {
                "service": client.meta.service_model.service_name,
                "operation": op,
                "params": ctx.mask(kw),
            }
        )
        raise DryRunStop()
    t0 = time.monotonic()
    status: int | None = None
    try:
        out = getattr(client, op)(**kw)
        status = out.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return out
    except Exception as exc:
        resp = getattr(exc, "response", None) or {}
        status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = resp.get("Error", {}).get("Code", type(exc).__name__)
        msg = ctx.mask(str(resp.get("Error", {}).get("Message", ""))[:300])
        raise ActionError(f"aws {op}: {code}: {msg}", hint=code) from None
    finally:
        ctx.audit(
            {
                "event": "call",
                "method": "POST",
                "host": client.meta.endpoint_url,
                "path": op,
                "status": status,
                "latency_ms": round((time.monotonic() - t0) * 1000, 1),
            }
        )


def waf_change(ctx: ActionContext, conn: Any, ip: str, add: bool) -> dict[str, Any]:
    """Add/remove ``ip`` in the WAFv2 IP set; optimistic locking per
    docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html (LockToken)."""
    waf = aws_client(ctx, conn, "wafv2")
    ident = {
        "Name": conn.option("ip_set_name"),
        "Scope": conn.option("scope", "REGIONAL"),
        "Id": conn.option("ip_set_id"),
    }
    if ctx.dry_run:
        ctx.requests.append(
            {
                "service": "wafv2",
                "operation": "update_ip_set",
                **ident,
                "add" if add else "remove": ip,
                "LockToken": "<from get_ip_set>",
            }
        )
        raise DryRunStop()
    for _ in range(5):
        got = aws_call(ctx, waf, "get_ip_set", **ident)
        addrs = list(got["IPSet"]["Addresses"])
        present = ip in addrs
        if present == add:
            return {"provider": "aws_waf", "ip": ip, "changed": False, "addresses": len(addrs)}
        addrs = [*addrs, ip] if add else [a for a in addrs if a != ip]
        try:
            aws_call(
                ctx, waf, "update_ip_set", **ident, Addresses=addrs, LockToken=got["LockToken"]
            )
        except ActionError as exc:
            if exc.hint == "WAFOptimisticLockException":
                continue  # someone else changed the set: read again
            raise
        return {"provider": "aws_waf", "ip": ip, "changed": True, "addresses": len(addrs)}
    raise ActionError("aws_waf: the IP set kept changing (WAFOptimisticLockException x5)")


def cf_headers(conn: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {conn.secret('token')}", "Content-Type": "application/json"}


def cf_rules(ctx: ActionContext, conn: Any, zone: str, ip: str) -> list[dict[str, Any]]:
    # developers.cloudflare.com/api/resources/firewall/subresources/access_rules
    base = str(conn.base_url).rstrip("/")
    if ctx.dry_run:
        return []
    r = ctx.http(
        "GET",
        f"{base}/client/v4/zones/{zone}/firewall/access_rules/rules",
        params={"configuration.target": "ip", "configuration.value": ip.split("/")[0]},
        headers=cf_headers(conn),
    )
    return list(r.json().get("result") or [])


def cf_change(
    ctx: ActionContext, conn: Any, ip: str, zones: list[str], add: bool, note: str
) -> dict[str, Any]:
    base = str(conn.base_url).rstrip("/")
    changed = []
    for zone in zones or [conn.option("zone_id")]:
        rules = [r for r in cf_rules(ctx, conn, zone, ip) if r.get("mode") == "block"]
        if add and not rules:
            target = "ip" if ip.endswith(("/32", "/128")) or "/" not in ip else "ip_range"
            value = ip.split("/")[0] if target == "ip" else ip
            r = ctx.http(
                "POST",
                f"{base}/client/v4/zones/{zone}/firewall/access_rules/rules",
                headers=cf_headers(conn),
                json={
                    "mode": "block",
                    "configuration": {"target": target, "value": value},
                    "notes": note[:500],
                },
            )
            changed.append({"zone": zone, "rule_id": r.json()["result"]["id"]})
        if not add:
            for rule in rules:
                ctx.http(
                    "DELETE",
                    f"{base}/client/v4/zones/{zone}/firewall/access_rules/rules/{rule['id']}",
                    headers=cf_headers(conn),
                    ok=(200, 404),
                )
                changed.append({"zone": zone, "rule_id": rule["id"]})
    return {"provider": "cloudflare", "ip": ip, "changed": changed}
