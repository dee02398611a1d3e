"""Google Cloud VPC Flow Logs: ``LogEntry`` objects whose ``jsonPayload`` is a flow record.

Log name ``compute.googleapis.com%2Fvpc_flows``; record fields per "VPC Flow Logs record
format" (https://cloud.google.com/vpc/docs/flow-logs#record_format): ``connection``
5-tuple, ``reporter`` (SRC/DEST), ``bytes_sent``/``packets_sent`` (int64 as strings),
``start_time``/``end_time``, instance, VPC, location and GKE annotations.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mantissa.sources._jsonsql import transform_sql
from mantissa.sources.base import JsonSource

_INSTANCE = {"project_id": "VARCHAR", "region": "VARCHAR", "vm_name": "VARCHAR", "zone": "VARCHAR"}
_VPC = {"project_id": "VARCHAR", "subnetwork_name": "VARCHAR", "vpc_name": "VARCHAR"}
_LOCATION = {
    "asn": "BIGINT",
    "city": "VARCHAR",
    "continent": "VARCHAR",
    "country": "VARCHAR",
    "region": "VARCHAR",
}


class GcpVpcFlow(JsonSource):
    name = "gcp_vpc_flow"
    title = "Google Cloud VPC Flow Logs"
    category = "network"
    variants = (
        "LogEntry per line with jsonPayload flow record",
        'entries.list pages {"entries": [...]} and JSON arrays',
    )
    wrapper_keys = ("entries",)
    signature = ("jsonPayload",)
    structure: ClassVar[dict[str, Any]] = {
        "insertId": "VARCHAR",
        "logName": "VARCHAR",
        "timestamp": "VARCHAR",
        "receiveTimestamp": "VARCHAR",
        "severity": "VARCHAR",
        "resource": {"type": "VARCHAR", "labels": "JSON"},
        "jsonPayload": {
            "connection": {
                "src_ip": "VARCHAR",
                "src_port": "BIGINT",
                "dest_ip": "VARCHAR",
                "dest_port": "BIGINT",
                "protocol": "BIGINT",
            },
            "reporter": "VARCHAR",
            "bytes_sent": "BIGINT",
            "packets_sent": "BIGINT",
            "rtt_msec": "BIGINT",
            "start_time": "VARCHAR",
            "end_time": "VARCHAR",
            "src_instance": _INSTANCE,
            "dest_instance": _INSTANCE,
            "src_vpc": _VPC,
            "dest_vpc": _VPC,
            "src_location": _LOCATION,
            "dest_location": _LOCATION,
            "src_gke_details": "JSON",
            "dest_gke_details": "JSON",
            "src_google_service": "JSON",
            "dest_google_service": "JSON",
            "internet_routing_details": "JSON",
            "network_service": "JSON",
        },
    }
    common: ClassVar[dict[str, str]] = {
        "event_time": "coalesce(timestamp, jsonPayload.end_time, receiveTimestamp)",
        "event_id": "CASE WHEN insertId <> '' THEN insertId END",
        "event_type": "'flow'",
        "outcome": "'unknown'",
        "src_ip": "jsonPayload.connection.src_ip",
        "dst_ip": "jsonPayload.connection.dest_ip",
        # the far end's location: src_location is set when the source is outside the VPC
        "geo_country": "coalesce(jsonPayload.src_location.country, jsonPayload.dest_location.country)",
        "geo_city": "coalesce(jsonPayload.src_location.city, jsonPayload.dest_location.city)",
        "host": "coalesce(jsonPayload.src_instance.vm_name, jsonPayload.dest_instance.vm_name)",
        "message": (
            "jsonPayload.connection.src_ip || ':' || jsonPayload.connection.src_port || ' -> ' "
            "|| jsonPayload.connection.dest_ip || ':' || jsonPayload.connection.dest_port "
            "|| ' proto ' || jsonPayload.connection.protocol || ' ' "
            "|| coalesce(jsonPayload.bytes_sent, 0) || ' bytes'"
        ),
        "_error": (
            "CASE WHEN jsonPayload.connection.src_ip IS NULL AND jsonPayload.connection.dest_ip IS NULL "
            "THEN 'not a VPC flow log entry: jsonPayload.connection missing' END"
        ),
    }

    def native_sql(self) -> str:
        return transform_sql(self.structure)
