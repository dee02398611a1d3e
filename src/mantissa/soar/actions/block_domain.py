"""``block_domain``: sinkhole a domain in a Route 53 hosted zone (a private zone your
resolvers use, as a response-policy zone)."""

from __future__ import annotations

import re
from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, action
from mantissa.soar.actions._network import aws_call, aws_client

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@action("block_domain", idempotency="natural", vendors=("route53",))
def block_domain(
    ctx: ActionContext,
    domain: str,
    block_type: str = "sinkhole",
    connection: str | None = None,
) -> dict[str, Any]:
    """UPSERT ``domain`` (and ``*.domain``) as A records to the sinkhole address
    (docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html)."""
    d = domain.strip().lower().rstrip(".")
    if not _DOMAIN.match(d):
        raise ActionError(f"block_domain: not a domain name: {domain[:100]!r}")
    if block_type not in ("sinkhole", "nxdomain"):
        raise ActionError("block_domain: block_type is sinkhole or nxdomain")
    conn = ctx.connection(connection, ("route53",))
    r53 = aws_client(ctx, conn, "route53")
    sink = conn.option("sinkhole_ip", "0.0.0.0")
    changes = []
    # RPZ layout (a zone such as rpz.internal that resolvers consult): <domain>.<zone>
    suffix = conn.option("zone_name")
    for name in (d, f"*.{d}"):
        name = f"{name}.{str(suffix).rstrip('.')}" if suffix else name
        rr: dict[str, Any] = {"Name": name, "TTL": 60}
        if block_type == "sinkhole":
            rr.update(Type="A", ResourceRecords=[{"Value": sink}])
        else:  # an empty-answer CNAME to a name that does not resolve
            rr.update(Type="CNAME", ResourceRecords=[{"Value": "."}])
        changes.append({"Action": "UPSERT", "ResourceRecordSet": rr})
    out = aws_call(
        ctx,
        r53,
        "change_resource_record_sets",
        HostedZoneId=conn.option("zone_id"),
        ChangeBatch={"Comment": "mantissa block_domain", "Changes": changes},
    )
    return {
        "provider": "route53",
        "domain": d,
        "block_type": block_type,
        "change_id": out["ChangeInfo"]["Id"],
    }
