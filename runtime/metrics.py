"""Prometheus exposition for long-running services (DESIGN §10 names the metrics).

Each service defines its metrics next to the code that updates them (module-level
prometheus-client objects, names prefixed `aop_`) and calls `serve_metrics` once at start
(the API serves the same registry on its own port and calls `publish_build_info`).

Labelled counters that an alert reads with `increase()` get every known label set created at
zero when they are defined (`precreate`): a series Prometheus first sees at value 1 has no
increase, so an alert on it would miss the first event (a first crash loop, a first failure).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from prometheus_client import Counter, Gauge, start_http_server

from aop.runtime.version import git_sha, version

__all__ = ["BUILD_INFO", "precreate", "publish_build_info", "serve_metrics"]

log = logging.getLogger(__name__)

BUILD_INFO = Gauge(
    "aop_build_info",
    "1, labelled with the running code's version and git commit",
    ["version", "git_sha"],
)


def precreate(counter: Counter, label_sets: Iterable[Sequence[str]]) -> None:
    """Create each label set's series at 0 (see the module docstring)."""
    for labels in label_sets:
        counter.labels(*labels)


def publish_build_info() -> None:
    """Set `aop_build_info{version, git_sha}` to 1."""
    BUILD_INFO.labels(version=version(), git_sha=git_sha()).set(1)


def serve_metrics(host: str, port: int) -> int:
    """Serve `/metrics` on host:port in a daemon thread; port 0 picks a free port. Returns it."""
    publish_build_info()
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_address[1])
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound
