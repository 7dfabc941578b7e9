"""Just enough of Token-2022, the associated-token program and System for the program's CPIs.

Token accounts are stored with the real 165-byte base layout (mint, owner, amount, ...), so
`getAccountInfo` / `getTokenAccountBalance` on a claimer's ATA show what a claim paid. There
is no real token program: the program rules call these functions, which check balances,
move amounts and write the CPI frames (`Program Tokenz... invoke [2]` ... `success`) and
inner instructions a real node would show. Transfer fees and hooks are not modelled.
"""

from __future__ import annotations

import base64
import struct

from solders.pubkey import Pubkey

from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from aop.simchain._pda import find_ata
from aop.simchain.errors import InstructionFailedError
from aop.simchain.invoke import InvokeContext, Overlay
from aop.simchain.ledger import Account

__all__ = [
    "DECIMALS",
    "MINT_LEN",
    "TOKEN_ACCOUNT_LEN",
    "burn",
    "create_account",
    "create_ata",
    "decode_token_account",
    "encode_mint",
    "encode_token_account",
    "rent_exempt_lamports",
    "token_balance",
    "transfer_checked",
]

DECIMALS = 9
TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82
_NFT_MINT_LEN = 170  # base mint, padding to 165, account type, NonTransferable TLV
_TOKEN_ERROR_INSUFFICIENT_FUNDS = 1
_TOKEN_ERROR_UNINITIALIZED = 0xD  # UninitializedState


def rent_exempt_lamports(size: int) -> int:
    """getMinimumBalanceForRentExemption: (128 + size) bytes x 3480 lamports x 2 years."""
    return (128 + size) * 3480 * 2


