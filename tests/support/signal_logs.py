"""Builders of SignalBatch logs (aop.attention.signals) for the attention fold's tests."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aop.core.attention.config import AttentionConfig
from aop.core.attention.legacy import DEFAULT_CLAIM_ID_TEMPLATE
from aop.core.attention.policy import AttentionPolicy
from aop.core.attention.signals import SIGNAL_KINDS
from aop.core.fold_config import FoldConfig
from tests.support.fold_logs import MINT, PROGRAM_ID, config_for, key

#: an hour start (2026-12-07 18:00 UTC) the examples count from.
HOUR0 = 1_796_666_400


def signal(
    signal_id: str,
    channel: str,
    user: str,
    kind: str,
    value: int,
    observed_at_ms: int,
    epoch: int | None = None,
) -> dict[str, Any]:
    """A Signal record (schemas/avro/Signal.avsc)."""
    return {
        "id": signal_id,
        "channel": channel,
        "user": user,
        "kind": kind,
        "value": value,
        "observed_at_ms": observed_at_ms,
        "epoch": epoch,
    }


def binding(binding_id: str, user: str, wallet: bytes, observed_at_ms: int) -> dict[str, Any]:
    """A Binding record (schemas/avro/Binding.avsc)."""
    return {"id": binding_id, "user": user, "wallet": wallet, "observed_at_ms": observed_at_ms}


def signal_batch(
    partition: int,
    watermark_ms: int,
    signals: Sequence[dict[str, Any]] = (),
    bindings: Sequence[dict[str, Any]] = (),
    *,
    source: str = "irc",
    request_id: str = "r",
) -> dict[str, Any]:
    """A SignalBatch record (schemas/avro/SignalBatch.avsc)."""
    return {
        "partition": partition,
        "source": source if signals or bindings else "",
        "request_id": request_id,
        "received_at_ms": max(watermark_ms, 0),
        "watermark_ms": watermark_ms,
        "signals": list(signals),
        "bindings": list(bindings),
    }


def attention_config_for(
    channels: Iterable[str],
    *,
    partitions: int = 4,
    epoch_seconds: int = 3600,
    policies: dict[str, AttentionPolicy] | None = None,
    formats: dict[str, str] | None = None,
    template: str = DEFAULT_CLAIM_ID_TEMPLATE,
    **chain: Any,
) -> FoldConfig:
    """A `config_for` fold configuration with the attention side on."""
    names = list(channels)
    attention = AttentionConfig.create(
        program_id=PROGRAM_ID,
        mint=MINT,
        epoch_seconds=epoch_seconds,
        partitions=partitions,
        channels=names,
        policy_for=lambda n: (policies or {}).get(n, AttentionPolicy()),
        claim_format_for=lambda n: (formats or {}).get(n, "cumulative-v2"),
        claim_id_template=template,
    )
    base = config_for(names, partitions=partitions, **chain)
    return FoldConfig(
        program_id=base.program_id,
        mint=base.mint,
        clock=base.clock,
        partitions=base.partitions,
        channels=base.channels,
        source_topic=base.source_topic,
        attention=attention,
    )


@dataclass
class SignalLogWriter:
    """Appends SignalBatches per partition; `records` is the log as (partition, offset, batch)."""

    records: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    _offsets: dict[int, int] = field(default_factory=dict)

    def batch(
        self,
        partition: int,
        watermark_ms: int,
        signals: Sequence[dict[str, Any]] = (),
        bindings: Sequence[dict[str, Any]] = (),
        *,
        source: str = "irc",
    ) -> dict[str, Any]:
        batch = signal_batch(partition, watermark_ms, signals, bindings, source=source)
        offset = self._offsets.get(partition, 0)
        self._offsets[partition] = offset + 1
        self.records.append((partition, offset, batch))
        return batch


def random_signals(
    config: FoldConfig,
    *,
    seed: int,
    batches: int,
    signals_per_batch: int = 8,
    users: int = 25,
    step_ms: int = 60_000,
    start_ms: int = HOUR0 * 1000,
    wallet_of: Callable[[int], bytes] = lambda n: key(f"wallet{n % 30}"),
) -> list[tuple[int, dict[str, Any]]]:
    """A realistic signal log: (partition, SignalBatch) in append order. Every partition's
    watermark advances `step_ms` per round (pure watermarks where no signal comes); bindings
    are written to every partition; a few signals repeat (same source and id) and a few
    arrive late (their epoch closed)."""
    attention = config.attention
    assert attention is not None
    rng = random.Random(seed)
    out: list[tuple[int, dict[str, Any]]] = []
    serial = 0
    length = attention.epoch_seconds * 1000
    sent: dict[int, list[dict[str, Any]]] = {}
    for i in range(batches):
        now = start_ms + (i + 1) * step_ms
        watermark = now - step_ms // 2
        bindings = []
        if rng.random() < 0.3:
            n = rng.randrange(users)
            bindings.append(binding(f"b{i}", f"User{n}", wallet_of(rng.randrange(users)), now - 1))
        for partition in range(config.partitions):
            specs = attention.channels_of(partition)
            signals = []
            for _ in range(signals_per_batch if specs else 0):
                spec = rng.choice(specs)
                serial += 1
                kind = rng.choice(SIGNAL_KINDS)
                value = rng.randint(1, 500) if kind in ("bits", "listen_seconds") else 1
                observed = rng.randint(now - step_ms, now - 1)
                signals.append(
                    signal(
                        f"s{serial}",
                        spec.name,
                        f"user{rng.randrange(users)}",
                        kind,
                        value,
                        observed,
                    )
                )
            earlier = sent.setdefault(partition, [])
            if signals and earlier and rng.random() < 0.2:  # a repeat of an earlier signal
                signals.append(dict(rng.choice(earlier)))
            if signals and rng.random() < 0.05:  # a late one: two epochs back
                late = dict(signals[0], id=f"late{serial}", observed_at_ms=now - 2 * length)
                signals.append(late)
            earlier += signals
            source = "irc" if signals or bindings else ""
            out.append(
                (partition, signal_batch(partition, watermark, signals, bindings, source=source))
            )
    return out
