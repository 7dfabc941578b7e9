"""runtime.shutdown.run_in_worker_thread: the loop's exception reaches the caller. (That the
main thread runs the stop handler at once while the loop waits on an unreachable broker is
tests/faults/test_sigterm.py's broker_down case: the combiner took 31.5 s before.)"""

from __future__ import annotations

import pytest

from aop.runtime.shutdown import run_in_worker_thread


def test_the_loops_exception_is_raised_in_the_caller() -> None:
    def fail() -> None:
        raise RuntimeError("the loop failed")

    with pytest.raises(RuntimeError, match="the loop failed"):
        run_in_worker_thread(fail, name="failing")
