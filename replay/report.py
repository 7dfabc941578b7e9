"""A replay report as text for operators and as JSON for machines (pure).

JSON shape (`report_json`)::

    {"status": "match" | "mismatch", "roots_checked": n, "mismatches": n, "chain": "...",
     "seconds": s,
     "channels": [{"channel", "channel_config", "partition", "format", "mode",
                   "read": {"stop_offset", "read_to", "records", "events", "seconds",
                            "events_per_second", "fold_counts": {...}},
                   "roots": [{"root_seq", "epoch", "status", "replayed": {...} | null,
                              "fields": [{"field", "replayed", "stored"}],
                              "leaves": {"match", "replayed_count", "stored_count", "counts",
                                         "wallets": [{"wallet", "kind", "replayed", "stored",
                                                      "delta", ...}], "problems"} | null,
                              "levels": {"match", "detail"} | null,
                              "proofs_pruned": bool (true: the stored root's leaves and
                                               levels were pruned, only its fields compared;
                                               leaves and levels are null),
                              "chain": {"status", "detail", "root", "dataset_hash",
                                        "published_slot"} | null,
                              "traces": [{"wallet", "diverges_at", "diverges_epoch",
                                          "replayed", "stored", "total_events", "note",
                                          "events": [{"offset", "event_id", "slot", "epoch",
                                                      "name", "amount", "boost_bps",
                                                      "ignored"}]}]}]}]}

Wallets are base58; hashes hex; amounts JSON integers (u64 may exceed 2^53: parse them as
big integers).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from solders.pubkey import Pubkey

from aop.replay.compare import RootReport, Status, WalletTrace
from aop.replay.run import ChannelRun, ReplayReport

__all__ = ["render_text", "report_json"]


def _b58(key: bytes) -> str:
    return str(Pubkey.from_bytes(key))


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _trace_json(trace: WalletTrace) -> dict[str, Any]:
    return {
        "wallet": _b58(trace.wallet),
        "diverges_at": trace.diverges_at,
        "diverges_epoch": trace.diverges_epoch,
        "replayed": trace.replayed,
        "stored": trace.stored,
        "total_events": trace.total_events,
        "note": trace.note,
        "events": [asdict(e) for e in trace.events],
    }


def _root_json(report: RootReport) -> dict[str, Any]:
    leaves = None
    if report.leaves is not None:
        leaves = {
            "match": report.leaves.match,
            "replayed_count": report.leaves.replayed_count,
            "stored_count": report.leaves.stored_count,
            "counts": report.leaves.counts,
            "problems": report.leaves.problems,
            "wallets": [
                {
                    "wallet": _b58(d.wallet),
                    "kind": d.kind,
                    "replayed": d.replayed,
                    "stored": d.stored,
                    "delta": d.delta,
                    "replayed_index": d.replayed_index,
                    "stored_index": d.stored_index,
                }
                for d in report.leaves.wallets
            ],
        }
    chain = None
    if report.chain is not None:
        chain = {
            "status": report.chain.status,
            "detail": report.chain.detail,
            "root": _hex(report.chain.root),
            "dataset_hash": _hex(report.chain.dataset_hash),
            "published_slot": report.chain.published_slot,
        }
    return {
        "root_seq": report.root_seq,
        "epoch": report.epoch,
        "status": report.status.value,
        "failed": report.failed,
        "closing_offset": report.closing_offset,
        "replayed": report.replayed,
        "fields": [asdict(f) for f in report.fields],
        "leaves": leaves,
        "levels": None if report.levels is None else asdict(report.levels),
        "proofs_pruned": report.proofs_pruned,
        "chain": chain,
        "traces": [_trace_json(t) for t in report.traces],
    }


def _channel_json(run: ChannelRun) -> dict[str, Any]:
    read = None
    if run.read is not None:
        r = run.read
        read = {
            "partition": r.partition,
            "stop_offset": r.stop,
            "read_to": r.read_to,
            "records": r.records,
            "events": r.events,
            "seconds": round(r.seconds, 3),
            "events_per_second": round(r.events / r.seconds) if r.seconds > 0 else None,
            "fold_counts": dict(sorted(r.counts.items())),
            "times": {k: round(v, 3) for k, v in asdict(r.times).items()},
        }
    return {
        "channel": run.name,
        "channel_config": run.key,
        "partition": run.partition,
        "format": run.format,
        "mode": run.mode,
        "read": read,
        "roots": [_root_json(r) for r in run.roots],
    }


def report_json(report: ReplayReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (module docstring)."""
    return {
        "status": "match" if report.ok else "mismatch",
        "roots_checked": report.roots_checked,
        "mismatches": report.mismatches,
        "chain": report.chain,
        "seconds": round(report.seconds, 3),
        "channels": [_channel_json(c) for c in report.channels],
    }


