"""The workload: wallets staking, unstaking, claiming and an admin at work, drawn at random.

Deterministic given the seed (and the rate and mix changes applied): `fill_steps(slot)`
draws how many events the slot gets (Poisson around rate x slot time) and builds real signed
transactions that go through the same program rules as anything sent over RPC. State the
workload keeps (open positions, claimed totals) changes only after a transaction landed
successfully, so it never asks for an impossible unstake. Wallets and channels are drawn
Zipf-like (rank r with weight 1/r^s): a few whales and hot channels, a long tail.

Wallets join and leave. The program allows one stake per wallet and channel for good, so new
stakes keep needing new wallets; a new wallet takes a free seat (a Zipf rank) while there are
fewer than `SimConfig.wallet_limit`, and after that the seat of a wallet with no open
position, which leaves: the workload forgets it and deletes its accounts (system account,
token account, receipt mints and their token accounts, claim states) as of the pending slot,
a simulator's liberty (a real chain keeps them) that keeps its state, and its memory, flat.
With no such wallet, the stake becomes a close of some wallet's positions, so one appears.

Transactions it builds:
* stake: 1 `stake_channel` (or 2 on different channels, `multi_event_ratio`) -> ChannelStaked;
* close: `unstake_channel` after the lock, else sometimes `emergency_unstake_channel`
  (1, or with `multi_event_ratio` up to 3, positions of one wallet per transaction);
* claim: `claim_cumulative` on a claim channel, against the simulator's own latest root;
* admin: update_publisher (same publisher), update_channel_creator_fee, set_paused(false);
* failures (`failed_tx_ratio`): an unstake before the lock ends (6052), a claim with a wrong
  proof (6005), a re-stake on a channel the wallet staked before (System 0x0), or a stake
  followed by a stake below the minimum (its first event is logged but the transaction fails);
* on command (`inject_truncated`): one transaction with five stakes whose logs pass 10 KB.

With the deployed program (`SimConfig.program`), only the staking kinds (and their failures)
run: that program fails the per-channel roots and claims and the admin instructions above with
101 (there are no claim channels then, and admin draws build nothing). Global roots come from
the pipeline's `aop settle`, and global claims from whoever holds a proof.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import Transaction, VersionedTransaction

from aop.core.accounts import ChannelConfigV2, ProtocolState
from aop.core.claims import ClaimInput, ClaimTree, TreeScope, get_claim_format
from aop.core.claims.cumulative_v2 import (
    claim_cumulative_instruction,
    publish_cumulative_root_instruction,
)
from aop.core.pda import associated_token_address, claim_state_address, protocol_state_address
from aop.simchain.config import SimConfig
from aop.simchain.genesis import Genesis
from aop.simchain.instructions import (
    emergency_unstake_channel_instruction,
    set_paused_instruction,
    stake_channel_instruction,
    unstake_channel_instruction,
    update_channel_creator_fee_instruction,
    update_publisher_instruction,
)
from aop.simchain.keys import Keys
from aop.simchain.ledger import Ledger, TxRecord
from aop.simchain.program.staking import MIN_STAKE_AMOUNT, SLOTS_PER_DAY

__all__ = ["Workload", "WorkloadChain"]

log = logging.getLogger(__name__)

_LAMPORTS = 10 * 1_000_000_000
_TOKENS = 100_000_000 * 10**9
#: stakes (each on another channel) in one multi-event transaction: three fit the 1,232-byte
#: packet (asserted in tests/unit/simchain/test_workload.py), a fourth would not.
_MAX_STAKES_PER_TX = 3
#: stake_channel's accounts 9 and 10: the receipt mint and the user's token account for it
#: (`simchain.instructions.stake_channel_instruction`); they outlive the position.
_STAKE_NFT_MINT, _STAKE_NFT_ATA = 9, 10
#: (weight, low, high) of lock durations in slots: no lock, short, then the boost tiers.
_LOCKS = (
    (35, 0, 0),
    (20, 50, 3_000),
    (15, 7 * SLOTS_PER_DAY, 30 * SLOTS_PER_DAY - 1),
    (12, 30 * SLOTS_PER_DAY, 90 * SLOTS_PER_DAY - 1),
    (8, 90 * SLOTS_PER_DAY, 180 * SLOTS_PER_DAY - 1),
    (6, 180 * SLOTS_PER_DAY, 365 * SLOTS_PER_DAY - 1),
    (4, 365 * SLOTS_PER_DAY, 365 * SLOTS_PER_DAY),
)


class _Zipf:
    """Draws ranks 0..n-1 with weight 1/(r+1)^s; `grow` adds ranks at the tail."""

    def __init__(self, n: int, s: float) -> None:
        self.s = s
        self.cumulative: list[float] = []
        self.grow(n)

    def grow(self, n: int) -> None:
        total = self.cumulative[-1] if self.cumulative else 0.0
        for rank in range(len(self.cumulative), n):
            total += 1.0 / (rank + 1) ** self.s
            self.cumulative.append(total)

    def draw(self, rng: random.Random) -> int:
        return bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])


_T = TypeVar("_T")


class _Bag(Generic[_T]):
    """A set drawn from uniformly in O(1) (a list with swap-remove): copying every member into
    a list for each draw made the workload slower the longer a chain ran."""

    def __init__(self) -> None:
        self._items: list[_T] = []
        self._at: dict[_T, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._at

    def add(self, item: _T) -> None:
        if item not in self._at:
            self._at[item] = len(self._items)
            self._items.append(item)

    def discard(self, item: _T) -> None:
        index = self._at.pop(item, None)
        if index is None:
            return
        last = self._items.pop()
        if last != item:
            self._items[index] = last
            self._at[last] = index

    def draw(self, rng: random.Random) -> _T:
        return self._items[rng.randrange(len(self._items))]


@dataclass
class _Position:
    channel: int
    amount: int
    lock_end: int


@dataclass
class _ClaimChannel:
    name: str
    totals: dict[int, int] = field(default_factory=dict)  # wallet index -> cumulative total
    claimed: dict[int, int] = field(default_factory=dict)
    tree: ClaimTree | None = None
    next_root_slot: int = 0


class WorkloadChain(Protocol):
    """What the workload needs of the chain it drives: `SimChain`, which owns a workload, is
    one (an interface here, so this module does not import the chain's)."""

    config: SimConfig
    keys: Keys
    genesis: Genesis
    ledger: Ledger
    program_id: Pubkey
    mint: Pubkey

    def sign(self, instructions: list[Any], signers: list[Keypair]) -> Transaction: ...

    def submit(self, tx: VersionedTransaction | Transaction) -> TxRecord | None: ...

    def channel_config(self, name: str, mint: Pubkey | None = None) -> Pubkey: ...


class Workload:
    """Generates the chain's background traffic (see the module docstring)."""

    def __init__(self, chain: WorkloadChain) -> None:
        config = chain.config
        self.chain = chain
        self.enabled = True
        self.rate = config.rate
        self.multi_event_ratio = config.multi_event_ratio
        self.rng = random.Random(config.seed)
        self.channels = list(config.channels)
        #: wallets ever joined (the next wallet's index); `_seats` holds those present.
        self.wallet_count = 0
        self.wallet_limit = config.wallet_limit
        self.wallets = _Zipf(0, config.zipf_s)  # draws a seat
        self._seats: list[int] = []  # seat -> wallet index
        self._seat_of: dict[int, int] = {}  # wallet index -> seat
        self._wallet_index: dict[bytes, int] = {}  # public key -> wallet index, present ones
        self.channel_draw = _Zipf(len(self.channels), config.zipf_s)
        #: the channel at Zipf rank r is `channels[(r + channel_shift) % n]`: shifting it moves
        #: the hot spot to other channels (audiences move), `rotate_channels`.
        self.channel_shift = 0
        self.positions: dict[int, dict[int, _Position]] = {}  # wallet -> channel -> position
        self._holders: _Bag[int] = _Bag()  # the wallets of `positions`
        #: wallet -> channel -> (receipt mint, its token account) of every stake it made: the
        #: pairs that cannot stake again, and the accounts they left behind.
        self._staked: dict[int, dict[int, tuple[Pubkey, Pubkey]]] = {}
        self._pairs: _Bag[tuple[int, int]] = _Bag()  # every (wallet, channel) of `_staked`
        self._idle: _Bag[int] = _Bag()  # wallets that staked and hold no position: may leave
        self.departed = 0
        self.claim_channels = [
            _ClaimChannel(name, next_root_slot=config.first_slot + 2 + i * 7)
            for i, name in enumerate(config.claim_channels)
        ]
        self._truncate = 0
        self.counts: dict[str, int] = {}
        for _ in range(config.wallets):
            self._join(config.first_slot)

    # -- control ---------------------------------------------------------------------------
    def set_rate(self, rate: float) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0 (got {rate})")
        self.rate = rate

    def set_multi_event_ratio(self, ratio: float) -> None:
        """Share of staking transactions that carry several events (see SimConfig)."""
        if not 0 <= ratio <= 1:
            raise ValueError(f"multi_event_ratio must be in 0..1 (got {ratio})")
        self.multi_event_ratio = ratio

    def rotate_channels(self, by: int = 1) -> None:
        """Shift which channels are hot: the channel drawn at rank r becomes the one `by`
        places further in the channel list (the hottest one hands its rank on)."""
        if self.channels:
            self.channel_shift = (self.channel_shift + by) % len(self.channels)

    def inject_truncated(self, count: int = 1) -> None:
        """Build `count` transactions whose logs pass Solana's 10 KB limit (next slots)."""
        self._truncate += count

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "rate": self.rate,
            "multi_event_ratio": self.multi_event_ratio,
            "channel_shift": self.channel_shift,
            "wallets": self.wallet_count,
            "wallets_present": len(self._seats),
            "wallets_left": self.departed,
            "open_positions": sum(len(p) for p in self.positions.values()),
            "counts": dict(self.counts),
        }

    # -- per slot --------------------------------------------------------------------------
    def fill_steps(self, slot: int) -> Iterator[None]:
        """Add this slot's transactions to the chain's pending block, yielding after each one
        (a server answers requests in between; see `SimChain.fill_steps`)."""
        for claim_channel in self.claim_channels:
            if slot >= claim_channel.next_root_slot:
                claim_channel.next_root_slot = slot + self.chain.config.root_interval_slots
                self._publish_root(claim_channel, slot)
                yield
        while self._truncate > 0:
            self._truncate -= 1
            self._truncated_tx(slot)
            yield
        events = self._draw_count()
        attempts = 4 * events + 8  # transactions that produce no event (failures) still count
        while events > 0 and attempts > 0:
            attempts -= 1
            events -= self._one(slot)
            yield

    def _draw_count(self) -> int:
        """Poisson(rate x slot time) events; hand-driven chains (slot_ms 0) use 400 ms."""
        mean = self.rate * (self.chain.config.slot_ms or 400.0) / 1000.0
        if mean <= 0:
            return 0
        if mean > 30:
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def _one(self, slot: int) -> int:
        """One transaction; returns how many counted events it produced."""
        config = self.chain.config
        roll = self.rng.random()
        if roll < config.failed_tx_ratio:
            self._failing_tx(slot)
            return 0
        roll = self.rng.random()
        if roll < config.admin_event_ratio:
            return self._admin_tx()
        if roll < config.admin_event_ratio + config.claim_ratio:
            done = self._claim_tx()
            if done:
                return done
        if self.positions and self.rng.random() < 0.4:
            done = self._close_tx(slot)
            if done:
                return done
        return self._stake_tx(slot)

    # -- wallets ---------------------------------------------------------------------------
    def _wallet(self, index: int) -> Keypair:
        return self.chain.keys.wallet(index)

    def _wallet_key(self, index: int) -> Pubkey:
        return self.chain.keys.wallet_key(index)

    def _draw_wallet(self) -> int:
        return self._seats[self.wallets.draw(self.rng)]

    def _join(self, slot: int) -> int | None:
        """A new wallet, funded as of `slot`: on a free seat, else on the seat of an idle
        wallet, which leaves. None when every seat is taken by a wallet holding a position."""
        if len(self._seats) < self.wallet_limit:
            seat = len(self._seats)
            self._seats.append(-1)
            self.wallets.grow(len(self._seats))
        elif self._idle:
            leaving = self._idle.draw(self.rng)
            seat = self._seat_of[leaving]
            self._leave(leaving, slot)
        else:
            return None
        index = self.wallet_count
        self.wallet_count += 1
        self._seats[seat] = index
        self._seat_of[index] = seat
        key = self._wallet_key(index)
        self._wallet_index[bytes(key)] = index
        genesis = self.chain.genesis
        genesis.fund(key, _LAMPORTS, slot)
        genesis.token_account(key, self.chain.mint, _TOKENS, slot)
        return index

    def _leave(self, wallet: int, slot: int) -> None:
        """`wallet` (holding no position) leaves: forgotten, its accounts deleted at `slot`."""
        key = self._wallet_key(wallet)
        gone = [key, associated_token_address(owner=key, mint=self.chain.mint)]
        for channel, accounts in self._staked.pop(wallet, {}).items():
            self._pairs.discard((wallet, channel))
            gone.extend(accounts)
        for claim in self.claim_channels:
            claim.totals.pop(wallet, None)
            if claim.claimed.pop(wallet, None) is not None:
                gone.append(
                    claim_state_address(
                        program_id=self.chain.program_id,
                        channel_config=self.chain.channel_config(claim.name),
                        wallet=key,
                    ).address
                )
        self.chain.ledger.accounts.delete_many(gone, slot)
        self._idle.discard(wallet)
        del self._seat_of[wallet], self._wallet_index[bytes(key)]
        self.chain.keys.forget_wallet(wallet)
        self.departed += 1

    def _draw_channel(self) -> int:
        """A channel index, Zipf by rank, ranks shifted by `channel_shift`."""
        return (self.channel_draw.draw(self.rng) + self.channel_shift) % len(self.channels)

    def _has_staked(self, wallet: int, channel: int) -> bool:
        staked = self._staked.get(wallet)
        return staked is not None and channel in staked

    def _fresh_pair(self, avoid: set[int] = frozenset()) -> tuple[int, int] | None:  # type: ignore[assignment]
        """A (wallet, channel) that never staked (the program allows one stake per pair): a
        present wallet's, else a new wallet's; None if no wallet can join (`_join`)."""
        for _ in range(12):
            wallet, channel = self._draw_wallet(), self._draw_channel()
            if channel not in avoid and not self._has_staked(wallet, channel):
                return wallet, channel
        joined = self._join(self.chain.ledger.pending_slot)
        return None if joined is None else (joined, self._draw_channel())

    def _fresh_channel(self, wallet: int, *, avoid: list[int]) -> int | None:
        """A channel not in `avoid` that `wallet` never staked on (None if a few draws find
        none): a further stake of a multi-stake transaction."""
        for _ in range(4):
            channel = self._draw_channel()
            if channel not in avoid and not self._has_staked(wallet, channel):
                return channel
        return None

    def _lock(self) -> int:
        total = sum(w for w, _, _ in _LOCKS)
        roll = self.rng.uniform(0, total)
        for weight, low, high in _LOCKS:
            if roll < weight:
                return self.rng.randint(low, high)
            roll -= weight
        return 0

    def _amount(self) -> int:
        tokens = min(max(self.rng.lognormvariate(math.log(500), 1.6), 1.0), 1_000_000.0)
        return max(int(tokens * 10**9), MIN_STAKE_AMOUNT)

    def _count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def _send(
        self, instructions: list[Instruction], signers: list[Keypair], *, unique: bool = False
    ) -> TxRecord | None:
        """Sign and land; about a third of transactions (and all `unique` ones, which could
        repeat byte for byte within a slot) carry a Compute Budget priority fee, as most
        mainnet transactions do."""
        if unique or self.rng.random() < 0.3:
            price = set_compute_unit_price(self.rng.randint(1, 50_000))
            instructions = [price, *instructions]
            if self.rng.random() < 0.5 and len(instructions) == 2:
                instructions.insert(0, set_compute_unit_limit(250_000))
        return self.chain.submit(self.chain.sign(instructions, signers))

    # -- transaction kinds -----------------------------------------------------------------
    def _stake_ix(self, wallet: int, channel: int, amount: int, lock: int) -> Instruction:
        return stake_channel_instruction(
            program_id=self.chain.program_id,
            mint=self.chain.mint,
            user=self._wallet_key(wallet),
            channel=self.channels[channel],
            amount=amount,
            lock_duration=lock,
        )

    def _stake_tx(self, slot: int) -> int:
        if not self.channels:
            return 0
        pair = self._fresh_pair()
        if pair is None:  # every seat holds positions: free one up instead
            return self._close_tx(slot, force=True)
        wallet, channel = pair
        channels = [channel]
        while len(channels) < _MAX_STAKES_PER_TX and self.rng.random() < self.multi_event_ratio:
            other = self._fresh_channel(wallet, avoid=channels)
            if other is None:
                break
            channels.append(other)
        picks = [(c, self._amount(), self._lock()) for c in channels]
        ixs = [self._stake_ix(wallet, c, a, lk) for c, a, lk in picks]
        record = self._send(ixs, [self._wallet(wallet)])
        if record is None or record.err is not None:
            return 0
        for (c, amount, lock), ix in zip(picks, ixs, strict=True):
            self._open(wallet, _Position(c, amount, slot + lock if lock else 0), ix)
        self._count("stake_tx")
        return len(record.events)

    def _close_tx(self, slot: int, *, force: bool = False) -> int:
        """Close some positions of a random holder (those past their lock, and some locked
        ones early); with `force`, every one of them up to three, locked or not."""
        if not self._holders:
            return 0
        wallet = self._holders.draw(self.rng)
        held = self.positions[wallet]
        chosen = []
        for channel in sorted(held):
            position = held[channel]
            if position.lock_end == 0 or position.lock_end <= slot:
                chosen.append((channel, unstake_channel_instruction))
            elif force or self.rng.random() < 0.35:
                chosen.append((channel, emergency_unstake_channel_instruction))
        if not chosen:
            return 0
        self.rng.shuffle(chosen)
        chosen = chosen[: 1 if not force and self.rng.random() >= self.multi_event_ratio else 3]
        ixs = [
            build(
                program_id=self.chain.program_id,
                mint=self.chain.mint,
                user=self._wallet_key(wallet),
                channel=self.channels[c],
            )
            for c, build in chosen
        ]
        record = self._send(ixs, [self._wallet(wallet)])
        if record is None or record.err is not None:
            return 0
        for channel, _ in chosen:
            self._close(wallet, channel)
        self._count("close_tx")
        return len(record.events)

    def _authority(self) -> Keypair | None:
        """The simulator's key that may publish and administer (admin preferred), if any."""
        account = self.chain.ledger.accounts.get(
            protocol_state_address(program_id=self.chain.program_id, mint=self.chain.mint).address
        )
        if account is None:
            return None
        state = ProtocolState.decode(account.data)
        for keypair in (self.chain.keys.admin, self.chain.keys.publisher):
            key = bytes(keypair.pubkey())
            if key == state.admin or (key == state.publisher and not state.paused):
                return keypair
        return None

    def _admin_tx(self) -> int:
        if self.chain.config.program != "v0.2.2":  # the deployed program routes none of them
            return 0
        keys = self.chain.keys
        admin = keys.admin
        account = self.chain.ledger.accounts.get(
            protocol_state_address(program_id=self.chain.program_id, mint=self.chain.mint).address
        )
        if account is None:
            return 0
        state = ProtocolState.decode(account.data)
        if state.admin != bytes(admin.pubkey()):
            return 0
        common = {
            "program_id": self.chain.program_id,
            "mint": self.chain.mint,
            "admin": admin.pubkey(),
        }
        roll = self.rng.random()
        if roll < 0.4 and self.channels:
            channel = self.channels[self.rng.randrange(len(self.channels))]
            ix = update_channel_creator_fee_instruction(
                **common, channel=channel, new_fee_bps=50 * self.rng.randint(0, 10)
            )
        elif roll < 0.7 or state.paused:
            ix = update_publisher_instruction(**common, new_publisher=Pubkey(state.publisher))
        else:
            ix = set_paused_instruction(**common, paused=False)
        record = self._send([ix], [admin], unique=True)
        if record is None or record.err is not None:
            return 0
        self._count("admin_tx")
        return len(record.events)

    # -- claims ----------------------------------------------------------------------------
    def _publish_root(self, channel: _ClaimChannel, slot: int) -> None:
        authority = self._authority()
        config_key = self.chain.channel_config(channel.name)
        account = self.chain.ledger.accounts.get(config_key)
        if authority is None or account is None:
            return
        for _ in range(self.rng.randint(3, 12)):
            wallet = self._draw_wallet()
            channel.totals[wallet] = (
                channel.totals.get(wallet, 0) + self.rng.randint(1, 5_000) * 10**9
            )
        root_seq = ChannelConfigV2.decode(account.data).latest_root_seq + 1
        scope = TreeScope(self.chain.program_id, self.chain.mint, channel.name, root_seq, 0)
        inputs = [
            ClaimInput(bytes(self._wallet_key(w)), total) for w, total in channel.totals.items()
        ]
        tree = get_claim_format("cumulative-v2").build(scope, inputs)
        ix = publish_cumulative_root_instruction(
            program_id=self.chain.program_id,
            mint=self.chain.mint,
            payer=authority.pubkey(),
            channel=channel.name,
            root_seq=root_seq,
            root=tree.root,
            dataset_hash=tree.dataset_hash,
        )
        record = self._send([ix], [authority], unique=True)
        if record is not None and record.err is None:
            channel.tree = tree
            self._count("root_tx")

    def _claim_ix(
        self, tree: ClaimTree, wallet: int, total: int, proof: list[bytes]
    ) -> Instruction:
        channel = tree.scope.channel_name
        creator = self.chain.keys.creator(channel).pubkey()
        return claim_cumulative_instruction(
            program_id=self.chain.program_id,
            mint=self.chain.mint,
            claimer=self._wallet_key(wallet),
            channel=channel,
            root_seq=tree.scope.root_seq,
            cumulative_total=total,
            proof=proof,
            creator_wallet=creator,
            creator_ata=associated_token_address(owner=creator, mint=self.chain.mint),
        )

    def _claimable(self) -> list[tuple[_ClaimChannel, ClaimTree, int, int]]:
        """(channel, its latest tree, wallet, total) of every leaf not fully claimed yet."""
        out = []
        for channel in self.claim_channels:
            tree = channel.tree
            if tree is None:
                continue
            for wallet_bytes, total in zip(tree.wallets, tree.amounts, strict=True):
                wallet = self._index_of(wallet_bytes)
                if wallet is not None and total > channel.claimed.get(wallet, 0):
                    out.append((channel, tree, wallet, total))
        return out

    def _index_of(self, wallet_bytes: bytes) -> int | None:
        """The index of a present wallet (None: not a workload wallet, or it left)."""
        return self._wallet_index.get(wallet_bytes)

    def _claim_tx(self) -> int:
        candidates = self._claimable()
        if not candidates:
            return 0
        channel, tree, wallet, total = candidates[self.rng.randrange(len(candidates))]
        proof = tree.proof_for(bytes(self._wallet_key(wallet)))
        record = self._send([self._claim_ix(tree, wallet, total, proof)], [self._wallet(wallet)])
        if record is None or record.err is not None:
            return 0
        channel.claimed[wallet] = total
        self._count("claim_tx")
        return len(record.events)

    def _open(self, wallet: int, position: _Position, ix: Instruction) -> None:
        """Record a position that landed by stake instruction `ix` (and the pair as staked:
        it cannot stake again)."""
        nft = (ix.accounts[_STAKE_NFT_MINT].pubkey, ix.accounts[_STAKE_NFT_ATA].pubkey)
        self._staked.setdefault(wallet, {})[position.channel] = nft
        self._pairs.add((wallet, position.channel))
        self.positions.setdefault(wallet, {})[position.channel] = position
        self._holders.add(wallet)
        self._idle.discard(wallet)

    def _close(self, wallet: int, channel: int) -> None:
        held = self.positions[wallet]
        del held[channel]
        if not held:
            del self.positions[wallet]
            self._holders.discard(wallet)
            self._idle.add(wallet)

    def _locked_position(self, slot: int, tries: int = 16) -> tuple[int, int] | None:
        """(wallet, channel) of an open position still locked at `slot`, from a few wallets
        drawn at random (None if none of them has one): scanning every open position for
        each failing transaction made the workload slow down as positions piled up."""
        if not self.positions:
            return None
        for _ in range(tries):
            wallet = self._holders.draw(self.rng)
            locked = [c for c, p in self.positions[wallet].items() if p.lock_end > slot]
            if locked:
                return wallet, locked[self.rng.randrange(len(locked))]
        return None

    # -- failures and oversized logs -------------------------------------------------------
    def _failing_tx(self, slot: int) -> None:
        kinds = ["stake_then_below_minimum"]
        locked = self._locked_position(slot)
        if locked:
            kinds.append("unstake_locked")
        if self._pairs:
            kinds.append("restake")
        if self._claimable():
            kinds.append("bad_proof")
        kind = kinds[self.rng.randrange(len(kinds))]
        if kind == "unstake_locked" and locked is not None:
            wallet, channel = locked
            user = self._wallet(wallet)
            ixs = [
                unstake_channel_instruction(
                    program_id=self.chain.program_id,
                    mint=self.chain.mint,
                    user=user.pubkey(),
                    channel=self.channels[channel],
                )
            ]
        elif kind == "restake":
            wallet, channel = self._pairs.draw(self.rng)
            user = self._wallet(wallet)
            ixs = [self._stake_ix(wallet, channel, self._amount(), 0)]
        elif kind == "bad_proof":
            candidates = self._claimable()
            _, tree, wallet, total = candidates[self.rng.randrange(len(candidates))]
            user = self._wallet(wallet)
            ixs = [self._claim_ix(tree, wallet, total, [bytes(32)])]
        else:
            pair = self._fresh_pair()
            if pair is None:
                return
            wallet, channel = pair
            user = self._wallet(wallet)
            ixs = [self._stake_ix(wallet, channel, self._amount(), 0)]
            other = (channel + 1) % len(self.channels)
            ixs.append(self._stake_ix(wallet, other, MIN_STAKE_AMOUNT - 1, 0))
        record = self._send(ixs, [user])
        if record is not None and record.err is not None:
            self._count(f"failed_{kind}")

    def _truncated_tx(self, slot: int) -> None:
        """Five wallets staking in one transaction: about 17 KB of logs, cut at 10 KB."""
        signers: list[Keypair] = []
        picks: list[tuple[int, int, int]] = []
        used_wallets: set[int] = set()
        while len(picks) < 5:
            pair = self._fresh_pair()
            if pair is None:
                log.warning("no wallet can join for an injected truncated transaction")
                return
            wallet, channel = pair
            if wallet in used_wallets:
                continue
            used_wallets.add(wallet)
            signers.append(self._wallet(wallet))
            picks.append((wallet, channel, self._amount()))
        ixs = [self._stake_ix(w, c, a, 0) for w, c, a in picks]
        record = self._send(ixs, signers)
        if record is None or record.err is not None:
            return
        for (wallet, channel, amount), ix in zip(picks, ixs, strict=True):
            self._open(wallet, _Position(channel, amount, 0), ix)
        self._count("truncated_tx")
