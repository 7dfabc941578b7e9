"""`aop dlq --since/--until`: an age or an ISO time, in ms since the epoch; anything else is
refused naming the value."""

from __future__ import annotations

import datetime as dt

import pytest

from aop.cli.commands.dlq import parse_when
from aop.runtime.errors import AopError

NOW = dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "ago_s"), [("30s", 30), ("30m", 1800), ("6h", 21600), ("2d", 172800)]
)
def test_ages_count_back_from_now(text: str, ago_s: int) -> None:
    assert parse_when(text, now=NOW) == int((NOW.timestamp() - ago_s) * 1000)


def test_iso_times_are_utc_unless_they_name_a_zone() -> None:
    assert parse_when("2026-01-31T11:00", now=NOW) == int(NOW.timestamp() * 1000) - 3_600_000
    assert parse_when("2026-01-31T13:00+02:00", now=NOW) == int(NOW.timestamp() * 1000) - 3_600_000


def test_anything_else_is_refused_naming_it() -> None:
    with pytest.raises(
        AopError, match=r"an age like 30m, 6h, 2d or an ISO time \(got 'yesterday'\)"
    ):
        parse_when("yesterday", now=NOW)
