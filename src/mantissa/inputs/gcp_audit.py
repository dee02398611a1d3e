"""Google Cloud Audit Logs from a Pub/Sub subscription fed by a Cloud Logging sink.

Sink filter e.g. ``logName:"cloudaudit.googleapis.com"``; the subscription's messages
are ``LogEntry`` JSON with an ``AuditLog`` ``protoPayload`` (parser ``gcp_audit``).
Pull, lease, ack-after-durable and auth: :mod:`mantissa.inputs._pubsub`.
"""

from __future__ import annotations

from mantissa.inputs._pubsub import PubSub


class GcpAudit(PubSub):
    """``type: gcp_audit``: Cloud Audit Logs exported to Pub/Sub."""

    type = "gcp_audit"
    source = "gcp_audit"
