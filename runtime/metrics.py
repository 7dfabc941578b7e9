"""Prometheus exposition for long-running services (DESIGN §10 names the metrics).

Each service defines its metrics next to the code that updates them (module-level
prometheus-client objects, names prefixed `aop_`) and calls `serve_metrics` once at start.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def serve_metrics(host: str, port: int) -> int:
    """Serve `/metrics` on host:port in a daemon thread; port 0 picks a free port. Returns it."""
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_address[1])
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound
