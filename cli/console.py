"""The rich console `aop` commands print tables to, and the `--json` choice beside it."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["make_console", "print_json"]


def make_console(*, markup: bool = True) -> Console:
    """A console for stdout: a terminal's width, or 160 columns when piped or logged, so that
    hashes and addresses are not cut."""
    console = Console(markup=markup)
    if not console.is_terminal:
        console = Console(width=160, markup=markup)
    return console


def print_json(document: Any) -> None:
    """`document` as indented JSON on stdout (what `--json` prints, for scripts)."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
