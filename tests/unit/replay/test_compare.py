"""Replayed vs stored: every field, leaf and level; each differing wallet classified once."""

from __future__ import annotations

import json
from typing import Any

from aop.core.fold import fold_log
from aop.core.fold_output import RootOutput
from aop.replay.compare import (
    Status,
    WalletDiff,
    compare_leaves,
    compare_levels,
    compare_root,
    digest_match_report,
    matches_digest,
)
from aop.replay.stored_roots import StoredDigest, StoredRoot
from tests.support.fold_logs import config_for, key
from tests.unit.replay.logs import alpha_log

W = [key(f"w{i}") for i in range(6)]


def stored_from(replayed: RootOutput, **changes: Any) -> StoredRoot:
    """The rows the projector writes for `root` (then `changes` to the roots row)."""
    record, tree = replayed.epoch_root, replayed.tree
    row = {
        "channel": record["channel"],
        "epoch": record["epoch"],
        "format": record["format"],
        "program_id": record["program_id"],
        "mint": record["mint"],
        "root": record["root"],
        "dataset_hash": record["dataset_hash"],
        "leaf_count": record["leaf_count"],
        "tree_depth": max(len(tree.levels) - 1, 0),
        "total": int(record["total"]),
        "emission": int(record["emission"]),
        "closed_at_slot": record["closed_at_slot"],
        "input_offsets": json.dumps(record["input"]),
        **changes,
    }
    leaves = [(i, w, a) for i, (w, a) in enumerate(zip(tree.wallets, tree.amounts, strict=True))]
    levels = [(i, len(b) // 32, b) for i, b in enumerate(tree.levels)]
    return StoredRoot(row, leaves, levels)


def alpha_roots() -> list[RootOutput]:
    config = config_for(["alpha", "beta"], epoch_slots=100, emission=1_000_000)
    offsets: dict[int, int] = {}
    log = []
    for partition, batch in alpha_log(config):
        offsets[partition] = offsets.get(partition, -1) + 1
        log.append((partition, offsets[partition], batch))
    return fold_log(log, config)


def test_root_stored_as_replayed_matches() -> None:
    root = alpha_roots()[1]
    report = compare_root(root, stored_from(root), max_wallets=10, closing_offset=3)
    assert report.status == Status.MATCH
    assert (report.fields, report.leaves.match, report.levels.match) == ([], True, True)
    assert report.failed is False


def test_field_diffs_show_both_values_bytes_as_hex() -> None:
    root = alpha_roots()[1]
    stored = stored_from(root, total=5, input_offsets=[], root=b"\x01" * 32)
    report = compare_root(root, stored, max_wallets=10, closing_offset=3)
    assert report.status == Status.MISMATCH
    assert [(d.field, d.replayed, d.stored) for d in report.fields] == [
        ("root", root.tree.root.hex(), "01" * 32),
        ("total", 2_000_000, 5),
        ("input_offsets", [{"partition": 1, "first_offset": 2, "last_offset": 3}], []),
    ]


def test_leaves_classify_amount_missing_extra_and_order() -> None:
    """W0 amount differs, W1 only replayed, W5 only stored, W2/W3 swapped places."""
    wallets, amounts = [W[0], W[1], W[2], W[3]], [10, 20, 30, 40]
    stored = [(0, W[0], 11), (1, W[3], 40), (2, W[2], 30), (3, W[5], 7)]
    report = compare_leaves(wallets, amounts, stored, max_wallets=10)
    assert report.match is False
    assert report.counts == {"amount": 1, "missing_in_store": 1, "extra_in_store": 1, "order": 1}
    expected = {
        W[0]: WalletDiff(W[0], "amount", 10, 11, 0, 0),
        W[1]: WalletDiff(W[1], "missing_in_store", 20, None, 1, None),
        W[3]: WalletDiff(W[3], "order", 40, 40, 3, 1),
        W[5]: WalletDiff(W[5], "extra_in_store", None, 7, None, 3),
    }
    assert report.wallets == [expected[w] for w in sorted(expected)]
    assert [d.delta for d in report.wallets] == [expected[w].delta for w in sorted(expected)]
    assert expected[W[0]].delta == -1 and expected[W[5]].delta == -7


def test_leaves_list_at_most_max_wallets_but_count_all() -> None:
    stored = [(i, W[i], 1) for i in range(5)]
    report = compare_leaves(W[:5], [2] * 5, stored, max_wallets=2)
    assert report.counts["amount"] == 5
    assert [d.wallet for d in report.wallets] == sorted(W[:5])[:2]


def test_leaves_report_index_gaps_and_repeated_wallets() -> None:
    stored = [(0, W[0], 1), (2, W[1], 2), (3, W[1], 2)]
    report = compare_leaves([W[0], W[1]], [1, 2], stored, max_wallets=5)
    assert report.problems == [
        "stored leaf_index values are not 0..leaf_count-1",
        f"stored wallet {W[1].hex()} repeats at leaf 3",
    ]
    assert report.match is False


def test_levels_name_the_first_differing_node() -> None:
    levels = (b"\x00" * 32 + b"\x01" * 32, b"\x02" * 32)
    same = [(0, 2, levels[0]), (1, 1, levels[1])]
    assert compare_levels(levels, same).match is True
    changed = [(0, 2, b"\x00" * 32 + b"\x09" * 32), (1, 1, levels[1])]
    assert compare_levels(levels, changed).detail == (
        f"level 0 node 1: replayed {'01' * 32}, stored {'09' * 32}"
    )
    assert compare_levels(levels, same[:1]).detail == "2 levels replayed, 1 stored"
    assert compare_levels(levels, [(0, 3, levels[0]), same[1]]).detail == (
        "level 0: node_count 3 but 64 bytes of nodes"
    )


# -- roots whose proofs were pruned (projections.retention) ------------------------------------


def pruned_from(replayed: RootOutput, **changes: Any) -> StoredRoot:
    """The row of `replayed` as stored once pruned: flagged, no leaves, no levels."""
    row = stored_from(replayed, proofs_pruned=True, **changes).row
    return StoredRoot(row, [], [])


def pruned_digest(replayed: RootOutput, **changes: Any) -> StoredDigest:
    """`root_digest` of a pruned root: the server finds no leaf and no level."""
    row = pruned_from(replayed, **changes).row
    return StoredDigest(row, 0, False, None, [])


def test_pruned_root_with_matching_fields_is_a_match_with_leaves_and_levels_pruned() -> None:
    root = alpha_roots()[1]
    report = compare_root(root, pruned_from(root), max_wallets=10, closing_offset=3)
    assert report.status == Status.MATCH
    assert (report.fields, report.leaves, report.levels) == ([], None, None)
    assert report.proofs_pruned is True
    assert report.failed is False


def test_pruned_root_whose_root_hash_differs_is_a_mismatch() -> None:
    root = alpha_roots()[1]
    report = compare_root(
        root, pruned_from(root, root=b"\x02" * 32), max_wallets=10, closing_offset=3
    )
    assert report.status == Status.MISMATCH
    assert [(d.field, d.replayed, d.stored) for d in report.fields] == [
        ("root", root.tree.root.hex(), "02" * 32)
    ]
    assert (report.leaves, report.levels, report.proofs_pruned) == (None, None, True)
    assert report.failed is True


def test_digest_of_a_pruned_root_matches_on_fields_alone() -> None:
    """No leaf and no level stored: the digest check passes on the fields, and its report
    says pruned; a differing leaf_count fails it (and sends the caller to compare_root)."""
    root = alpha_roots()[1]
    digest = pruned_digest(root)
    assert matches_digest(root, digest) is True
    report = digest_match_report(
        root, digest, channel="alpha", channel_config="Cfg", closing_offset=3
    )
    assert (report.status, report.leaves, report.levels, report.proofs_pruned) == (
        Status.MATCH,
        None,
        None,
        True,
    )
    assert matches_digest(root, pruned_digest(root, leaf_count=99)) is False
    # the same digest not flagged: the empty leaves and levels are a mismatch, not a match
    unflagged = StoredDigest({**digest.row, "proofs_pruned": False}, 0, False, None, [])
    assert matches_digest(root, unflagged) is False
