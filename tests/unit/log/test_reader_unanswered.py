"""`log_bounds` / `offsets_at` when the admin client answers a partition with no offset: an ask
sent to a leader just killed comes back at its timeout as OFFSET_INVALID (-1001) with no
error (measured: tests/integration/test_log_bounds_failover.py). It is asked again, after
fresh metadata, never taken for an empty partition (no broker needed: the answers are
scripted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, TopicPartition

from aop.log import reader
from aop.log.errors import LogReadError
from aop.log.reader import LogBounds, log_bounds, offsets_at
from aop.runtime.settings import load_settings

SETTINGS = load_settings({"AOP_DATABASE_URL": "postgresql+psycopg://aop:aop@127.0.0.1:1/aop"})


@dataclass
class _Answer:
    offset: int


@dataclass
class _Done:
    answer: _Answer

    def result(self) -> _Answer:
        return self.answer


@dataclass
class ScriptedAdmin:
    """Answers each list_offsets ask with the next offset of `answers` for every partition
    (the asks of a read_committed end with the next of `stop_answers`, if given)."""

    answers: list[int]
    stop_answers: list[int] = field(default_factory=list)
    asks: int = 0
    metadata_refreshes: list[str] = field(default_factory=list)

    def list_offsets(self, specs: dict[TopicPartition, Any], **options: Any) -> dict[Any, _Done]:
        self.asks += 1
        script = self.stop_answers if "isolation_level" in options else self.answers
        offset = script.pop(0) if len(script) > 1 else script[0]
        return {tp: _Done(_Answer(offset)) for tp in specs}

    def list_topics(self, topic: str, timeout: float) -> None:
        self.metadata_refreshes.append(topic)


def _use(monkeypatch: pytest.MonkeyPatch, admin: ScriptedAdmin) -> None:
    monkeypatch.setattr(reader, "connected_admin", lambda settings: admin)


def test_an_unanswered_bound_is_asked_again_after_fresh_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # low: 0 each time; stop: unanswered twice, then 10
    admin = ScriptedAdmin([0], stop_answers=[OFFSET_INVALID, OFFSET_INVALID, 10])
    _use(monkeypatch, admin)
    bounds = log_bounds(SETTINGS, "t", [0, 1], timeout=20)
    assert bounds == {0: LogBounds(0, 10), 1: LogBounds(0, 10)}
    # three rounds of (low, stop); fresh metadata before the 2nd and the 3rd
    assert (admin.asks, admin.metadata_refreshes) == (6, ["t", "t"])


def test_a_bound_still_unanswered_at_the_timeout_is_an_error_naming_the_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use(monkeypatch, ScriptedAdmin([OFFSET_INVALID]))
    with pytest.raises(LogReadError) as caught:
        log_bounds(SETTINGS, "t", [3, 1], timeout=0.3)
    assert "cannot read the offsets of t partitions [1, 3]" in str(caught.value)
    assert "partitions [1, 3] answered no offset" in str(caught.value)


def test_a_timestamp_after_every_record_is_an_answer_an_invalid_offset_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = ScriptedAdmin([OFFSET_INVALID, -1])
    _use(monkeypatch, admin)
    assert offsets_at(SETTINGS, "t", [0], 1_000, timeout=20) == {0: None}
    assert admin.asks == 2
