"""Alert destinations: one module per ``type`` (slack, pagerduty, email, teams, jira,
servicenow, webhook, file). See :mod:`mantissa.alerts.destinations.base`."""

from mantissa.alerts.destinations.base import (
    Delivery,
    Destination,
    DestinationConfig,
    DestinationContext,
    destination_class,
    destination_types,
)

__all__ = [
    "Delivery",
    "Destination",
    "DestinationConfig",
    "DestinationContext",
    "destination_class",
    "destination_types",
]
