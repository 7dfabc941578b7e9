"""Traces, text and JSON reports, and the parity metrics file."""

from __future__ import annotations

from pathlib import Path

from solders.pubkey import Pubkey

from aop.replay.compare import (
    ChainReport,
    FieldDiff,
    LeafReport,
    LevelReport,
    RootReport,
    Status,
    TracedEvent,
    WalletDiff,
)
from aop.replay.explain import _trace
from aop.replay.parity import (
    ParityResult,
    record_failure,
    record_metrics,
    write_metrics_file,
)
from aop.replay.report import render_text, report_json
from aop.replay.run import ChannelRun, ReplayReport
from tests.support.fold_logs import key

W = key("wallet")


def event(offset: int, epoch: int, ignored: str = "") -> TracedEvent:
    return TracedEvent(
        offset, f"sig{offset}:0", epoch * 100, epoch, "ChannelStaked", 5, 10_000, ignored
    )


def test_trace_finds_the_first_root_seq_where_amounts_part() -> None:
    """Roots 1-2 agree, 3 differs (stored has no leaf: 0): the events of epoch 2 are listed."""
    events = [event(0, 0), event(4, 2), event(5, 2, "late: slot <= the partition's watermark 9")]
    trace = _trace(W, {1: 10, 2: 20, 3: 30}, {1: 10, 2: 20}, {1: 0, 2: 1, 3: 2}, events)
    assert (trace.diverges_at, trace.diverges_epoch, trace.replayed, trace.stored) == (3, 2, 30, 0)
    assert trace.events == events[1:]
    assert (trace.total_events, trace.note) == (3, "")


def test_trace_without_events_in_the_diverging_epoch_says_so() -> None:
    trace = _trace(W, {1: 10, 2: 20}, {1: 10, 2: 25}, {1: 0, 2: 1}, [event(0, 0)])
    assert (trace.diverges_at, trace.events) == (2, [event(0, 0)])
    assert trace.note.startswith("no event of this wallet in epoch 1: its amount there follows")


def test_trace_of_agreeing_amounts_has_no_divergence() -> None:
    trace = _trace(W, {1: 10}, {1: 10}, {1: 0}, [])
    assert (trace.diverges_at, trace.note) == (
        None,
        "replayed and stored amounts agree in every root replayed",
    )


def sample_report() -> ReplayReport:
    good = RootReport(
        "alpha",
        "Cfg",
        1,
        0,
        Status.MATCH,
        replayed={"root": "ab" * 32, "leaf_count": 3},
        chain=ChainReport("match", "", b"\xab" * 32, b"\x01" * 32, 77),
    )
    bad = RootReport(
        "alpha",
        "Cfg",
        2,
        1,
        Status.MISMATCH,
        replayed={"root": "cd" * 32, "leaf_count": 3},
        leaves=LeafReport(
            3,
            3,
            False,
            {"amount": 1, "missing_in_store": 0, "extra_in_store": 0, "order": 0},
            [WalletDiff(W, "amount", 1_500, 1_000, 2, 2)],
        ),
        levels=LevelReport(True),
        chain=ChainReport("skipped", "--no-chain"),
    )
    run = ChannelRun("alpha", "Cfg", 1, "cumulative-v2", "all", roots=[good, bad])
    return ReplayReport([run], "skipped (--no-chain)", 1.5)


def test_text_report_names_wallet_amounts_and_verdict() -> None:
    assert render_text(sample_report()).splitlines() == [
        "channel alpha (cumulative-v2, Cfg, partition 1)",
        f"  root_seq 1 (epoch 0): MATCH (root {'ab' * 8}…, 3 leaves; on-chain: match)",
        "  root_seq 2 (epoch 1): MISMATCH",
        "    leaves: 3 replayed, 3 stored; 1 amounts differ, 0 missing in Postgres, 0 extra in "
        "Postgres, 0 out of order",
        f"      {Pubkey.from_bytes(W)}  amount: replayed 1,500, stored 1,000 (delta +500)",
        "chain comparison: skipped (--no-chain)",
        "MISMATCH: 1 of 2 root(s) differ",
    ]


