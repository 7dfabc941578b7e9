"""A day of collector traffic fed to both sides of the parallel run: as SignalBatches onto
aop.attention.signals (our fold) and as POSTs and seals to the independent legacy aggregator
(`tests.support.legacy_aggregator`).

A scenario is a list of steps: a collector's POST (signals and bindings, with the time it
happened, the ingest's watermark) or the close of an epoch (a pure watermark on every
partition at the epoch's end; the legacy seals it). It holds, on purpose: user names in
mixed case, a user's signals split over two collectors (ids count per source), repeated
signals, a signal of a sealed epoch, an explicit epoch that is not the hour of its
observed_at, a tie in first_seen, a chat-only user (weight 0), two users bound to one
wallet, bindings made inside an epoch (they pay from the next), a re-binding, unbound users.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.support.fold_logs import key
from tests.support.legacy_aggregator import LegacyAggregator
from tests.support.signal_logs import binding, signal, signal_batch

#: kinds and the values a collector sends.
_VALUES = {
    "presence": (1, 1),
    "chat": (1, 1),
    "sub": (1, 1),
    "resub": (1, 1),
    "gift": (1, 5),
    "bits": (1, 2500),
    "raid": (1, 400),
    "listen_seconds": (30, 600),
    "view_seconds": (30, 600),
}
_KINDS = [*_VALUES, "presence", "presence", "bits", "chat"]
USERS = 40
SOURCES = ("irc", "presence-bot")


@dataclass
class Step:
    """A POST (`signals`, `bindings` from `source` at `at_ms`) or the close of `epoch`."""

    kind: Literal["post", "close"]
    at_ms: int
    source: str = ""
    signals: list[dict[str, Any]] = field(default_factory=list)
    bindings: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0


def wallet(n: int) -> bytes:
    return key(f"legacy-wallet-{n}")


def _user(rng: random.Random, n: int) -> str:
    name = f"Viewer_{n:02d}"
    return rng.choice([name, name.lower(), name.upper()])


def legacy_scenario(
    channels: Sequence[str],
    *,
    seed: int,
    first_epoch: int,
    epochs: int = 3,
    epoch_seconds: int = 3600,
    posts: int = 6,
    per_post: int = 14,
) -> list[Step]:
    """The steps of `epochs` epochs from `first_epoch` (module docstring)."""
    rng = random.Random(seed)
    length_ms = epoch_seconds * 1000
    start_ms = first_epoch * 1000
    # users 0-33 bound before the first epoch (10 and 11 to one wallet), 34-36 during it
    # (paid from the second), 5 re-bound during the second (new wallet from the third),
    # 37-39 never; user 30 only chats
    early = [
        binding(f"b{n}", _user(rng, n), wallet(10 if n == 11 else n), start_ms - 1_800_000 + n)
        for n in range(34)
    ]
    steps = [Step("post", start_ms - 1_800_000, "irc", bindings=early)]
    serial = 0
    for e in range(epochs):
        epoch = first_epoch + e * epoch_seconds
        begin = epoch * 1000
        sent: list[tuple[str, dict[str, Any]]] = []
        for p in range(posts):
            at = begin + (p + 1) * length_ms // (posts + 1)
            low = begin + p * length_ms // (posts + 1) + 2
            source = SOURCES[p % 2]
            step = Step("post", at, source)
            for _ in range(per_post):
                serial += 1
                n = rng.randrange(USERS)
                kind = "chat" if n == 30 else rng.choice(_KINDS)
                value = rng.randint(*_VALUES[kind])
                step.signals.append(
                    signal(
                        f"s{serial}",
                        rng.choice(channels),
                        _user(rng, n),
                        kind,
                        value,
                        rng.randrange(low, at),
                    )
                )
            if e == 0 and p == 1:
                step.bindings = [
                    binding(f"mid{n}", _user(rng, n), wallet(n), at - 5) for n in (34, 35, 36)
                ]
                # a legacy request's explicit epoch: the next one, observed in this one
                step.signals.append(
                    signal("explicit", channels[0], "Viewer_07", "sub", 1, at - 7, epoch + 3600)
                )
            if e == 1 and p == 0:
                # a tie in first_seen, the epoch's earliest; a signal of the sealed epoch
                step.signals += [
                    signal("tie-a", channels[0], "Viewer_20", "presence", 1, begin + 1),
                    signal("tie-b", channels[0], "viewer_21", "presence", 1, begin + 1),
                    signal("late", channels[0], "Viewer_02", "sub", 1, begin - 60_000),
                ]
            if e == 1 and p == 2:
                step.bindings = [binding("rebind5", "VIEWER_05", wallet(27), at - 3)]
            same_source = [s for src, s in sent if src == source]
            if same_source and rng.random() < 0.7:  # a repeat: the same source and id
                step.signals.append(dict(rng.choice(same_source)))
            if sent and p == posts - 1:  # the same id from the other collector counts
                other = next((s for src, s in sent if src != source), None)
                if other is not None:
                    step.signals.append(dict(other, value=1, kind="presence"))
            sent += [(source, s) for s in step.signals]
            steps.append(step)
        steps.append(Step("close", begin + length_ms, epoch=epoch))
    return steps


def signal_batches(
    steps: Sequence[Step], partition_of: Mapping[str, int], partitions: int
) -> list[tuple[int, dict[str, Any]]]:
    """The SignalBatches `aop ingest` would write: a POST's signals split by their channel's
    partition, its bindings on every partition, its time as the watermark; a close as a
    pure watermark on every partition."""
    out: list[tuple[int, dict[str, Any]]] = []
    for n, step in enumerate(steps):
        for p in range(partitions):
            mine = [s for s in step.signals if partition_of[s["channel"]] == p]
            if mine or step.bindings:
                batch = signal_batch(
                    p, step.at_ms, mine, step.bindings, source=step.source, request_id=f"r{n}"
                )
                out.append((p, batch))
            elif step.kind == "close":
                out.append((p, signal_batch(p, step.at_ms, request_id=f"r{n}")))
    return out


def legacy_roots(steps: Sequence[Step], epoch_seconds: int = 3600) -> dict[tuple[str, int], bytes]:
    """(channel, epoch) -> root the independent legacy aggregator seals over `steps`."""
    aggregator = LegacyAggregator(epoch_seconds=epoch_seconds)
    roots: dict[tuple[str, int], bytes] = {}
    for step in steps:
        if step.kind == "post":
            aggregator.ingest(step.source, step.signals, step.bindings)
        else:
            roots.update({(c, step.epoch): r for c, r in aggregator.seal(step.epoch).items()})
    return roots
