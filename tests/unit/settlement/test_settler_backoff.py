"""The settler's retry waits: AOP_SETTLEMENT_BACKOFF_* under the one backoff policy."""

from __future__ import annotations

import random

import pytest

from aop.log.avro import AvroCodec
from aop.runtime.settings import load_settings
from aop.settlement.settler import Settler

SEED = 20261127


async def test_settlement_retries_wait_full_jitter_of_its_settings() -> None:
    """AOP_SETTLEMENT_BACKOFF_INITIAL_MS=200, _MAX_MS=10000: windows 0.2, 0.4, ... 10 s, and
    each wait is drawn from the whole window (its docstring and settings say full jitter)."""
    settings = load_settings(
        {"AOP_SETTLEMENT_BACKOFF_INITIAL_MS": "200", "AOP_SETTLEMENT_BACKOFF_MAX_MS": "10000"}
    )
    settler = Settler(
        settings,
        store=None,  # type: ignore[arg-type]
        rpc=None,  # type: ignore[arg-type]
        keypair=None,  # type: ignore[arg-type]
        producer=None,
        codec=AvroCodec(),
        rng=random.Random(SEED),
    )
    waited: list[float] = []

    async def pause(seconds: float) -> None:
        waited.append(seconds)

    settler._pause = pause  # type: ignore[method-assign]
    for attempt in range(8):
        await settler._backoff(attempt)
    ceilings = [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    draws = random.Random(SEED)  # uniform(0, c) is c * random()
    assert waited == pytest.approx([c * draws.random() for c in ceilings], rel=1e-12)
