"""The RPC endpoint misbehaving mid-run: websockets dropped, answers stalled, errors.

Faults are the simulator's own (`simchain/faults.py`), switched at runtime through its
control methods (`sim_setFaults`, `sim_dropConnections`); they degrade what the listener
sees, never the chain, so every event must still reach the log exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from aop.simchain.process import SimChainProcess
from tests.faults.assertions import assert_no_loss_and_roots_match
from tests.faults.figures import ScenarioFigures
from tests.faults.scenario import FAULT_RATE, fault_run

pytestmark = pytest.mark.slow

#: how long each fault stays on.
FAULT_S = 15.0
BEFORE_S = 5.0


def _drop_websockets(sim: SimChainProcess) -> dict[str, Any]:
    """Refuse new websocket handshakes and cut the open connections, every second."""
    sim.control("sim_setFaults", {"refuse_websockets": True})
    dropped = 0
    deadline = time.monotonic() + FAULT_S
    while time.monotonic() < deadline:
        dropped += int(sim.control("sim_dropConnections")["dropped"])
        time.sleep(1.0)
    refused = sim.control("sim_status")["faults"]["counts"].get("handshakes_refused", 0)
    return {"connections_dropped": dropped, "handshakes_refused": refused}


def _stall(sim: SimChainProcess) -> dict[str, Any]:
    """Every HTTP answer 2.5 s late, every notification 1 s late."""
    sim.control("sim_setFaults", {"delay_ms": 2500, "notification_delay_ms": 1000})
    started = time.monotonic()
    httpx.post(sim.http_url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"}, timeout=30)
    stalled = time.monotonic() - started
    time.sleep(max(0.0, FAULT_S - stalled))
    return {"getSlot_seconds_while_stalled": round(stalled, 2)}


def _errors(sim: SimChainProcess) -> dict[str, Any]:
    """Half the HTTP requests fail (-32005 or HTTP 503); notifications dropped or doubled."""
    sim.control(
        "sim_setFaults",
        {
            "rpc_error_p": 0.5,
            "rpc_error_mode": "mixed",
            "drop_notification_p": 0.3,
            "duplicate_notification_p": 0.3,
        },
    )
    time.sleep(FAULT_S)
    counts = sim.control("sim_status")["faults"]["counts"]
    return {"rpc_errors_and_notification_faults": sum(counts.values())}


FAULTS: dict[str, tuple[str, Callable[[SimChainProcess], dict[str, Any]]]] = {
    "ws_drop": ("websockets refused and dropped every 1 s", _drop_websockets),
    "stall": ("HTTP answers +2.5 s, notifications +1 s", _stall),
    "errors": ("50% HTTP errors (-32005/503), 30% notifications dropped, 30% doubled", _errors),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_rpc_fault_mid_run_loses_nothing_and_roots_match(
    fault: str, kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """Turn `fault` on for FAULT_S under load, then off: no event lost or duplicated, every
    root equals the replay; the recovery time runs from clearing the fault."""
    description, inject = FAULTS[fault]
    figures = ScenarioFigures(
        scenario=f"rpc_{fault}",
        injected=f"{description}, for {FAULT_S:.0f} s",
        rate_target=FAULT_RATE,
    )
    with fault_run(
        figures, kafka_bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path
    ) as run:
        run.run_for(BEFORE_S)
        evidence = inject(run.sim)
        mark = run.restart_mark()
        run.sim.control("sim_setFaults", {"clear": True})
        figures.extra.update(evidence)
        run.recovered(fault, mark)
        figures = run.quiesce_and_audit()
    assert all(evidence.values()), f"the fault left no trace: {evidence}"
    assert_no_loss_and_roots_match(figures, min_roots=len(run.probe.channels) * 3)
