"""``mantissa serve``: the API, the console and the background services in one process."""

from __future__ import annotations

import logging

import typer

from mantissa.cli.app import app, runtime
from mantissa.cli.output import err_console


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port (0 picks a free one)."),
    background: bool = typer.Option(
        True,
        "--background/--no-background",
        help="Run the detection scheduler and other background services.",
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error."),
    proxy_headers: bool = typer.Option(
        False,
        "--proxy-headers",
        help="Trust X-Forwarded-Proto/For from --forwarded-allow-ips (behind TLS proxies).",
    ),
    forwarded_allow_ips: str = typer.Option("127.0.0.1", "--forwarded-allow-ips"),
) -> None:
    """Serve the HTTP API and web console (and run scheduled detections)."""
    import uvicorn

    from mantissa.api.app import create_app
    from mantissa.errors import ConfigError

    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise ConfigError(f"unknown log level {log_level!r}", hint="debug, info, warning or error")
    rt = runtime(ctx)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    application = create_app(rt, background=background)
    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        log_level=log_level.lower(),
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        access_log=log_level.lower() == "debug",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    shown = "[::1]" if host == "::1" else host
    err_console.print(
        f"Mantissa Log console: http://{shown}:{port}/console  (API spec: /openapi.json)"
    )
    err_console.print(
        f"  sign in with a token: mantissa --data-dir {rt.data_dir} tokens create --role analyst"
    )
    server.run()
