"""`aop ingest`: the attention-signal ingest service; `--file` backfills; `token new` mints a
source's bearer token.

Serving, steps:

1. Settings, logging.
2. The tokens (AOP_INGEST_TOKENS_FILE, mode 600; a refused file stops the service here) and
   the served channels (AOP_CHANNELS). Unset or empty, the service runs and refuses every
   request (401) or every signal (`unknown_channel`), with a warning: `aop run` starts it on
   every machine. Then the topics exist with their specs (`ensure_topics`).
3. The writer: `init_transactions()` fences a predecessor and aborts its open transaction;
   then the log's tail gives the watermarks and the ids to count as duplicates.
4. The writer thread, /metrics on AOP_METRICS_PORT, and uvicorn on AOP_INGEST_HOST:PORT until
   SIGTERM/SIGINT (open requests are answered, then the writer stops) or a fenced writer
   (exit 2).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from aop.cli.help import KAFKA_SETTINGS, SERVICE_EXITS, help_options
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import Settings, load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="serve the attention-signal ingest (settings: AOP_INGEST_*, AOP_ATTENTION_*, "
        "AOP_CHANNELS); --file backfills; `token new` mints a source's token",
        **help_options(
            "Serves POST /v1/signals and /v1/bindings for trusted collectors (a bearer token "
            "of AOP_INGEST_TOKENS_FILE each) and answers 202 only once the brokers acknowledged "
            "the transaction that put the items on aop.attention.signals; refused items get a "
            "422 naming each one. With --file, backfills an NDJSON file through the same rules "
            "and exits. See docs/runbook.md, Attention signals.",
            settings=(
                "AOP_INGEST_*",
                "AOP_ATTENTION_EPOCH_SECONDS",
                "AOP_ATTENTION_ALLOWED_LATENESS_S",
                "AOP_CHANNELS",
                *KAFKA_SETTINGS,
                "AOP_METRICS_HOST",
                "AOP_METRICS_PORT",
            ),
            exits={
                0: SERVICE_EXITS[0] + "; with --file, the file backfilled",
                2: "bad settings, a refused tokens file, a refused --file line (named), or "
                "the writer fenced by another ingest with the same transactional id",
            },
        ),
    )
    parser.add_argument("--host", help="bind address (default AOP_INGEST_HOST)")
    parser.add_argument("--port", type=int, help="port (default AOP_INGEST_PORT)")
    parser.add_argument(
        "--file",
        type=Path,
        help='backfill this NDJSON file instead of serving (one {"type": "signal"|'
        '"binding", ...} per line; see docs/runbook.md, Attention signals)',
    )
    parser.add_argument("--source", help="with --file: the source the items count as")
    parser.set_defaults(handler=run)
    commands = parser.add_subparsers(dest="ingest_command", metavar="{token}")
    token = commands.add_parser(
        "token",
        help="bearer tokens of the sources",
        **help_options(
            "Bearer tokens of the collectors' sources (AOP_INGEST_TOKENS_FILE holds their "
            "hashes, one source per line).",
            settings=("AOP_INGEST_TOKENS_FILE",),
            exits={0: "done", 2: "bad arguments"},
        ),
    )
    token_commands = token.add_subparsers(dest="token_command", metavar="{new}", required=True)
    new = token_commands.add_parser(
        "new",
        help="mint a token: printed once, with the AOP_INGEST_TOKENS_FILE line to add",
        **help_options(
            "Mints a random token for --source: the token is printed once (or written to "
            "--output, mode 600) and only its hash goes to the tokens file. The ingest rereads "
            "the file when it changes, so adding a line rotates without a restart.",
            settings=("AOP_INGEST_TOKENS_FILE",),
            exits={0: "minted", 2: "bad source name, or --output exists"},
        ),
    )
    new.add_argument("--source", required=True, help="the source's name (a-z, 0-9, . _ -)")
    new.add_argument(
        "--tokens-file", type=Path, help="also append the line to this file (created mode 600)"
    )
    new.add_argument(
        "--output",
        type=Path,
        help="write the token to this new file (mode 600) instead of printing it",
    )
    new.set_defaults(handler=new_token)


def run(args: argparse.Namespace) -> int:
    if args.file is not None:
        return _backfill(args)
    if args.source:
        raise AopError("--source goes with --file (the service takes the source from the token)")
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["ingest_host"] = args.host
    if args.port:
        overrides["ingest_port"] = args.port
    settings = load_settings(**overrides)
    configure_logging(settings.log_level)
    return serve(settings)


def serve(settings: Settings) -> int:
    """Steps 1-4 of the module docstring; the exit code."""
    import uvicorn

    from aop.api.ingest.app import create_ingest_app
    from aop.api.ingest.channels import ServedChannels
    from aop.api.ingest.items import ItemRules
    from aop.api.ingest.tokens import TokenFile
    from aop.api.ingest.worker import WriterThread
    from aop.api.ingest.writer import SignalWriter, transactional_id
    from aop.cli.commands.api import uvicorn_options
    from aop.log.avro import codec_for
    from aop.log.kafka import ensure_topics
    from aop.runtime.faults import FaultPlan
    from aop.runtime.metrics import serve_metrics
    from aop.runtime.shutdown import arm_shutdown_deadline

    tokens = TokenFile(settings.ingest_tokens_file)  # a refused file stops us before the log
    channels = ServedChannels.from_settings(settings)
    if not len(tokens.table):
        log.warning("no tokens (AOP_INGEST_TOKENS_FILE unset or empty): every request gets 401")
    if not channels.names:
        log.warning("AOP_CHANNELS is empty: every signal is refused (unknown_channel)")
    faults = FaultPlan.for_service(settings, "ingest")
    ensure_topics(settings)
    writer = SignalWriter(settings, codec_for(settings), faults=faults)
    writer.start()
    fatal: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_fatal(exc: BaseException) -> None:
        fatal.append(exc)
        if server is not None:
            server.should_exit = True

    thread = WriterThread(
        writer, interval_s=settings.ingest_watermark_interval_s, on_fatal=on_fatal
    )
    thread.start()
    rules = ItemRules(channels, settings.attention_epoch_seconds, settings.ingest_max_items)
    app = create_ingest_app(settings, thread, tokens, rules)
    serve_metrics(settings.metrics_host, settings.metrics_port)
    options = {
        **uvicorn_options(settings),
        "host": settings.ingest_host,
        "port": settings.ingest_port,
        "access_log": False,
    }
    log.info(
        "ingest starting",
        extra={
            "host": settings.ingest_host,
            "port": settings.ingest_port,
            "transactional_id": transactional_id(settings),
            "sources": list(tokens.table.sources),
            "channels": list(channels.names),
            "watermark_ms": writer.watermark_ms,
            "seen_ids": len(writer.seen),
        },
    )
    stopped_by: list[int] = []

    def note_signal(signum: int, _frame: object) -> None:
        stopped_by.append(signum)  # uvicorn stops gracefully, then re-raises to this handler

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, note_signal)

    class IngestServer(uvicorn.Server):
        """Arms the shutdown deadline when the stop signal comes: the writer's last
        transaction may wait on an unreachable broker (it took 15 s with the broker down)."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            arm_shutdown_deadline(settings.shutdown_timeout_s, "ingest")
            super().handle_exit(sig, frame)

    server = IngestServer(uvicorn.Config(app, **options))
    # what start-up built lives as long as the process (imports, the ids read back from the
    # log): out of the collector's generations, a full collection no longer walks it (it
    # took 65-160 ms here, the p99 of a request; BENCHMARKS.md, Ingest)
    gc.freeze()
    server.run()
    if fatal:
        raise AopError(f"the writer stopped: {fatal[0]}")
    log.info("ingest stopped", extra={"signal": stopped_by[0] if stopped_by else None})
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from aop.api.ingest.backfill import backfill
    from aop.api.ingest.tokens import SOURCE_PATTERN

    if not args.source or not SOURCE_PATTERN.fullmatch(args.source):
        raise AopError(
            "--file needs --source NAME (a-z, 0-9, '.', '_', '-'): the source its items count as"
        )
    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        report = backfill(settings, args.file, source=args.source)
    except OSError as exc:
        raise AopError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    print(
        f"backfilled {args.file} as source {args.source}: {report.lines} lines, "
        f"{report.accepted} accepted, {report.duplicates} duplicates, "
        f"{len(report.chunks)} transaction(s)"
    )
    return 0


def new_token(args: argparse.Namespace) -> int:
    from aop.api.ingest.tokens import TokenTable, mint_token

    try:
        minted = mint_token(args.source)
    except ValueError as exc:
        raise AopError(str(exc)) from exc
    if args.output is not None:
        _write_private(args.output, minted.token.reveal() + "\n", exclusive=True)
        print(f"token of source {minted.source} written to {args.output} (mode 600)")
    else:
        print(f"token of source {minted.source} (shown once; give it to the collector):")
        print(minted.token.reveal())
    if args.tokens_file is not None:
        _write_private(args.tokens_file, minted.line + "\n", exclusive=False)
        TokenTable.from_file(args.tokens_file)  # the file as the ingest will read it
        print(f"added to {args.tokens_file} (the ingest reloads it within a second):")
    else:
        print("add this line to AOP_INGEST_TOKENS_FILE (the ingest reloads it within a second):")
    print(minted.line)
    return 0


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    """Append `text` to `path` (or create it, mode 600; `exclusive`: it must not exist)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_APPEND)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise AopError(f"{path} exists; choose another --output") from None
    except OSError as exc:
        raise AopError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
