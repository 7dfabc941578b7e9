"""Build info and pre-created series (runtime.metrics), and the version `aop --version` shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY, Counter

from aop.runtime.metrics import precreate, publish_build_info
from aop.runtime.version import UNKNOWN, git_sha, version

ROOT = Path(__file__).resolve().parents[3]


def test_build_info_carries_the_version_and_the_checkouts_commit() -> None:
    """aop_build_info{version, git_sha} is 1; the sha is the checkout's HEAD, read
    independently with git."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert git_sha() == head
    publish_build_info()
    labels = {"version": version(), "git_sha": head}
    assert REGISTRY.get_sample_value("aop_build_info", labels) == 1.0


def test_git_sha_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    """A wheel has no repository beside it: the sha is "unknown", never an error."""
    assert git_sha(tmp_path) == UNKNOWN


def test_precreate_makes_each_label_set_a_series_at_zero() -> None:
    counter = Counter("aop_test_precreated_total", "test", ["stage", "reason"])
    precreate(counter, [("a", "x"), ("b", "y")])
    for stage, reason in (("a", "x"), ("b", "y")):
        labels = {"stage": stage, "reason": reason}
        assert REGISTRY.get_sample_value("aop_test_precreated_total", labels) == 0.0


def test_aop_version_prints_the_version_and_commit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aop.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert re.fullmatch(r"aop \S+ \(git ([0-9a-f]{12}|unknown)\)\n", result.stdout), result.stdout
    assert result.stdout == f"aop {version()} (git {git_sha()})\n"