def test_json_report_is_complete_and_machine_readable() -> None:
    document = report_json(sample_report())
    assert (document["status"], document["roots_checked"], document["mismatches"]) == (
        "mismatch",
        2,
        1,
    )
    first, second = document["channels"][0]["roots"]
    assert first["chain"] == {
        "status": "match",
        "detail": "",
        "root": "ab" * 32,
        "dataset_hash": "01" * 32,
        "published_slot": 77,
    }
    assert second["leaves"]["wallets"] == [
        {
            "wallet": str(Pubkey.from_bytes(W)),
            "kind": "amount",
            "replayed": 1_500,
            "stored": 1_000,
            "delta": 500,
            "replayed_index": 2,
            "stored_index": 2,
        }
    ]


def test_parity_metrics_file_is_prometheus_text(tmp_path: Path) -> None:
    """A finished run sets every gauge; a run that could not complete marks success 0."""
    path = tmp_path / "aop_parity.prom"
    record_metrics(ParityResult(sample_report(), 4, 1000.0, 1012.5))
    write_metrics_file(path)
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert lines == [
        "aop_parity_roots_checked 2.0",
        "aop_parity_mismatches 1.0",
        'aop_parity_channel_mismatches{channel="alpha"} 1.0',
        "aop_parity_last_run_timestamp_seconds 1012.5",
        "aop_parity_last_run_success 0.0",
        "aop_parity_run_seconds 12.5",
    ]
    assert "# TYPE aop_parity_mismatches gauge" in path.read_text()
    record_failure(2000.0)
    write_metrics_file(path)
    text = path.read_text()
    assert "aop_parity_last_run_success 0.0" in text
    assert [p.name for p in tmp_path.iterdir()] == ["aop_parity.prom"]


def test_pruned_roots_say_so_in_text_and_json() -> None:
    """A pruned root that matches on its fields, and one whose root differs."""
    matched = RootReport(
        "alpha", "Cfg", 1, 0, Status.MATCH, replayed={"root": "ab" * 32, "leaf_count": 3},
        proofs_pruned=True,
    )  # fmt: skip
    differs = RootReport(
        "alpha", "Cfg", 2, 1, Status.MISMATCH, replayed={"root": "cd" * 32, "leaf_count": 3},
        fields=[FieldDiff("root", "cd" * 32, "ef" * 32)], proofs_pruned=True,
    )  # fmt: skip
    run = ChannelRun("alpha", "Cfg", 1, "cumulative-v2", "all", roots=[matched, differs])
    report = ReplayReport([run], "skipped (--no-chain)", 1.0)
    lines = render_text(report).splitlines()
    assert lines[1:5] == [
        f"  root_seq 1 (epoch 0): MATCH (root {'ab' * 8}…, 3 leaves; leaves and levels pruned, "
        "fields compared)",
        "  root_seq 2 (epoch 1): MISMATCH",
        "    leaves and tree levels: pruned in Postgres (only the fields compared)",
        f"    root: replayed {'cd' * 32}, stored {'ef' * 32}",
    ]
    roots = report_json(report)["channels"][0]["roots"]
    assert [(r["status"], r["proofs_pruned"], r["leaves"], r["levels"]) for r in roots] == [
        ("match", True, None, None),
        ("mismatch", True, None, None),
    ]


def test_trace_skips_roots_whose_stored_leaves_were_pruned() -> None:
    """Root 1 is pruned (no stored leaf, read as 0): compared, it would be the divergence;
    skipped, the trace finds root 3."""
    replayed, stored, epochs = {1: 10, 2: 20, 3: 31}, {2: 20, 3: 30}, {1: 0, 2: 1, 3: 2}
    assert _trace(W, replayed, stored, epochs, []).diverges_at == 1
    trace = _trace(W, replayed, stored, epochs, [], pruned=frozenset({1}))
    assert (trace.diverges_at, trace.replayed, trace.stored) == (3, 31, 30)
