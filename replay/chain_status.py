"""`aop chain status`: each root account on-chain beside our newest projected and published root.

One row per root account: every channel of AOP_CHANNELS (its ChannelConfigV2, or its
ChannelState for ring-v0), every other root account PostgreSQL holds roots of, and the mint's
GlobalRootConfig (the global roots; the deployed program takes only these). For each: what the
account holds (latest_root_seq, or latest_epoch for ring-v0, and the sequences in its ring),
our newest projected root (`roots`) and newest published one (`settlement_outbox`), and a
verdict from `core.root_account.judge_root_account` applied to our newest projected root:

| verdict | meaning |
|---|---|
| in_step | the account holds our newest root |
| behind | the account is behind our newest root (roots to publish) |
| ahead | the account holds a later sequence than our newest root |
| other_root | the account holds another root for our newest root's sequence |
| no_account | the account does not exist (not initialized) |
| undecodable | the account is not of the format's type |
| no_roots | we have projected no root for it yet (before a cutover) |

For the sequenced formats (cumulative-v2, global-v4/v5) the account's `latest_root_seq + 1`
is the first root_seq a deployment taking it over must use: `AOP_FIRST_ROOT_SEQ` per channel,
`AOP_GLOBAL_FIRST_ROOT_SEQ` for the global root (`suggested_settings`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from aop.core.accounts import ChannelConfigV2, ChannelState, GlobalRootConfig
from aop.core.errors import AccountDecodeError
from aop.core.fold_config import FoldConfig
from aop.core.root_account import OurRoot, Standing, judge_root_account
from aop.replay.chain import ChainReader
from aop.replay.engine import root_account
from aop.runtime.settings import Settings

__all__ = [
    "ATTENTION",
    "AccountStatus",
    "OnChain",
    "Projected",
    "chain_status",
    "judge_status",
    "read_on_chain",
    "status_json",
    "suggested_settings",
]

#: verdicts an operator must look at (`aop chain status` exits 1 when one is present).
ATTENTION = frozenset({"ahead", "other_root", "no_account", "undecodable"})
_SEQUENCED = frozenset({"cumulative-v2", "global-v4", "global-v5"})


@dataclass(frozen=True)
class Projected:
    """Our newest projected root of an account, and the newest published (None: none)."""

    root_seq: int
    epoch: int
    root: bytes
    dataset_hash: bytes
    published_seq: int | None


@dataclass(frozen=True)
class OnChain:
    """What the account holds: `latest` is latest_root_seq (latest_epoch for ring-v0); `held`
    the sequences (epochs) in its ring, ascending. `exists` False: no account."""

    exists: bool
    latest: int | None = None
    held: tuple[int, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class AccountStatus:
    """One row of `aop chain status`."""

    name: str
    scope: str
    format: str
    account: str
    chain: OnChain
    projected: Projected | None
    verdict: str
    detail: str

    @property
    def first_root_seq(self) -> int | None:
        """The root_seq a deployment taking the account over starts at (sequenced formats
        whose account exists), else None."""
        if self.format not in _SEQUENCED or not self.chain.exists or self.chain.latest is None:
            return None
        return self.chain.latest + 1


def read_on_chain(format_name: str, data: bytes | None) -> OnChain:
    """Decode the account's data (None: it does not exist) for its format."""
    if data is None:
        return OnChain(False)
    try:
        if format_name == "cumulative-v2":
            config = ChannelConfigV2.decode(data)
            return OnChain(True, config.latest_root_seq, _held(e.seq for e in config.roots))
        if format_name in ("global-v4", "global-v5"):
            root = GlobalRootConfig.decode(data)
            return OnChain(True, root.latest_root_seq, _held(e.seq for e in root.roots))
        state = ChannelState.decode(data)
        return OnChain(True, state.latest_epoch, _held(s.epoch for s in state.slots))
    except AccountDecodeError as exc:
        return OnChain(True, error=str(exc))


def _held(seqs: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(s for s in seqs if s))


def judge_status(
    format_name: str, chain: OnChain, projected: Projected | None, data: bytes | None
) -> tuple[str, str]:
    """(verdict, detail) of the module's table for one account."""
    unit = "latest_epoch" if format_name == "ring-v0" else "latest_root_seq"
    if not chain.exists and format_name in _SEQUENCED:
        return "no_account", "the account does not exist (not initialized)"
    if projected is None:
        if not chain.exists:
            return "no_roots", "no root projected; no ChannelState yet (the first publish makes it)"
        if chain.error:
            return "undecodable", chain.error
        return "no_roots", f"no root projected; the account's {unit} is {chain.latest}"
    ours = OurRoot(
        format_name, projected.root_seq, projected.epoch, projected.root, projected.dataset_hash
    )
    judged = judge_root_account(ours, data)
    standing = judged.standing
    seq = projected.epoch if format_name == "ring-v0" else projected.root_seq
    name = "epoch" if format_name == "ring-v0" else "root_seq"
    if standing is Standing.UNKNOWN_FORMAT:
        return "undecodable", f"unknown claim format {format_name!r}"
    if standing is Standing.ABSENT:  # ring-v0 only (above): the first publish creates it
        return "behind", f"no ChannelState yet; ours is epoch {projected.epoch}"
    if standing is Standing.UNDECODABLE:
        return "undecodable", judged.error
    if standing is Standing.OTHER_ROOT:
        return "other_root", (
            f"the account holds {name} {seq} with root {(judged.held_root or b'').hex()[:16]}…, "
            f"ours is {projected.root.hex()[:16]}…"
        )
    latest = judged.latest if judged.latest is not None else 0
    if standing is Standing.AHEAD or latest > seq:
        return "ahead", f"{unit} {latest} is past our newest {name} {seq}"
    if standing is Standing.PUBLISHED:
        return "in_step", f"the account holds our newest {name} {seq}"
    if format_name == "ring-v0":
        return "behind", f"{unit} {latest}, ours {seq}"
    return "behind", f"{seq - latest} root(s) to publish ({unit} {latest}, ours {seq})"


