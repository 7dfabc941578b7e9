"""Account data from a hostile or broken RPC: random bytes behind each account's own
discriminator, at each length its layout allows, raise only `AccountDecodeError`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aop.core.accounts import ChannelConfigV2, ChannelState, ProtocolState, account_discriminator
from aop.core.errors import AccountDecodeError

ACCOUNTS = {
    ProtocolState: (ProtocolState.GENESIS_LEN, ProtocolState.HEAD_LEN),
    ChannelConfigV2: (ChannelConfigV2.LEN, ChannelConfigV2.LEGACY_LEN),
    ChannelState: (ChannelState.LEN,),
}


@st.composite
def account_data(draw: st.DrawFn) -> tuple[type, bytes]:
    cls = draw(st.sampled_from(sorted(ACCOUNTS, key=lambda c: c.NAME)))
    length = draw(st.sampled_from(ACCOUNTS[cls]) | st.integers(0, 600))
    body = draw(st.binary(min_size=max(length - 8, 0), max_size=max(length - 8, 0)))
    return cls, account_discriminator(cls.NAME) + body


@given(account_data())
def test_random_account_data_raises_only_account_decode_error(case: tuple[type, bytes]) -> None:
    cls, data = case
    try:
        account = cls.decode(data)
    except AccountDecodeError:
        return
    assert isinstance(account, cls)
    assert len(data) in ACCOUNTS[cls]  # (padding is not kept: no byte-exact round trip)
