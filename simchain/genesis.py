"""Accounts written directly, outside transactions: the chain's genesis and test set-up.

A real cluster gets these from `initialize_mint`, `initialize_channel_cumulative` and
`initialize_stake_pool` transactions run by an operator long before the pipeline starts;
tests and demos need them in one call, so the simulator writes the same bytes directly.
"""

from __future__ import annotations

import dataclasses

from solders.pubkey import Pubkey

from aop.core.accounts import ChannelConfigV2, GlobalRootConfig, ProtocolState, RootEntry
from aop.core.channel import subject_id
from aop.core.keccak import keccak256
from aop.core.pda import (
    channel_config_address,
    global_root_config_address,
    protocol_state_address,
)
from aop.core.program_ids import SYSTEM_PROGRAM_ID, TOKEN_2022_PROGRAM_ID
from aop.simchain._pda import find_ata, find_pda
from aop.simchain.ledger import Account, AccountStore
from aop.simchain.program.state import ChannelStakePool
from aop.simchain.token import (
    DECIMALS,
    MINT_LEN,
    TOKEN_ACCOUNT_LEN,
    encode_mint,
    encode_token_account,
    rent_exempt_lamports,
)

__all__ = ["Genesis", "stake_pool_address", "stake_vault_address"]

_ZERO = bytes(32)
_EMPTY_ROOT = RootEntry(0, _ZERO, _ZERO, 0)


def stake_pool_address(program_id: Pubkey, channel_config: Pubkey) -> Pubkey:
    return find_pda([b"channel_pool", bytes(channel_config)], program_id)[0]


def stake_vault_address(program_id: Pubkey, stake_pool: Pubkey) -> Pubkey:
    return find_pda([b"stake_vault", bytes(stake_pool)], program_id)[0]


class Genesis:
    """Writes accounts into `store` as of a slot (the pending one while the chain runs)."""

    def __init__(self, store: AccountStore, program_id: Pubkey) -> None:
        self.store = store
        self.program_id = program_id

    def _put(self, key: Pubkey, account: Account, slot: int) -> None:
        self.store.put(key, account, slot)

    def fund(self, key: Pubkey, lamports: int, slot: int) -> None:
        """Give a system account `lamports` more."""
        account = self.store.get(key)
        if account is None:
            self._put(key, Account(lamports, b"", SYSTEM_PROGRAM_ID), slot)
        else:
            self._put(
                key,
                dataclasses.replace(account, lamports=account.lamports + lamports),
                slot,
            )

    def token_account(self, owner: Pubkey, mint: Pubkey, amount: int, slot: int) -> Pubkey:
        """Create or overwrite `owner`'s ATA for `mint` holding `amount`."""
        ata = find_ata(owner, mint)
        data = encode_token_account(mint, owner, amount)
        self._put(
            ata, Account(rent_exempt_lamports(TOKEN_ACCOUNT_LEN), data, TOKEN_2022_PROGRAM_ID), slot
        )
        return ata

    def protocol(
        self,
        *,
        mint: Pubkey,
        admin: Pubkey,
        publisher: Pubkey,
        paused: bool,
        treasury_balance: int,
        slot: int,
    ) -> Pubkey:
        """The mint, its ProtocolState (Genesis layout, treasury = the PDA) and treasury ATA."""
        if self.store.get(mint) is None:
            data = encode_mint(authority=None, supply=10**18, decimals=DECIMALS)
            self._put(
                mint, Account(rent_exempt_lamports(MINT_LEN), data, TOKEN_2022_PROGRAM_ID), slot
            )
        pda = protocol_state_address(program_id=self.program_id, mint=mint)
        state = ProtocolState(
            is_initialized=True,
            version=1,
            admin=bytes(admin),
            publisher=bytes(publisher),
            treasury=bytes(pda.address),
            mint=bytes(mint),
            paused=paused,
            require_receipt=False,
            bump=pda.bump,
        )
        self._put(
            pda.address,
            Account(
                rent_exempt_lamports(ProtocolState.GENESIS_LEN), state.encode(), self.program_id
            ),
            slot,
        )
        treasury = find_ata(pda.address, mint)
        if self.store.get(treasury) is None:
            self.token_account(pda.address, mint, treasury_balance, slot)
        return pda.address

    def global_root(self, *, mint: Pubkey, latest_root_seq: int, slot: int) -> Pubkey:
        """The mint's GlobalRootConfig at `latest_root_seq`, its ring holding the last 4
        root_seqs with made-up roots (keccak of the seq): a live publisher's history."""
        pda = global_root_config_address(program_id=self.program_id, mint=mint)
        entries = [_EMPTY_ROOT] * 4
        for seq in range(max(1, latest_root_seq - 3), latest_root_seq + 1):
            made_up = keccak256(b"sim:global_root:", seq.to_bytes(8, "little"))
            entries[seq % 4] = RootEntry(seq, made_up, made_up, slot)
        config = GlobalRootConfig(
            version=1,
            bump=pda.bump,
            mint=bytes(mint),
            latest_root_seq=latest_root_seq,
            roots=tuple(entries),
        )
        self._put(
            pda.address,
            Account(rent_exempt_lamports(GlobalRootConfig.LEN), config.encode(), self.program_id),
            slot,
        )
        return pda.address

    def channel(
        self,
        *,
        mint: Pubkey,
        name: str,
        authority: Pubkey,
        creator_wallet: Pubkey | None = None,
        creator_fee_bps: int = 0,
        latest_root_seq: int = 0,
        cutover_epoch: int = 0,
        slot: int,
    ) -> Pubkey:
        """A ChannelConfigV2 (482 bytes, no roots) plus its stake pool and vault.

        The creator wallet defaults to `authority`.
        """
        pda = channel_config_address(program_id=self.program_id, mint=mint, channel=name)
        config = ChannelConfigV2(
            version=1,
            bump=pda.bump,
            mint=bytes(mint),
            subject=subject_id(name),
            authority=bytes(authority),
            latest_root_seq=latest_root_seq,
            cutover_epoch=cutover_epoch,
            creator_wallet=bytes(creator_wallet if creator_wallet is not None else authority),
            creator_fee_bps=creator_fee_bps,
            roots=(_EMPTY_ROOT,) * 4,
        )
        self._put(
            pda.address,
            Account(rent_exempt_lamports(ChannelConfigV2.LEN), config.encode(), self.program_id),
            slot,
        )
        pool = stake_pool_address(self.program_id, pda.address)
        if self.store.get(pool) is None:
            vault = stake_vault_address(self.program_id, pool)
            pool_bump = find_pda([b"channel_pool", bytes(pda.address)], self.program_id)[1]
            state = ChannelStakePool(
                pool_bump, bytes(pda.address), bytes(mint), bytes(vault), 0, 0, 0
            )
            self._put(
                pool,
                Account(
                    rent_exempt_lamports(ChannelStakePool.LEN), state.encode(), self.program_id
                ),
                slot,
            )
            self._put(
                vault,
                Account(
                    rent_exempt_lamports(TOKEN_ACCOUNT_LEN),
                    encode_token_account(mint, pool, 0),
                    TOKEN_2022_PROGRAM_ID,
                ),
                slot,
            )
        return pda.address
