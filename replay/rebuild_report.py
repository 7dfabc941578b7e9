"""A rebuild report as text and as JSON (pure)."""

from __future__ import annotations

from typing import Any

from aop.replay.digest import TableDigest
from aop.replay.rebuild import RebuildReport
from aop.replay.report import render_text, report_json

__all__ = ["rebuild_json", "render_rebuild"]


def _digest(d: TableDigest | None) -> dict[str, Any] | None:
    return None if d is None else {"rows": d.rows, "digest": d.digest, "error": d.error}


def rebuild_json(report: RebuildReport) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    return {
        "kind": "aop.rebuild",
        "decision": report.decision,
        "reason": report.reason,
        "schema": report.schema,
        "build_schema": report.build_schema,
        "old_schema": report.old_schema,
        "old_state": report.old_state,
        "settlement_source": report.settlement_source,
        "seconds": round(report.seconds, 3),
        "loads": [
            {
                "written": load.written,
                "duplicates": load.duplicates,
                "claim_rows": load.claim_rows,
                "rejected": load.rejected,
                "purged_remainder": load.purged_remainder,
                "offsets": {t: {str(p): o for p, o in v.items()} for t, v in load.offsets.items()},
            }
            for load in report.loads
        ],
        "verification": None if report.verification is None else report_json(report.verification),
        "unverified_channels": report.unverified,
        "old_verification": (
            None if report.old_verification is None else report_json(report.old_verification)
        ),
        "old_differs": report.old_differs,
        "purged_absent": report.purged_absent,
        "purged_replayed": report.purged_replayed,
        "tables": {
            t: {side: _digest(d) for side, d in sides.items()} for t, sides in report.tables.items()
        },
    }


def _rows(d: TableDigest | None) -> str:
    if d is None:
        return "-"
    return "unreadable" if d.rows is None else f"{d.rows:,}"


def render_rebuild(report: RebuildReport) -> str:
    """The report for a terminal."""
    written = sum(x.written for x in report.loads)
    duplicates = sum(x.duplicates for x in report.loads)
    rejected = [r for x in report.loads for r in x.rejected]
    claims = sum(x.claim_rows for x in report.loads)
    lines = [
        f"rebuild of schema {report.schema} into {report.build_schema}:",
        f"  loaded {written} root(s) ({duplicates} duplicate(s), {len(rejected)} refused) and "
        f"{claims} claimed-total row(s) from the log",
    ]
    lines.extend(f"    refused {r['source']}: {r['reason']}: {r['detail']}" for r in rejected[:20])
    remainder = sum(x.purged_remainder for x in report.loads)
    if remainder:
        lines.append(
            f"  skipped {remainder} chunk(s) at a purged log start whose root header was purged"
        )
    if report.verification is not None:
        lines.append("  verification against the fold's replay:")
        lines.extend("    " + line for line in render_text(report.verification).splitlines())
    if report.unverified:
        lines.append(f"  not verifiable (not in AOP_CHANNELS): {', '.join(report.unverified)}")
    lines.append(f"  old schema {report.schema}: {report.old_state}")
    if report.purged_absent or report.purged_replayed:
        lines.append(
            f"  purged from the roots topics (expected-absent, not rebuilt): "
            f"{report.purged_absent} root(s) of the old schema, {report.purged_replayed} "
            "replayed root(s); their hashes stay re-derivable with `aop replay`"
        )
    if report.tables:
        lines.append(
            "  tables before the switch (rows old -> new, content; settlement copied at it):"
        )
        for table, sides in report.tables.items():
            old, new = sides.get("old"), sides.get("new")
            same = (
                "identical"
                if old is not None and new is not None and old.digest == new.digest and old.digest
                else "differs"
            )
            lines.append(f"    {table}: {_rows(old)} -> {_rows(new)} ({same})")
    lines.extend(f"    {d}" for d in report.old_differs[:20])
    lines.append(f"  settlement state from: {report.settlement_source}")
    if report.decision == "switched":
        lines.append(
            f"SWITCHED: {report.schema} is now the rebuilt schema ({report.reason})"
            + (
                f"; the previous one is {report.old_schema} (drop it with: "
                f'DROP SCHEMA "{report.old_schema}" CASCADE)'
                if report.old_schema
                else ""
            )
        )
    elif report.decision == "built":
        lines.append(
            f"BUILT: {report.build_schema} verified, not switched ({report.reason}); drop it "
            f'with: DROP SCHEMA "{report.build_schema}" CASCADE'
        )
    else:
        lines.append(
            f"REFUSED: {report.reason}; {report.schema} is unchanged, the rebuilt schema is "
            f"kept as {report.build_schema} for inspection (drop it with: "
            f'DROP SCHEMA "{report.build_schema}" CASCADE)'
        )
    return "\n".join(lines)