_PROJECTED = """
SELECT c.channel_config, c.name, c.format, c.scope,
       r.root_seq, r.epoch, r.root, r.dataset_hash,
       (SELECT max(o.root_seq) FROM settlement_outbox o
         WHERE o.channel_config = c.channel_config AND o.status = 'published') AS published_seq
  FROM channels c
  LEFT JOIN LATERAL (
       SELECT root_seq, epoch, root, dataset_hash FROM roots
        WHERE roots.channel_config = c.channel_config ORDER BY root_seq DESC LIMIT 1) r ON true
 ORDER BY c.scope DESC, c.name
"""


def _projected(engine: Engine) -> dict[str, tuple[Mapping[str, Any], Projected | None]]:
    """Root account -> (its channels row, our newest root there)."""
    with engine.connect() as conn:
        rows = conn.execute(text(_PROJECTED)).mappings().all()
    found: dict[str, tuple[Mapping[str, Any], Projected | None]] = {}
    for row in rows:
        projected = None
        if row["root_seq"] is not None:
            projected = Projected(
                int(row["root_seq"]),
                int(row["epoch"]),
                bytes(row["root"]),
                bytes(row["dataset_hash"]),
                None if row["published_seq"] is None else int(row["published_seq"]),
            )
        found[str(row["channel_config"])] = (dict(row), projected)
    return found


def chain_status(
    settings: Settings, config: FoldConfig, engine: Engine, chain: ChainReader
) -> list[AccountStatus]:
    """Every root account's row (module docstring): the global root first, then channels.

    Raises:
        RpcUnavailableError: an account cannot be read.
    """
    stored = _projected(engine)
    wanted: dict[str, tuple[str, str, str]] = {
        settings.global_root_account: ("global", "global", settings.global_format)
    }
    for spec in config.channels:
        wanted[root_account(config, spec)] = (spec.name, "channel", spec.claim_format)
    for account, (row, _projected_root) in stored.items():
        if account not in wanted:
            scope = str(row["scope"])
            wanted[account] = (str(row["name"]) or scope, scope, str(row["format"]))
    statuses = []
    for account, (name, scope, format_name) in wanted.items():
        if account in stored and scope == "global":
            format_name = str(stored[account][0]["format"])
        projected = stored[account][1] if account in stored else None
        data = chain.account(account)
        on_chain = read_on_chain(format_name, data)
        verdict, detail = judge_status(format_name, on_chain, projected, data)
        statuses.append(
            AccountStatus(name, scope, format_name, account, on_chain, projected, verdict, detail)
        )
    return statuses


def suggested_settings(statuses: Iterable[AccountStatus]) -> dict[str, Any]:
    """The first-root settings that continue the on-chain sequences: AOP_GLOBAL_FIRST_ROOT_SEQ
    (the global row) and AOP_FIRST_ROOT_SEQ (channels whose account holds roots)."""
    suggested: dict[str, Any] = {}
    per_channel: dict[str, int] = {}
    for status in statuses:
        first = status.first_root_seq
        if first is None:
            continue
        if status.scope == "global":
            suggested["AOP_GLOBAL_FIRST_ROOT_SEQ"] = first
        elif first > 1:
            per_channel[status.name] = first
    suggested["AOP_FIRST_ROOT_SEQ"] = per_channel
    return suggested


def status_json(statuses: list[AccountStatus]) -> dict[str, Any]:
    """The rows and the suggested settings as a JSON-ready dict."""
    rows = []
    for s in statuses:
        p = s.projected
        rows.append(
            {
                "name": s.name,
                "scope": s.scope,
                "format": s.format,
                "account": s.account,
                "on_chain": {
                    "exists": s.chain.exists,
                    "latest": s.chain.latest,
                    "held": list(s.chain.held),
                    "error": s.chain.error or None,
                },
                "projected": None
                if p is None
                else {
                    **{
                        k: v for k, v in dataclasses.asdict(p).items() if k in ("root_seq", "epoch")
                    },
                    "root": p.root.hex(),
                    "published_seq": p.published_seq,
                },
                "verdict": s.verdict,
                "detail": s.detail,
                "first_root_seq": s.first_root_seq,
            }
        )
    return {"kind": "aop.chain.status", "accounts": rows, "suggested": suggested_settings(statuses)}
