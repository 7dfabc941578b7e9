"""Builders of program transaction logs for the listener's unit tests."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest

from aop.core.events import ChannelStaked, CumulativeRewardsClaimed, ProtocolPaused
from aop.core.program_ids import DEFAULT_PROGRAM_ID, TOKEN_2022_PROGRAM_ID

PROGRAM = str(DEFAULT_PROGRAM_ID)
TOKEN = str(TOKEN_2022_PROGRAM_ID)


def data_line(payload: bytes) -> str:
    return "Program data: " + base64.b64encode(payload).decode()


def program_logs(payload_lines: Sequence[str], *, cpi_lines: Sequence[str] = ()) -> list[str]:
    """A top-level call of the program logging `payload_lines`, with a Token-2022 CPI inside."""
    return [
        f"Program {PROGRAM} invoke [1]",
        "Program log: Instruction: ClaimCumulative",
        *payload_lines[:1],
        f"Program {TOKEN} invoke [2]",
        *cpi_lines,
        f"Program {TOKEN} success",
        *payload_lines[1:],
        f"Program {PROGRAM} consumed 31337 of 200000 compute units",
        f"Program {PROGRAM} success",
    ]


def staked(channel: bytes, user: int = 1, amount: int = 1_000) -> ChannelStaked:
    return ChannelStaked(
        user=bytes([user]) * 32,
        channel=channel,
        amount=amount,
        nft_mint=bytes([9]) * 32,
        lock_duration=100,
        boost_bps=12_500,
        timestamp=1_700_000_000,
    )


def claimed(channel: bytes) -> CumulativeRewardsClaimed:
    return CumulativeRewardsClaimed(
        channel=channel,
        claimer=bytes([2]) * 32,
        user_amount=2**64 - 1,
        creator_amount=0,
        cumulative_total=2**64 - 1,
        root_seq=7,
    )


def paused() -> ProtocolPaused:
    return ProtocolPaused(admin=bytes([3]) * 32, paused=True, mint=bytes([4]) * 32, timestamp=-5)


@pytest.fixture
def program_id() -> str:
    return PROGRAM
