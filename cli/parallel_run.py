"""`aop parity --legacy-dsn-file FILE`: our ring-v0-legacy attention roots against the legacy
aggregator's, once, or as the 24 h parallel run (`--interval`, `--duration`).

1. Checks the options and the settings, reads the connection string (a mode-600 file) and
   connects once: any of these failing is exit 2 before the first round.
2. A round: reads our side (`replay.legacy_parity.read_ours`) and compares it with the
   legacy in one read-only session (`LegacyComparison.round`); prints the verdicts that
   changed, appends them to `--report` (one line each, with the time), writes the
   `--metrics-file`.
3. With `--interval`, sleeps and runs again until `--duration` is over, the last round when
   it ends; a round that fails is logged, and the next one tries again.
4. Prints (and appends) the summary. Exit 0: every (channel, epoch) MATCHes (PENDING ones
   aside); 1: a MISMATCH or a MISSING, or nothing compared; 2: the last round could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from aop.replay.context import deployment_config, open_store
from aop.replay.errors import LegacyParityError
from aop.replay.legacy_metrics import (
    LEGACY_REGISTRY,
    end_run,
    record_check,
    record_round,
    start_run,
)
from aop.replay.legacy_parity import (
    DEFAULT_GRACE_S,
    LegacyComparison,
    LegacyPlan,
    OurRoots,
    legacy_plan,
    read_ours,
)
from aop.replay.legacy_query import DEFAULT_LEGACY_QUERY
from aop.replay.legacy_source import LegacyDatabase
from aop.replay.parity import write_metrics_file
from aop.replay.stored_roots import RootStore
from aop.runtime.errors import AopError
from aop.runtime.settings import Settings

__all__ = ["run_legacy"]

log = logging.getLogger(__name__)

#: the daily parity's options, which do not apply to the legacy comparison.
_DAILY_ONLY = {"roots": "--roots", "json": "--json", "chain": "--chain", "workers": "--workers"}


def _check_options(args: argparse.Namespace) -> None:
    """Step 1's option checks.

    Raises:
        LegacyParityError: a daily-parity option, --interval without --duration or the other
            way round, or a non-positive interval or duration.
    """
    for attribute, flag in _DAILY_ONLY.items():
        if getattr(args, attribute) not in (None, False):
            raise LegacyParityError(f"{flag} does not apply with --legacy-dsn-file")
    if (args.interval is None) != (args.duration is None):
        raise LegacyParityError(
            "--interval and --duration go together: the parallel run re-checks every "
            "--interval seconds for --duration seconds (neither: a single check)"
        )
    for flag, value in (("--interval", args.interval), ("--duration", args.duration)):
        if value is not None and value <= 0:
            raise LegacyParityError(f"{flag} must be > 0 seconds (got {value:g})")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _describe(plan: LegacyPlan, database: LegacyDatabase, path: Path) -> str:
    first = plan.first if plan.first is not None else "our first root"
    last = plan.last if plan.last is not None else "our last closed epoch"
    query = "default" if database.query == DEFAULT_LEGACY_QUERY else "--legacy-query"
    return (
        f"legacy parity: {', '.join(c.name for c in plan.channels)}; epochs of "
        f"{plan.epoch_seconds} s from {first} to {last}; grace {plan.grace_s} s; legacy "
        f"database of {path} ({query} query)"
    )


def run_legacy(args: argparse.Namespace, settings: Settings) -> int:
    """Steps 1-4 (module docstring); returns the exit code.

    Raises:
        AopError: step 1 fails, or the single check's round does (exit 2).
    """
    _check_options(args)
    plan = legacy_plan(
        deployment_config(settings),
        args.channel,
        first=args.from_epoch,
        last=args.to_epoch,
        grace_s=DEFAULT_GRACE_S if args.grace is None else args.grace,
    )
    database = LegacyDatabase.from_file(args.legacy_dsn_file, args.legacy_query)
    with database.connect():
        pass
    print(_describe(plan, database, args.legacy_dsn_file), flush=True)
    comparison = LegacyComparison(plan)
    start_run([c.name for c in plan.channels], interval_s=args.interval or 0)
    deadline = None if args.interval is None else time.monotonic() + args.duration
    report = _open_report(args.report)
    try:
        with open_store(settings) as store:
            ok = _rounds(args, plan, database, store, comparison, report, deadline)
        _emit(comparison.summary(last_round_failed=not ok), report, quiet=False)
    finally:
        end_run()
        _write_metrics(args)
        if report is not None:
            report.close()
    return comparison.exit_code() if ok else 2


def _rounds(
    args: argparse.Namespace,
    plan: LegacyPlan,
    database: LegacyDatabase,
    store: RootStore,
    comparison: LegacyComparison,
    report: TextIO | None,
    deadline: float | None,
) -> bool:
    """Steps 2-3; whether the last round completed.

    Raises:
        AopError: the round of a single check fails.
    """
    while True:
        try:
            ours = _read_ours(store, plan)
            with database.connect() as legacy:
                result = comparison.round(ours, legacy, now_ms=int(time.time() * 1000))
            for check in result.checks:
                record_check(check.channel, check.verdict)
            record_round(time.time())
            ok = True
        except AopError as exc:
            if deadline is None:
                raise
            log.error("parallel run: round failed (%s); trying again in %g s", exc, args.interval)
            ok = False
        if ok:
            for check in result.changed:
                _emit(check.line(), report, quiet=args.quiet)
        _write_metrics(args)
        if deadline is None:
            return ok
        left = deadline - time.monotonic()
        if left <= 0:
            return ok
        time.sleep(min(args.interval, left))


def _read_ours(store: RootStore, plan: LegacyPlan) -> OurRoots:
    """Step 2's read of our side.

    Raises:
        LegacyParityError: PostgreSQL fails (the driver's message on one line).
    """
    try:
        return read_ours(store, plan)
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise LegacyParityError(f"cannot read our roots from PostgreSQL: {reason}") from None


def _open_report(path: Path | None) -> TextIO | None:
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8")


def _emit(line: str, report: TextIO | None, *, quiet: bool) -> None:
    """A line to stdout (unless `quiet`) and, with the time, to the report."""
    if not quiet:
        print(line, flush=True)
    if report is not None:
        report.write(f"{_now_iso()} {line}\n")
        report.flush()


def _write_metrics(args: argparse.Namespace) -> None:
    if args.metrics_file is not None:
        write_metrics_file(args.metrics_file, LEGACY_REGISTRY)
