"""core.channel and core.pda: subject ids and the §12 addresses."""

from __future__ import annotations

import pytest
from hypothesis import given
from solders.pubkey import Pubkey

from aop.core.channel import subject_id, validate_channel_name
from aop.core.errors import InvalidChannelNameError
from aop.core.pda import (
    associated_token_address,
    channel_config_address,
    channel_state_address,
    claim_state_address,
    claim_state_addresses,
    protocol_state_address,
)
from tests.unit.core import independent
from tests.unit.core.strategies import channel_names
from tests.unit.core.vectors import (
    CCM_MINT,
    CHANNEL,
    CHANNEL_CONFIG,
    CHANNEL_CONFIG_BUMP,
    CLAIM_STATE_WALLET0,
    PROGRAM_ID,
    PROTOCOL_STATE,
    PROTOCOL_STATE_BUMP,
    SUBJECT_ID,
    TREASURY,
    WALLET0,
)

PROGRAM = Pubkey.from_string(PROGRAM_ID)
MINT = Pubkey.from_string(CCM_MINT)


def test_subject_id_of_example_channel_matches_reference() -> None:
    assert subject_id(CHANNEL).hex() == SUBJECT_ID


def test_subject_id_ignores_ascii_case() -> None:
    assert subject_id("YOUTUBE_LOFI") == subject_id(CHANNEL)


@given(channel_names)
def test_subject_id_equals_keccak_of_prefix_and_ascii_lowercase(name: str) -> None:
    assert subject_id(name) == independent.subject(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", r"1-64 ASCII characters \(got '', 0 characters\)"),
        ("x" * 65, r"1-64 ASCII characters \(got 'x+', 65 characters\)"),
        ("caf\u00e9", r"1-64 ASCII characters \(got 'caf\u00e9', 4 characters\)"),
    ],
)
def test_validate_channel_name_rejects_names_the_program_rejects(name: str, message: str) -> None:
    with pytest.raises(InvalidChannelNameError, match=message):
        validate_channel_name(name)


def test_validate_channel_name_rejects_non_str() -> None:
    with pytest.raises(InvalidChannelNameError, match=r"must be a str \(got b'abc'\)"):
        validate_channel_name(b"abc")  # type: ignore[arg-type]


def test_validate_channel_name_accepts_64_ascii_characters() -> None:
    assert validate_channel_name("a" * 64) == "a" * 64


def test_protocol_state_address_matches_reference() -> None:
    pda = protocol_state_address(program_id=PROGRAM, mint=MINT)
    assert (str(pda.address), pda.bump) == (PROTOCOL_STATE, PROTOCOL_STATE_BUMP)


def test_channel_config_address_matches_reference() -> None:
    pda = channel_config_address(program_id=PROGRAM, mint=MINT, channel=CHANNEL)
    assert (str(pda.address), pda.bump) == (CHANNEL_CONFIG, CHANNEL_CONFIG_BUMP)


def test_claim_state_address_of_wallet0_matches_reference() -> None:
    pda = claim_state_address(
        program_id=PROGRAM,
        channel_config=Pubkey.from_string(CHANNEL_CONFIG),
        wallet=Pubkey.from_string(WALLET0),
    )
    assert str(pda.address) == CLAIM_STATE_WALLET0


def test_claim_state_addresses_of_records_are_each_wallets_address() -> None:
    """Wallets read out of 48-byte records (the reference's wallet0 among them) give the
    addresses one by one, in order."""
    config = Pubkey.from_string(CHANNEL_CONFIG)
    wallets = [bytes(Pubkey.from_string(WALLET0)), *(bytes([i]) * 32 for i in range(1, 6))]
    records = b"".join(wallet + bytes([i]) * 16 for i, wallet in enumerate(wallets))
    blob = claim_state_addresses(
        program_id=PROGRAM, channel_config=config, wallets=records, stride=48
    )
    expected = [
        Pubkey.find_program_address([b"claim_state_v2", bytes(config), wallet], PROGRAM)[0]
        for wallet in wallets
    ]
    assert [Pubkey(blob[at : at + 32]) for at in range(0, len(blob), 32)] == expected
    assert str(Pubkey(blob[:32])) == CLAIM_STATE_WALLET0


def test_treasury_is_token_2022_ata_of_protocol_state() -> None:
    owner = Pubkey.from_string(PROTOCOL_STATE)
    assert str(associated_token_address(owner=owner, mint=MINT)) == TREASURY


def test_channel_state_address_uses_channel_state_mint_and_subject_seeds() -> None:
    expected, bump = Pubkey.find_program_address(
        [b"channel_state", bytes(MINT), bytes.fromhex(SUBJECT_ID)], PROGRAM
    )
    assert channel_state_address(program_id=PROGRAM, mint=MINT, channel=CHANNEL) == (
        expected,
        bump,
    )


def test_addresses_depend_on_the_program_id() -> None:
    other = Pubkey.from_string("8yBJWQpCAHi1MKUiX9xPf5YqwXV1bat8r4oD85AyFpee")
    assert protocol_state_address(program_id=other, mint=MINT).address != Pubkey.from_string(
        PROTOCOL_STATE
    )
