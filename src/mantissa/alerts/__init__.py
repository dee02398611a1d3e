"""Alerts: store, enrich, redact, route and deliver what detections find."""

from mantissa.alerts.model import Alert, AlertCandidate, AlertStatus, Severity

__all__ = ["Alert", "AlertCandidate", "AlertStatus", "Severity"]
