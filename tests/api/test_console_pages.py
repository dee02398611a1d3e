"""Console pages other modules contribute with ``register_page``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mantissa.api.app import create_app
from mantissa.web import console


@pytest.fixture
def extra_pages():
    yield console.register_page
    for key in ("extra-test", "gated-test"):
        console._EXTRA_PAGES.pop(key, None)


def test_registered_page_is_served_and_listed(runtime, tokens, extra_pages):
    extra_pages("extra-test", "Extra", package="mantissa.web", script="common.js")
    extra_pages("gated-test", "Gated", feature="no-such-feature")
    with TestClient(create_app(runtime)) as c:
        r = c.get("/console/extra-test", follow_redirects=False)
        assert r.status_code == 303  # signed out: to the sign-in page
        assert c.post("/auth/login", json={"token": tokens["viewer"]}).status_code == 200
        r = c.get("/console/extra-test/traces/abc123")
        assert r.status_code == 200
        assert 'data-page="extra-test"' in r.text and 'data-subpath="traces/abc123"' in r.text
        assert 'src="/console/static/common.js' in r.text
        assert 'href="/console/extra-test"' in c.get("/console/alerts").text
        # a page whose feature is off is neither listed nor served
        assert 'href="/console/gated-test"' not in c.get("/console/alerts").text
        assert c.get("/console/gated-test").status_code == 404
        assert c.get("/console/nothing-here").status_code == 404


@pytest.mark.parametrize("key", ["alerts", "static", "login", "a/b", "x y"])
def test_reserved_or_odd_keys_are_refused(key):
    with pytest.raises(ValueError):
        console.register_page(key, "X")
