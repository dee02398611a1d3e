"""Durable state shared by every module: SQLite by default, PostgreSQL for fleets."""

from mantissa.state.store import StateStore, metadata

__all__ = ["StateStore", "metadata"]
