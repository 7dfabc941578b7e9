"""`aop ingest --file signals.ndjson`: a file of signals and bindings onto the log, with the
live ingest's validation and its writer (`api.ingest.items`, `api.ingest.writer`).

The file holds one JSON object per line: `{"type": "signal", <the fields of a POST
/v1/signals item>}` or `{"type": "binding", <the fields of a POST /v1/bindings item>}`
(`api.ingest.shapes.SignalLine`, `BindingLine`); blank lines are skipped. Every item counts as
the given source's, as if that source had posted it.

Steps of `backfill`:

1. Read and check every line (shape, channel, wallet). Any refused line: nothing is written,
   and every refusal is reported by line number.
2. Make sure the topics exist (`ensure_topics`); start a writer of its own (transactional
   id `<AOP_INGEST_TRANSACTIONAL_ID>.backfill`, so the live ingest is not fenced) that reads
   the log's tail: its watermarks and the ids it holds (duplicates are counted, not written
   again).
3. Write the items in file order, AOP_INGEST_MAX_ITEMS per transaction, each chunk all or
   nothing. A chunk with a refused item (late by now, `id_reused`) stops the backfill with
   the refusals; the chunks before it stay written, and running the same file again is safe:
   what is on the log counts as duplicates.

Watermarks. A backfill writes beside the live ingest and must not break its promise:
* it accepts an item only if its window ends at or after the live ingest's watermark plus
  `MARGIN_MS` (the watermark the live ingest writes now: clock minus the allowed lateness),
  and at or after every watermark on the log: an item the live ingest would refuse as late is
  refused here too, and one it would accept just now but not in `MARGIN_MS` is refused;
* a chunk's records must reach the brokers (get their offsets) within `MARGIN_MS` of the
  check, or the chunk is aborted: so they land before any live watermark that passes them;
* its batches carry each partition's watermark as the backfill read it from the log (0
  where there is none): it never moves a partition's watermark.
So a backfill adds signals to attention epochs that are still open; a closed epoch cannot
change (its root may be published).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from aop.api.ingest.channels import ServedChannels
from aop.api.ingest.items import (
    Item,
    ItemRules,
    binding_item,
    raw_id,
    refusal_reason,
    signal_item,
)
from aop.api.ingest.shapes import BindingLine, SignalLine
from aop.api.ingest.writer import (
    Backfill,
    Job,
    Refused,
    SignalWriter,
    new_request_id,
    transactional_id,
    unix_ms,
)
from aop.api.shapes import RefusedItem
from aop.log.avro import codec_for
from aop.log.kafka import ensure_topics
from aop.runtime.errors import AopError
from aop.runtime.settings import Settings

__all__ = ["MARGIN_MS", "BackfillRefusedError", "BackfillReport", "backfill", "read_lines"]

#: how far inside the live ingest's acceptance a backfilled item must be, and how long a
#: chunk may take to reach the brokers (module docstring).
MARGIN_MS: Final = 10_000
_LINE = msgspec.json.Decoder(SignalLine | BindingLine)


class BackfillRefusedError(AopError):
    """Raised when lines of a backfill file are refused; `refused` names each (index = line
    number). `written` chunks were on the log before the refusal (0 when step 1 refused)."""

    def __init__(self, refused: list[RefusedItem], *, written: int, accepted: int) -> None:
        shown = "; ".join(f"line {r.index}: {r.reason}: {r.message}" for r in refused[:20])
        more = f"; and {len(refused) - 20} more" if len(refused) > 20 else ""
        done = (
            "nothing was written"
            if written == 0
            else f"{written} chunk(s) ({accepted} items) before them are on the log; running "
            "the file again counts them as duplicates"
        )
        super().__init__(f"{len(refused)} line(s) refused ({done}): {shown}{more}")
        self.refused = refused
        self.written = written


@dataclass
class BackfillReport:
    """What a backfill did."""

    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    chunks: list[str] = field(default_factory=list)  # request ids


def read_lines(path: Path, rules: ItemRules) -> tuple[list[Item], list[RefusedItem]]:
    """Step 1: the file's items, and the refusal of each bad line (index = line number)."""
    items: list[Item] = []
    refused: list[RefusedItem] = []
    for number, line in _numbered(path):
        try:
            decoded = _LINE.decode(line)
        except msgspec.ValidationError as exc:
            refused.append(RefusedItem(number, raw_id(line), refusal_reason(exc), str(exc)))
            continue
        except msgspec.DecodeError as exc:
            refused.append(RefusedItem(number, "", "malformed", f"not a JSON object: {exc}"))
            continue
        if isinstance(decoded, SignalLine):
            outcome = signal_item(number, decoded, rules)
        else:
            outcome = binding_item(number, decoded)
        if isinstance(outcome, Item):
            items.append(outcome)
        else:
            refused.append(outcome)
    return items, refused


def _numbered(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield number, line


def backfill(settings: Settings, path: Path, *, source: str) -> BackfillReport:
    """Steps 1-3 of the module docstring.

    Raises:
        AopError: the allowed lateness is within the margin (nothing could be accepted).
        BackfillRefusedError: refused lines (step 1: nothing written; step 3: the chunks
            before them written).
        WriterUnavailableError, WriterFencedError, AopError: the log could not take a chunk
            (the chunks before it are written; run the file again).
        OSError: the file cannot be read.
    """
    rules = ItemRules(
        ServedChannels.from_settings(settings),
        settings.attention_epoch_seconds,
        settings.ingest_max_items,
    )
    if settings.attention_allowed_lateness_s * 1000 <= MARGIN_MS:
        raise AopError(
            f"AOP_ATTENTION_ALLOWED_LATENESS_S ({settings.attention_allowed_lateness_s}) must "
            f"exceed the backfill's margin of {MARGIN_MS // 1000} s: no item could be accepted"
        )
    items, refused = read_lines(path, rules)
    report = BackfillReport(lines=len(items) + len(refused))
    if refused:
        raise BackfillRefusedError(refused, written=0, accepted=0)
    ensure_topics(settings)
    writer = SignalWriter(
        settings,
        codec_for(settings),
        backfill=Backfill(MARGIN_MS),
        txn_id=f"{transactional_id(settings)}.backfill",
    )
    writer.start()
    try:
        for at in range(0, len(items), settings.ingest_max_items):
            chunk = items[at : at + settings.ingest_max_items]
            request_id = new_request_id()
            (outcome,) = writer.write([Job(source, request_id, unix_ms(), chunk)])
            if isinstance(outcome, Refused):
                raise BackfillRefusedError(
                    outcome.items, written=len(report.chunks), accepted=report.accepted
                )
            report.accepted += outcome.accepted
            report.duplicates += outcome.duplicates
            report.chunks.append(request_id)
    finally:
        writer.close()
    return report
