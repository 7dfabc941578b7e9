"""`retry_leadership_changes`: a bounds read asks again while a partition's leadership moves
(a broker killed), and only then (no broker needed: the asks are scripted)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from aop.log.reader import retry_leadership_changes


class Script:
    """Raises the given error codes in turn, then answers 42; records the pauses."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.asks = 0
        self.pauses: list[float] = []

    def __call__(self) -> int:
        self.asks += 1
        if self.codes:
            raise KafkaException(KafkaError(self.codes.pop(0)))
        return 42

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


def test_a_fenced_leader_epoch_and_a_lost_leader_are_asked_again() -> None:
    script = Script(KafkaError.FENCED_LEADER_EPOCH, KafkaError.NOT_LEADER_FOR_PARTITION)
    answer = retry_leadership_changes(script, deadline=time.monotonic() + 60, sleep=script.sleep)
    assert (answer, script.asks, len(script.pauses)) == (42, 3, 2)
    # full jitter under 0.1 s then 0.2 s (LEADERSHIP_BACKOFF)
    assert 0 <= script.pauses[0] <= 0.1 and 0 <= script.pauses[1] <= 0.2


def test_another_error_is_raised_at_once() -> None:
    script = Script(KafkaError.UNKNOWN_TOPIC_OR_PART)
    with pytest.raises(KafkaException) as caught:
        retry_leadership_changes(script, deadline=time.monotonic() + 60, sleep=script.sleep)
    assert (caught.value.args[0].code(), script.asks, script.pauses) == (
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        1,
        [],
    )


def test_past_the_deadline_the_last_leadership_error_is_raised() -> None:
    script = Script(KafkaError.FENCED_LEADER_EPOCH)
    with pytest.raises(KafkaException) as caught:
        retry_leadership_changes(script, deadline=time.monotonic() - 1, sleep=script.sleep)
    assert (caught.value.args[0].code(), script.asks, script.pauses) == (
        KafkaError.FENCED_LEADER_EPOCH,
        1,
        [],
    )
