"""Render the newest figures of each scenario (`.local/faults/results.jsonl`) as the
RELIABILITY.md table: `.venv/bin/python -m tests.faults.report`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.faults.figures import RESULTS

__all__ = ["render"]

#: scenario -> the command that reruns it.
COMMANDS = {
    "kill9_each_service": "tests/faults/test_service_kills.py",
    "kafka_outage": "'tests/faults/test_broker_and_database_outages.py::"
    "test_outage_of_broker_or_database_loses_nothing_and_roots_match[kafka]'",
    "postgres_outage": "'tests/faults/test_broker_and_database_outages.py::"
    "test_outage_of_broker_or_database_loses_nothing_and_roots_match[postgres]'",
    "rpc_ws_drop": "'tests/faults/test_rpc_faults.py::"
    "test_rpc_fault_mid_run_loses_nothing_and_roots_match[ws_drop]'",
    "rpc_stall": "'tests/faults/test_rpc_faults.py::"
    "test_rpc_fault_mid_run_loses_nothing_and_roots_match[stall]'",
    "rpc_errors": "'tests/faults/test_rpc_faults.py::"
    "test_rpc_fault_mid_run_loses_nothing_and_roots_match[errors]'",
    "audit_disk_full": "tests/faults/test_audit_disk_full.py",
    "restore_drill": "tests/faults/test_restore_drill.py",
}


def _recovery(figures: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in figures["recovery_s"].items()) or "-"


def render(lines: list[dict[str, Any]]) -> str:
    """The markdown table of the newest run of each scenario, in COMMANDS order."""
    newest = {f["scenario"]: f for f in lines}
    rows = [
        "| scenario | injected | load (events/s: asked / achieved) | emitted / on log | lost "
        "| duplicated | roots checked / mismatched | recovery | rerun |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in [*COMMANDS, *(n for n in newest if n not in COMMANDS)]:
        f = newest.get(name)
        if f is None:
            continue
        command = f"`.venv/bin/pytest -m slow {COMMANDS.get(name, '?')}`"
        rows.append(
            f"| {name} | {f['injected']} | {f['rate_target']:.0f} / {f['rate_achieved']:.0f} "
            f"| {f['emitted']} / {f['on_log']} | {f['lost']} | {f['duplicated']} "
            f"| {f['roots_checked']} / {f['roots_mismatched']} | {_recovery(f)} | {command} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    print(render([json.loads(line) for line in path.read_text().splitlines() if line.strip()]))
