"""The day run: a day's worth of events through the whole pipeline, in fast-forward.

The go-live list asks for a 24 h parallel run with zero discrepancies, bounded disk and clean
restarts after kills. A day of the program's traffic is a few million events: here it runs at
the highest rate this machine sustains, on infrastructure of the test's own.

The clock keeps a day's epoch count (`tests.soak.day_clock`): 24 chain epochs over
AOP_DAY_EVENTS (the simulator puts AOP_DAY_RATE x SLOT_MS of them in a slot), 24 attention
epochs over the run's expected length (AOP_DAY_EVENTS at AOP_DAY_EXPECTED_RATE), the
ingest's allowed lateness in a day's proportion (300 s of 3,600).

1. Start: a private three-node KRaft cluster (RF 3, min.insync 2; `tests.support.
   kafka_nodes`) and a private PostgreSQL (`tests.faults.cluster`), never the shared ones;
   the simulated chain in the `deployed` profile with its bounded defaults (a 150 s ledger
   window, at most 4,096 wallets: wallets join and leave) and block times on the wall clock
   (so the combiner's global roots take the attention epochs: the global-v5 bonus); every
   service as its own process (`tests.faults.services`), settlement publishing global-v5
   roots, the attention fold on; `aop simulate-collectors` posting signals of the chain's
   CHANNELS (cumulative-v2 attention roots) and a second one posting LEGACY_USERS' signals
   of LEGACY_CHANNELS (ring-v0-legacy attention roots, the legacy's epochs; both formats
   feed the bonus); a legacy-shaped `roots` table with a read-only login
   (`tests.support.legacy_db`).
2. Warm up until roots are projected; probe the API for PROBE_S at PROBE_RPS (p99, start).
3. Load until AOP_DAY_EVENTS chain events are emitted. Meanwhile: RSS of every process
   (services, simulator, collectors, brokers, PostgreSQL) every SAMPLE_EVERY_S; disk per
   component every DISK_EVERY_S; every AOP_DAY_PARITY_EVERY_S a parity turn (`ParityRuns`):
   the independent legacy aggregator takes the new SignalBatches of the signals topic and
   its sealed roots go to the legacy table (`tests.support.legacy_feed`), then `aop parity
   --chain` and `aop parity --legacy-dsn-file` run; the hot channels rotate every
   ROTATE_EVERY_S; one kill -9 of each service and one broker kill -9 + restart, spread
   evenly over the events (FAULTS).
4. Probe the API again, same load (p99, end).
5. Drain: pause the chain; wait until the log holds its last finalized slot and every root
   the fold built is projected; stop the listener (the log is frozen).
6. Audit: events emitted = events on the log, each once (`tests.log_ledger`); every channel
   root equal to its replay (`tests.faults.roots`); `aop replay --global --all` MATCH; a
   last parity turn (chain and legacy).
7. Figures with their limits (LIMITS, MEMORY_*, DISK_*, the chain epochs of the day's events
   within DAY_EPOCHS_RANGE, the legacy verdicts): printed as tables, written as JSON to
   AOP_DAY_RESULT; the test fails when one is passed.

Settings (environment): AOP_DAY_EVENTS (2,000,000), AOP_DAY_RATE (events/s asked of the
simulator, 1,000: about what it achieves here, so its slots keep the wall clock and the
global roots take their attention epochs in time; asked more, it delivers what its core
allows and its slots stretch), AOP_DAY_EXPECTED_RATE
(events/s achieved, what the attention epochs are sized for: 1,000, this 2-core box
achieved 925-1,095 whatever was asked), AOP_DAY_PARITY_EVERY_S (180),
AOP_DAY_MEMORY_WARMUP_S (240; RSS before it is not judged), AOP_DAY_RESULT
(.local/soak/day.json; day.partial.json, with every parity turn so far, is rewritten every
minute of the load). The brokers reuse the shared broker's jars
(AOP_LOCAL_KAFKA_LIBS, default `.local/kafka/libs` of the checkout). Run: `make soak-day` (a
short one: `AOP_DAY_EVENTS=200000 make soak-day`: 24 epochs of 33 slots, attention 9 s).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from aop.cli.services import SERVICES
from aop.core.epoch import EpochClock
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS
from aop.log.reader import log_bounds
from aop.projections.projector import CONSUMER_NAME
from aop.replay.legacy_parity import VERDICTS
from aop.runtime.settings import load_settings
from aop.simchain.process import SimChainProcess, spawn_simchain
from tests.conftest import ROOT, libpq_url
from tests.faults.cluster import LocalCluster, local_cluster
from tests.faults.roots import RootsAudit, audit_roots
from tests.faults.scenario import events_emitted
from tests.faults.services import ServiceProcesses
from tests.live_pipeline import AOP, fresh_schema, pipeline_env
from tests.log_ledger import Emitted, LogAudit, audit_log, emitted_events, log_watermark
from tests.soak.allowance import BYTES_PER_STAKE, STAKED
from tests.soak.day_clock import DAY_EPOCHS_RANGE, DayClock, day_clock
from tests.soak.disk import (
    DiskSample,
    ProofStore,
    growth_per_million,
    kafka_topic_bytes,
    postgres_bytes,
    proof_store,
    tree_bytes,
)
from tests.soak.figures import counter_increase, metric_totals, write_json
from tests.soak.memory import MIB, MemoryLog
from tests.soak.proof_load import ProofLoad
from tests.support.ingest import write_tokens
from tests.support.kafka_nodes import KafkaNodes, kafka_nodes
from tests.support.legacy_db import LegacyDb, legacy_database
from tests.support.legacy_feed import LegacySignalFeed

pytestmark = [pytest.mark.slow, pytest.mark.soak_day]

CHANNELS = tuple(f"day:ch{i}" for i in range(6))
SEED = 23
#: wallets at genesis; the simulator's default seat limit (4,096) is above it, so the first
#: wallets join, then once the seats are full every new wallet takes an idle one's seat.
WALLETS = 2000
#: the chain's slots; the epochs are sized from the events (`tests.soak.day_clock`).
SLOT_MS = 100
GENESIS_SLOT = 1000
LATEST_ON_CHAIN = 1800
SAMPLE_EVERY_S = 10.0
DISK_EVERY_S = 60.0
ROTATE_EVERY_S = 120.0
PROBE_S = 60.0
PROBE_RPS = 10.0
#: a service killed with SIGKILL stays down this long (as a crashed process before its
#: supervisor's restart); a broker stays down BROKER_DOWN_S.
DOWN_S = 5.0
BROKER_DOWN_S = 15.0
#: the broker that is killed and restarted (any of the three: RF 3 keeps every partition).
BROKER = 3
SERVICE_NICENESS = 5
COLLECTOR_RATE = 200.0
#: the legacy-format channels (ring-v0-legacy attention roots, compared with the legacy
#: table), on no chain: a second collector posts their signals, of LEGACY_USERS users
#: (bound by the first collector to the simulator's wallets 0..LEGACY_USERS-1), so no epoch
#: has more than the format's 1,024 claims (one is refused then, on both sides).
LEGACY_CHANNELS = ("day:legacy0", "day:legacy1")
LEGACY_USERS = 500
LEGACY_COLLECTOR_RATE = 40.0
WARM_UP_TIMEOUT_S = 300.0
DRAIN_TIMEOUT_S = 600.0
#: RSS is judged after this many seconds of load by default (AOP_DAY_MEMORY_WARMUP_S):
#: imports, pools and caches filled, the simulator's 150 s ledger window full
#: (bench/simchain_memory.py fits after 210 s).
MEMORY_WARMUP_S = 240.0
#: RSS slope limit of every Python process, MiB/min (plus BYTES_PER_STAKE where it applies;
#: the soak's limit and reasoning, tests/soak/test_soak.py).
MEMORY_SLOPE_MIB_PER_MIN = 2.0
#: the JVMs and PostgreSQL hold caches up to a configured size: judged by their peak RSS.
#: A broker: -Xmx512m heap plus metaspace, code cache, direct buffers and thread stacks.
#: PostgreSQL: the server and its backends (a backend's RSS counts the shared buffers it
#: touched, so the sum over-counts the 128 MB shared_buffers once per backend).
MEMORY_PEAK_MIB = {"kafka-1": 1280.0, "kafka-2": 1280.0, "kafka-3": 1280.0, "postgres": 3072.0}
#: disk growth per million events, bytes; components not listed are held to
#: DISK_DEFAULT_PER_MILLION. These are what a store that grows with the events (not with
#: wallets x epochs) meets: the day run of RELIABILITY.md "Day" measured the source of truth
#: at ~305 MiB per million events per replica; the roots topics and the `leaves` and
#: `tree_levels` tables grow with wallets x epochs and pass these limits (the run fails on
#: them until they get a bound).
DISK_LIMIT_PER_MILLION = {
    # every partition three times (RF 3): the events, the fold's compacted changelog, the
    # signals, the roots
    "kafka data (3 nodes)": 3 * 1024 * MIB,
    "faust state": 64 * MIB,
    # rotated at AOP_AUDIT_MAX_BYTES x (AOP_LISTENER_AUDIT_KEEP + 1): bounded, not per event
    "audit files": 512 * MIB,
}
DISK_DEFAULT_PER_MILLION = 256 * MIB
#: the proof tables are bounded by proof retention (AOP_PROOF_ROOTS_KEPT, `projections.
#: retention`), not by the events: they hold the leaves and tree levels of the newest K roots
#: of each root account, and a root holds every wallet ever (cumulative), so their size
#: follows K x wallets ever. They are judged against that bound (`tests.soak.disk.
#: proof_store`: exact row counts) and by their bytes per retained leaf, not per event.
PROOF_TABLES = ("pg leaves", "pg leaves indexes", "pg tree_levels", "pg tree_levels indexes")
#: bytes per retained leaf, at the end: a `leaves` row (~100 B: tuple header, root_id,
#: leaf_index, a 32-byte wallet, two NUMERICs) and its two btree entries ((root_id,
#: leaf_index) ~32 B, (root_id, wallet) ~56 B) make ~190 B; twice that leaves room for the
#: pruned roots' dead rows autovacuum has not reclaimed yet. `tree_levels`: a tree has ~2
#: nodes of 32 B per leaf (64 B), twice that likewise.
LEAVES_BYTES_PER_KEPT_LEAF = 400
TREE_LEVELS_BYTES_PER_KEPT_LEAF = 160
#: the audit directory's bound: 64 MiB per file, the current one and 5 rotated.
AUDIT_BOUND_BYTES = 6 * 64 * MIB
#: API p99 (ms) under the probe load: at most this, and the end at most END_OVER_START x
#: the start (the cache and the tables grew all day; answers must not slow with them).
P99_LIMIT_MS = 250.0
P99_END_OVER_START = 3.0
PARITY_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class DayOptions:
    events: int
    rate: float
    expected_rate: float
    parity_every_s: float
    memory_warmup_s: float
    result_path: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DayOptions:
        env = dict(os.environ if env is None else env)
        return cls(
            events=int(env.get("AOP_DAY_EVENTS", "2000000")),
            rate=float(env.get("AOP_DAY_RATE", "1000")),
            expected_rate=float(env.get("AOP_DAY_EXPECTED_RATE", "1000")),
            parity_every_s=float(env.get("AOP_DAY_PARITY_EVERY_S", "180")),
            memory_warmup_s=float(env.get("AOP_DAY_MEMORY_WARMUP_S", str(MEMORY_WARMUP_S))),
            result_path=Path(env.get("AOP_DAY_RESULT", ROOT / ".local/soak/day.json")),
        )

    @property
    def clock(self) -> DayClock:
        return day_clock(self.events, self.rate, self.expected_rate, SLOT_MS)


#: the faults, in order, each at an even share of the events: (i + 1) / (len + 1).
FAULTS = (*SERVICES, "broker")


#: a legacy verdict's count in `aop parity --legacy-dsn-file`'s SUMMARY line.
_VERDICT_COUNT = re.compile(rf"(\d+) ({'|'.join(VERDICTS)})\b")


def legacy_verdicts(output: str) -> dict[str, int] | None:
    """The verdict counts of a legacy parity run's SUMMARY line; None without one."""
    summary = [line for line in output.splitlines() if line.startswith("SUMMARY ")]
    if not summary:
        return None
    counts = {verdict: int(n) for n, verdict in _VERDICT_COUNT.findall(summary[-1])}
    return counts if set(counts) == set(VERDICTS) else None


