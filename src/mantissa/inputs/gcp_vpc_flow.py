"""Google Cloud VPC Flow Logs from a Pub/Sub subscription fed by a Cloud Logging sink.

Sink filter e.g. ``logName:"compute.googleapis.com%2Fvpc_flows"``; messages are
``LogEntry`` JSON with a flow-record ``jsonPayload`` (parser ``gcp_vpc_flow``).
Pull, lease, ack-after-durable and auth: :mod:`mantissa.inputs._pubsub`.
"""

from __future__ import annotations

from mantissa.inputs._pubsub import PubSub


class GcpVpcFlow(PubSub):
    """``type: gcp_vpc_flow``: VPC Flow Logs exported to Pub/Sub."""

    type = "gcp_vpc_flow"
    source = "gcp_vpc_flow"
