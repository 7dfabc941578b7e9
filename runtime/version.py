"""The running code's version and git commit: `aop --version` and `aop_build_info`.

The version is the installed distribution's (pyproject.toml), or "unknown" when the code runs
from a checkout that was never installed. The commit is read with `git rev-parse` in the
folder the code lives in, so it is known in a checkout (editable install included) and
"unknown" in a wheel, where no repository is beside the code.
"""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from pathlib import Path

__all__ = ["DISTRIBUTION", "UNKNOWN", "git_sha", "version"]

DISTRIBUTION = "attention-oracle-pipeline"
UNKNOWN = "unknown"


@functools.cache
def version() -> str:
    """The installed distribution's version, or "unknown"."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN


@functools.cache
def git_sha(where: Path | None = None) -> str:
    """The commit checked out where the code lives (12 hex digits), or "unknown"."""
    folder = where or Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN
    sha = result.stdout.strip()
    return sha if result.returncode == 0 and sha else UNKNOWN
