"""The simulated chain's knobs, frozen; `SimConfig.from_settings` reads the pipeline's settings."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from solders.pubkey import Pubkey

from aop.core.program_ids import DEFAULT_PROGRAM_ID

__all__ = [
    "CCM_MINT",
    "DEFAULT_MAX_WALLETS",
    "DEFAULT_RETAIN_SECONDS",
    "MAX_PROCESSING_AGE",
    "MIN_RETAIN_SLOTS",
    "SIM_PROGRAMS",
    "SimConfig",
    "SimProgram",
    "default_channel_names",
]

CCM_MINT = Pubkey.from_string("Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM")
#: which attention-oracle program the chain runs (`simchain.program` has both instruction sets).
SimProgram = Literal["v0.2.2", "deployed"]
SIM_PROGRAMS: tuple[SimProgram, ...] = ("v0.2.2", "deployed")
#: 2026-01-01T00:00:00Z: block times are genesis_time + slot x 400 ms, whatever slot_ms is.
GENESIS_TIME = 1_767_225_600
#: slots a blockhash stays valid for (Agave's MAX_PROCESSING_AGE).
MAX_PROCESSING_AGE = 150
#: the smallest ledger window: a transaction on the oldest valid blockhash must still find
#: that blockhash's block.
MIN_RETAIN_SLOTS = MAX_PROCESSING_AGE + 1
#: the default ledger window, in wall-clock seconds of slots (`SimConfig.retained_slots`):
#: 2.5 times the longest outage the fault scenarios inject (~60 s), so a listener that was
#: away that long still finds its checkpoint on the node.
DEFAULT_RETAIN_SECONDS = 150
#: the default cap on workload wallets at once (`SimConfig.wallet_limit`).
DEFAULT_MAX_WALLETS = 4_096


def default_channel_names(count: int) -> tuple[str, ...]:
    """`count` channel names in the programs' `platform:handle` style, deterministic."""
    platforms = ("twitch", "youtube", "kick", "spotify")
    return tuple(f"{platforms[i % len(platforms)]}:sim{i:04d}" for i in range(count))


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes a simulated chain; equal configs give equal chains.

    Attributes:
        program: the program the chain runs: "v0.2.2" (Genesis: per-channel cumulative roots
            and claims, ring-v0, admin) or "deployed" (the program as deployed today: the
            global roots and claims only, every other instruction fails with 101; see
            `simchain.program`).
        global_latest_root_seq: "deployed" only: the `latest_root_seq` of the mint's
            GlobalRootConfig at genesis (the live one is past 1,800), its ring holding the
            last 4 seqs with made-up roots (`Genesis.global_root`).
        program_id, mint: the attention-oracle program and its Token-2022 mint.
        seed: drives every key, blockhash and workload draw.
        slot_ms: wall-clock time between slots (tests use a few ms); block times always
            advance 400 ms per slot, so they stay realistic in fast tests.
        finality_depth: finalized = tip - finality_depth (31 like mainnet's usual lag).
        confirmation_depth: confirmed = tip - confirmation_depth.
        first_slot: the genesis slot.
        channels: channel names the workload stakes on (each gets a ChannelConfigV2 and a
            stake pool at genesis).
        claim_channels: channels where the simulator itself publishes cumulative roots (as the
            protocol admin) and wallets claim against them, so CumulativeRewardsClaimed events
            flow; keep them out of the pipeline's settled channels (root_seq would collide).
            "v0.2.2" only: the deployed program routes neither instruction.
        wallets: wallets funded at genesis (the workload adds more when all pairs are used).
        rate: workload events per wall-clock second (0 = idle chain).
        zipf_s: skew of wallet and channel popularity (rank r drawn with weight 1/r^s).
        multi_event_ratio: share of staking transactions that carry several events of one
            wallet: further stakes on other channels (each with this probability, three at
            most), or up to three closes of its positions (1.0: ~2.2 events per staking
            transaction; `sim_setMultiEventRatio` changes it on a running chain).
        failed_tx_ratio: share of workload transactions built to fail on-chain.
        admin_event_ratio: share of events that are admin events ("v0.2.2" only: the deployed
            program routes none of the simulator's admin instructions).
        claim_ratio: share of events that are claims (when a claim channel has a root).
        root_interval_slots: slots between the simulator's own roots on claim channels.
        workload: start with the workload running.
        retain_slots: sealed slots the ledger keeps (blocks, transactions, their indexes);
            older ones answer as an Agave node with a limited ledger answers for history it
            cleaned up. None: `DEFAULT_RETAIN_SECONDS` of slots (`retained_slots`).
        max_wallets: the most workload wallets at once; beyond it a wallet with no open
            position leaves for each one that joins (its accounts are deleted). None: the
            larger of `wallets` and `DEFAULT_MAX_WALLETS` (`wallet_limit`).
    """

    program: SimProgram = "v0.2.2"
    global_latest_root_seq: int = 0
    program_id: Pubkey = DEFAULT_PROGRAM_ID
    mint: Pubkey = CCM_MINT
    seed: int = 0
    slot_ms: float = 400.0
    finality_depth: int = 31
    confirmation_depth: int = 1
    first_slot: int = 1_000
    genesis_time: int = GENESIS_TIME
    channels: tuple[str, ...] = default_channel_names(8)
    claim_channels: tuple[str, ...] = ("sim:claims",)
    wallets: int = 200
    rate: float = 20.0
    zipf_s: float = 1.1
    multi_event_ratio: float = 0.1
    failed_tx_ratio: float = 0.03
    admin_event_ratio: float = 0.01
    claim_ratio: float = 0.15
    root_interval_slots: int = 40
    workload: bool = True
    retain_slots: int | None = None
    max_wallets: int | None = None

    def __post_init__(self) -> None:
        if self.finality_depth < self.confirmation_depth or self.confirmation_depth < 0:
            raise ValueError(
                "finality_depth must be >= confirmation_depth >= 0 "
                f"(got {self.finality_depth}, {self.confirmation_depth})"
            )
        if self.slot_ms < 0 or self.rate < 0 or self.wallets < 1:
            raise ValueError(
                f"slot_ms and rate must be >= 0 and wallets >= 1 "
                f"(got {self.slot_ms}, {self.rate}, {self.wallets})"
            )
        if self.program not in SIM_PROGRAMS:
            raise ValueError(f"program must be one of {SIM_PROGRAMS} (got {self.program!r})")
        if self.program == "deployed" and self.claim_channels:
            raise ValueError(
                "claim_channels need program v0.2.2: the deployed program fails "
                f"publish_cumulative_root and claim_cumulative with 101 (got {self.claim_channels})"
            )
        if not 0 <= self.global_latest_root_seq < 2**64 - 1:
            raise ValueError(
                f"global_latest_root_seq must be in 0..2^64-2 (got {self.global_latest_root_seq})"
            )
        if self.retain_slots is not None and self.retain_slots < max(
            MIN_RETAIN_SLOTS, self.finality_depth + 1
        ):
            raise ValueError(
                f"retain_slots must be >= {MIN_RETAIN_SLOTS} (a blockhash stays valid "
                f"{MAX_PROCESSING_AGE} slots) and > finality_depth {self.finality_depth} "
                f"(got {self.retain_slots})"
            )
        if self.max_wallets is not None and self.max_wallets < self.wallets:
            raise ValueError(
                f"max_wallets must be >= wallets {self.wallets} (got {self.max_wallets})"
            )
        overlap = set(map(str.lower, self.channels)) & set(map(str.lower, self.claim_channels))
        if overlap:
            raise ValueError(f"claim_channels must not be staking channels (got {sorted(overlap)})")

    @property
    def retained_slots(self) -> int:
        """The ledger window in slots: `retain_slots`, else `DEFAULT_RETAIN_SECONDS` of
        `slot_ms` slots (400 ms when slots are driven by hand), never below
        `MIN_RETAIN_SLOTS` nor `finality_depth + 1`."""
        if self.retain_slots is not None:
            return self.retain_slots
        slots = math.ceil(DEFAULT_RETAIN_SECONDS * 1000 / (self.slot_ms or 400.0))
        return max(slots, MIN_RETAIN_SLOTS, self.finality_depth + 1)

    @property
    def wallet_limit(self) -> int:
        """The most workload wallets at once: `max_wallets`, else the larger of `wallets` and
        `DEFAULT_MAX_WALLETS`."""
        if self.max_wallets is not None:
            return self.max_wallets
        return max(self.wallets, DEFAULT_MAX_WALLETS)

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)
