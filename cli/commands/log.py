"""`aop log export | import | verify | purge`: backups of the log and their restore; the
roots purge (`projections.purge`, which the projector runs by itself).

Exit codes: 0 done, 2 could not (a bad or foreign export, a corrupt file, a non-empty target,
a full disk, an unreachable broker: the message names the file or partition).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from aop.cli.help import KAFKA_SETTINGS, OPERATOR_ERROR, help_options
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import Settings, load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    exits = {0: "done", 2: OPERATOR_ERROR + "; the message names the file or partition"}
    parser = subparsers.add_parser(
        "log",
        help="back up the log's topics (export) and restore them (import)",
        **help_options(
            "Backups of the log, the source of truth (docs/runbook.md: Backups of the log, "
            "Restoring the log).",
            settings=(),
            exits=exits,
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    export = actions.add_parser(
        "export",
        help="append what is new on the pipeline's topics to DIR (Avro files + a manifest)",
        **help_options(
            "Writes every record of the pipeline's topics not yet in DIR, per topic and "
            "partition in offset order, to Avro object container files, then a new manifest "
            "(offsets, record counts, sha256 of each file, version, schemas). read_committed, "
            "cut outside the listener's transactions; a failed run leaves the previous manifest.",
            settings=(*KAFKA_SETTINGS, "AOP_CHAIN_PARTITIONS", "AOP_PROGRAM_ID", "AOP_MINT"),
            exits=exits,
        ),
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="the export directory")
    export.add_argument(
        "--codec", choices=("snappy", "deflate", "null"), default="snappy", help="Avro codec"
    )
    export.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="write the aop_backup_* metrics there (Prometheus text, atomically; for "
        "node_exporter's textfile collector, name it *.prom)",
    )
    export.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="export again every SECONDS until interrupted (exit code of the last run)",
    )
    export.add_argument(
        "--cut-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for a moment without an open listener transaction (120)",
    )
    _output_options(export)
    export.set_defaults(handler=run_export)

    restore = actions.add_parser(
        "import",
        help="restore an export into the cluster (every record at its old offset)",
        **help_options(
            "Checks the manifest (this pipeline's program id, mint, partitions) and the sha256 "
            "of every file before writing anything; refuses non-empty topics; writes each "
            "record with its key, value, headers and timestamp at the offset it had.",
            settings=(*KAFKA_SETTINGS, "AOP_CHAIN_PARTITIONS", "AOP_PROGRAM_ID", "AOP_MINT"),
            exits=exits,
        ),
    )
    restore.add_argument("directory", type=Path, metavar="DIR", help="the export directory")
    restore.add_argument(
        "--allow-non-empty",
        action="store_true",
        help="append to topics that hold records (their offsets then change)",
    )
    restore.add_argument(
        "--parallel", type=int, default=4, metavar="N", help="partitions written at once (4)"
    )
    _output_options(restore)
    restore.set_defaults(handler=run_import)

    verify = actions.add_parser(
        "verify",
        help="check an export's manifest and the sha256 of every file; write nothing",
        **help_options(
            "Reads the manifest and every file it names, checks each sha256 and record count; "
            "reads no broker and writes nothing.",
            settings=(),
            exits={0: "the export is whole", 2: "a missing or corrupt file (named)"},
        ),
    )
    verify.add_argument("directory", type=Path, metavar="DIR", help="the export directory")
    verify.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    verify.set_defaults(handler=run_verify, quiet=True)

    purge = actions.add_parser(
        "purge",
        help="delete the roots topics' records every reader has passed (--dry-run: the plan)",
        **help_options(
            "Moves the log start offset of aop.epoch.roots and aop.global.roots to the offset "
            "every reader has durably passed and no recovery needs: min(the projector's "
            "committed offset, the newest GlobalRoot's sources and resume offsets, the header "
            "of the oldest of the newest AOP_PROOF_ROOTS_KEPT roots of each account). The "
            "projector does this every AOP_ROOTS_PURGE_EVERY_S; this runs it once.",
            settings=(*KAFKA_SETTINGS, "AOP_DATABASE_URL", "AOP_PROOF_ROOTS_KEPT"),
            exits={0: "done", 2: OPERATOR_ERROR},
        ),
    )
    purge.add_argument("--dry-run", action="store_true", help="print the plan, delete nothing")
    purge.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    purge.set_defaults(handler=run_purge)


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    while True:
        code = _export_once(args, settings)
        if args.interval is None:
            return code
        time.sleep(args.interval)


def _export_once(args: argparse.Namespace, settings: Settings) -> int:
    from aop.log.backup import export_log, latest_manifest, write_export_metrics

    started = time.perf_counter()
    try:
        result = export_log(
            settings,
            args.directory,
            codec=args.codec,
            cut_timeout_s=args.cut_timeout,
            progress=_progress(args),
        )
    except AopError:
        if args.metrics_file is not None:
            found = _newest(args.directory, latest_manifest)
            write_export_metrics(
                args.metrics_file,
                found,
                success=False,
                seconds=time.perf_counter() - started,
                records=0,
            )
        if args.interval is None:
            raise
        log.exception("export failed")
        return 2
    if args.metrics_file is not None:
        write_export_metrics(
            args.metrics_file,
            result.manifest,
            success=True,
            seconds=result.seconds,
            records=result.records,
        )
    document = {
        "directory": str(result.directory),
        "written": result.written,
        "manifest": str(result.manifest_path) if result.manifest_path else None,
        "seq": result.manifest.seq if result.manifest else None,
        "records": result.records,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "ranges": [
            {
                "topic": r.topic,
                "partition": r.partition,
                "start": r.start,
                "end": r.end,
                "records": r.records,
                "bytes": r.bytes,
                "file": r.segment.path if r.segment else None,
            }
            for r in result.ranges
            if r.end > r.start
        ],
    }
    if args.json:
        _print_json(document)
    elif not result.written:
        print(f"export {result.directory}: nothing new since manifest {_seq(result.manifest)}")
    else:
        rate = result.records / result.seconds if result.seconds else 0.0
        print(
            f"export {result.directory}: manifest {result.manifest_path} — {result.records:,} "
            f"records, {result.bytes / 1e6:,.1f} MB of files in {result.seconds:.1f} s "
            f"({rate:,.0f} records/s)"
        )
        ranges: list[dict[str, Any]] = document["ranges"]  # type: ignore[assignment]
        for r in ranges:
            print(
                f"  {r['topic']}[{r['partition']}] offsets {r['start']}..{r['end']}: "
                f"{r['records']:,} records{'' if r['file'] else ' (no file: markers only)'}"
            )
    return 0


def run_import(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.log.backup import import_log

    result = import_log(
        settings,
        args.directory,
        allow_non_empty=args.allow_non_empty,
        parallel=args.parallel,
        progress=_progress(args),
    )
    rows = [
        {
            "topic": p.topic,
            "partition": p.partition,
            "mode": p.mode,
            "records": p.records,
            "bytes": p.bytes,
            "first_offset": p.first_offset,
            "end_offset": p.end_offset,
        }
        for p in sorted(result.partitions, key=lambda p: (p.topic, p.partition))
    ]
    document = {
        "directory": str(result.directory),
        "manifest": str(result.manifest_path),
        "seq": result.manifest.seq,
        "from_topic_prefix": result.manifest.deployment.topic_prefix,
        "to_topic_prefix": settings.topic_prefix,
        "records": result.records,
        "bytes": result.bytes,
        "verify_seconds": round(result.verify_seconds, 3),
        "seconds": round(result.seconds, 3),
        "partitions": rows,
    }
    if args.json:
        _print_json(document)
        return 0
    rate = result.records / result.seconds if result.seconds else 0.0
    print(
        f"import {result.directory} (manifest {result.manifest.seq}, exported "
        f"{result.manifest.created_at}): every file checked in {result.verify_seconds:.1f} s; "
        f"{result.records:,} records ({result.bytes / 1e6:,.1f} MB of keys and values) written in "
        f"{result.seconds:.1f} s ({rate:,.0f} records/s)"
    )
    for row in rows:
        print(
            f"  {row['topic']}[{row['partition']}]: {row['records']:,} records ({row['mode']}), "
            f"ends at offset {row['end_offset']}"
        )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.log.backup import read_checked_manifest, verify_files

    started = time.perf_counter()
    path, manifest = read_checked_manifest(settings, args.directory)
    checked = verify_files(args.directory, manifest)
    seconds = time.perf_counter() - started
    document = {
        "manifest": str(path),
        "seq": manifest.seq,
        "created_at": manifest.created_at,
        "records": manifest.records,
        "files": len(manifest.segments),
        "bytes": checked,
        "seconds": round(seconds, 3),
    }
    if args.json:
        _print_json(document)
    else:
        print(
            f"verify {args.directory}: manifest {path} ({manifest.created_at}) OK — "
            f"{len(manifest.segments)} files, {manifest.records:,} records, "
            f"{checked / 1e6:,.1f} MB, every sha256 matches ({seconds:.1f} s)"
        )
    return 0


def _seq(manifest: Any) -> str:
    return str(manifest.seq) if manifest is not None else "(none)"


def _newest(directory: Path, latest: Any) -> Any:
    try:
        found = latest(directory)
    except AopError:
        return None
    return found[1] if found else None


def _print_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _progress(args: argparse.Namespace) -> Any:
    """A rich progress bar on stderr (offsets done of the job), or None."""
    if args.quiet or args.json or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
    )

    class _Bar:
        def __init__(self) -> None:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task: TaskID | None = None

        def start(self, label: str, total: int) -> None:
            self._bar.start()
            self._task = self._bar.add_task(label, total=max(total, 1))

        def advance(self, done: int) -> None:
            if self._task is not None:
                self._bar.update(self._task, advance=done)

        def finish(self) -> None:
            self._bar.stop()

    return _Bar()


def run_purge(args: argparse.Namespace) -> int:
    from sqlalchemy.pool import NullPool

    from aop.log.avro import codec_for
    from aop.projections.db import engine_for
    from aop.projections.purge import purge_roots

    settings = load_settings()
    configure_logging(settings.log_level)
    engine = engine_for(settings, poolclass=NullPool)
    try:
        plan = purge_roots(settings, engine, codec_for(settings), dry_run=args.dry_run)
    finally:
        engine.dispose()
    report = {
        "dry_run": bool(args.dry_run),
        "held": plan.held,
        "topics": [
            {
                "topic": t.topic,
                "records": t.records,
                "partitions": [
                    {"partition": p, "log_start": t.low.get(p, 0), "point": point}
                    for p, point in sorted(t.points.items())
                ],
            }
            for t in plan.topics
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for item in plan.topics:
        print(f"{item.topic}: {verb} {item.records:,} offsets")
        for part, point in sorted(item.points.items()):
            low = item.low.get(part, 0)
            print(f"  [{part}] log start {low} -> {max(low, point)} (purge point {point})")
    if plan.held:
        print(f"held: {plan.held}")
    return 0