def encode_token_account(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    """The 165-byte SPL token account layout, initialized, no delegate/close authority."""
    return (
        bytes(mint)
        + bytes(owner)
        + struct.pack("<Q", amount)
        + bytes(36)  # delegate: COption<Pubkey> = None
        + b"\x01"  # state: Initialized
        + bytes(12)  # is_native: COption<u64> = None
        + bytes(8)  # delegated_amount
        + bytes(36)  # close_authority: COption<Pubkey> = None
    )


def decode_token_account(data: bytes) -> tuple[Pubkey, Pubkey, int]:
    """(mint, owner, amount) of a token account."""
    return Pubkey(data[0:32]), Pubkey(data[32:64]), struct.unpack_from("<Q", data, 64)[0]


def encode_mint(
    *, authority: Pubkey | None, supply: int, decimals: int, freeze: Pubkey | None = None
) -> bytes:
    """The 82-byte SPL mint layout."""

    def coption(key: Pubkey | None) -> bytes:
        return b"\x01\0\0\0" + bytes(key) if key is not None else bytes(36)

    return coption(authority) + struct.pack("<Q", supply) + bytes([decimals, 1]) + coption(freeze)


def token_balance(accounts: Overlay, address: Pubkey) -> int | None:
    """The amount in token account `address`, or None if it is not a token account."""
    account = accounts.get(address)
    if account is None or account.owner != TOKEN_2022_PROGRAM_ID or len(account.data) < 165:
        return None
    return decode_token_account(account.data)[2]


def _set_amount(accounts: Overlay, address: Pubkey, amount: int) -> None:
    account = accounts.get(address)
    if account is None:
        raise InstructionFailedError.custom(_TOKEN_ERROR_UNINITIALIZED)
    data = bytearray(account.data)
    struct.pack_into("<Q", data, 64, amount)
    accounts.put(address, Account(account.lamports, bytes(data), account.owner))


def transfer_checked(
    ctx: InvokeContext,
    *,
    source: Pubkey,
    mint: Pubkey,
    destination: Pubkey,
    authority: Pubkey,
    amount: int,
    decimals: int = DECIMALS,
) -> None:
    """CPI Token-2022 `TransferChecked` (instruction 12).

    Raises:
        InstructionFailedError: custom error 0x1 (insufficient funds) or 0xd (no such account).
    """

    def body(token: InvokeContext) -> None:
        token.log("Instruction: TransferChecked")
        have = token_balance(token.accounts, source)
        if have is None or token_balance(token.accounts, destination) is None:
            token.log("Error: Invalid account state for operation")
            raise InstructionFailedError.custom(_TOKEN_ERROR_UNINITIALIZED)
        if have < amount:
            token.log("Error: insufficient funds")
            raise InstructionFailedError.custom(_TOKEN_ERROR_INSUFFICIENT_FUNDS)
        if source != destination:
            _set_amount(token.accounts, source, have - amount)
            after = token_balance(token.accounts, destination) or 0
            _set_amount(token.accounts, destination, after + amount)

    data = bytes([12]) + struct.pack("<Q", amount) + bytes([decimals])
    ctx.cpi(
        TOKEN_2022_PROGRAM_ID,
        [source, mint, destination, authority],
        data,
        body,
        units=6_150 + amount % 97,
    )


def burn(
    ctx: InvokeContext, *, account: Pubkey, mint: Pubkey, authority: Pubkey, amount: int
) -> None:
    """CPI Token-2022 `Burn` (instruction 8).

    Raises:
        InstructionFailedError: custom error 0x1 (insufficient funds).
    """

    def body(token: InvokeContext) -> None:
        token.log("Instruction: Burn")
        have = token_balance(token.accounts, account)
        if have is None or have < amount:
            token.log("Error: insufficient funds")
            raise InstructionFailedError.custom(_TOKEN_ERROR_INSUFFICIENT_FUNDS)
        _set_amount(token.accounts, account, have - amount)

    ctx.cpi(
        TOKEN_2022_PROGRAM_ID,
        [account, mint, authority],
        bytes([8]) + struct.pack("<Q", amount),
        body,
        units=4_540,
    )


def create_account(
    ctx: InvokeContext, *, payer: Pubkey, new: Pubkey, space: int, owner: Pubkey, data: bytes = b""
) -> None:
    """CPI System `CreateAccount`: funds `new` rent-exempt from `payer`.

    Raises:
        InstructionFailedError: custom error 0x0 (account already in use) or 0x1 (payer short).
    """
    lamports = rent_exempt_lamports(space)

    def body(system: InvokeContext) -> None:
        if system.accounts.exists(new):
            system.log(
                f"Create Account: account Address {{ address: {new}, base: None }} already in use"
            )
            raise InstructionFailedError.custom(0)
        have = system.accounts.lamports(payer)
        if have < lamports:
            system.log(f"Transfer: insufficient lamports {have}, need {lamports}")
            raise InstructionFailedError.custom(1)
        paid = system.accounts.get(payer)
        if paid is not None:
            system.accounts.put(
                payer, Account(have - lamports, paid.data, paid.owner, paid.executable)
            )
        system.accounts.put(new, Account(lamports, data or bytes(space), owner))

    ix = struct.pack("<IQQ", 0, lamports, space) + bytes(owner)
    ctx.cpi(SYSTEM_PROGRAM_ID, [payer, new], ix, body, builtin=True)


def create_ata(ctx: InvokeContext, *, payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Pubkey:
    """CPI the associated-token program's `Create` for (owner, mint) if the ATA is missing.

    Returns the ATA address. Writes the nested Token-2022 and System frames the real
    program produces (GetAccountDataSize, CreateAccount, InitializeImmutableOwner,
    InitializeAccount3).
    """
    ata = find_ata(owner, mint)
    if ctx.accounts.exists(ata):
        return ata

    def body(program: InvokeContext) -> None:
        program.log("Create")

        def size(token: InvokeContext) -> None:
            token.log("Instruction: GetAccountDataSize")
            token.tx.logs.log(
                f"Program return: {TOKEN_2022_PROGRAM_ID} "
                + base64.b64encode(struct.pack("<Q", TOKEN_ACCOUNT_LEN + 5)).decode()
            )

        program.cpi(TOKEN_2022_PROGRAM_ID, [mint], bytes([21, 7, 0]), size, units=1_622)
        create_account(
            program, payer=payer, new=ata, space=TOKEN_ACCOUNT_LEN, owner=TOKEN_2022_PROGRAM_ID
        )
        program.log("Initialize the associated token account")

        def immutable(token: InvokeContext) -> None:
            token.log("Instruction: InitializeImmutableOwner")

        program.cpi(TOKEN_2022_PROGRAM_ID, [ata], bytes([22]), immutable, units=1_405)

        def initialize(token: InvokeContext) -> None:
            token.log("Instruction: InitializeAccount3")
            account = token.accounts.get(ata)
            lamports = account.lamports if account is not None else 0
            token.accounts.put(
                ata,
                Account(lamports, encode_token_account(mint, owner, 0), TOKEN_2022_PROGRAM_ID),
            )

        program.cpi(
            TOKEN_2022_PROGRAM_ID, [ata, mint], bytes([18]) + bytes(owner), initialize, units=4_188
        )

    ctx.cpi(
        ASSOCIATED_TOKEN_PROGRAM_ID,
        [payer, ata, owner, mint, SYSTEM_PROGRAM_ID, TOKEN_2022_PROGRAM_ID],
        b"",
        body,
        units=11_800,
    )
    return ata
