"""The program's error codes and Anchor's, with the texts Anchor logs for them.

Custom errors are `6000 + index` in the program's `errors.rs`, and the enum changed between
versions, so one name has two numbers: `ORACLE` holds the Genesis numbers the reference lists
(§3.5), used by the v0.2.2 profile; `DEPLOYED` the numbers of the program as deployed (§G3.3),
used by its global instructions (`InvalidProof` is 6005 in one, 6004 in the other). The
staking and ring-v0 errors are not numbered in the reference's Genesis table: simchain gives
them codes from 6050 up (marked SIM), so they never collide with a Genesis code; only their
names and messages come from the program's source. The deployed profile keeps the simulated
staking instructions, and their SIM codes, too (`simchain.program`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANCHOR", "DEPLOYED", "ORACLE", "ErrorCode"]


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

#: the deployed program's errors its global instructions raise (reference §G3.3). The
#: reference does not pin the lines they are thrown at, so they log `AnchorError occurred.`
DEPLOYED = _table(
    ErrorCode(6000, "Unauthorized", "Unauthorized"),
    ErrorCode(6002, "ProtocolPaused", "Protocol is paused"),
    ErrorCode(6004, "InvalidProof", "Invalid merkle proof"),
    ErrorCode(6005, "InvalidProofLength", "Invalid proof length"),
    ErrorCode(6006, "InvalidRootSeq", "Invalid root sequence (must be strictly increasing)"),
    ErrorCode(6007, "RootTooOldOrMissing", "Root too old or missing from history window"),
    ErrorCode(6008, "InvalidClaimState", "Claim state mismatch"),
    ErrorCode(6009, "InvalidChannelState", "Invalid channel state PDA"),
    ErrorCode(6016, "InvalidMint", "Invalid mint"),
    ErrorCode(6019, "InvalidTokenProgram", "Invalid token program (expected Token-2022)"),
    ErrorCode(6041, "MathOverflow", "Math overflow"),
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
    ErrorCode(3003, "AccountDidNotDeserialize", "Failed to deserialize the account"),
    ErrorCode(
        3007,
        "AccountOwnedByWrongProgram",
        "The given account is owned by a different program than expected",
    ),
    ErrorCode(3008, "InvalidProgramId", "Program ID was not as expected"),
    ErrorCode(3010, "AccountNotSigner", "The given account did not sign"),
    ErrorCode(
        3012,
        "AccountNotInitialized",
        "The program expected this account to be already initialized",
    ),
)
