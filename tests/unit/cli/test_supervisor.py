"""The supervisor restarts children with backoff, reports crash loops and stops them all."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from aop.cli.supervisor import CRASH_LOOPS, ServiceSpec, Supervisor


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _run_in_thread(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(
        target=supervisor.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    return thread


def _wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_crashing_child_is_restarted_and_a_crash_loop_is_counted(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    crasher = ServiceSpec(
        "crasher_a", _python(f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)")
    )
    steady = ServiceSpec("steady_a", _python("import time; time.sleep(60)"))
    supervisor = Supervisor(
        [crasher, steady], backoff_initial=0.01, backoff_max=0.05, crash_loop_restarts=3
    )
    loops_before = CRASH_LOOPS.labels(service="crasher_a")._value.get()
    thread = _run_in_thread(supervisor)
    _wait_until(lambda: starts.exists() and len(starts.read_text()) >= 4)
    steady_pid = supervisor.pids()["steady_a"]
    supervisor.request_stop()
    thread.join(10)
    assert not thread.is_alive()
    assert supervisor.restarts("crasher_a") >= 3
    assert supervisor.restarts("steady_a") == 0
    assert steady_pid is not None
    assert CRASH_LOOPS.labels(service="crasher_a")._value.get() == loops_before + 1


def test_stop_terminates_children_and_kills_the_stubborn_one(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    ready = [tmp_path / "graceful.ready", tmp_path / "stubborn.ready"]
    graceful = ServiceSpec(
        "graceful_b",
        _python(
            "import signal, sys, time\n"
            f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').write('ok'), "
            "sys.exit(0)))\n"
            f"open({str(ready[0])!r}, 'w').close()\n"
            "time.sleep(60)"
        ),
    )
    stubborn = ServiceSpec(
        "stubborn_b",
        _python(
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"open({str(ready[1])!r}, 'w').close(); time.sleep(60)"
        ),
    )
    supervisor = Supervisor([graceful, stubborn], stop_timeout=1.0)
    thread = _run_in_thread(supervisor)
    _wait_until(lambda: all(supervisor.pids().values()))
    # the children have installed their handlers (a fixed pause was too short on a loaded box)
    _wait_until(lambda: all(path.exists() for path in ready))
    started = time.monotonic()
    supervisor.request_stop()
    thread.join(10)
    assert not thread.is_alive()
    assert marker.read_text() == "ok"
    assert time.monotonic() - started < 5
    assert supervisor.pids() == {"graceful_b": None, "stubborn_b": None}


def test_duplicate_service_names_are_refused() -> None:
    spec = ServiceSpec("same", ["true"])
    with pytest.raises(ValueError, match="service names must be unique"):
        Supervisor([spec, spec])


def test_a_child_with_a_log_file_appends_stdout_and_stderr_there_across_restarts(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "child.log"
    chatty = ServiceSpec(
        "chatty_d",
        _python("import sys; print('out'); print('err', file=sys.stderr); raise SystemExit(1)"),
        log_file=log_file,
    )
    supervisor = Supervisor([chatty], backoff_initial=0.01, backoff_max=0.02)
    thread = _run_in_thread(supervisor)
    _wait_until(lambda: supervisor.restarts("chatty_d") >= 2)
    supervisor.request_stop()
    thread.join(10)
    runs = log_file.read_text().splitlines()
    assert len(runs) % 2 == 0 and len(runs) >= 4  # every run appended both lines
    assert sorted(set(runs)) == ["err", "out"]


def test_every_childs_restart_and_crash_loop_series_exist_at_zero_before_any_exit() -> None:
    """A labelled counter Prometheus first sees at 1 shows no increase: the supervisor creates
    each child's series at 0 when it is built, so the first crash loop fires AopCrashLoop."""
    from prometheus_client import REGISTRY

    Supervisor([ServiceSpec("fresh_a", _python("pass")), ServiceSpec("fresh_b", _python("pass"))])
    for name in ("fresh_a", "fresh_b"):
        for metric in ("aop_supervisor_restarts_total", "aop_supervisor_crash_loops_total"):
            assert REGISTRY.get_sample_value(metric, {"service": name}) == 0.0, (metric, name)
        assert REGISTRY.get_sample_value("aop_supervisor_service_up", {"service": name}) == 0.0
