"""Consumer lag from librdkafka statistics: last stable offset minus the stored offset."""

from __future__ import annotations

import json

from aop.projections.projector import lag_from_stats


def test_lag_uses_the_last_stable_offset_then_the_high_watermark() -> None:
    stats = {
        "topics": {
            "t.roots": {
                "partitions": {
                    "0": {"ls_offset": 120, "hi_offset": 130},
                    "1": {"ls_offset": -1, "hi_offset": 50},
                    "2": {"ls_offset": 7, "hi_offset": 7},
                    "-1": {"ls_offset": -1, "hi_offset": -1},
                }
            },
            "other": {"partitions": {"0": {"ls_offset": 9}}},
        }
    }
    stored = {("t.roots", 0): 100, ("t.roots", 1): 50, ("t.roots", 2): 9}
    assert lag_from_stats(json.dumps(stats), stored) == {
        ("t.roots", 0): 20,
        ("t.roots", 1): 0,
        ("t.roots", 2): 0,
    }


def test_garbage_statistics_report_nothing() -> None:
    assert lag_from_stats("not json", {("t", 0): 1}) == {}
