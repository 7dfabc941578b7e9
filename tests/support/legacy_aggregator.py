"""A second, independent implementation of the legacy aggregator's sealed epochs, for the
parallel-run tests (`aop parity --legacy-dsn-file`).

Written from the reference (§9 the ring-v0 leaf and tree, §11 the aggregator) the way the
legacy TypeScript did it, sharing no code with `aop.core`: keccak from pycryptodome, the
weight as a float sum of per-kind counts, `Math.round`, its own sealing order, leaves and
tree. Where docs/attention.md states a departure of ours from the legacy, this follows ours
(said at each place), so that the roots are expected to match:

* collectors POST signals; a signal belongs to its explicit epoch, else to the hour holding
  its `observed_at_ms`; a signal id repeated by the same source in an epoch counts once; a
  signal of an epoch already sealed lands where no seal reads it again;
* weight = presence + 10·sub + 10·resub + 5·gift + 0.01·bits + 0.1·raid (chat, listening
  and viewing weigh nothing), amount = Math.round(weight × 80 × viewerRatio × 10^9) with
  viewerRatio 1 (CLS_STREAMER_RATIO 0);
* sealing an epoch: per channel, its participants in `first_seen ASC, user_hash ASC` order,
  user_hash = keccak256(lowercase(username)); first_seen = the earliest observed_at_ms of
  the user's counted signals (ours; the legacy used its database's clock); users without a
  wallet or with a zero amount get no index (ours); the claimer is the wallet of the user's
  latest binding observed before the epoch began;
* leaf = keccak(claimer(32) || u32le(index) || u64le(amount) || "twitch:<channel>:<user>");
  tree: sorted pairs, the odd last node paired with itself, one leaf is the root; more than
  1024 claims: no root (ours refuses the epoch; the legacy's cap).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from Crypto.Hash import keccak

#: db-pg.ts's weight formula, term by term (kinds it does not name weigh nothing).
WEIGHT_TERMS = (("presence", 1), ("sub", 10), ("resub", 10), ("gift", 5), ("bits", 0.01))
WEIGHT_TERMS += (("raid", 0.1),)
BASE_REWARD_PER_WEIGHT = 80
DECIMALS = 9
STREAMER_RATIO = 0
MAX_CLAIMS = 1024


def keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def math_round(x: float) -> int:
    """JavaScript's Math.round: halves go up."""
    return math.floor(x + 0.5)


def amount_of(counts: Mapping[str, int]) -> int:
    """payout.ts: round(weight × BASE_REWARD_PER_WEIGHT × viewerRatio × 10^decimals), floats."""
    weight = 0.0
    for kind, factor in WEIGHT_TERMS:
        weight += factor * counts.get(kind, 0)
    return math_round(weight * BASE_REWARD_PER_WEIGHT * (1 - STREAMER_RATIO) * 10.0**DECIMALS)


def claim_leaf(claimer: bytes, index: int, amount: int, claim_id: str) -> bytes:
    """computeClaimLeaf: keccak(claimer || u32le index || u64le amount || id)."""
    packed = claimer + index.to_bytes(4, "little") + amount.to_bytes(8, "little")
    return keccak256(packed + claim_id.encode("utf-8"))


def merkle_root(leaves: list[bytes]) -> bytes:
    """helpers.ts buildMerkleTree(leaves, 'duplicate'): layer by layer up to one node."""
    layer = list(leaves)
    while len(layer) > 1:
        if len(layer) % 2 == 1:
            layer.append(layer[-1])
        pairs = zip(layer[0::2], layer[1::2], strict=True)
        layer = [keccak256(b"".join(sorted(pair))) for pair in pairs]
    return layer[0]


@dataclass
class _Participant:
    user: str
    first_seen: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class LegacyAggregator:
    """The legacy's signal store and sealer (module docstring)."""

    epoch_seconds: int = 3600
    #: claim id convention (test-tree-hardened.ts).
    claim_id: str = "twitch:{channel}:{user}"
    #: (epoch, channel, user_hash hex) -> participant.
    rows: dict[tuple[int, str, str], _Participant] = field(default_factory=dict)
    seen_ids: set[tuple[int, str, str]] = field(default_factory=set)
    #: (observed_at_ms, id, wallet, user) of every binding.
    bindings: list[tuple[int, str, bytes, str]] = field(default_factory=list)

    def ingest(
        self,
        source: str,
        signals: Iterable[Mapping[str, Any]] = (),
        bindings: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """One collector POST: its bindings, then its signals."""
        for b in bindings:
            self.bindings.append((b["observed_at_ms"], b["id"], b["wallet"], b["user"].lower()))
        for s in signals:
            hour = s["observed_at_ms"] // 1000 // self.epoch_seconds * self.epoch_seconds
            epoch = hour if s.get("epoch") is None else s["epoch"]
            if (epoch, source, s["id"]) in self.seen_ids:
                continue
            self.seen_ids.add((epoch, source, s["id"]))
            user = s["user"].lower()
            key = (epoch, s["channel"], keccak256(user.encode("utf-8")).hex())
            row = self.rows.setdefault(key, _Participant(user, s["observed_at_ms"]))
            row.first_seen = min(row.first_seen, s["observed_at_ms"])
            row.counts[s["kind"]] = row.counts.get(s["kind"], 0) + s["value"]

    def wallet(self, user: str, epoch: int) -> bytes | None:
        """The claimer: the user's latest binding made before the epoch began."""
        made = [b for b in self.bindings if b[3] == user and b[0] < epoch * 1000]
        return max(made)[2] if made else None

    def seal(self, epoch: int) -> dict[str, bytes]:
        """Seal `epoch`: channel -> root, for each channel with a claim."""
        participants: dict[str, list[tuple[int, str, _Participant]]] = {}
        for (e, channel, user_hash), row in self.rows.items():
            if e == epoch:
                participants.setdefault(channel, []).append((row.first_seen, user_hash, row))
        roots = {}
        for channel, rows in sorted(participants.items()):
            claims = []
            for _, _, row in sorted(rows, key=lambda r: (r[0], r[1])):
                wallet, amount = self.wallet(row.user, epoch), amount_of(row.counts)
                if wallet is not None and amount > 0:
                    claims.append((wallet, amount, row.user))
            if not claims or len(claims) > MAX_CLAIMS:
                continue
            leaves = [
                claim_leaf(wallet, idx, amount, self.claim_id.format(channel=channel, user=user))
                for idx, (wallet, amount, user) in enumerate(claims)
            ]
            roots[channel] = merkle_root(leaves)
        return roots
