"""The parallel run against the legacy aggregator: our ring-v0-legacy attention roots beside
the legacy's roots, per (channel, epoch), byte for byte.

What is compared:

* channels: the ones named, else every attention channel whose format is `ring-v0-legacy`
  (AOP_ATTENTION_FORMATS / AOP_ATTENTION_FORMAT_DEFAULT); a named channel of another format
  is refused (its roots are cumulative totals, not the legacy's epochs);
* epochs: the window starts `s` (multiples of L = AOP_ATTENTION_EPOCH_SECONDS) from `first`
  (default: the earliest ring-v0-legacy root we hold of those channels) to `last` (default:
  open), and never past the last epoch closed on our side. A channel's partition closed
  epoch `s` once its attention watermark reached `(s + L) * 1000`; PostgreSQL knows that
  watermark as the largest `closed_at_ms` of the partition's attention roots, any channel's.
  The legacy is asked per (channel, epoch), never listed: its roots of epochs outside that
  window are not seen.

Verdicts (`judge`):

* MATCH: both sides hold a root, the same 32 bytes;
* MISMATCH: both hold one, they differ (both are printed);
* MISSING_LEGACY: we hold a root, the legacy none;
* MISSING_OURS: the legacy holds one, we none, though our side closed the epoch;
* PENDING: one side lacks it but the epoch ended less than `grace_s` ago (the legacy seals
  after the hour; the projector may be writing the epoch's roots): judged in a later round;
* neither side: no verdict (an epoch in which nobody was paid).

A round (`LegacyComparison.round`):

1. reads our side in one go: the attention watermarks, then every ring-v0-legacy root of the
   channels (`read_ours`);
2. lists the (channel, epoch) to compare: the window above, less those MATCHed in an earlier
   round (a match is final; every other verdict is checked again);
3. asks the legacy for each, in one read-only session;
4. judges each (the caller counts them: `legacy_metrics.record_check`);
5. keeps each (channel, epoch)'s latest verdict: those that changed are the report's lines.

Exit code of a run (`LegacyComparison.exit_code`): 0 when every latest verdict is MATCH or
PENDING and at least one MATCH; 1 on any MISMATCH or MISSING, or when nothing was compared.

Common failure scenarios:

* the fold or the projector stopped: no new epoch closes on our side, the window stops
  growing, and the run compares nothing new (AopLegacyParityStalled watches the rounds, the
  fold's own alerts the fold);
* the legacy seals an epoch later than `grace_s` after its end: MISSING_LEGACY, then MATCH
  in a later round (a line each in the report);
* the legacy database is unreachable: the round fails (exit 2 for a single check; a long run
  logs it and tries again at the next interval).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol

from aop.core.attention.signals import epoch_of
from aop.replay.errors import LegacyParityError, UnknownChannelError

if TYPE_CHECKING:
    from aop.core.fold_config import FoldConfig

__all__ = [
    "DEFAULT_GRACE_S",
    "LEGACY_FORMAT",
    "VERDICTS",
    "Check",
    "LegacyChannel",
    "LegacyComparison",
    "LegacyPlan",
    "OurRoots",
    "judge",
    "legacy_plan",
    "read_ours",
]

LEGACY_FORMAT: Final = "ring-v0-legacy"
DEFAULT_GRACE_S: Final = 900
Verdict = Literal["MATCH", "MISMATCH", "MISSING_OURS", "MISSING_LEGACY", "PENDING"]
VERDICTS: Final[tuple[Verdict, ...]] = (
    "MATCH",
    "MISMATCH",
    "MISSING_OURS",
    "MISSING_LEGACY",
    "PENDING",
)
FAILURES: Final = frozenset({"MISMATCH", "MISSING_OURS", "MISSING_LEGACY"})


class AttentionRootStore(Protocol):
    """What `read_ours` reads of the projections (`replay.stored_roots.RootStore`)."""

    def attention_closed_ms(self, keys: Sequence[str]) -> dict[str, int]: ...

    def epoch_roots(
        self, keys: Sequence[str], claim_format: str
    ) -> list[tuple[str, int, bytes]]: ...


class LegacyRoots(Protocol):
    """The legacy's side (`replay.legacy_source.LegacyReader`)."""

    def root(self, channel: str, epoch: int) -> bytes | None: ...


@dataclass(frozen=True)
class LegacyChannel:
    """A channel compared: its name (what the legacy is asked), attention root key and
    partition."""

    name: str
    key: str
    partition: int


