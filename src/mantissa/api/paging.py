"""One convention for lists across endpoints: ``limit``/``offset`` paging, ``sort`` by a
field (``-field`` for descending), filters as plain query parameters, and the envelope
``{"items", "total", "limit", "offset", "next_offset"}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from mantissa.errors import MantissaError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class InvalidParameter(MantissaError):
    code = "invalid_request"
    http_status = 422


class Paged(BaseModel, Generic[T]):
    """A page of a list: the items, the total matching, and where the next page starts."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class PageParams(BaseModel):
    limit: int
    offset: int
    sort: str | None


def paging(sorts: set[str] | None = None) -> Any:
    """A dependency reading ``limit``, ``offset`` and ``sort`` (one of ``sorts``, with an
    optional ``-`` for descending; the allowed fields are published in the spec)."""
    pattern = "^[-+]?(" + "|".join(sorted(sorts)) + ")$" if sorts else "^[-+]?[A-Za-z_]{1,64}$"

    def dependency(
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page."),
        offset: int = Query(0, ge=0, le=10_000_000, description="Items to skip."),
        sort: str | None = Query(
            None, pattern=pattern, description="Field to sort by; '-field' for descending."
        ),
    ) -> PageParams:
        return PageParams(limit=limit, offset=offset, sort=sort)

    return dependency


page_params = paging()


def time_param(description: str) -> Any:
    """A query parameter holding an ISO-8601 timestamp (parsed by :func:`parse_time`).

    Declared as a string so that only ISO-8601 is accepted (a lax datetime would also
    take a bare number as seconds since 1970 and silently mean something else)."""
    return Query(
        None, max_length=40, description=description, json_schema_extra={"format": "date-time"}
    )


def parse_time(value: str | None, name: str) -> dt.datetime | None:
    """``value`` as an aware UTC datetime (naive values are UTC); 422 when not ISO-8601."""
    if value is None:
        return None
    try:
        out = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidParameter(
            f"{name}: not an ISO-8601 timestamp: {value[:40]!r}", hint="e.g. 2026-01-31T08:00:00Z"
        ) from None
    return out.replace(tzinfo=dt.UTC) if out.tzinfo is None else out.astimezone(dt.UTC)


def check_sort(sort: str | None, allowed: set[str], default: str) -> str:
    """``sort`` if it names an allowed field (with an optional ``-``/``+``), else 422."""
    if not sort:
        return default
    key = sort.lstrip("-+")
    if key not in allowed:
        raise InvalidParameter(
            f"cannot sort by {key!r}", hint="sort by one of: " + ", ".join(sorted(allowed))
        )
    return ("-" if sort.startswith("-") else "") + key


def paged(items: list[T], total: int, page: PageParams) -> dict:
    end = page.offset + len(items)
    return {
        "items": items,
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": end if end < total else None,
    }
