"""The pipeline's long-running services as `aop run` starts them on one machine.

Each is its own `aop <command>` process (as in production, where each runs alone), with a
fixed metrics port so Prometheus (`infra/prometheus/prometheus.yml`) finds it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from aop.cli.supervisor import ServiceSpec

__all__ = ["METRICS_PORTS", "SERVICES", "service_specs"]

#: service -> `aop` sub-command, in start order (upstream first).
SERVICES: dict[str, str] = {
    "listener": "listen",
    "fold": "fold",
    "combiner": "combine",
    "projector": "project",
    "settlement": "settle",
    "api": "api",
    "ingest": "ingest",
}
#: /metrics port of each service; the API serves /metrics on its own port.
METRICS_PORTS: dict[str, int] = {
    "listener": 9101,
    "fold": 9102,
    "projector": 9103,
    "settlement": 9104,
    # 9105 is the supervisor's own (prometheus.yml, job aop-supervisor), 9106 parity's, 9109
    # the parallel run's against the legacy (job aop-parity-legacy)
    "combiner": 9107,
    # the ingest serves /metrics on its own port too (AOP_INGEST_PORT), as the API does
    "ingest": 9108,
}


def service_specs(
    names: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    metrics_ports: Mapping[str, int] = METRICS_PORTS,
) -> list[ServiceSpec]:
    """Child specs for `names` (keys of SERVICES), each `python -m aop.cli <command>` with its
    port of `metrics_ports`; with `log_dir`, each appends its output to `<log_dir>/<name>.log`."""
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise ValueError(f"unknown services {unknown} (choose from {list(SERVICES)})")
    specs = []
    for name in names:
        child_env = dict(env or {})
        if name in metrics_ports:
            child_env["AOP_METRICS_PORT"] = str(metrics_ports[name])
        specs.append(
            ServiceSpec(
                name,
                [sys.executable, "-m", "aop.cli", SERVICES[name]],
                child_env,
                log_dir / f"{name}.log" if log_dir else None,
            )
        )
    return specs
