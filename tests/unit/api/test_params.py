"""Path and query parameters: typed values, or a 400 naming the parameter."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from aop.api.errors import BadRequestError
from aop.api.params import (
    I64_MAX,
    parse_channel,
    parse_hex32,
    parse_limit,
    parse_seq,
    parse_wallet,
)

WALLET = "4oPCg5ZkXHG8Ktce8Z4W5aUZ3c5NSsYaTSCmec38WDD1"


def test_wallet_parses_to_its_32_bytes() -> None:
    assert parse_wallet(WALLET) == bytes(Pubkey.from_string(WALLET))


@pytest.mark.parametrize(
    "value", ["", "abc", "0" * 44, "z" * 44, WALLET + "1", "é" * 40, WALLET[:-1] + "0"]
)
def test_malformed_wallet_is_bad_wallet(value: str) -> None:
    with pytest.raises(BadRequestError, match="wallet must be a base58 public key") as info:
        parse_wallet(value)
    assert info.value.code == "bad_wallet"
    assert info.value.status == 400


def test_channel_name_is_matched_lower_cased() -> None:
    ref = parse_channel("YouTube_Lofi")
    assert ref.name_key == "youtube_lofi"
    assert ref.config is None


def test_channel_that_is_a_pubkey_also_names_a_config() -> None:
    ref = parse_channel(WALLET)
    assert ref.config == WALLET
    assert ref.name_key == WALLET.lower()


@pytest.mark.parametrize("value", ["", "x" * 65, "caf\u00e9"])
def test_channel_outside_1_64_ascii_is_bad_channel(value: str) -> None:
    with pytest.raises(BadRequestError, match="channel must be a name of 1-64 ASCII") as info:
        parse_channel(value)
    assert info.value.code == "bad_channel"


def test_seq_accepts_the_bigint_range_only() -> None:
    assert parse_seq("0") == 0
    assert parse_seq(str(I64_MAX)) == I64_MAX
    for bad in (str(I64_MAX + 1), "-1", "+1", "1.0", " 1", "\uff11", "1" * 21):
        with pytest.raises(BadRequestError) as info:
            parse_seq(bad)
        assert info.value.code == "bad_root_seq"


def test_limit_defaults_and_bounds() -> None:
    assert parse_limit({}, default=50) == 50
    assert parse_limit({"limit": "1000"}, default=50) == 1000
    with pytest.raises(BadRequestError, match=r"limit must be an integer in 1\.\.1000 \(got '0'\)"):
        parse_limit({"limit": "0"}, default=50)


def test_hex32_needs_exactly_64_hex_digits() -> None:
    assert parse_hex32("AB" * 32, code="bad_hex", what="root") == b"\xab" * 32
    for bad in ("ab" * 31, "0x" + "ab" * 31, "gg" * 32, 5, None):
        with pytest.raises(BadRequestError, match="root must be 64 hex digits") as info:
            parse_hex32(bad, code="bad_hex", what="root")
        assert info.value.code == "bad_hex"


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(BadRequestError) as info:
        parse_wallet("x" * 10_000)
    assert len(info.value.message) < 200
