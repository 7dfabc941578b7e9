"""The listener's audit file on a full disk: the pipeline goes on, the failures are counted.

`<AOP_AUDIT_DIR>/listener.ndjson` is a symlink to /dev/full, a real device whose every write
fails with ENOSPC, from the start of the run. Mid-run the "disk is freed" (the symlink is
removed): the next write opens a fresh file and audit lines flow again.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from aop.streams.listener.audit import AUDIT_FILE
from tests.faults.assertions import assert_no_loss_and_roots_match
from tests.faults.figures import ScenarioFigures
from tests.faults.progress import wait_until
from tests.faults.scenario import FAULT_RATE, fault_run

pytestmark = pytest.mark.slow

AUDIT_ERRORS = "aop_listener_audit_errors_total"
FULL_S = 10.0


def _full_disk_is_enospc() -> bool:
    try:
        with open("/dev/full", "a") as full:
            full.write("x")
            full.flush()
    except OSError as exc:
        return exc.errno == errno.ENOSPC
    return False


@pytest.mark.skipif(not _full_disk_is_enospc(), reason="/dev/full does not fail with ENOSPC")
def test_audit_file_on_a_full_disk_counts_errors_and_loses_nothing(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """With every audit write failing (ENOSPC) the log still gets every event exactly once,
    `aop_listener_audit_errors_total` counts the failures, and once space is back the audit
    file is written again while the counter stays put."""
    audit_file = tmp_path / "audit" / AUDIT_FILE
    audit_file.parent.mkdir()
    audit_file.symlink_to("/dev/full")
    figures = ScenarioFigures(
        scenario="audit_disk_full",
        injected=f"listener audit file on /dev/full (ENOSPC) from the start, freed after "
        f"warm-up + {FULL_S:.0f} s",
        rate_target=FAULT_RATE,
    )
    with fault_run(
        figures, kafka_bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path
    ) as run:
        run.run_for(FULL_S)
        errors_while_full = run.metric("listener", AUDIT_ERRORS)
        assert not audit_file.resolve().is_file(), "the audit file should still be /dev/full"
        mark = run.restart_mark()
        os.unlink(audit_file)
        wait_until(
            lambda: audit_file.is_file() and audit_file.stat().st_size > 0,
            timeout=120,
            what="audit lines written again after the disk was freed",
        )
        figures.extra["audit_resumed_s"] = round(time.monotonic() - mark.at, 2)
        errors_at_resume = run.metric("listener", AUDIT_ERRORS)
        run.recovered("audit", mark)
        run.run_for(5.0)
        errors_at_end = run.metric("listener", AUDIT_ERRORS)
        figures.extra.update(
            audit_errors_while_full=errors_while_full,
            audit_errors_at_resume=errors_at_resume,
            audit_errors_at_end=errors_at_end,
            audit_lines_after_recovery=len(audit_file.read_text().splitlines()),
        )
        figures = run.quiesce_and_audit()
    assert errors_while_full is not None and errors_while_full > 0, figures.extra
    assert errors_at_resume is not None and errors_at_resume >= errors_while_full, figures.extra
    assert errors_at_end == errors_at_resume, f"audit writes failed after recovery: {figures.extra}"
    assert figures.extra["audit_lines_after_recovery"] > 0, figures.extra
    assert_no_loss_and_roots_match(figures, min_roots=len(run.probe.channels) * 3)