def _amount(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _root_lines(report: RootReport) -> list[str]:
    head = f"  root_seq {report.root_seq} (epoch {report.epoch}): "
    chain = ""
    chain_bad = report.chain is not None and report.chain.status == "mismatch"
    if report.chain is not None and report.chain.status not in ("skipped", "mismatch"):
        chain = f"; on-chain: {report.chain.status.replace('_', ' ')}"
    replayed = report.replayed or {}
    pruned = "; leaves and levels pruned, fields compared" if report.proofs_pruned else ""
    if report.status == Status.MATCH and not chain_bad:
        count = int(replayed.get("leaf_count", 0))
        return [
            head + f"MATCH (root {str(replayed.get('root', ''))[:16]}…, "
            f"{count:,} {'leaf' if count == 1 else 'leaves'}{pruned}{chain})"
        ]
    if report.status == Status.MATCH and report.chain is not None:
        return [
            head + "MISMATCH ON-CHAIN (Postgres matches the replay)",
            f"    on-chain: {report.chain.detail}; replayed root {replayed.get('root')}",
        ]
    if report.status == Status.UNPROJECTED:
        return [head + "replayed, not projected yet (newer than every stored root)" + chain]
    if report.status == Status.PURGED:
        return [head + "replayed; purged from the roots topic, so not rebuilt (expected)"]
    if report.status == Status.MISSING_IN_STORE:
        return [
            head + "MISSING IN POSTGRES (the replay produces it; newer roots are stored)" + chain
        ]
    if report.status == Status.NOT_REPLAYED:
        return [head + "NOT REPLAYED (stored in Postgres; the log does not produce it)"]
    lines = [head + "MISMATCH" + chain]
    if report.proofs_pruned:
        lines.append("    leaves and tree levels: pruned in Postgres (only the fields compared)")
    if chain_bad and report.chain is not None:
        lines.append(f"    on-chain: {report.chain.detail}")
    for diff in report.fields:
        lines.append(f"    {diff.field}: replayed {diff.replayed}, stored {diff.stored}")
    leaves = report.leaves
    if leaves is not None and not leaves.match:
        counts = leaves.counts
        lines.append(
            f"    leaves: {leaves.replayed_count:,} replayed, {leaves.stored_count:,} stored; "
            f"{counts.get('amount', 0)} amounts differ, "
            f"{counts.get('missing_in_store', 0)} missing in Postgres, "
            f"{counts.get('extra_in_store', 0)} extra in Postgres, "
            f"{counts.get('order', 0)} out of order"
        )
        for problem in leaves.problems:
            lines.append(f"    leaves: {problem}")
        for d in leaves.wallets:
            lines.append(
                f"      {_b58(d.wallet)}  {d.kind}: replayed {_amount(d.replayed)}, "
                f"stored {_amount(d.stored)} (delta {d.delta:+,})"
            )
        shown = len(leaves.wallets)
        total = sum(counts.values())
        if total > shown:
            lines.append(f"      … {total - shown} more")
    if report.levels is not None and not report.levels.match:
        lines.append(f"    tree levels: {report.levels.detail}")
    for trace in report.traces:
        lines.extend(_trace_lines(trace))
    return lines


def _trace_lines(trace: WalletTrace) -> list[str]:
    wallet = _b58(trace.wallet)
    if trace.diverges_at is None:
        lines = [f"    trace {wallet}: {trace.note}"]
    else:
        lines = [
            f"    trace {wallet}: diverges at root_seq {trace.diverges_at} (epoch "
            f"{trace.diverges_epoch}): replayed {_amount(trace.replayed)}, stored "
            f"{_amount(trace.stored)}; {trace.total_events} event(s) on the log"
        ]
        if trace.note:
            lines.append(f"      {trace.note}")
    for e in trace.events:
        what = f"{e.name} amount {e.amount:,} boost {e.boost_bps}" if e.amount else e.name
        ignored = f"  [ignored: {e.ignored}]" if e.ignored else ""
        lines.append(
            f"      offset {e.offset} slot {e.slot} (epoch {e.epoch}) {e.event_id}: {what}{ignored}"
        )
    return lines


def render_text(report: ReplayReport) -> str:
    """The report for a terminal: per channel, per root, then MATCH or MISMATCH."""
    lines = []
    for run in report.channels:
        read = run.read
        where = ""
        if read is not None:
            rate = f", {read.events / read.seconds:,.0f} events/s" if read.seconds > 0 else ""
            where = (
                f": read offsets 0..{read.read_to - 1} of {read.stop} ({read.records:,} records, "
                f"{read.events:,} events) in {read.seconds:.1f} s{rate}"
            )
        lines.append(
            f"channel {run.name} ({run.format}, {run.key}, partition {run.partition}){where}"
        )
        if not run.roots:
            lines.append("  no roots to compare")
        for root in run.roots:
            lines.extend(_root_lines(root))
    lines.append(f"chain comparison: {report.chain}")
    if report.ok:
        lines.append(f"MATCH: {report.roots_checked} root(s) checked")
    else:
        lines.append(f"MISMATCH: {report.mismatches} of {report.roots_checked} root(s) differ")
    return "\n".join(lines)
