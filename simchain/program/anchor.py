"""Anchor's runtime behaviour around a handler: account checks, argument decoding, errors.

An Anchor program validates its `#[derive(Accounts)]` struct field by field (owner and
discriminator, then `mut`, `seeds`, `address` and custom constraints) before the handler
runs, and reports a failure with one `Program log: AnchorError ...` line. These helpers do
the same checks and write the same lines; each raises `InstructionFailedError` with the error's
number as the custom program error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import NoReturn, TypeVar, cast

from solders.pubkey import Pubkey

from aop.core.borsh import Reader
from aop.core.errors import AccountDecodeError, BorshDecodeError
from aop.simchain._pda import find_ata, find_pda
from aop.simchain.errors import InstructionFailedError
from aop.simchain.invoke import InvokeContext
from aop.simchain.program.errors import ANCHOR, ORACLE, ErrorCode

__all__ = [
    "account_key",
    "decode_args",
    "fail",
    "load",
    "require",
    "require_address",
    "require_ata",
    "require_pda",
    "require_signer",
    "require_writable",
]

T = TypeVar("T")


def _code(name: str, errors: Mapping[str, ErrorCode]) -> ErrorCode:
    return errors.get(name) or ANCHOR[name]


def fail(
    ctx: InvokeContext,
    name: str,
    *,
    account: str | None = None,
    errors: Mapping[str, ErrorCode] = ORACLE,
) -> NoReturn:
    """Log Anchor's error line for error `name` and fail the instruction with its number.

    `errors` is the program version's table of custom errors (`program.errors`; the
    framework's come from `ANCHOR`)."""
    code = _code(name, errors)
    tail = f"Error Code: {code.name}. Error Number: {code.number}. Error Message: {code.message}."
    if account is not None:
        ctx.log(f"AnchorError caused by account: {account}. {tail}")
    elif code.source:
        ctx.log(f"AnchorError thrown in {code.source}. {tail}")
    else:
        ctx.log(f"AnchorError occurred. {tail}")
    raise InstructionFailedError.custom(code.number)


def require(
    ctx: InvokeContext, condition: bool, name: str, *, errors: Mapping[str, ErrorCode] = ORACLE
) -> None:
    """`require!(condition, OracleError::<name>)`."""
    if not condition:
        fail(ctx, name, errors=errors)


def account_key(ctx: InvokeContext, index: int) -> Pubkey:
    """The key of account `index`; fails with AccountNotEnoughKeys if it was not passed."""
    if index >= len(ctx.keys):
        fail(ctx, "AccountNotEnoughKeys")
    return ctx.keys[index]


def require_signer(ctx: InvokeContext, index: int, name: str) -> Pubkey:
    key = account_key(ctx, index)
    if not ctx.is_signer(index):
        fail(ctx, "AccountNotSigner", account=name)
    return key


def require_writable(ctx: InvokeContext, index: int, name: str) -> Pubkey:
    key = account_key(ctx, index)
    if not ctx.is_writable(index):
        fail(ctx, "ConstraintMut", account=name)
    return key


def _left_right(ctx: InvokeContext, left: Pubkey, right: Pubkey) -> None:
    ctx.log("Left:")
    ctx.log(str(left))
    ctx.log("Right:")
    ctx.log(str(right))


def require_address(
    ctx: InvokeContext, index: int, name: str, expected: Pubkey, error: str = "ConstraintAddress"
) -> Pubkey:
    """`#[account(address = expected)]` (or `constraint = ... @ error`)."""
    key = account_key(ctx, index)
    if key != expected:
        if error == "ConstraintAddress":
            ctx.log(
                f"AnchorError caused by account: {name}. Error Code: ConstraintAddress. "
                f"Error Number: 2012. Error Message: An address constraint was violated."
            )
            _left_right(ctx, key, expected)
            raise InstructionFailedError.custom(2012)
        fail(ctx, error, account=name)
    return key


def require_ata(
    ctx: InvokeContext, index: int, name: str, *, owner: Pubkey, mint: Pubkey
) -> Pubkey:
    """`associated_token::authority = owner, associated_token::mint = mint` (Token-2022)."""
    key = account_key(ctx, index)
    expected = find_ata(owner, mint)
    if key != expected:
        fail(ctx, "ConstraintAssociated", account=name)
    return key


def require_pda(ctx: InvokeContext, index: int, name: str, seeds: list[bytes]) -> int:
    """`#[account(seeds = [...], bump)]`: the key must be the PDA; returns its bump."""
    key = account_key(ctx, index)
    expected, bump = find_pda(seeds, ctx.program_id)
    if key != expected:
        ctx.log(
            f"AnchorError caused by account: {name}. Error Code: ConstraintSeeds. "
            f"Error Number: 2006. Error Message: A seeds constraint was violated."
        )
        _left_right(ctx, key, expected)
        raise InstructionFailedError.custom(2006)
    return bump


def load(
    ctx: InvokeContext,
    index: int,
    name: str,
    decode: Callable[[bytes], T],
    *,
    owner: Pubkey | None = None,
) -> T:
    """`Account<'info, T>`: the account must exist, be owned by `owner` and decode as T."""
    key = account_key(ctx, index)
    account = ctx.accounts.get(key)
    if account is None or (account.lamports == 0 and not account.data):
        fail(ctx, "AccountNotInitialized", account=name)
    expected_owner = owner if owner is not None else ctx.program_id
    if account.owner != expected_owner:
        ctx.log(
            f"AnchorError caused by account: {name}. Error Code: AccountOwnedByWrongProgram. "
            "Error Number: 3007. Error Message: The given account is owned by a different "
            "program than expected."
        )
        _left_right(ctx, account.owner, expected_owner)
        raise InstructionFailedError.custom(3007)
    try:
        return cast(T, _decoded(decode, account.data))  # lru_cache returns Any
    except (AccountDecodeError, BorshDecodeError, ValueError):
        fail(ctx, "AccountDiscriminatorMismatch", account=name)


@lru_cache(maxsize=4096)
def _decoded(decode: Callable[[bytes], T], data: bytes) -> T:
    """`decode(data)`, remembered: the protocol state and channel configs are read by every
    stake and unstake and rarely change. The decoded accounts are frozen, so sharing is safe."""
    return decode(data)


def decode_args(ctx: InvokeContext, read: Callable[[Reader], T]) -> T:
    """Borsh-decode the instruction arguments after the 8-byte discriminator.

    Trailing bytes are allowed, as Anchor's `AnchorDeserialize` allows them.
    """
    try:
        return read(Reader(ctx.data, offset=8))
    except (BorshDecodeError, ValueError):
        fail(ctx, "InstructionDidNotDeserialize")