def chain_parity_summary(output: str) -> str:
    """`aop parity --chain --json`'s report cut to its verdict and the roots that did not
    match (a full report is megabytes; its tail showed only matches); other output (an
    error) as its tail."""
    try:
        report = json.loads(output)
    except ValueError:
        return output[-2000:]
    bad = [
        {"channel": channel["channel"], **{k: root.get(k) for k in _ROOT_KEYS}}
        for channel in report.get("channels", [])
        for root in channel.get("roots", [])
        if root.get("status") != "match" or (root.get("chain") or {}).get("status") == "mismatch"
    ]
    head = {k: report.get(k) for k in ("status", "roots_checked", "mismatches", "skipped")}
    return json.dumps({**head, "not matching": bad}, default=str)[:6000]


_ROOT_KEYS = ("root_seq", "epoch", "status", "fields", "leaves", "levels", "chain", "replayed")


@dataclass
class ParityTurn:
    """One turn: the legacy table filled, then both parity runs (exit codes, output tails;
    the legacy run's MATCH lines left out, its verdict counts parsed)."""

    at: float
    legacy_roots_filled: int = 0
    fill_error: str | None = None
    chain_code: int | None = None
    chain_output: str = ""
    legacy_code: int | None = None
    legacy_output: str = ""
    legacy_verdicts: dict[str, int] | None = None


