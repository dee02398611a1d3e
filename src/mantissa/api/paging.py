"""One convention for lists across endpoints: ``limit``/``offset`` paging, ``sort`` by a
field (``-field`` for descending), filters as plain query parameters, and the envelope
``{"items", "total", "limit", "offset", "next_offset"}``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

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


def page_params(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page."),
    offset: int = Query(0, ge=0, le=10_000_000, description="Items to skip."),
    sort: str | None = Query(
        None, max_length=64, description="Field to sort by; prefix with '-' for descending."
    ),
) -> PageParams:
    return PageParams(limit=limit, offset=offset, sort=sort)


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
