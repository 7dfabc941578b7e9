"""The shared signal rules: the epoch of a time and the user's normal form."""

from __future__ import annotations

import pytest

from aop.core.attention.signals import SIGNAL_KINDS, epoch_of, user_key
from aop.log.avro import SCHEMA_DIR


def test_epoch_of_a_time_is_the_start_of_its_hour() -> None:
    """2026-12-07 18:47:39.500 UTC is 1796669259500 ms; its hour starts at 18:00:00,
    1796666400 (= 1796669259 - 47*60 - 39)."""
    assert epoch_of(1_796_669_259_500, 3600) == 1_796_666_400


def test_epoch_of_the_first_and_last_millisecond_of_a_window() -> None:
    """[s, s+L) in seconds: s*1000 is in it, (s+L)*1000 - 1 too, (s+L)*1000 is not."""
    assert epoch_of(7_200_000, 3600) == 7200
    assert epoch_of(10_799_999, 3600) == 7200
    assert epoch_of(10_800_000, 3600) == 10_800


def test_epoch_of_refuses_a_zero_length() -> None:
    with pytest.raises(ValueError, match="epoch_seconds must be an int >= 1"):
        epoch_of(1, 0)


def test_users_compare_case_insensitively() -> None:
    assert user_key("LofiGirl_Fan") == user_key("lofigirl_fan") == "lofigirl_fan"


def test_the_kinds_are_the_log_schemas_enum() -> None:
    """The kinds in core are the SignalKind symbols of schemas/avro/Signal.avsc, in order."""
    import json

    schema = json.loads((SCHEMA_DIR / "Signal.avsc").read_text())
    kind = next(f for f in schema["fields"] if f["name"] == "kind")
    assert tuple(kind["type"]["symbols"]) == SIGNAL_KINDS
