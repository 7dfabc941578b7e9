"""The global instructions of the program as deployed today (reference §G3), rule for rule.

`publish_global_root`, `claim_global` (V4 leaf), `claim_global_v2` (V5 leaf) and the two
sponsored variants, which the `deployed` profile routes. Each validates its accounts as
Anchor does for `PublishGlobalRoot`, `ClaimGlobal` and `ClaimGlobalSponsored` (§G3.1), then
runs the handler's checks of §G3.2 in order with the deployed program's error numbers
(`program.errors.DEPLOYED`: 6004 InvalidProof, 6007 RootTooOldOrMissing, ...), and writes
accounts with the `core.accounts` encoders, so their bytes are what the program stores.

Claims, in handler order: not paused (6002); the mint account is the protocol's (6016); at
most 32 proof nodes (6005); the config's version 1 (6009) and mint (6016); the ring entry
`root_seq % 4` holds `root_seq` (6007), so any of the last 4 seqs is claimable; V5 adds
base + bonus checked (6041); the leaf verifies (6004); the ClaimStateGlobal
`["claim_global", mint, wallet]` is initialised or must match (6008); a total at or below the
claimed total is an Ok no-op (no transfer, no event); else the delta moves from the treasury
(the ProtocolState PDA's ATA) to the claimer's ATA (created if missing), the claim state
takes the total and root_seq, and `GlobalRewardsClaimed` is emitted, for V4 and V5 alike.

Where this departs from the deployed program:
* a token program other than Token-2022 fails with InvalidTokenProgram (6019) before the
  token accounts are read (the 385f929 struct constraint; HEAD takes a `TokenInterface`,
  which would also admit SPL Token, that cannot own CCM's Token-2022 accounts);
* `transfer_checked` moves exactly the delta: the CCM transfer fee (50 bps) is not modelled
  (`simchain.token`), so a claimer's balance rises by the whole delta;
* remaining accounts (transfer-fee extras) are accepted and ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NoReturn

from solders.pubkey import Pubkey

from aop.core.accounts import ClaimStateGlobal, GlobalRootConfig, ProtocolState, RootEntry
from aop.core.borsh import Reader
from aop.core.claims.global_roots import global_v4_leaf, global_v5_leaf
from aop.core.events import GlobalRewardsClaimed, GlobalRootPublished
from aop.core.merkle import MAX_PROOF_LEN, verify_proof
from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from aop.core.validation import U64_MAX
from aop.simchain.invoke import InvokeContext
from aop.simchain.program.anchor import (
    account_key,
    decode_args,
    fail,
    load,
    require,
    require_ata,
    require_pda,
    require_signer,
    require_writable,
)
from aop.simchain.program.common import init_program_account, is_publish_authority, store
from aop.simchain.program.errors import DEPLOYED
from aop.simchain.token import MINT_LEN, create_ata, transfer_checked

__all__ = [
    "PROTOCOL_STATE_SEED",
    "claim_global",
    "claim_global_sponsored",
    "claim_global_sponsored_v2",
    "claim_global_v2",
    "publish_global_root",
]

#: the deployed program's singleton ProtocolState (reference §G2.3).
PROTOCOL_STATE_SEED = b"protocol_state"
_ZERO = bytes(32)
#: offset of `decimals` in the SPL mint layout (after mint_authority and supply).
_DECIMALS_AT = 44


def _require(ctx: InvokeContext, condition: bool, name: str) -> None:
    require(ctx, condition, name, errors=DEPLOYED)


def _fail(ctx: InvokeContext, name: str, *, account: str | None = None) -> NoReturn:
    fail(ctx, name, account=account, errors=DEPLOYED)


def _protocol(ctx: InvokeContext, index: int) -> ProtocolState:
    """`protocol_state`: the HEAD struct (173 bytes), seeds ["protocol_state"]."""
    state = load(ctx, index, "protocol_state", ProtocolState.decode)
    if state.oracle_authority is None:  # the 141-byte Genesis layout is not this struct
        _fail(ctx, "AccountDidNotDeserialize", account="protocol_state")
    require_pda(ctx, index, "protocol_state", [PROTOCOL_STATE_SEED])
    return state


def _config(ctx: InvokeContext, index: int, protocol: ProtocolState) -> GlobalRootConfig:
    """`global_root_config`: seeds ["global_root", protocol_state.mint]."""
    config = load(ctx, index, "global_root_config", GlobalRootConfig.decode)
    require_pda(ctx, index, "global_root_config", [b"global_root", protocol.mint])
    return config


def publish_global_root(ctx: InvokeContext) -> None:
    """args (root_seq u64, root [32], dataset_hash [32]); accounts payer (signer, writable),
    protocol_state, global_root_config (writable). Emits GlobalRootPublished."""
    root_seq, root, dataset_hash = decode_args(ctx, lambda r: (r.u64(), r.pubkey(), r.pubkey()))
    payer = require_signer(ctx, 0, "payer")
    require_writable(ctx, 0, "payer")
    protocol = _protocol(ctx, 1)
    config = _config(ctx, 2, protocol)
    config_key = require_writable(ctx, 2, "global_root_config")
    signer = bytes(payer)
    # Handler, in the order of reference §G3.2.
    _require(ctx, is_publish_authority(protocol, signer), "Unauthorized")
    _require(ctx, not protocol.paused or signer == protocol.admin, "ProtocolPaused")
    _require(ctx, config.version == 1, "InvalidChannelState")
    _require(ctx, config.mint == protocol.mint, "InvalidMint")
    _require(ctx, root_seq == config.latest_root_seq + 1, "InvalidRootSeq")
    roots = list(config.roots)
    roots[root_seq % len(roots)] = RootEntry(root_seq, root, dataset_hash, ctx.slot)
    updated = dataclasses.replace(config, roots=tuple(roots), latest_root_seq=root_seq)
    store(ctx, config_key, updated.encode())
    event = GlobalRootPublished(
        mint=protocol.mint,
        root_seq=root_seq,
        root=root,
        dataset_hash=dataset_hash,
        publisher=signer,
        slot=ctx.slot,
    )
    ctx.emit(event.NAME, event.encode())
    ctx.consume(2_300)


def _mint_decimals(ctx: InvokeContext, index: int) -> tuple[Pubkey, int]:
    """`mint: InterfaceAccount<Mint>`: a Token-2022 mint; (its key, its decimals)."""
    key = account_key(ctx, index)
    account = ctx.accounts.get(key)
    if account is None or len(account.data) < MINT_LEN:
        _fail(ctx, "AccountNotInitialized", account="mint")
    if account.owner != TOKEN_2022_PROGRAM_ID:
        _fail(ctx, "AccountOwnedByWrongProgram", account="mint")
    return key, account.data[_DECIMALS_AT]


def _token_account(
    ctx: InvokeContext, index: int, name: str, *, owner: Pubkey, mint: Pubkey
) -> Pubkey:
    """A mutable `associated_token::mint = mint, associated_token::authority = owner`."""
    key = require_ata(ctx, index, name, owner=owner, mint=mint)
    require_writable(ctx, index, name)
    return key


def _program(ctx: InvokeContext, index: int, name: str, expected: Pubkey) -> None:
    """`Program<'info, T>`: the account must be that program (InvalidProgramId otherwise)."""
    if account_key(ctx, index) != expected:
        _fail(ctx, "InvalidProgramId", account=name)


_Args = tuple[int, int, int, list[bytes]]


def _v4_args(r: Reader) -> _Args:
    """(root_seq, cumulative_total, 0, proof): V4 carries the total itself."""
    return r.u64(), r.u64(), 0, r.vec_bytes32()


def _v5_args(r: Reader) -> _Args:
    """(root_seq, base_yield, attention_bonus, proof)."""
    return r.u64(), r.u64(), r.u64(), r.vec_bytes32()


def _claim(ctx: InvokeContext, *, sponsored: bool, v5: bool) -> None:
    """The shared body of the four claims (see the module docstring for the order).

    Accounts: ClaimGlobal (claimer signs and pays) or, `sponsored`, ClaimGlobalSponsored
    (payer signs and pays, claimer is an unchecked account), then the same nine accounts.
    """
    read: Callable[[Reader], _Args] = _v5_args if v5 else _v4_args
    root_seq, amount, bonus, proof = decode_args(ctx, read)
    at = 1 if sponsored else 0
    payer = require_signer(ctx, 0, "payer" if sponsored else "claimer")
    require_writable(ctx, 0, "payer" if sponsored else "claimer")
    claimer = account_key(ctx, at)
    protocol = _protocol(ctx, at + 1)
    protocol_key = require_writable(ctx, at + 1, "protocol_state")
    config = _config(ctx, at + 2, protocol)
    seeds = [b"claim_global", protocol.mint, bytes(claimer)]
    claim_bump = require_pda(ctx, at + 3, "claim_state", seeds)
    claim_key = require_writable(ctx, at + 3, "claim_state")
    if account_key(ctx, at + 7) != TOKEN_2022_PROGRAM_ID:
        _fail(ctx, "InvalidTokenProgram")
    mint, decimals = _mint_decimals(ctx, at + 4)
    treasury = _token_account(ctx, at + 5, "treasury_ata", owner=protocol_key, mint=mint)
    if not ctx.accounts.exists(treasury):
        _fail(ctx, "AccountNotInitialized", account="treasury_ata")
    claimer_ata = _token_account(ctx, at + 6, "claimer_ata", owner=claimer, mint=mint)
    _program(ctx, at + 8, "associated_token_program", ASSOCIATED_TOKEN_PROGRAM_ID)
    _program(ctx, at + 9, "system_program", SYSTEM_PROGRAM_ID)
    # Anchor's init_if_needed accounts are created while the accounts are validated, before
    # the handler (Default fields; a failing handler rolls them back with the transaction).
    if not ctx.accounts.exists(claim_key):
        blank = ClaimStateGlobal(0, 0, _ZERO, _ZERO, 0, 0)
        init_program_account(ctx, payer=payer, new=claim_key, data=blank.encode())
    state = load(ctx, at + 3, "claim_state", ClaimStateGlobal.decode)
    create_ata(ctx, payer=payer, owner=claimer, mint=mint)

    # Handler, in the order of reference §G3.2.
    _require(ctx, not protocol.paused, "ProtocolPaused")
    _require(ctx, bytes(mint) == protocol.mint, "InvalidMint")
    _require(ctx, len(proof) <= MAX_PROOF_LEN, "InvalidProofLength")
    _require(ctx, config.version == 1, "InvalidChannelState")
    _require(ctx, config.mint == protocol.mint, "InvalidMint")
    entry = config.roots[root_seq % len(config.roots)]
    _require(ctx, entry.seq == root_seq, "RootTooOldOrMissing")
    wallet = bytes(claimer)
    if v5:
        total = amount + bonus
        _require(ctx, total <= U64_MAX, "MathOverflow")
        leaf = global_v5_leaf(
            mint=Pubkey(protocol.mint),
            root_seq=root_seq,
            wallet=wallet,
            base_yield=amount,
            attention_bonus=bonus,
        )
    else:
        total = amount
        leaf = global_v4_leaf(
            mint=Pubkey(protocol.mint), root_seq=root_seq, wallet=wallet, cumulative_total=total
        )
    ctx.consume(1_800 * (len(proof) + 1))
    _require(ctx, verify_proof(leaf, proof, entry.root), "InvalidProof")
    if state.version == 0:
        state = ClaimStateGlobal(1, claim_bump, protocol.mint, wallet, 0, 0)
    else:
        _require(ctx, state.mint == protocol.mint and state.wallet == wallet, "InvalidClaimState")
    if total <= state.claimed_total:
        store(ctx, claim_key, state.encode())  # an initialisation above still persists
        return
    delta = total - state.claimed_total
    transfer_checked(
        ctx,
        source=treasury,
        mint=mint,
        destination=claimer_ata,
        authority=protocol_key,
        amount=delta,
        decimals=decimals,
    )
    claimed = dataclasses.replace(state, claimed_total=total, last_claim_seq=root_seq)
    store(ctx, claim_key, claimed.encode())
    event = GlobalRewardsClaimed(
        claimer=wallet, amount=delta, cumulative_total=total, root_seq=root_seq
    )
    ctx.emit(event.NAME, event.encode())


def claim_global(ctx: InvokeContext) -> None:
    """args (root_seq, cumulative_total, proof); the V4 leaf; the claimer signs and pays."""
    _claim(ctx, sponsored=False, v5=False)


def claim_global_sponsored(ctx: InvokeContext) -> None:
    """`claim_global` with a relayer paying (account 0) for an unchecked claimer (account 1)."""
    _claim(ctx, sponsored=True, v5=False)


def claim_global_v2(ctx: InvokeContext) -> None:
    """args (root_seq, base_yield, attention_bonus, proof); the V5 leaf; the claimer signs."""
    _claim(ctx, sponsored=False, v5=True)


def claim_global_sponsored_v2(ctx: InvokeContext) -> None:
    """`claim_global_v2` with a relayer paying (account 0) for an unchecked claimer (account 1)."""
    _claim(ctx, sponsored=True, v5=True)
