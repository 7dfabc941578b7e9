"""`aop api`: serve the read API with uvicorn on AOP_API_HOST:AOP_API_PORT.

One process, one event loop; scale out with more processes behind a load balancer (each has
its own pool and caches). uvicorn's own multi-worker mode is not offered: its workers share a
listening socket uvicorn creates with protocol 0, so asyncio leaves TCP_NODELAY off on the
accepted connections, and every answer (headers and body are two writes) stalls ~40 ms on
Nagle plus delayed ACK (measured: 355 req/s, p50 44 ms). uvloop and httptools are used when
installed.
SIGTERM/SIGINT stop accepting, let open requests finish (up to AOP_API_SHUTDOWN_TIMEOUT_S),
then close the pool. Logs are JSON lines.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import signal
from typing import Any

from aop.cli.help import SERVICE_EXITS, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.metrics import publish_build_info
from aop.runtime.settings import Settings, load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "api",
        help="serve the read API: roots, proofs, datasets (settings: AOP_API_*, "
        "AOP_DATABASE_URL, AOP_DATABASE_SCHEMA)",
        **help_options(
            "Serves the read API (roots, proofs, claims, datasets, /metrics, /healthz, "
            "/readyz) from PostgreSQL with uvicorn; SIGTERM lets open requests finish (up to "
            "AOP_API_SHUTDOWN_TIMEOUT_S).",
            settings=(
                "AOP_API_HOST",
                "AOP_API_PORT",
                "AOP_API_*",
                "AOP_DATABASE_URL",
                "AOP_DATABASE_SCHEMA",
                "AOP_MINT",
                "AOP_PROGRAM_ID",
            ),
            exits=SERVICE_EXITS,
        ),
    )
    parser.add_argument("--host", help="bind address (default AOP_API_HOST)")
    parser.add_argument("--port", type=int, help="port (default AOP_API_PORT)")
    parser.set_defaults(handler=run)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options of the settings (fast loop and parser when installed)."""
    return {
        "host": settings.api_host,
        "port": settings.api_port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "log_config": None,
        "access_log": settings.api_access_log,
        "timeout_graceful_shutdown": settings.api_shutdown_timeout_s,
        "proxy_headers": False,
        "server_header": False,
        "backlog": 2048,
    }


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["api_host"] = args.host
    if args.port:
        overrides["api_port"] = args.port
    settings = load_settings(**overrides)
    configure_logging(settings.log_level)
    import uvicorn

    from aop.api.app import create_app
    from aop.projections.db import check_schema_current

    check_schema_current(settings)
    publish_build_info()  # the API serves the default registry on its own port
    options = uvicorn_options(settings)
    log.info(
        "api starting",
        extra={
            "host": settings.api_host,
            "port": settings.api_port,
            "schema": settings.database_schema,
            "loop": options["loop"],
            "http": options["http"],
        },
    )
    stopped_by: list[int] = []

    def note_signal(signum: int, _frame: object) -> None:
        # uvicorn handles SIGTERM/SIGINT itself (graceful shutdown), then re-raises the signal
        # to the handler it found: this one, so a requested stop exits 0
        stopped_by.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, note_signal)
    app = create_app(settings)
    # what start-up built lives as long as the process: out of the garbage collector's
    # generations, a full collection no longer walks it (~100k objects, 20-70 ms: a p99 spike)
    gc.freeze()
    uvicorn.run(app, **options)
    log.info("api stopped", extra={"signal": stopped_by[0] if stopped_by else None})
    return 0
