"""Which wallet an attention epoch pays: the binding in force at the epoch's start."""

from __future__ import annotations

from itertools import permutations

from aop.core.attention.bindings import BindingEntry, add_binding, prune, wallet_for_epoch

W1, W2, W3 = (bytes([n]) * 32 for n in (1, 2, 3))
HOUR = 3600


def _history(*entries: BindingEntry) -> tuple[BindingEntry, ...]:
    history: tuple[BindingEntry, ...] = ()
    for entry in entries:
        history = add_binding(history, entry)
    return history


def test_a_binding_applies_from_the_next_epoch_on() -> None:
    """Bound to W1 at 00:30 (1,800,000 ms) of epoch 0: epoch 0 is unbound, epoch 3600 pays W1.
    Rebound to W2 at 01:59:59.999 (7,199,999 ms): epoch 3600 still pays W1, epoch 7200 W2."""
    history = _history((1_800_000, "b1", W1), (7_199_999, "b2", W2))
    assert wallet_for_epoch(history, 0) is None
    assert wallet_for_epoch(history, HOUR) == W1
    assert wallet_for_epoch(history, 2 * HOUR) == W2


def test_a_binding_at_the_epochs_first_millisecond_waits_for_the_next() -> None:
    """observed_at = 3,600,000 ms is inside epoch 3600: it applies from 7200."""
    history = _history((3_600_000, "b1", W1))
    assert wallet_for_epoch(history, HOUR) is None
    assert wallet_for_epoch(history, 2 * HOUR) == W1


def test_arrival_order_never_matters_and_ties_go_by_id_then_wallet() -> None:
    """Three bindings in the same millisecond: the greatest (ms, id, wallet) wins, i.e. id
    "b2" over "b1", and of the two "b2" ones the wallet 0x03.. over 0x02..."""
    entries = [(1000, "b1", W1), (1000, "b2", W2), (1000, "b2", W3)]
    got = {wallet_for_epoch(_history(*order), HOUR) for order in permutations(entries)}
    assert got == {W3}


def test_a_repeated_binding_changes_nothing() -> None:
    entry = (1000, "b1", W1)
    assert _history(entry, entry) == (entry,)


def test_prune_keeps_what_later_epochs_read() -> None:
    """From epoch 7200 on, only the newest binding before 7,200,000 ms and the later ones
    matter: the 1,000 ms one goes, the 5,000,000 and 8,000,000 ms ones stay."""
    history = _history((1000, "a", W1), (5_000_000, "b", W2), (8_000_000, "c", W3))
    pruned = prune(history, 2 * HOUR)
    assert pruned == ((5_000_000, "b", W2), (8_000_000, "c", W3))
    for epoch in (2 * HOUR, 3 * HOUR):
        assert wallet_for_epoch(pruned, epoch) == wallet_for_epoch(history, epoch)
