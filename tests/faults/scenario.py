"""One fault scenario end to end: load, inject, recover, quiesce, audit.

1. Start: a fresh schema and topic prefix, the simulated chain at the scenario's rate (four
   staking channels, 80 ms slots, 50-slot epochs, several events per staking transaction),
   and every service as its own process.
2. Warm up: wait until the pipeline is caught up with epoch 1 (roots flow end to end).
3. The test injects its fault, takes `restart_mark()` just before restarting the component (or
   clearing the fault), and `recovered(label, mark)` measures the recovery time
   (`tests.faults.progress`).
4. Quiesce: pause the workload; wait until the chain finalized its last event and the log's
   watermark passed that slot; stop the listener so the log is frozen.
5. Audit: the log against the simulator's ledger (`tests.log_ledger`), and every root in
   Postgres against the replay of the log (`tests.faults.roots`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS
from aop.log.reader import log_bounds
from aop.runtime.settings import Settings, load_settings
from aop.simchain.process import SimChainProcess, spawn_simchain
from tests.faults.figures import ScenarioFigures, record
from tests.faults.progress import PipelineProbe, wait_until
from tests.faults.roots import audit_roots
from tests.faults.services import ServiceProcesses
from tests.live_pipeline import fresh_schema, http_get, pipeline_env
from tests.log_ledger import audit_log, emitted_events, log_watermark

__all__ = ["FAULT_RATE", "FaultRun", "RestartMark", "events_emitted", "fault_run"]

#: events/s asked of the simulator; AOP_FAULT_RATE overrides. The issue's load is >= 2,000
#: events/s: on the shared 2-core box the simulated chain (Python, beside the whole pipeline,
#: Kafka and PostgreSQL) produces less than it is asked when its core is contended, so it is
#: asked 2,600 and achieves ~2,000 (RELIABILITY.md, "Load"); the figures' `rate_achieved` is
#: what it produced.
FAULT_RATE = float(os.environ.get("AOP_FAULT_RATE", "2600"))
#: the services run at this niceness: in production the chain is other machines, here the
#: simulated chain shares 2 cores with the pipeline, and a chain starved of CPU would make the
#: load, not the pipeline, the thing measured (+5-10 % achieved rate, measured).
SERVICE_NICENESS = 5
#: every staking transaction carries several events (up to three stakes of one wallet, or up
#: to three closes of its positions): the simulator signs and executes per transaction in Python, so
#: fewer transactions per event is what lets it keep up with FAULT_RATE.
MULTI_EVENT_RATIO = 1.0
CHANNELS = ("fault:alpha", "fault:beta", "fault:gamma", "fault:delta")
GENESIS_SLOT = 1000
#: slot time of the simulated chain (Solana's is ~400 ms; shorter gives more epochs a minute,
#: but each slot costs the simulator a seal, notifications and the pipeline's per-slot work).
SLOT_MS = 80
EPOCH_SLOTS = 50
#: the projector purges the roots topics this often (default 60 s: a scenario lasts minutes).
ROOTS_PURGE_EVERY_S = 5.0
#: generous: a loaded 2-core machine folds a backlog slowly; a faster one finishes early.
CATCH_UP_TIMEOUT_S = 300.0


def sim_args(seed: int) -> list[str]:
    """The simulated chain: SLOT_MS slots, finality 4 slots, no claim channels, and idle
    (`start_load` sets the workload's mix and then its rate)."""
    return [
        *("--rate", "0", "--wallets", "400", "--slot-ms", str(SLOT_MS)),
        *("--finality-depth", "4", "--claim-channels", "", "--seed", str(seed)),
        *("--channels", ",".join(CHANNELS)),
    ]


def start_load(sim: SimChainProcess, rate: float) -> None:
    """The workload's mix, then its rate: every event of the run comes from that mix."""
    sim.control("sim_setMultiEventRatio", {"ratio": MULTI_EVENT_RATIO})
    sim.control("sim_setRate", {"rate": rate})


def roots_log_start(settings: Settings) -> dict[str, dict[int, int]]:
    """topic -> partition -> log start offset of the two roots topics (what the purge moved)."""
    out = {}
    for name, parts in ((EPOCH_ROOTS, settings.chain_partitions), (GLOBAL_ROOTS, 1)):
        bounds = log_bounds(settings, settings.topic(name), range(parts))
        out[name] = {p: b.low for p, b in bounds.items()}
    return out


def events_emitted(status: Mapping[str, Any]) -> int:
    """Events the simulator's program emitted so far, from its `sim_status`: its counters are
    a Counter, which holds no `events` key until the first transaction with an event lands (a
    fast start reads the status before that: 0, not a KeyError)."""
    return int(status["counts"].get("events", 0))


@dataclass(frozen=True)
class RestartMark:
    """When the faulted component was restarted (time.monotonic()) and the chain's finalized
    slot then: recovery is measured from here to caught up with that slot's last epoch."""

    at: float
    finalized_slot: int


@dataclass
class FaultRun:
    """A running scenario (module docstring); `figures` fills in as it goes."""

    settings: Settings
    sim: SimChainProcess
    services: ServiceProcesses
    probe: PipelineProbe
    ports: dict[str, int]
    figures: ScenarioFigures
    started_at: float
    events_at_start: int
    #: when the warm-up ended and the events emitted by then: the load while faults happen.
    warmed_at: float = 0.0
    events_at_warm: int = 0

    def metric(self, service: str, name: str) -> float | None:
        """The sum of `name`'s samples on `service`'s /metrics (None: it does not answer)."""
        reply = http_get(f"http://127.0.0.1:{self.ports[service]}/metrics")
        if reply is None or reply.status_code != 200:
            return None
        return sum(
            sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples
            if sample.name == name
        )

    def finalized_slot(self) -> int:
        return int(self.sim.control("sim_status")["finalized"])

    def wait_caught_up(self, epoch: int, *, what: str) -> None:
        """Wait until caught up with `epoch`, restarting services that exit on their own."""

        def check() -> bool:
            self.services.revive()
            return self.probe.caught_up(epoch)

        wait_until(
            check,
            timeout=CATCH_UP_TIMEOUT_S,
            what=f"{what} (caught up with epoch {epoch})",
            describe=self.probe.describe,
        )

    def restart_mark(self) -> RestartMark:
        """Take just before restarting the faulted component (or clearing the fault)."""
        return RestartMark(time.monotonic(), self.finalized_slot())

    def recovered(self, label: str, mark: RestartMark) -> float:
        """Seconds from `mark` until caught up with the newest epoch the chain had wholly
        finalized at `mark`; recorded under `label`."""
        target = self.probe.last_closed_epoch(mark.finalized_slot)
        self.wait_caught_up(target, what=f"recovery after {label}")
        seconds = round(time.monotonic() - mark.at, 2)
        self.figures.recovery_s[label] = seconds
        return seconds

    def run_for(self, seconds: float) -> None:
        """Keep the load on for `seconds`, restarting services that exit on their own."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.services.revive()
            time.sleep(0.5)

    def quiesce_and_audit(self) -> ScenarioFigures:
        """Steps 4 and 5 of the module docstring; records the figures and returns them."""
        self.sim.control("sim_pause")
        status = self.sim.control("sim_status")
        now = time.monotonic()
        loaded_s = now - self.started_at
        emitted_count = events_emitted(status) - self.events_at_start
        self.figures.rate_achieved = round(emitted_count / loaded_s, 1)
        after_warm_up = events_emitted(status) - self.events_at_warm
        rate_after_warm_up = after_warm_up / (now - self.warmed_at)
        tip = int(status["tip"])
        finalized = wait_until(
            lambda: (slot := self.finalized_slot()) >= tip and slot,
            timeout=60,
            what="the chain finalizing its last event",
        )

        def log_complete() -> bool:
            self.services.revive()
            return log_watermark(self.settings) >= finalized

        wait_until(log_complete, timeout=CATCH_UP_TIMEOUT_S, what=f"log watermark {finalized}")
        self.services.stop("listener")
        log = audit_log(self.settings, emitted_events(self.sim))
        roots = audit_roots(self.settings, timeout=CATCH_UP_TIMEOUT_S)
        self.figures.emitted, self.figures.on_log = log.emitted, log.on_log
        self.figures.lost, self.figures.duplicated = log.lost, log.duplicated
        self.figures.foreign = log.foreign
        self.figures.roots_checked = roots.checked
        self.figures.roots_mismatched = roots.mismatched
        self.figures.roots_unprojected = roots.unprojected
        self.figures.crashes = {k: v for k, v in self.services.crashes.items() if v}
        self.figures.extra.update(
            loaded_seconds=round(loaded_s, 1),
            rate_after_warm_up=round(rate_after_warm_up, 1),
            root_statuses=roots.statuses,
            roots_per_channel=roots.per_channel,
            log_examples=list(log.examples),
            roots_log_start=roots_log_start(self.settings),
            log_through_slot=log.through_slot,
            log_after=list(log.after_examples),
        )
        record(self.figures)
        return self.figures


@contextmanager
def fault_run(
    figures: ScenarioFigures,
    *,
    kafka_bootstrap: str,
    database_url: str,
    workdir: Path,
    seed: int = 7,
    settings: Mapping[str, str] | None = None,
) -> Iterator[FaultRun]:
    """Steps 1-2 of the module docstring; stops the services and the chain on exit."""
    with fresh_schema(database_url) as schema:
        env, ports = pipeline_env(
            kafka_bootstrap=kafka_bootstrap,
            database_url=database_url,
            schema=schema,
            workdir=workdir,
            channels=CHANNELS,
            settings={
                "AOP_CHAIN_PARTITIONS": "4",
                "AOP_GENESIS_SLOT": str(GENESIS_SLOT),
                "AOP_EPOCH_SLOTS": str(EPOCH_SLOTS),
                "AOP_LOG_LEVEL": "INFO",
                # the roots purge on (its default), often enough to act within a scenario
                "AOP_ROOTS_PURGE_EVERY_S": str(ROOTS_PURGE_EVERY_S),
                **(settings or {}),
            },
        )
        sim = spawn_simchain(sim_args(seed), env=env)
        start_load(sim, figures.rate_target)
        env.update(AOP_RPC_URL=sim.http_url, AOP_WS_URL=sim.ws_url)
        services = ServiceProcesses(env, ports, workdir, niceness=SERVICE_NICENESS)
        try:
            services.start_all()
            run = FaultRun(
                settings=load_settings(env),
                sim=sim,
                services=services,
                probe=PipelineProbe(
                    database_url=database_url,
                    schema=schema,
                    api=f"http://127.0.0.1:{ports['api']}",
                    channels=CHANNELS,
                    genesis_slot=GENESIS_SLOT,
                    epoch_slots=EPOCH_SLOTS,
                ),
                ports=ports,
                figures=figures,
                started_at=time.monotonic(),
                events_at_start=events_emitted(sim.control("sim_status")),
            )
            run.wait_caught_up(1, what="warm-up")
            run.warmed_at = time.monotonic()
            run.events_at_warm = events_emitted(sim.control("sim_status"))
            yield run
        finally:
            services.stop_all()
            sim.stop()
