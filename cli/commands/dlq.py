"""`aop dlq`: list, filter and show the dead letters on aop.dlq (`aop.log.dead_letters`)."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import re

from rich.table import Table

from aop.cli.console import make_console, print_json
from aop.cli.help import OPERATOR_ERROR, help_options
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: characters of `detail` and `source` a list row shows (`show` prints them whole).
_CUT = 80


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="list, filter and show the dead letters on aop.dlq (read only)",
        **help_options(
            "Reads aop.dlq from its first stored record (never commits, either framing) and "
            "lists the dead letters: offset, time, stage, reason, source and detail. `aop dlq "
            "show OFFSET` prints one in full, with its payload (decoded when it is one of the "
            "pipeline's records). Re-driving a dead letter onto its source topic is not "
            "offered: the log must replay to the same roots, and a record appended later, at "
            "another offset, would not be the one the stage refused; fix the cause upstream.",
            settings=("AOP_KAFKA_BOOTSTRAP", "AOP_TOPIC_PREFIX", "AOP_SCHEMA_REGISTRY_URL"),
            exits={
                0: "listed (possibly nothing) or shown",
                1: "show: no dead letter at that offset",
                2: OPERATOR_ERROR + "; the broker unreachable; a record that is not a "
                "DeadLetter (its offset named)",
            },
        ),
    )
    _filters(parser)
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="only the newest N that match"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document on stdout")
    parser.set_defaults(handler=run_list)
    actions = parser.add_subparsers(dest="dlq_action", metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print one dead letter in full",
        **help_options(
            "Prints the dead letter at OFFSET of aop.dlq whole: stage, reason, source, "
            "detail, time, and its payload (base64, and decoded when it is an Avro record "
            "of the pipeline).",
            settings=("AOP_KAFKA_BOOTSTRAP", "AOP_TOPIC_PREFIX", "AOP_SCHEMA_REGISTRY_URL"),
            exits={0: "shown", 1: "no dead letter at OFFSET", 2: OPERATOR_ERROR},
        ),
    )
    show.add_argument("offset", type=int, help="offset on aop.dlq (the list's first column)")
    show.add_argument("--json", action="store_true", help="print a JSON document on stdout")
    show.set_defaults(handler=run_show)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", help="only this stage (listener, fold, projector, combiner)")
    parser.add_argument("--reason", help="only this reason (e.g. undecodable_event)")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only newer ones: an age (30m, 6h, 2d) or a UTC time (2026-01-31T12:00)",
    )
    parser.add_argument("--until", metavar="WHEN", help="only older ones (same forms)")


def parse_when(text: str, *, now: dt.datetime | None = None) -> int:
    """Milliseconds since the epoch of an age ("30m": that long ago) or an ISO time (UTC
    unless it names a zone).

    Raises:
        AopError: neither form (the message names the value).
    """
    now = now or dt.datetime.now(dt.UTC)
    match = _DURATION.match(text.strip())
    if match:
        return int((now.timestamp() - int(match[1]) * _UNIT_S[match[2]]) * 1000)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise AopError(
            f"--since/--until must be an age like 30m, 6h, 2d or an ISO time (got {text!r})"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _time(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cut(text: str) -> str:
    return text if len(text) <= _CUT else text[: _CUT - 1] + "…"


def run_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.log.dead_letters import DeadLetterFilter, read_dead_letters

    if args.limit is not None and args.limit < 1:
        raise AopError(f"--limit must be >= 1 (got {args.limit})")
    keep = DeadLetterFilter(
        stage=args.stage,
        reason=args.reason,
        since_ms=parse_when(args.since) if args.since else None,
        until_ms=parse_when(args.until) if args.until else None,
    )
    letters = list(read_dead_letters(settings, keep))
    if args.limit is not None:
        letters = letters[-args.limit :]
    if args.json:
        print_json({"kind": "aop.dlq", "dead_letters": [d.as_json() for d in letters]})
        return 0
    console = make_console(markup=False)
    table = Table(title=f"{settings.topic('aop.dlq')}: {len(letters)} dead letter(s)")
    for column in ("offset", "at (UTC)", "stage", "reason", "source", "detail"):
        table.add_column(column)
    for d in letters:
        table.add_row(
            str(d.offset), _time(d.at_ms), d.stage, d.reason, _cut(d.source), _cut(d.detail)
        )
    console.print(table)
    counts: dict[tuple[str, str], int] = {}
    for d in letters:
        counts[(d.stage, d.reason)] = counts.get((d.stage, d.reason), 0) + 1
    for (stage, reason), n in sorted(counts.items()):
        console.print(f"{n} {stage} {reason}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.log.dead_letters import DeadLetterFilter, read_dead_letters

    found = next(iter(read_dead_letters(settings, DeadLetterFilter(offset=args.offset))), None)
    if found is None:
        print(f"no dead letter at offset {args.offset} of {settings.topic('aop.dlq')}")
        return 1
    record = found.payload_record(settings)
    if args.json:
        print_json({"kind": "aop.dlq.letter", **found.as_json(), "payload_record": record})
        return 0
    console = make_console(markup=False)
    for name, value in (
        ("offset", str(found.offset)),
        ("at", f"{_time(found.at_ms)} UTC ({found.at_ms})"),
        ("stage", found.stage),
        ("reason", found.reason),
        ("source", found.source),
        ("detail", found.detail),
        ("payload", f"{len(found.payload)} bytes"),
    ):
        console.print(f"{name}: {value}", soft_wrap=True)
    if record is not None:
        console.print(f"payload record: {record['type']}", soft_wrap=True)
        console.print_json(data=record["value"], default=repr)
    console.print("payload base64: " + base64.b64encode(found.payload).decode(), soft_wrap=True)
    return 0
