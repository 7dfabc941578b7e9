"""Which wallet an attention epoch pays a user: the binding in force when the epoch starts.

A binding (schemas/avro/Binding.avsc) names the wallet a user is paid to "from the next
epoch on". The exact rule: attention epoch s (unix seconds) pays the wallet of the user's
binding with the greatest `(observed_at_ms, id, wallet)` among those with `observed_at_ms <
s × 1000`. A binding made during epoch s thus applies from the epoch after it, never to an
epoch already running, and the order bindings arrive in never matters (ties of one
millisecond go by id, then wallet bytes). A user with no such binding is unbound: its weight
is not paid to anyone (the fold counts such users, `unbound_users`).

A user's history is a sorted tuple of `(observed_at_ms, id, wallet)` entries; once epochs
before s are all closed, entries older than the newest one before s are never read again
(`prune`).
"""

from __future__ import annotations

import bisect

__all__ = ["BindingEntry", "add_binding", "prune", "wallet_for_epoch"]

#: (observed_at_ms, binding id, wallet): ordered as the rule compares them.
BindingEntry = tuple[int, str, bytes]


def add_binding(history: tuple[BindingEntry, ...], entry: BindingEntry) -> tuple[BindingEntry, ...]:
    """`history` with `entry` in its place (a repeat of an entry changes nothing)."""
    at = bisect.bisect_left(history, entry)
    if at < len(history) and history[at] == entry:
        return history
    return (*history[:at], entry, *history[at:])


def wallet_for_epoch(history: tuple[BindingEntry, ...], epoch_start_s: int) -> bytes | None:
    """The wallet epoch `epoch_start_s` pays (module docstring), or None: unbound."""
    before = bisect.bisect_left(history, (epoch_start_s * 1000, "", b""))
    return history[before - 1][2] if before else None


def prune(history: tuple[BindingEntry, ...], epoch_start_s: int) -> tuple[BindingEntry, ...]:
    """`history` without what no epoch from `epoch_start_s` on can read: the entries older
    than the newest one observed before that epoch's start."""
    before = bisect.bisect_left(history, (epoch_start_s * 1000, "", b""))
    return history[max(before - 1, 0) :]
