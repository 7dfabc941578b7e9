"""A deadline for a service's stop: SIGTERM must end the process within AOP_SHUTDOWN_TIMEOUT_S,
whether or not its broker, database or RPC answers.

Each service stops cleanly when it can (the listener commits its range, the fold commits its
offsets, ...); a call into a client library that waits on an unreachable server (a Kafka
transaction's commit, a flush, a rebalance) cannot be cancelled, though. `arm_shutdown_deadline`,
called from a service's stop handler, starts a daemon timer: if the process is still alive
when it fires, it logs what it did not wait for and exits at once (`os._exit`, status 0: the
stop was asked for). That is as safe as kill -9, which every service is built to survive:
uncommitted work is invisible and redone on restart (docs/runbook.md, invariants).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

__all__ = ["arm_shutdown_deadline", "run_in_worker_thread"]

log = logging.getLogger(__name__)

_armed = threading.Lock()
_timer: list[threading.Timer] = []


def arm_shutdown_deadline(seconds: float, service: str) -> None:
    """Exit the process `seconds` from now unless it has exited by then (first call only)."""
    with _armed:
        if _timer:
            return
        timer = threading.Timer(seconds, _force_exit, args=(seconds, service))
        timer.daemon = True
        _timer.append(timer)
        timer.start()


def _force_exit(seconds: float, service: str) -> None:
    log.warning(
        "%s did not stop within AOP_SHUTDOWN_TIMEOUT_S (%.0f s) of the stop signal; exiting "
        "without waiting (a broker or server does not answer); uncommitted work is redone on "
        "restart",
        service,
        seconds,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(0)


def run_in_worker_thread(run: Callable[[], None], *, name: str) -> None:
    """Run `run` in a thread while the main thread only waits for it, and re-raise what it
    raised.

    Why: Python runs signal handlers in the main thread, between bytecodes. A service loop
    run there can sit for 30 s in a client library call waiting on an unreachable broker (a
    Kafka transaction's commit), and its SIGTERM handler, which arms the shutdown deadline,
    runs only after it (measured: the combiner exited 31.5 s after SIGTERM with its broker
    down). Waiting in `join` with a timeout, the main thread runs the handler at once.
    """
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    if failure:
        raise failure[0]
