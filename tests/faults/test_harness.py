"""The fault harness itself, on a real simulated chain: it must start on a chain that has
not landed a transaction yet (`make test-faults` once failed at start with a KeyError there).
Not `slow`: it runs in the default suite."""

from __future__ import annotations

from aop.simchain.process import spawn_simchain
from tests.faults.scenario import events_emitted, sim_args


def test_events_emitted_is_zero_before_the_first_transaction_lands() -> None:
    """The scenario's idle chain (rate 0): its status has no `events` counter yet."""
    sim = spawn_simchain(sim_args(seed=7))
    try:
        status = sim.control("sim_status")
    finally:
        sim.stop()
    assert "events" not in status["counts"]  # what made `status["counts"]["events"]` fail
    assert events_emitted(status) == 0


def test_events_emitted_reads_the_counter_once_events_landed() -> None:
    assert events_emitted({"counts": {"events": 4211, "transactions": 2550}}) == 4211
