"""APM: OpenTelemetry traces and metrics in the lake.

``otlp`` decodes and validates OTLP/HTTP requests, ``receiver`` makes them durable and
writes them to the ``traces`` and ``metrics`` tables (``lake``), ``queries`` answers
RED questions, trace lookups and span searches, ``service_map`` builds the service
dependency graph.
"""