@dataclass(frozen=True)
class LegacyPlan:
    """What a comparison covers (`legacy_plan`)."""

    channels: tuple[LegacyChannel, ...]
    #: partition -> the attention root keys of every channel on it (its watermark).
    partition_keys: Mapping[int, tuple[str, ...]]
    epoch_seconds: int
    first: int | None = None
    last: int | None = None
    grace_s: int = DEFAULT_GRACE_S


def legacy_plan(
    config: FoldConfig,
    names: Iterable[str] = (),
    *,
    first: int | None = None,
    last: int | None = None,
    grace_s: int = DEFAULT_GRACE_S,
) -> LegacyPlan:
    """The channels and epochs to compare (module docstring).

    Raises:
        LegacyParityError: attention is off, no channel is ring-v0-legacy, a named channel
            is of another format, `first`/`last` are not epoch starts or out of order, or
            `grace_s` is negative.
        UnknownChannelError: a named channel is not served.
    """
    attention = config.attention
    if attention is None:
        raise LegacyParityError(
            "AOP_ATTENTION_ENABLED is false: the fold makes no attention roots to compare "
            "with the legacy; operator action: run with the settings the fold runs with"
        )
    length = attention.epoch_seconds
    wanted = list(names)
    if wanted:
        specs = []
        for name in wanted:
            spec = attention.by_name.get(name.lower())
            if spec is None:
                raise UnknownChannelError(f"channel {name!r} is not one of AOP_CHANNELS")
            if spec.claim_format != LEGACY_FORMAT:
                raise LegacyParityError(
                    f"channel {spec.name!r} has attention format {spec.claim_format}: only "
                    f"{LEGACY_FORMAT} roots are the legacy's (AOP_ATTENTION_FORMATS)"
                )
            specs.append(spec)
    else:
        specs = [c for c in attention.channels if c.claim_format == LEGACY_FORMAT]
        if not specs:
            raise LegacyParityError(
                f"no channel's attention format is {LEGACY_FORMAT}: there is nothing to compare "
                "with the legacy (AOP_ATTENTION_FORMATS, AOP_ATTENTION_FORMAT_DEFAULT)"
            )
    for option, value in (("--from", first), ("--to", last)):
        if value is not None and (value < 0 or value % length):
            raise LegacyParityError(
                f"{option} must be an epoch id: unix seconds, a multiple of "
                f"AOP_ATTENTION_EPOCH_SECONDS {length} (got {value})"
            )
    if first is not None and last is not None and first > last:
        raise LegacyParityError(f"--from must not be after --to (got {first} > {last})")
    if grace_s < 0:
        raise LegacyParityError(f"--grace must be >= 0 seconds (got {grace_s})")
    keys: dict[int, list[str]] = {}
    for channel in attention.channels:
        keys.setdefault(channel.partition, []).append(channel.key)
    unique = {s.name: LegacyChannel(s.name, s.key, s.partition) for s in specs}
    return LegacyPlan(
        channels=tuple(sorted(unique.values(), key=lambda c: c.name)),
        partition_keys={p: tuple(k) for p, k in sorted(keys.items())},
        epoch_seconds=length,
        first=first,
        last=last,
        grace_s=grace_s,
    )


@dataclass(frozen=True)
class OurRoots:
    """Our side at one moment (`read_ours`)."""

    #: (channel, epoch) -> root.
    roots: Mapping[tuple[str, int], bytes]
    #: channel -> the last epoch closed on its partition (channels of partitions without an
    #: attention root left out: nothing is known closed there).
    closed_through: Mapping[str, int]


def read_ours(store: AttentionRootStore, plan: LegacyPlan) -> OurRoots:
    """Our ring-v0-legacy roots of the plan's channels and how far each one's partition is
    closed; the watermarks are read first, so no root read is of an epoch past them."""
    every_key = [k for keys in plan.partition_keys.values() for k in keys]
    closed_ms = store.attention_closed_ms(every_key)
    through: dict[str, int] = {}
    for channel in plan.channels:
        marks = [closed_ms[k] for k in plan.partition_keys[channel.partition] if k in closed_ms]
        if marks:
            through[channel.name] = epoch_of(max(marks), plan.epoch_seconds) - plan.epoch_seconds
    names = {c.key: c.name for c in plan.channels}
    roots = {
        (names[key], epoch): root
        for key, epoch, root in store.epoch_roots(list(names), LEGACY_FORMAT)
    }
    return OurRoots(roots, through)


