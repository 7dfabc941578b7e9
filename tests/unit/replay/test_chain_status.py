"""`aop chain status`'s verdicts from root-account data (pure), and the settings it suggests."""

from __future__ import annotations

import pytest

from aop.core.accounts import ChannelState, GlobalRootConfig, RootEntry
from aop.replay.chain_status import (
    AccountStatus,
    OnChain,
    Projected,
    judge_status,
    read_on_chain,
    suggested_settings,
)

OURS = bytes([1]) * 32
THEIRS = bytes([2]) * 32
HASH = bytes([3]) * 32
EMPTY = RootEntry(0, bytes(32), bytes(32), 0)
HOLDS = "the account holds our newest root_seq"
TO_PUBLISH = "root(s) to publish (latest_root_seq"
PAST = "is past our newest root_seq"


def global_config(latest: int, held: dict[int, bytes]) -> bytes:
    entries = [EMPTY] * 4
    for seq, root in held.items():
        entries[seq % 4] = RootEntry(seq, root, HASH, 100 + seq)
    return GlobalRootConfig(1, 255, bytes(32), latest, tuple(entries)).encode()


def projected(seq: int, root: bytes = OURS, published: int | None = None) -> Projected:
    return Projected(seq, 7, root, HASH, published)


@pytest.mark.parametrize(
    ("latest", "held", "ours", "verdict", "detail"),
    [
        (
            1805,
            {1804: THEIRS, 1805: OURS},
            1805,
            "in_step",
            "the account holds our newest root_seq 1805",
        ),
        (
            1805,
            {1805: THEIRS},
            1807,
            "behind",
            "2 root(s) to publish (latest_root_seq 1805, ours 1807)",
        ),
        (
            1805,
            {1805: THEIRS},
            1806,
            "behind",
            "1 root(s) to publish (latest_root_seq 1805, ours 1806)",
        ),
        (
            1810,
            {1810: THEIRS},
            1806,
            "ahead",
            "latest_root_seq 1810 is past our newest root_seq 1806",
        ),
        (
            1808,
            {1806: OURS, 1808: THEIRS},
            1806,
            "ahead",
            "latest_root_seq 1808 is past our newest root_seq 1806",
        ),
    ],
)
def test_verdicts_of_a_global_root_config(
    latest: int, held: dict[int, bytes], ours: int, verdict: str, detail: str
) -> None:
    data = global_config(latest, held)
    chain = read_on_chain("global-v5", data)
    assert (chain.exists, chain.latest, chain.held) == (True, latest, tuple(sorted(held)))
    assert judge_status("global-v5", chain, projected(ours), data) == (verdict, detail)


def test_another_root_for_our_sequence_is_other_root() -> None:
    data = global_config(1806, {1806: THEIRS})
    verdict, detail = judge_status(
        "global-v5", read_on_chain("global-v5", data), projected(1806), data
    )
    assert verdict == "other_root"
    held, ours = THEIRS.hex()[:16], OURS.hex()[:16]
    assert detail == f"the account holds root_seq 1806 with root {held}…, ours is {ours}…"


def test_no_account_no_roots_and_undecodable() -> None:
    absent = read_on_chain("global-v5", None)
    assert absent == OnChain(False)
    assert judge_status("global-v5", absent, None, None)[0] == "no_account"
    assert judge_status("global-v5", absent, projected(1), None)[0] == "no_account"
    data = global_config(1803, {1803: THEIRS})
    assert judge_status("global-v5", read_on_chain("global-v5", data), None, data) == (
        "no_roots",
        "no root projected; the account's latest_root_seq is 1803",
    )
    garbage = b"\x00" * 20
    broken = read_on_chain("global-v5", garbage)
    assert broken.exists and broken.error
    assert judge_status("global-v5", broken, None, garbage)[0] == "undecodable"


def test_ring_v0_without_a_channel_state_is_behind_not_missing() -> None:
    """The program creates a ChannelState on the first publish: no account is normal."""
    chain = read_on_chain("ring-v0", None)
    assert judge_status("ring-v0", chain, None, None)[0] == "no_roots"
    assert judge_status("ring-v0", chain, projected(3), None) == (
        "behind",
        "no ChannelState yet; ours is epoch 7",
    )
    assert ChannelState  # the decoder read_on_chain uses for ring-v0


def test_suggested_settings_continue_each_sequence() -> None:
    """latest_root_seq + 1: the global row's, and each channel whose account holds roots."""

    def row(name: str, scope: str, fmt: str, chain: OnChain) -> AccountStatus:
        return AccountStatus(name, scope, fmt, "addr", chain, None, "no_roots", "")

    statuses = [
        row("global", "global", "global-v5", OnChain(True, 1803)),
        row("alpha", "channel", "cumulative-v2", OnChain(True, 7)),
        row("fresh", "channel", "cumulative-v2", OnChain(True, 0)),
        row("gone", "channel", "cumulative-v2", OnChain(False)),
        row("ring", "channel", "ring-v0", OnChain(True, 40)),
    ]
    assert suggested_settings(statuses) == {
        "AOP_GLOBAL_FIRST_ROOT_SEQ": 1804,
        "AOP_FIRST_ROOT_SEQ": {"alpha": 8},
    }
    assert suggested_settings(statuses[1:]) == {"AOP_FIRST_ROOT_SEQ": {"alpha": 8}}
