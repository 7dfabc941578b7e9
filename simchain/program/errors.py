"""The program's error codes and Anchor's, with the texts Anchor logs for them.

Custom errors are `6000 + index` in the program's `errors.rs`. The Genesis numbers below are
the ones the reference lists (§3.5). The staking and ring-v0 errors are not numbered in the
reference: simchain gives them codes from 6050 up (marked SIM), so they never collide with a
Genesis code; only their names and messages come from the program's source.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANCHOR", "ORACLE", "ErrorCode"]


@dataclass(frozen=True)
class ErrorCode:
    """One error: its number, its Rust name, Anchor's message, and where it is thrown."""

    number: int
    name: str
    message: str
    source: str = ""


def _table(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {code.name: code for code in codes}


_CUMULATIVE = "programs/token_2022/src/instructions/cumulative.rs"
_CHANNEL = "programs/token_2022/src/instructions/channel.rs"
_STAKING = "programs/token_2022/src/instructions/staking.rs"
_ADMIN = "programs/token_2022/src/instructions/admin.rs"

#: the program's own errors (custom program error = number).
ORACLE = _table(
    ErrorCode(6000, "Unauthorized", "Unauthorized", f"{_CUMULATIVE}:147"),
    ErrorCode(6002, "ProtocolPaused", "Protocol is paused", f"{_CUMULATIVE}:155"),
    ErrorCode(6005, "InvalidProof", "Invalid merkle proof", f"{_CUMULATIVE}:295"),
    ErrorCode(6006, "InvalidProofLength", "Invalid proof length", f"{_CUMULATIVE}:270"),
    ErrorCode(
        6008,
        "InvalidRootSeq",
        "Invalid root sequence (must be strictly increasing)",
        f"{_CUMULATIVE}:165",
    ),
    ErrorCode(
        6009,
        "RootTooOldOrMissing",
        "Root too old or missing from history window",
        f"{_CUMULATIVE}:286",
    ),
    ErrorCode(6010, "InvalidClaimState", "Claim state mismatch", f"{_CUMULATIVE}:305"),
    ErrorCode(6011, "InvalidChannelState", "Invalid channel state PDA", f"{_CUMULATIVE}:161"),
    ErrorCode(6023, "CreatorFeeTooHigh", "Creator fee share too high", f"{_CUMULATIVE}:86"),
    ErrorCode(
        6024, "MissingCreatorAta", "Creator ATA required when creator fee > 0", f"{_CUMULATIVE}:281"
    ),
    ErrorCode(6025, "InvalidMint", "Invalid mint", f"{_CUMULATIVE}:267"),
    ErrorCode(6028, "InvalidTokenProgram", "Invalid token program (expected Token-2022)"),
    ErrorCode(6045, "MathOverflow", "Math overflow"),
    ErrorCode(
        6049,
        "InvalidChannelName",
        "Invalid channel name (must be 1-64 ASCII characters)",
        f"{_CUMULATIVE}:33",
    ),
    # SIM: staking (the program's later channel-staking instructions).
    ErrorCode(6050, "StakeBelowMinimum", "Stake amount below minimum", f"{_STAKING}:205"),
    ErrorCode(6051, "LockPeriodTooLong", "Lock period too long", f"{_STAKING}:206"),
    ErrorCode(6052, "LockNotExpired", "Lock period not expired", f"{_STAKING}:421"),
    ErrorCode(
        6053,
        "LockExpiredUseStandardUnstake",
        "Lock has expired, use standard unstake to avoid penalty",
        f"{_STAKING}:586",
    ),
    ErrorCode(6054, "NftHolderMismatch", "NFT holder mismatch"),
    # SIM: ring-v0 (v0.2.1-clean).
    ErrorCode(
        6055, "EpochNotIncreasing", "Epoch must increase for this ring slot", f"{_CHANNEL}:131"
    ),
    ErrorCode(6056, "SlotMismatch", "Requested epoch slot is not available", f"{_CHANNEL}:236"),
    ErrorCode(6057, "AlreadyClaimed", "Claim already processed", f"{_CHANNEL}:246"),
    ErrorCode(6058, "InvalidIndex", "Claim index out of range", f"{_CHANNEL}:229"),
    ErrorCode(6059, "InvalidInputLength", "Invalid input length", f"{_CHANNEL}:231"),
    ErrorCode(6060, "AdminOnly", "Only the admin may do this", f"{_ADMIN}:21"),
)

#: Anchor framework errors used here.
ANCHOR = _table(
    ErrorCode(101, "InstructionFallbackNotFound", "Fallback functions are not supported"),
    ErrorCode(
        102,
        "InstructionDidNotDeserialize",
        "The program could not deserialize the given instruction",
    ),
    ErrorCode(2000, "ConstraintMut", "A mut constraint was violated"),
    ErrorCode(2006, "ConstraintSeeds", "A seeds constraint was violated"),
    ErrorCode(2009, "ConstraintAssociated", "An associated constraint was violated"),
    ErrorCode(2012, "ConstraintAddress", "An address constraint was violated"),
    ErrorCode(
        3002, "AccountDiscriminatorMismatch", "8 byte discriminator did not match what was expected"
    ),
    ErrorCode(3005, "AccountNotEnoughKeys", "Not enough account keys given to the instruction"),
    ErrorCode(
        3007,
        "AccountOwnedByWrongProgram",
        "The given account is owned by a different program than expected",
    ),
    ErrorCode(3010, "AccountNotSigner", "The given account did not sign"),
    ErrorCode(
        3012,
        "AccountNotInitialized",
        "The program expected this account to be already initialized",
    ),
)