def judge(
    channel: str,
    epoch: int,
    ours: bytes | None,
    legacy: bytes | None,
    *,
    epoch_seconds: int,
    grace_s: int,
    now_ms: int,
) -> Check | None:
    """The verdict on (channel, epoch) (module docstring); None when neither side has a root."""
    if ours is None and legacy is None:
        return None
    verdict: Verdict
    if ours is not None and legacy is not None:
        verdict = "MATCH" if ours == legacy else "MISMATCH"
    elif now_ms < (epoch + epoch_seconds + grace_s) * 1000:
        verdict = "PENDING"
    else:
        verdict = "MISSING_LEGACY" if legacy is None else "MISSING_OURS"
    return Check(channel, epoch, verdict, ours, legacy)


def _hex(root: bytes | None) -> str:
    return "none" if root is None else "0x" + root.hex()


@dataclass(frozen=True)
class Check:
    """One verdict on (channel, epoch), with both roots (None: that side has none)."""

    channel: str
    epoch: int
    verdict: Verdict
    ours: bytes | None
    legacy: bytes | None

    def line(self) -> str:
        """`VERDICT channel epoch (UTC start): roots`: one line of output and report."""
        start = dt.datetime.fromtimestamp(self.epoch, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
        head = f"{self.verdict} {self.channel} epoch {self.epoch} ({start})"
        if self.verdict == "MATCH":
            return f"{head}: root {_hex(self.ours)}"
        return f"{head}: ours {_hex(self.ours)} legacy {_hex(self.legacy)}"


@dataclass(frozen=True)
class RoundResult:
    """What one round compared (`checks`) and the verdicts that changed (`changed`)."""

    checks: list[Check]
    changed: list[Check]


@dataclass
class LegacyComparison:
    """The comparison across rounds: each (channel, epoch)'s latest verdict."""

    plan: LegacyPlan
    latest: dict[tuple[str, int], Check] = field(default_factory=dict)
    rounds: int = 0

    def targets(self, ours: OurRoots) -> list[tuple[str, int]]:
        """The (channel, epoch) to compare this round, in channel then epoch order."""
        length = self.plan.epoch_seconds
        names = {c.name for c in self.plan.channels}
        starts = [epoch for (name, epoch) in ours.roots if name in names]
        first = self.plan.first if self.plan.first is not None else min(starts, default=None)
        if first is None:
            return []
        out = []
        for channel in self.plan.channels:
            through = ours.closed_through.get(channel.name)
            if through is None:
                continue
            last = through if self.plan.last is None else min(through, self.plan.last)
            for epoch in range(first, last + 1, length):
                done = self.latest.get((channel.name, epoch))
                if done is None or done.verdict != "MATCH":
                    out.append((channel.name, epoch))
        return out

    def round(self, ours: OurRoots, legacy: LegacyRoots, *, now_ms: int) -> RoundResult:
        """Steps 2-5 of a round (module docstring) over `ours` (step 1).

        Raises:
            LegacyParityError: the legacy side fails (`LegacyReader.root`); nothing of the
                round is kept then.
        """
        answers = [
            (channel, epoch, legacy.root(channel, epoch)) for channel, epoch in self.targets(ours)
        ]
        checks, changed = [], []
        for channel, epoch, theirs in answers:
            check = judge(
                channel,
                epoch,
                ours.roots.get((channel, epoch)),
                theirs,
                epoch_seconds=self.plan.epoch_seconds,
                grace_s=self.plan.grace_s,
                now_ms=now_ms,
            )
            if check is None:
                continue
            checks.append(check)
            if self.latest.get((channel, epoch)) != check:
                changed.append(check)
            self.latest[(channel, epoch)] = check
        self.rounds += 1
        return RoundResult(checks, changed)

    def counts(self) -> Counter[str]:
        """Latest verdicts by kind, every kind present."""
        counts: Counter[str] = Counter(dict.fromkeys(VERDICTS, 0))
        counts.update(c.verdict for c in self.latest.values())
        return counts

    def exit_code(self) -> int:
        """0: every latest verdict MATCH or PENDING, and one MATCH at least; else 1."""
        counts = self.counts()
        if any(counts[v] for v in FAILURES) or not counts["MATCH"]:
            return 1
        return 0

    def summary(self, *, last_round_failed: bool = False) -> str:
        """One line: how many (channel, epoch) have a verdict, by kind, and the exit code
        (2 when the last round failed)."""
        counts = self.counts()
        kinds = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
        if last_round_failed:
            code, note = 2, " (the last round failed)"
        else:
            code = self.exit_code()
            note = " (nothing compared)" if not counts["MATCH"] and code else ""
        return (
            f"SUMMARY {len(self.latest)} (channel, epoch) over {self.rounds} round(s): "
            f"{kinds}; exit {code}{note}"
        )
