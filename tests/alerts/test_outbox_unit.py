"""Retry policy pieces: Retry-After parsing, backoff with jitter, status → error class."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from mantissa.alerts.destinations.base import check_response, parse_retry_after
from mantissa.alerts.outbox import backoff_secs
from mantissa.errors import PermanentDeliveryError, RetryableDeliveryError


def _resp(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, text="body")


def test_retry_after_seconds_date_and_garbage() -> None:
    assert parse_retry_after(_resp(429, **{"Retry-After": "7"})) == 7.0
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= (parse_retry_after(_resp(503, **{"Retry-After": when})) or 0) <= 31
    assert parse_retry_after(_resp(429, **{"Retry-After": "soon"})) is None
    assert parse_retry_after(_resp(429)) is None
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert parse_retry_after(_resp(503, **{"Retry-After": past})) == 0.0


def test_backoff_grows_is_jittered_and_capped() -> None:
    for attempt, full in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        vals = {backoff_secs(attempt, 2.0, 60.0) for _ in range(50)}
        assert all(full / 2 <= v <= full for v in vals)
        assert len(vals) > 1  # jitter


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, PermanentDeliveryError),
        (401, PermanentDeliveryError),
        (404, PermanentDeliveryError),
        (408, RetryableDeliveryError),
        (429, RetryableDeliveryError),
        (500, RetryableDeliveryError),
        (503, RetryableDeliveryError),
    ],
)
def test_status_classes(status: int, cls: type[Exception]) -> None:
    with pytest.raises(cls):
        check_response("x", "host", _resp(status))
    check_response("x", "host", _resp(202))
