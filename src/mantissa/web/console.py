"""The web console: server-rendered page shells plus small hand-written JS and CSS.

Pages (``/console/...``) render a shell with the navigation, the signed-in principal
and the CSRF token; each page's script then talks to the JSON API with the session
cookie. Static assets are read once from this package into memory and served from
there (a fixed allow-list: no path from a request ever reaches the filesystem).
Every response carries the CSP and X-Frame-Options headers (see ``api/middleware``).

Other modules add pages with :func:`register_page` (``register_page("services",
"Services", package="mantissa.apm.web", feature="apm")`` serves ``/console/services``
and ``/console/services/<anything>``, loading ``services.js`` from that package's
``static/`` folder, which may import ``/console/static/common.js``).
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from mantissa import __version__
from mantissa.api.auth import SESSION_COOKIE, Principal
from mantissa.errors import MantissaError

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

PAGES = {
    "alerts": "Alerts",
    "search": "Search",
    "rules": "Rules",
    "overview": "Overview",
}


@dataclass(frozen=True)
class Page:
    """A console page another module contributes."""

    key: str
    title: str
    script: str
    package: str | None
    feature: str | None


_EXTRA_PAGES: dict[str, Page] = {}
_RESERVED = {*PAGES, "alert", "login", "static"}


def register_page(
    key: str,
    title: str,
    *,
    package: str | None = None,
    script: str | None = None,
    feature: str | None = None,
) -> None:
    """Add ``/console/<key>`` (and ``/console/<key>/...``) to the console's navigation.

    ``script`` (default ``<key>.js``) and any other asset live in ``<package>/static/``
    and are served under ``/console/static/``; the page is listed while ``feature`` is
    enabled in ``/config`` (always when None).
    """
    if key in _RESERVED or not key.replace("-", "").isalnum():
        raise ValueError(f"console page key {key!r} is reserved or not a plain word")
    _EXTRA_PAGES[key] = Page(key, title, script or f"{key}.js", package, feature)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _load_assets() -> dict[str, Asset]:
    out: dict[str, Asset] = {}
    packages = ["mantissa.web", *sorted({p.package for p in _EXTRA_PAGES.values() if p.package})]
    for package in packages:
        root = importlib.resources.files(package).joinpath("static")
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            name = entry.name
            ext = name[name.rfind(".") :] if "." in name else ""
            if ext in _TYPES and entry.is_file() and name not in out:  # ours win on a clash
                body = entry.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                out[name] = Asset(body, _TYPES[ext], etag)
    return out


_env = Environment(
    loader=PackageLoader("mantissa.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _session_principal(request: Request) -> Principal | None:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    try:
        return request.app.state.tokens.session(sid)
    except MantissaError:
        return None


def _html(template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(version=__version__, **ctx), status)


def mount_console(app: FastAPI) -> None:
    """Add the console's pages and assets to ``app``."""
    assets = _load_assets()
    # a cache-busting suffix for asset URLs: the hash of all of them
    build = hashlib.sha256(b"".join(a.etag.encode() for a in assets.values())).hexdigest()[:10]
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/console/alerts", status_code=302)

    @router.get("/console")
    @router.get("/console/")
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/alerts", status_code=302)

    @router.get("/console/login")
    def login_page(request: Request, next: str = "/console/alerts") -> HTMLResponse:
        safe_next = next if next.startswith("/console/") and "//" not in next else "/console/alerts"
        return _html("login.html", next=safe_next, build=build, title="Sign in")

    def nav(features: dict[str, bool]) -> dict[str, str]:
        out = dict(PAGES)
        for p in _EXTRA_PAGES.values():
            if p.feature is None or features.get(p.feature):
                out[p.key] = p.title
        return out

    def page(request: Request, name: str, **extra: Any) -> Response:
        who = _session_principal(request)
        if who is None:
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"/console/login?next={target}", status_code=303)
        if who.role == "ingest":
            return _html("denied.html", 403, build=build, title="Not allowed", who=who)
        pages = nav(request.app.state.features)
        extra_page = _EXTRA_PAGES.get(name)
        return _html(
            "page.html",
            page=name,
            pages=pages,
            script=extra_page.script if extra_page else None,
            title=pages.get(name, "Alert"),
            who=who,
            csrf=who.csrf_token,
            features=request.app.state.features,
            build=build,
            **extra,
        )

    @router.get("/console/alerts")
    def alerts_page(request: Request) -> Response:
        return page(request, "alerts")

    @router.get("/console/alerts/{alert_id}")
    def alert_page(request: Request, alert_id: str) -> Response:
        return page(request, "alert", alert_id=alert_id)

    @router.get("/console/search")
    def search_page(request: Request) -> Response:
        return page(request, "search")

    @router.get("/console/rules")
    def rules_page(request: Request) -> Response:
        return page(request, "rules")

    @router.get("/console/overview")
    def overview_page(request: Request) -> Response:
        return page(request, "overview")

    @router.get("/console/static/{name}")
    def static(request: Request, name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            return Response(b"not found", status_code=404, media_type="text/plain")
        # revalidate every time (a 304 is cheap): module imports carry no version suffix
        headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    def extra(request: Request, key: str, rest: str = "") -> Response:
        p = _EXTRA_PAGES.get(key)
        features = request.app.state.features
        if p is None or (p.feature is not None and not features.get(p.feature)):
            return Response(b"not found", status_code=404, media_type="text/plain")
        return page(request, key, subpath=rest)

    @router.get("/console/{key}")
    def extra_page(request: Request, key: str) -> Response:
        return extra(request, key)

    @router.get("/console/{key}/{rest:path}")
    def extra_subpage(request: Request, key: str, rest: str) -> Response:
        return extra(request, key, rest)

    app.include_router(router)