@dataclass
class ParityRuns:
    """Parity turns in the background, one at a time (step 3): the legacy table brought up
    to date from the signals topic (`LegacySignalFeed`), then `aop parity --chain` and
    `aop parity --legacy-dsn-file` side by side."""

    env: dict[str, str]
    legacy: LegacyDb
    feed: LegacySignalFeed
    grace_s: int
    turns: list[ParityTurn] = field(default_factory=list)
    _running: tuple[ParityTurn, dict[str, subprocess.Popen[str]]] | None = None

    def start(self, at: float) -> None:
        if self._running is not None:
            return  # the previous turn is still going: skip one
        turn = ParityTurn(round(at, 1))
        try:
            sealed = self.feed.catch_up()
            self.legacy.upsert(sealed)
            turn.legacy_roots_filled = len(sealed)
        except Exception as exc:  # recorded: the legacy run then compares an older table
            turn.fill_error = f"{type(exc).__name__}: {exc}"[:400]
        legacy_args = ["--legacy-dsn-file", str(self.legacy.dsn_file), "--grace"]
        commands = {
            "chain": ["--chain", "--json", "--quiet"],
            "legacy": [*legacy_args, str(self.grace_s)],
        }
        processes = {
            kind: subprocess.Popen(
                [*AOP, "parity", *args],
                env={**os.environ, **self.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for kind, args in commands.items()
        }
        self._running = (turn, processes)

    def poll(self, *, wait: bool = False) -> None:
        if self._running is None:
            return
        turn, processes = self._running
        if wait:
            for process in processes.values():
                try:
                    process.wait(PARITY_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()  # recorded as exit -9: a parity run that cannot finish
                    process.wait(30)
        if any(process.poll() is None for process in processes.values()):
            return
        outputs = {k: p.stdout.read() if p.stdout else "" for k, p in processes.items()}
        turn.chain_code = int(processes["chain"].returncode)
        turn.chain_output = chain_parity_summary(outputs["chain"])
        turn.legacy_code = int(processes["legacy"].returncode)
        lines = [ln for ln in outputs["legacy"].splitlines() if not ln.startswith("MATCH ")]
        turn.legacy_output = "\n".join(lines)[-2000:]
        turn.legacy_verdicts = legacy_verdicts(outputs["legacy"])
        self.turns.append(turn)
        self._running = None

    def codes(self) -> list[int]:
        """The chain runs' exit codes."""
        return [t.chain_code for t in self.turns if t.chain_code is not None]

    def as_json(self) -> list[dict[str, Any]]:
        return [vars(t) for t in self.turns]


@dataclass
class Day:
    """Everything running (step 1)."""

    options: DayOptions
    brokers: KafkaNodes
    postgres: LocalCluster
    schema: str
    env: dict[str, str]
    ports: dict[str, int]
    sim: SimChainProcess
    services: ServiceProcesses
    collectors: dict[str, subprocess.Popen[bytes]]
    legacy: LegacyDb
    workdir: Path
    #: the day's start: the wall clock (unix s) and the chain's tip when its rate was set
    #: (the chain idles from genesis while the services start).
    began_at: float
    first_slot: int

    def metrics(self, service: str) -> dict[str, float]:
        return metric_totals(f"http://127.0.0.1:{self.ports[service]}/metrics")

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def emitted(self) -> int:
        return events_emitted(self.sim.control("sim_status"))

    def pids(self) -> dict[str, int | None]:
        return {
            **self.services.pids(),
            "simchain": self.sim.pid,
            **{n: p.pid if p.poll() is None else None for n, p in self.collectors.items()},
            **{f"kafka-{n}": self.brokers.pid(n) for n in range(1, self.brokers.nodes + 1)},
            "postgres": self.postgres.postmaster_pid(),
        }

    def disk(self, at: float) -> DiskSample:
        nodes = [self.brokers.home / f"node{n}" / "data" for n in (1, 2, 3)]
        return DiskSample(
            at=at,
            events=self.emitted(),
            components={
                "kafka data (3 nodes)": tree_bytes(nodes),
                **kafka_topic_bytes(nodes, self.env["AOP_TOPIC_PREFIX"]),
                "faust state": tree_bytes([self.workdir / "fold"]),
                "audit files": tree_bytes([self.workdir / "audit"]),
                **postgres_bytes(self.postgres.database_url, self.schema),
            },
        )


def _settings(brokers: KafkaNodes, tokens: Path, clock: DayClock) -> dict[str, str]:
    return {
        **brokers.env(),
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_GENESIS_SLOT": str(GENESIS_SLOT),
        "AOP_EPOCH_SLOTS": str(clock.epoch_slots),
        "AOP_ATTENTION_EPOCH_SECONDS": str(clock.attention_epoch_s),
        "AOP_ATTENTION_ALLOWED_LATENESS_S": str(clock.lateness_s),
        "AOP_ATTENTION_FORMATS": json.dumps(dict.fromkeys(LEGACY_CHANNELS, "ring-v0-legacy")),
        "AOP_EMISSION_DEFAULT": "1000000000000",
        "AOP_API_CACHE_ROOTS": "8",
        # the deployed program takes global roots only; its ring is at LATEST_ON_CHAIN
        "AOP_SIM_GLOBAL_LATEST_ROOT_SEQ": str(LATEST_ON_CHAIN),
        "AOP_GLOBAL_FIRST_ROOT_SEQ": str(LATEST_ON_CHAIN + 1),
        "AOP_SETTLEMENT_TARGET": "global-v5",
        "AOP_AUTO_PUBLISH": "true",
        "AOP_ATTENTION_ENABLED": "true",
        "AOP_INGEST_TOKENS_FILE": str(tokens),
        "AOP_SIM_SEED": str(SEED),
        "AOP_SIM_WALLETS": str(WALLETS),
        "AOP_LOG_LEVEL": "WARNING",
    }


@contextmanager
def running_day(options: DayOptions, workdir: Path) -> Iterator[Day]:
    """Step 1 of the module docstring; stops everything on exit."""
    with (
        kafka_nodes("kafka-cluster") as brokers,
        local_cluster(f"day-{os.getpid()}", services=("postgres",)) as postgres,
        fresh_schema(postgres.database_url) as schema,
        legacy_database(postgres.database_url, workdir) as legacy,
    ):
        tokens_file = workdir / "ingest.tokens"
        token = write_tokens(tokens_file, ["simulated"])["simulated"]
        token_file = workdir / "collector.token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        env, ports = pipeline_env(
            kafka_bootstrap=brokers.bootstrap,
            database_url=postgres.database_url,
            schema=schema,
            workdir=workdir,
            channels=(*CHANNELS, *LEGACY_CHANNELS),
            settings=_settings(brokers, tokens_file, options.clock),
        )
        sim = spawn_simchain(
            [
                *("--program", "deployed", "--rate", "0", "--wallets", str(WALLETS)),
                *("--slot-ms", str(SLOT_MS), "--seed", str(SEED), "--wall-clock"),
                *("--channels", ",".join(CHANNELS)),
            ],
            env=env,
        )
        env.update(AOP_RPC_URL=sim.http_url, AOP_WS_URL=sim.ws_url)
        services = ServiceProcesses(env, ports, workdir, niceness=SERVICE_NICENESS)
        collectors: dict[str, subprocess.Popen[bytes]] = {}
        # the chain's channels, every user bound; the legacy channels, LEGACY_USERS of them
        posting = {
            "collectors": [*("--channels", ",".join(CHANNELS), "--rate", str(COLLECTOR_RATE))],
            "legacy collectors": [
                *("--channels", ",".join(LEGACY_CHANNELS), "--wallets", str(LEGACY_USERS)),
                *("--rate", str(LEGACY_COLLECTOR_RATE), "--no-bindings"),
            ],
        }
        try:
            services.start_all()
            for name, args in posting.items():
                with (workdir / f"{name.replace(' ', '-')}.log").open("ab") as output:
                    collectors[name] = subprocess.Popen(
                        [
                            *("nice", "-n", str(SERVICE_NICENESS), *AOP, "simulate-collectors"),
                            *("--token-file", str(token_file), *args),
                            *("--url", f"http://127.0.0.1:{ports['ingest_api']}"),
                        ],
                        env={**os.environ, **env},
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
            sim.control("sim_setMultiEventRatio", {"ratio": 1.0})
            sim.control("sim_setRate", {"rate": options.rate})
            began_at, first_slot = time.time(), int(sim.control("sim_status")["tip"])
            yield Day(
                options,
                brokers,
                postgres,
                schema,
                env,
                ports,
                sim,
                services,
                collectors,
                legacy,
                workdir,
                began_at,
                first_slot,
            )
        finally:
            for process in collectors.values():
                process.terminate()
                process.wait(30)
            services.stop_all()
            sim.stop()


def _wait_until(what: str, condition: Callable[[], bool], timeout: float, day: Day) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        day.services.revive()
        if time.monotonic() > deadline:
            tails = {n: day.services.log_tail(n, 5) for n in SERVICES}
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; logs: {tails}")
        time.sleep(2.0)


def _probe(day: Day) -> tuple[float, dict[str, int], int]:
    """Steps 2 and 4: PROBE_S of proof requests at PROBE_RPS; p99 ms, outcomes, requests."""
    load = ProofLoad(day.api, CHANNELS, PROBE_RPS)
    load.start()
    time.sleep(PROBE_S)
    load.stop()
    return load.p99_ms(), dict(load.outcomes), load.requests


@dataclass
class LoadRecord:
    """What step 3 saw."""

    memory: MemoryLog = field(default_factory=MemoryLog)
    disk: list[DiskSample] = field(default_factory=list)
    counters: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    rotations: int = 0
    seconds: float = 0.0
    #: the chain's tip and the wall clock (unix s) when the events asked were emitted.
    tip_at_end: int = 0
    ended_at: float = 0.0

    def partial(self) -> dict[str, Any]:
        """What is recorded so far (written during the load: a run that dies keeps it)."""
        return {
            "counters": self.counters,
            "faults": self.faults,
            "disk": [(d.at, d.events, dict(d.components)) for d in self.disk],
            "rss_bytes": self.memory.samples,
        }


def _inject(day: Day, fault: str, at: float) -> dict[str, Any]:
    """One fault: kill -9 of a service (down DOWN_S) or of a broker (down BROKER_DOWN_S),
    then started again; what happened and how long the restart took."""
    started = time.monotonic()
    if fault == "broker":
        day.brokers.kill(BROKER)
        time.sleep(BROKER_DOWN_S)
        restart = time.monotonic()
        day.brokers.start(BROKER)
    else:
        day.services.kill(fault)
        time.sleep(DOWN_S)
        restart = time.monotonic()
        day.services.start(fault)
    return {
        "fault": f"kill -9 {fault}" + (f" (node {BROKER})" if fault == "broker" else ""),
        "at_s": round(at),
        "events": day.emitted(),
        "down_s": round(restart - started, 1),
        "start_s": round(time.monotonic() - restart, 1),
    }


def _counters(day: Day) -> dict[str, float]:
    listener, fold, projector = (
        day.metrics("listener"),
        day.metrics("fold"),
        day.metrics("projector"),
    )
    workload = day.sim.control("sim_status")["workload"]
    return {
        "emitted": float(day.emitted()),
        "wallets": float(workload["wallets"]),
        "wallets_left": float(workload["wallets_left"]),
        "listener_events": listener.get("aop_listener_events_total", 0.0),
        "stakes": listener.get(STAKED, 0.0),
        "slot_lag": listener.get("aop_listener_slot_lag", -1.0),
        "fold_lag": fold.get("aop_fold_consumer_lag", -1.0),
        "fold_roots": fold.get("aop_fold_roots_total", 0.0),
        "projected_roots": projector.get("aop_projection_roots_total", 0.0),
    }


def _load(day: Day, parity: ParityRuns) -> LoadRecord:
    """Step 3 of the module docstring."""
    record = LoadRecord()
    target = day.options.events
    first = day.emitted()
    schedule = [
        (first + (target - first) * (i + 1) // (len(FAULTS) + 1), f) for i, f in enumerate(FAULTS)
    ]
    started = time.monotonic()
    next_disk = next_parity = next_rotation = 0.0
    while (emitted := day.emitted()) < target:
        now = time.monotonic() - started
        day.services.revive()
        record.memory.record(now, day.pids())
        record.counters.append((now, _counters(day)))
        if now >= next_disk:
            record.disk.append(day.disk(now))
            next_disk = now + DISK_EVERY_S
            partial = {**record.partial(), "parity": parity.as_json()}
            write_json(day.options.result_path.with_suffix(".partial.json"), partial)
        parity.poll()
        if now >= next_parity:
            parity.start(now)
            next_parity = now + day.options.parity_every_s
        if now >= next_rotation and now > 0:
            day.sim.control("sim_rotateChannels", {"by": 1})
            record.rotations += 1
        if now >= next_rotation:
            next_rotation = now + ROTATE_EVERY_S
        if schedule and emitted >= schedule[0][0]:
            record.faults.append(_inject(day, schedule.pop(0)[1], now))
            continue
        time.sleep(max(0.0, SAMPLE_EVERY_S - (time.monotonic() - started - now)))
    record.seconds = time.monotonic() - started
    record.tip_at_end, record.ended_at = int(day.sim.control("sim_status")["tip"]), time.time()
    record.memory.record(record.seconds, day.pids())
    record.disk.append(day.disk(record.seconds))
    assert not schedule, f"faults never injected: {schedule}"
    return record


@dataclass(frozen=True)
class EpochCounts:
    """The epochs the run made, from the projected roots (`_epoch_counts`)."""

    #: global roots of the chain epochs from the one the day began in to the last one that
    #: ended by the time the events asked were emitted.
    chain_day: int
    #: every global root (the chain ran on through the end probe and the drain).
    chain_all: int
    #: attention epochs with a root that began after the day did and ended by then.
    attention_day: int
    attention_all: int
    #: wallets with an attention bonus in the last global root, and the bonus (base units).
    bonus_wallets: int
    bonus_total: int


def _epoch_counts(day: Day, record: LoadRecord) -> EpochCounts:
    clock = day.options.clock
    epochs = EpochClock(GENESIS_SLOT, clock.epoch_slots)
    first, complete = epochs.epoch_of(day.first_slot), epochs.epoch_of(record.tip_at_end)
    scoped = "FROM roots r JOIN channels c USING (channel_config) WHERE c.scope = %s"
    with psycopg.connect(libpq_url(day.postgres.database_url)) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(day.schema)))
        chain = conn.execute(
            f"SELECT count(*) FILTER (WHERE r.epoch >= %s AND r.epoch < %s), count(*) {scoped}",
            (first, complete, "global"),
        ).fetchone()
        attention = conn.execute(
            "SELECT count(DISTINCT r.epoch) FILTER (WHERE r.epoch >= %s AND r.epoch + %s <= %s),"
            f" count(DISTINCT r.epoch) {scoped}",
            (day.began_at, clock.attention_epoch_s, record.ended_at, "attention"),
        ).fetchone()
        bonus = conn.execute(
            "SELECT count(*), coalesce(sum(attention_bonus), 0) FROM leaves WHERE "
            f"attention_bonus > 0 AND root_id = (SELECT r.root_id {scoped} "
            "ORDER BY r.root_seq DESC LIMIT 1)",
            ("global",),
        ).fetchone()
    assert chain is not None and attention is not None and bonus is not None
    return EpochCounts(*chain, *attention, int(bonus[0]), int(bonus[1]))


def _drain(day: Day) -> list[Emitted]:
    """Step 5: the chain paused, the log complete, every built root projected; the listener
    stopped. The emitted event ids."""
    day.sim.control("sim_pause")
    tip = int(day.sim.control("sim_status")["tip"])
    _wait_until(
        "the chain finalizing its tip",
        lambda: int(day.sim.control("sim_status")["finalized"]) >= tip,
        DRAIN_TIMEOUT_S,
        day,
    )
    settings = load_settings(day.env)
    _wait_until(
        f"log watermark {tip}", lambda: log_watermark(settings) >= tip, DRAIN_TIMEOUT_S, day
    )

    def projected() -> bool:
        lag = day.metrics("fold").get("aop_fold_consumer_lag", -1)
        return 0 <= lag <= settings.chain_partitions and _projector_behind(day) == 0

    _wait_until("every built root projected", projected, DRAIN_TIMEOUT_S, day)
    day.services.stop("listener")
    return emitted_events(day.sim)


def _projector_behind(day: Day) -> int:
    """Records of the roots topics the projector has not committed (in PostgreSQL, with its
    rows): per partition, the log's read_committed end less the stored next offset (on
    aop.global.roots less one more: the marker of the combiner's last transaction; the fold
    writes aop.epoch.roots without transactions, `processing_guarantee="at_least_once"`, so a
    marker there would make the drain time out, visibly). Durable state, not the services'
    counters: a counter counts from its process's start, and the fold and the projector are
    restarted by their kills at different times (the full run's drain waited 600 s on
    `aop_projection_roots_total` >= `aop_fold_roots_total`, which could not hold)."""
    settings = load_settings(day.env)
    with psycopg.connect(libpq_url(day.postgres.database_url), autocommit=True) as conn:
        stored = {
            (str(topic), int(part)): int(offset)
            for topic, part, offset in conn.execute(
                sql.SQL(
                    "SELECT topic, partition, next_offset FROM {}.consumer_offsets "
                    "WHERE consumer = %s"
                ).format(sql.Identifier(day.schema)),
                (CONSUMER_NAME,),
            )
        }
    behind = 0
    for name, parts, marker in ((EPOCH_ROOTS, settings.chain_partitions, 0), (GLOBAL_ROOTS, 1, 1)):
        topic = settings.topic(name)
        for part, bounds in log_bounds(settings, topic, range(parts)).items():
            behind += max(bounds.stop - stored.get((topic, part), 0) - marker, 0)
    return behind


@dataclass
class Audits:
    """Steps 5-6; None where a step did not run (the drain timed out: `drain_error`)."""

    drain_error: str | None = None
    log: LogAudit | None = None
    roots: RootsAudit | None = None
    global_replay_code: int | None = None
    global_replay_output: str = ""
    proofs: ProofStore | None = None


def _audits(day: Day, parity: ParityRuns, at: float) -> Audits:
    """Steps 5 and 6 of the module docstring. A drain that times out is recorded, not
    raised, so the run's figures are still printed and written."""
    audits = Audits()
    try:
        emitted = _drain(day)
    except pytest.fail.Exception as exc:
        audits.drain_error = str(exc)[:400]
        return audits
    settings = load_settings(day.env)
    audits.log = audit_log(settings, emitted)
    audits.roots = audit_roots(settings, timeout=DRAIN_TIMEOUT_S)
    audits.proofs = proof_store(day.postgres.database_url, day.schema)
    replay = _aop(day, "replay", "--global", "--all", "--no-chain", "--quiet")
    audits.global_replay_code = replay.returncode
    audits.global_replay_output = (replay.stdout + replay.stderr)[-3000:]
    parity.start(at)
    parity.poll(wait=True)
    return audits


def _aop(
    day: Day, *args: str, timeout: float = PARITY_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AOP, *args],
        env={**os.environ, **day.env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _memory_figures(
    record: LoadRecord, stakes_per_min: float, warmup_s: float
) -> dict[str, dict[str, Any]]:
    """Each process's trend over its longest life, each life after its own `warmup_s`
    (`MemoryLog.judged_life`), with its limit."""
    rows: dict[str, dict[str, Any]] = {}
    for name in record.memory.samples:
        life = record.memory.judged_life(name, warmup_s)
        trend = record.memory.trend(name, life[1], life[0]) if life is not None else None
        if name in MEMORY_PEAK_MIB:
            limit, value = MEMORY_PEAK_MIB[name], trend.peak_mib if trend else None
            kind = "peak MiB"
        else:
            allowance = BYTES_PER_STAKE.get(name, 0) * stakes_per_min / MIB
            limit, value = MEMORY_SLOPE_MIB_PER_MIN + allowance, None
            value = trend.slope_mib_per_min if trend else None
            kind = "slope MiB/min"
        rows[name] = {
            "trend": trend,
            "lives": len(record.memory.pids(name)),
            "judged": kind,
            "value": value,
            "limit": limit,
            "passed": value is None or value <= limit,
        }
    return rows


def _disk_limit(name: str) -> float | None:
    """A component's limit per million events; None for a topic's share of the Kafka total
    (the total is judged, its parts are shown to say where the bytes go)."""
    if name in DISK_LIMIT_PER_MILLION:
        return DISK_LIMIT_PER_MILLION[name]
    return None if name.startswith("kafka ") or name in PROOF_TABLES else DISK_DEFAULT_PER_MILLION


def _proof_checks(
    proofs: ProofStore | None, disk: DiskSample, kept: int
) -> dict[str, tuple[Any, Any, bool]]:
    """The proof tables against proof retention (PROOF_TABLES): K roots per account at most,
    exactly their rows, nothing of a pruned root, and bytes per retained leaf."""
    if proofs is None:
        return {"proof store (after the drain)": ("not run", "checked", False)}
    leaf = max(proofs.leaves, 1)
    leaves_bytes = disk.components["pg leaves"] + disk.components["pg leaves indexes"]
    levels_bytes = disk.components["pg tree_levels"] + disk.components["pg tree_levels indexes"]
    return {
        "proof store: most roots of an account holding proofs": (
            proofs.most_kept,
            f"<= {kept} (AOP_PROOF_ROOTS_KEPT)",
            proofs.most_kept <= kept,
        ),
        "proof store: leaves / tree_levels rows (= the retained roots' leaf counts / levels)": (
            f"{proofs.leaves:,} of {proofs.leaves_expected:,} / "
            f"{proofs.levels:,} of {proofs.levels_expected:,}",
            "equal",
            proofs.leaves == proofs.leaves_expected and proofs.levels == proofs.levels_expected,
        ),
        "proof store: rows of pruned roots": (proofs.of_pruned, 0, proofs.of_pruned == 0),
        "pg leaves + indexes per retained leaf (B, last sample)": (
            round(leaves_bytes / leaf),
            LEAVES_BYTES_PER_KEPT_LEAF,
            leaves_bytes / leaf <= LEAVES_BYTES_PER_KEPT_LEAF,
        ),
        "pg tree_levels + indexes per retained leaf (B, last sample)": (
            round(levels_bytes / leaf),
            TREE_LEVELS_BYTES_PER_KEPT_LEAF,
            levels_bytes / leaf <= TREE_LEVELS_BYTES_PER_KEPT_LEAF,
        ),
    }


def _disk_figures(record: LoadRecord) -> dict[str, dict[str, Any]]:
    growth = growth_per_million(record.disk[0], record.disk[-1])
    rows = {}
    for name, per_million in sorted(growth.items()):
        limit = _disk_limit(name)
        rows[name] = {
            "start_bytes": record.disk[0].components.get(name, 0),
            "end_bytes": record.disk[-1].components[name],
            "per_million": per_million,
            "limit_per_million": limit,
            "passed": limit is None or per_million <= limit,
        }
    return rows


def _mib(limit: float | None, name: str = "") -> str:
    if limit is None:
        return "(proof store)" if name in PROOF_TABLES else "(in the total)"
    return f"{limit / MIB:.0f}"


def _render(result: Mapping[str, Any]) -> str:
    lines = [
        f"day run {result['date']}: {result['run']['events emitted']:,} events in "
        f"{result['load_s']:.0f} s of load; load average {result['loadavg_start']} -> "
        f"{result['loadavg_end']}",
        "",
        "| process | lives | RSS start MiB | RSS end MiB | slope MiB/min | peak MiB | judged "
        "| limit | pass |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for name, row in result["memory"].items():
        t = row["trend"]
        if t is None:
            lines.append(f"| {name} | {row['lives']} | - | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {row['lives']} | {t.start_mib:.0f} | {t.end_mib:.0f} "
            f"| {t.slope_mib_per_min:+.2f} | {t.peak_mib:.0f} | {row['judged']} "
            f"| {row['limit']:.1f} | {'yes' if row['passed'] else 'NO'} |"
        )
    lines += [
        "",
        "| disk | start MiB | end MiB | MiB per million events | limit | pass |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, row in result["disk"].items():
        lines.append(
            f"| {name} | {row['start_bytes'] / MIB:.1f} | {row['end_bytes'] / MIB:.1f} "
            f"| {row['per_million'] / MIB:.1f} | {_mib(row['limit_per_million'], name)} "
            f"| {'yes' if row['passed'] else 'NO'} |"
        )
    lines += ["", "| figure | value | limit | pass |", "|---|---:|---:|---|"]
    for name, (value, limit, passed) in result["checks"].items():
        lines.append(f"| {name} | {value} | {limit} | {'yes' if passed else 'NO'} |")
    lines += [
        "",
        "| parity turn at s | chain exit | legacy exit | "
        + " | ".join(VERDICTS)
        + " | legacy roots filled |",
        "|---:|---:|---:|" + "---:|" * len(VERDICTS) + "---:|",
    ]
    for turn in result["parity"]:
        counts = turn["legacy_verdicts"] or {}
        lines.append(
            f"| {turn['at']} | {turn['chain_code']} | {turn['legacy_code']} | "
            + " | ".join(str(counts.get(v, "-")) for v in VERDICTS)
            + f" | {turn['legacy_roots_filled']} |"
        )
    lines += ["", "| run | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in result["run"].items()]
    return "\n".join(lines)


def test_a_day_of_events_lands_exactly_within_its_limits(tmp_path: Path) -> None:
    options = DayOptions.from_env()
    began = time.monotonic()
    loadavg_start = os.getloadavg()
    with running_day(options, tmp_path) as day:
        parity = ParityRuns(
            day.env,
            day.legacy,
            LegacySignalFeed(load_settings(day.env), frozenset(LEGACY_CHANNELS)),
            options.clock.legacy_grace_s,
        )
        _wait_until(
            "the first roots projected",
            lambda: day.metrics("projector").get("aop_projection_roots_total", 0) >= 1,
            WARM_UP_TIMEOUT_S,
            day,
        )
        p99_start = _probe(day)
        record = _load(day, parity)
        p99_end = _probe(day)
        loadavg_end = os.getloadavg()
        parity.poll(wait=True)
        lags_at_end = _counters(day)
        audits = _audits(day, parity, record.seconds)
        settlement = day.metrics("settlement")
        crashes = {k: v for k, v in day.services.crashes.items() if v}
        epochs = _epoch_counts(day, record)
        began_at, first_slot = day.began_at, day.first_slot
    log, roots, global_code = audits.log, audits.roots, audits.global_replay_code

    final = record.counters[-1][1]
    warmup_s = options.memory_warmup_s
    window = [(at, c) for at, c in record.counters if at >= warmup_s] or record.counters
    minutes = max((window[-1][0] - window[0][0]) / 60, 1e-9)
    stakes_per_min = counter_increase([c["stakes"] for _, c in window]) / minutes
    memory = _memory_figures(record, stakes_per_min, warmup_s)
    disk = _disk_figures(record)
    codes = parity.codes()
    clock, low, high = options.clock, *DAY_EPOCHS_RANGE
    verdicts = [t.legacy_verdicts for t in parity.turns]
    judged = [v for v in verdicts if v is not None]
    failures = [sum(v[k] for v in judged) for k in ("MISMATCH", "MISSING_OURS", "MISSING_LEGACY")]
    not_run = sum(1 for t in parity.turns if t.legacy_verdicts is None or t.fill_error)
    matched = sum(1 for v in judged if v["MATCH"] > 0)
    audit_bytes = record.disk[-1].components["audit files"]
    checks: dict[str, tuple[Any, Any, bool]] = {
        "pipeline drained within DRAIN_TIMEOUT_S of the pause": (
            audits.drain_error or "yes",
            f"{DRAIN_TIMEOUT_S:.0f} s per step",
            audits.drain_error is None,
        ),
        "events emitted = on the log": (
            f"{log.emitted:,} / {log.on_log:,} (through the log's slot {log.through_slot:,}; "
            f"{log.after_log} finalized after it, not judged"
            + (f": {', '.join(log.after_examples)})" if log.after_examples else ")")
            if log
            else "not audited",
            "equal",
            log is not None and log.exact and log.emitted >= options.events,
        ),
        "lost / duplicated / foreign": (
            f"{log.lost} / {log.duplicated} / {log.foreign}"
            + (f" (e.g. {', '.join(log.examples)})" if log.examples else "")
            if log
            else "not audited",
            "0 / 0 / 0",
            log is not None and log.exact,
        ),
        "parity runs with a discrepancy (exit 1)": (codes.count(1), 0, codes.count(1) == 0),
        "parity runs that matched (exit 0)": (
            f"{codes.count(0)} of {len(codes)}",
            ">= 2",
            codes.count(0) >= 2,
        ),
        "legacy parity: MISMATCH / MISSING_OURS / MISSING_LEGACY (all turns)": (
            " / ".join(map(str, failures)),
            "0 / 0 / 0 (PENDING: within --grace)",
            not any(failures),
        ),
        "legacy parity turns with MATCHes": (f"{matched} of {len(verdicts)}", ">= 2", matched >= 2),
        "legacy parity turns not run (table not filled, or no SUMMARY)": (not_run, 0, not not_run),
        "chain epochs of the day's events (global roots)": (
            epochs.chain_day,
            f"{low}-{high} (a day's clock: 24)",
            low <= epochs.chain_day <= high,
        ),
        "attention epochs of the day's events (with a root)": (
            epochs.attention_day,
            f"{low}-{high} (a day's clock: 24)",
            low <= epochs.attention_day <= high,
        ),
        "wallets with an attention bonus in the last global root (global-v5)": (
            f"{epochs.bonus_wallets:,} ({epochs.bonus_total:,} base units)",
            "> 0",
            epochs.bonus_wallets > 0,
        ),
        "channel roots replayed: mismatched / unprojected": (
            f"{roots.mismatched} / {roots.unprojected} of {roots.checked}" if roots else "not run",
            "0 / 0",
            roots is not None and roots.mismatched == roots.unprojected == 0 and roots.checked > 0,
        ),
        "aop replay --global --all": (
            "not run" if global_code is None else f"exit {global_code}",
            "exit 0 (MATCH)",
            global_code == 0,
        ),
        "API p99 at start (ms)": (
            round(p99_start[0], 1),
            P99_LIMIT_MS,
            p99_start[0] <= P99_LIMIT_MS,
        ),
        "API p99 at end (ms)": (
            round(p99_end[0], 1),
            f"{P99_LIMIT_MS} and <= {P99_END_OVER_START} x start",
            p99_end[0] <= min(P99_LIMIT_MS, P99_END_OVER_START * max(p99_start[0], 10.0)),
        ),
        "API probe answers (start / end)": (
            f"{p99_start[1]} / {p99_end[1]}",
            "all 200",
            set(p99_start[1]) == set(p99_end[1]) == {"200"},
        ),
        **_proof_checks(audits.proofs, record.disk[-1], load_settings(day.env).proof_roots_kept),
        "audit directory (MiB)": (
            round(audit_bytes / MIB, 1),
            AUDIT_BOUND_BYTES / MIB,
            audit_bytes <= AUDIT_BOUND_BYTES,
        ),
        "services that exited on their own": (crashes or 0, 0, not crashes),
        "faults injected": (len(record.faults), len(FAULTS), len(record.faults) == len(FAULTS)),
    }
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_s": record.seconds,
        "loadavg_start": " ".join(f"{x:.2f}" for x in loadavg_start),
        "loadavg_end": " ".join(f"{x:.2f}" for x in loadavg_end),
        "cpus": os.cpu_count(),
        "options": {k: str(v) for k, v in vars(options).items()},
        "memory": memory,
        "disk": disk,
        "checks": checks,
        "run": {
            "events emitted": int(lags_at_end["emitted"]),
            "chain rate asked / expected (events/s)": f"{options.rate} / {options.expected_rate}",
            "chain epoch (AOP_EPOCH_SLOTS; expected wall s)": (
                f"{clock.epoch_slots} slots; {clock.epoch_s:.1f} s"
            ),
            "chain slots/s, the day's start to the load's end (10: block times on time)": round(
                (record.tip_at_end - first_slot) / max(record.ended_at - began_at, 1), 2
            ),
            "the day's slots (rate set / the events asked emitted)": (
                f"{first_slot:,} / {record.tip_at_end:,}"
            ),
            "attention epoch / allowed lateness (s)": (
                f"{clock.attention_epoch_s} / {clock.lateness_s}"
            ),
            "global roots / attention epochs (whole run, to the drain)": (
                f"{epochs.chain_all} / {epochs.attention_all}"
            ),
            "legacy parity --grace (s)": parity.grace_s,
            "legacy table: signal records read / epochs sealed": (
                f"{parity.feed.records:,} / {len(parity.feed.sealed_epochs)}"
            ),
            "chain rate achieved (events/s, load)": round(
                (final["emitted"] - record.counters[0][1]["emitted"]) / max(record.seconds, 1), 1
            ),
            "wallets joined / left": f"{final['wallets']:,.0f} / {final['wallets_left']:,.0f}",
            "ChannelStaked/min (judged window)": round(stakes_per_min),
            "channel rotations": record.rotations,
            "roots built (fold) / projected": (
                f"{final['fold_roots']:,.0f} / {final['projected_roots']:,.0f}"
            ),
            "global root_seq on chain at end (first ours: 1801)": settlement.get(
                "aop_settlement_last_published_seq"
            ),
            "settlement lag at end (roots not on chain)": settlement.get(
                "aop_settlement_lag_roots"
            ),
            "max listener slot lag (slots)": max(c["slot_lag"] for _, c in record.counters),
            "max fold lag (records)": max(c["fold_lag"] for _, c in record.counters),
            "fold lag after the end probe (records)": lags_at_end["fold_lag"],
            "roots built / projected after the end probe": (
                f"{lags_at_end['fold_roots']:,.0f} / {lags_at_end['projected_roots']:,.0f}"
            ),
            "parity exit codes": codes,
            "faults": record.faults,
            "API probe requests (start / end)": f"{p99_start[2]} / {p99_end[2]}",
            "total test time (s)": round(time.monotonic() - began),
        },
        "parity": parity.as_json(),
        "global_replay": audits.global_replay_output,
        "samples": {"counters": record.counters, "rss_bytes": record.memory.samples},
    }
    write_json(options.result_path, result)
    print("\n" + _render(result) + f"\n(JSON: {options.result_path})")
    failed = [name for name, (_v, _l, passed) in checks.items() if not passed]
    failed += [f"memory {n}" for n, row in memory.items() if not row["passed"]]
    failed += [f"disk {n}" for n, row in disk.items() if not row["passed"]]
    assert not failed, f"limits passed: {failed} (table above; JSON {options.result_path})"
