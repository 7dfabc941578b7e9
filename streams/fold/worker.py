"""Run `aop fold`: create the log's topics, serve metrics, and run one Faust worker."""

from __future__ import annotations

import gc
import logging
from typing import Any

import faust

from aop.log.kafka import ensure_topics, topic_specs
from aop.runtime.metrics import serve_metrics
from aop.runtime.settings import Settings
from aop.runtime.shutdown import arm_shutdown_deadline
from aop.streams.fold.app import create_app
from aop.streams.fold.config import fold_app_id
from aop.streams.fold.topics import fold_topic_specs

__all__ = ["run_fold"]

log = logging.getLogger(__name__)


def run_fold(settings: Settings) -> int:
    """Run the fold worker until SIGTERM/SIGINT; returns the exit code.

    Raises:
        AopError: the brokers refuse the credentials or do not answer; a topic (the log's or
            Faust's) cannot be created or differs from its spec.
        SettingsError: a bad fold setting.
    """
    ensure_topics(settings, [*topic_specs(settings), *fold_topic_specs(settings)])
    for name in ("faust", "mode", "aiokafka"):
        # their DEBUG lines carry whole record values: keep them at INFO or above
        library = logging.getLogger(name)
        library.setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))
    app = create_app(settings)
    port = serve_metrics(settings.metrics_host, settings.metrics_port)
    log.info(
        "fold starting",
        extra={"app_id": fold_app_id(settings), "metrics_port": port},
    )
    tune_gc()
    worker = _Worker(
        settings.shutdown_timeout_s,
        app,
        loglevel=settings.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


class _Worker(faust.Worker):
    """Faust's worker, whose stop on SIGTERM/SIGINT ends within AOP_SHUTDOWN_TIMEOUT_S even
    when the broker does not answer (`runtime.shutdown`): Faust waits for its consumer, its
    producer and a rebalance otherwise, without bound."""

    def __init__(self, shutdown_timeout_s: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown_timeout_s = shutdown_timeout_s

    def _on_sigterm(self) -> None:
        arm_shutdown_deadline(self._shutdown_timeout_s, "fold")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        arm_shutdown_deadline(self._shutdown_timeout_s, "fold")
        super()._on_sigint()


def tune_gc() -> None:
    """Collect cyclic garbage less often: the fold allocates millions of small, acyclic
    objects (decoded events, wallet lists), and the default thresholds made the collector
    take 30-40% of an epoch close of 100,000 wallets (measured). Objects alive at start-up
    are frozen out of every collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
