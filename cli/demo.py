"""`aop demo`: the whole pipeline on a simulated chain, watched live, in a few minutes.

1. Fresh names for this run (topic prefix, database schema) and a publisher keypair file
   (mode 0600) under `.local/demo/`; every setting goes to `.local/demo/env` so the printed
   commands can reuse them.
2. `aop simulate-chain` at a lively rate (several channels, thousands of wallets, fast slots).
3. `aop run`'s services under the supervisor: listener, fold, projector, settlement (dry run:
   AOP_AUTO_PUBLISH stays false), API.
4. A live view of events/s, slot lag, open epoch, roots built, settlement outcomes and lag.
5. Once every channel has `roots` roots (or the time budget is spent): a summary table, a curl
   line that fetches a real proof from the API and the `aop replay` line that re-verifies it
   (both are run once here, and their results shown).
6. Without --keep it stops the chain and the writers and leaves only the API running (pid in
   `.local/demo/api.pid`, stopped by `make down`), so the printed curl line keeps working.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from aop.cli.services import METRICS_PORTS, SERVICES, service_specs
from aop.cli.supervisor import Supervisor
from aop.runtime.errors import AopError

__all__ = ["DemoOptions", "run_demo"]

DEMO_CHANNELS = ("twitch:lofigirl", "youtube:lofi_girl_sleep", "spotify:oracle", "youtube_lofi")


@dataclass(frozen=True)
class DemoOptions:
    keep: bool = False
    budget_s: float = 150.0
    roots: int = 3
    rate: float = 400.0
    wallets: int = 3000
    slot_ms: int = 100
    epoch_slots: int = 150
    api_port: int = 8080
    workdir: Path = Path(".local/demo")
    #: each service's /metrics port (`aop run`'s, which Prometheus scrapes, by default).
    metrics_ports: Mapping[str, int] = field(default_factory=lambda: dict(METRICS_PORTS))


@dataclass
class _Sample:
    at: float
    values: dict[str, float] = field(default_factory=dict)


class _Stopped(Exception):
    """Raised in the main thread by the first SIGTERM or SIGINT: the demo stops everything
    it started (the `finally` of `run_demo`) and exits 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGTERM and SIGINT stop the demo. The first one sets `stopped` and, unless a start is
    under way (`holding`), raises `_Stopped` in the main thread at once; a start checks
    `check()` when its child is registered for clean-up. A Python handler runs whichever
    thread the signal reaches, unlike `sigwait`, which needs the signals blocked in every
    thread first."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.signum = 0
        self.holding = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.stopped.is_set():
            return
        self.signum = signum
        self.stopped.set()
        if not self.holding:
            raise _Stopped(signum)

    def check(self) -> None:
        """Raise `_Stopped` if a signal came while holding."""
        self.holding = False
        if self.stopped.is_set():
            raise _Stopped(self.signum)


def run_demo(options: DemoOptions, console: Console) -> int:
    """Run the demo; returns the exit code (0 when the proof and the replay check out; 128 +
    the signal's number when SIGTERM or SIGINT stopped it, after everything it started
    stopped)."""
    try:
        return _run_demo(options, console)
    except _Stopped as stop:
        console.print(f"stopped by signal {stop.signum}: every service and the chain stopped")
        return 128 + stop.signum


def _run_demo(options: DemoOptions, console: Console) -> int:
    workdir = options.workdir.resolve()
    _require_free_port(options.api_port)
    signals = _Signals()
    for sub in ("", "fold", "audit", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    _stop_leftover_api(workdir)
    env = _demo_env(options, workdir)
    console.print(
        f"[bold]aop demo[/] run {env['AOP_TOPIC_PREFIX'].rstrip('.')}: "
        f"settings in {workdir / 'env'}, service logs in {workdir / 'logs'}"
    )
    _check(
        subprocess.run(
            [*_aop(), "db", "upgrade"], env={**os.environ, **env}, capture_output=True, text=True
        )
    )
    from aop.simchain.process import spawn_simchain

    with ExitStack() as running:
        signals.holding = True  # the chain's process is registered before a signal stops us
        sim = spawn_simchain(
            [
                "--rate",
                str(options.rate),
                "--wallets",
                str(options.wallets),
                "--slot-ms",
                str(options.slot_ms),
                "--channels",
                ",".join(DEMO_CHANNELS),
                "--seed",
                "7",
            ],
            env=env,
        )
        running.callback(sim.stop)
        signals.check()
        env = {**env, "AOP_RPC_URL": sim.http_url, "AOP_WS_URL": sim.ws_url}
        _write_env(workdir, env)
        supervisor = Supervisor(
            service_specs(
                list(SERVICES),
                env=env,
                log_dir=workdir / "logs",
                metrics_ports=options.metrics_ports,
            ),
            stop_timeout=20,
        )
        thread = threading.Thread(
            target=supervisor.run, kwargs={"install_signal_handlers": False}, daemon=True
        )
        signals.holding = True
        thread.start()
        running.callback(thread.join, 60)
        running.callback(supervisor.request_stop)
        signals.check()
        api = f"http://127.0.0.1:{options.api_port}"
        done = _watch(options, console, supervisor, sim, api)
        if not done:
            console.print("[yellow]time budget spent before every channel had its roots[/]")
        code = _summary(console, api, workdir, env)
        if options.keep:
            console.print("--keep: everything keeps running; Ctrl-C (or SIGTERM) stops it.")
            while not signals.stopped.wait(1.0):
                pass
            signals.check()
    if not options.keep:
        _start_detached_api(workdir, env)
    return code


def _require_free_port(port: int) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise AopError(
                f"port {port} is in use (a previous demo's API? `make down` stops it); "
                "free it or pass --api-port"
            )


def _aop() -> list[str]:
    return [sys.executable, "-m", "aop.cli"]


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise AopError(f"{shlex.join(result.args)} failed: {result.stderr.strip()[-500:]}")


def _demo_env(options: DemoOptions, workdir: Path) -> dict[str, str]:
    run = time.strftime("%Y%m%d%H%M%S")
    keypair = workdir / "publisher.json"
    if not keypair.exists():
        from solders.keypair import Keypair

        from aop.settlement.keypair import write_publisher_keypair

        write_publisher_keypair(keypair, Keypair())
    keypair.chmod(0o600)  # a key left by an older demo, made before the file was born 0600
    env = {
        "AOP_TOPIC_PREFIX": f"demo{run}.",
        "AOP_DATABASE_SCHEMA": f"demo_{run}",
        "AOP_CHANNELS": ",".join(DEMO_CHANNELS),
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_EPOCH_SLOTS": str(options.epoch_slots),
        "AOP_GENESIS_SLOT": "1000",
        "AOP_EMISSION_DEFAULT": "1000000000000",
        "AOP_PUBLISHER_KEYPAIR": str(keypair),
        "AOP_AUTO_PUBLISH": "false",
        "AOP_API_PORT": str(options.api_port),
        "AOP_AUDIT_DIR": str(workdir / "audit"),
        "AOP_FOLD_DATADIR": str(workdir / "fold"),
        "AOP_LOG_LEVEL": "WARNING",
    }
    for key in ("AOP_KAFKA_BOOTSTRAP", "AOP_DATABASE_URL", "AOP_SCHEMA_REGISTRY_URL"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def _write_env(workdir: Path, env: Mapping[str, str]) -> None:
    (workdir / "env").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))


def _metrics(port: int) -> dict[str, float]:
    """Sum each metric's samples (all labels) from one service's /metrics; samples with a
    `reason` label are also summed per reason, under `<name>|reason=<reason>`."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1.0).text
    except httpx.HTTPError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
            if "reason" in sample.labels:
                key = f"{sample.name}|reason={sample.labels['reason']}"
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _dlq_by_reason(values: Mapping[str, float]) -> str:
    """`aop_dlq_total` per reason over every service, e.g. `441 failed_transaction`. The
    simulated wallets send some transactions the program refuses (an unstake before the lock
    ends, a claim with a bad proof): each is a `failed_transaction` record, by design."""
    reasons: dict[str, float] = {}
    for key, value in values.items():
        name, _, reason = key.partition("|reason=")
        if reason and name.endswith("aop_dlq_total"):
            reasons[reason] = reasons.get(reason, 0.0) + value
    return ", ".join(f"{n:,.0f} {reason}" for reason, n in sorted(reasons.items())) or "0"


def _roots_per_channel(api: str) -> dict[str, int]:
    counts = {}
    for channel in DEMO_CHANNELS:
        try:
            reply = httpx.get(
                f"{api}/v1/channels/{channel}/roots", params={"limit": 100}, timeout=2
            )
        except httpx.HTTPError:
            return {}
        counts[channel] = len(reply.json().get("roots", [])) if reply.status_code == 200 else 0
    return counts


def _watch(
    options: DemoOptions, console: Console, supervisor: Supervisor, sim: Any, api: str
) -> bool:
    started = time.monotonic()
    previous = _Sample(started)
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while time.monotonic() - started < options.budget_s:
            time.sleep(1.0)
            now = time.monotonic()
            values = {
                f"{name}:{key}": value
                for name in ("listener", "fold", "projector", "settlement")
                for key, value in _metrics(options.metrics_ports[name]).items()
            }
            try:
                status = sim.control("sim_status", timeout=2)
            except Exception:
                status = {}
            roots = _roots_per_channel(api)
            sample = _Sample(now, values)
            live.update(_view(options, sample, previous, status, roots, supervisor, now - started))
            previous = sample
            if roots and min(roots.values()) >= options.roots:
                return True
    return False


def _rate(name: str, sample: _Sample, previous: _Sample) -> float:
    elapsed = max(1e-6, sample.at - previous.at)
    return (sample.values.get(name, 0.0) - previous.values.get(name, 0.0)) / elapsed


def _view(
    options: DemoOptions,
    sample: _Sample,
    previous: _Sample,
    status: Mapping[str, Any],
    roots: Mapping[str, int],
    supervisor: Supervisor,
    elapsed: float,
) -> Group:
    v = sample.values
    finalized = int(status.get("finalized", 0) or 0)
    open_epoch = max(0, (finalized - 1000) // options.epoch_slots) if finalized else "-"
    table = Table(title=f"aop demo — {elapsed:.0f} s", show_header=False)
    table.add_row("chain finalized slot", str(finalized or "-"))
    table.add_row("open epoch", str(open_epoch))
    table.add_row(
        "events/s onto the log",
        f"{_rate('listener:aop_listener_events_total', sample, previous):,.0f}",
    )
    table.add_row("listener slot lag", f"{v.get('listener:aop_listener_slot_lag', 0):,.0f}")
    table.add_row(
        "events folded/s", f"{_rate('fold:aop_fold_events_total', sample, previous):,.0f}"
    )
    table.add_row("fold consumer lag", f"{v.get('fold:aop_fold_consumer_lag', 0):,.0f}")
    table.add_row("roots built (fold)", f"{v.get('fold:aop_fold_roots_total', 0):,.0f}")
    table.add_row("roots projected", f"{v.get('projector:aop_projection_roots_total', 0):,.0f}")
    table.add_row("projector lag", f"{v.get('projector:aop_projection_consumer_lag', 0):,.0f}")
    table.add_row(
        "settlement attempts (dry run)",
        f"{v.get('settlement:aop_settlement_attempts_total', 0):,.0f}",
    )
    table.add_row("DLQ (by reason)", _dlq_by_reason(v))
    table.add_row("roots per channel (API)", ", ".join(f"{c}={n}" for c, n in roots.items()) or "-")
    table.add_row("service restarts", ", ".join(f"{n}={supervisor.restarts(n)}" for n in SERVICES))
    return Group(table)


def _summary(console: Console, api: str, workdir: Path, env: Mapping[str, str]) -> int:
    table = Table(title="roots per channel")
    for column in (
        "channel",
        "roots",
        "latest root_seq",
        "epoch",
        "root",
        "leaves",
        "total",
        "settlement",
    ):
        table.add_column(column)
    pick: tuple[str, int, str] | None = None
    for channel in DEMO_CHANNELS:
        reply = httpx.get(f"{api}/v1/channels/{channel}/roots", params={"limit": 100}, timeout=5)
        items = reply.json().get("roots", []) if reply.status_code == 200 else []
        if not items:
            table.add_row(channel, "0", "-", "-", "-", "-", "-", "-")
            continue
        latest = max(items, key=lambda r: r["root_seq"])
        table.add_row(
            channel,
            str(len(items)),
            str(latest["root_seq"]),
            str(latest.get("epoch", "-")),
            str(latest["root"])[:16] + "…",
            str(latest.get("leaf_count", "-")),
            str(latest.get("total", "-")),
            str(latest.get("settlement_status", "-")),
        )
        if pick is None:
            wallet = _first_wallet(api, channel, int(latest["root_seq"]))
            if wallet:
                pick = (channel, int(latest["root_seq"]), wallet)
    console.print(table)
    if pick is None:
        console.print("[red]no root with a wallet was projected: nothing to curl[/]")
        return 1
    channel, root_seq, wallet = pick
    curl = f"curl -s {api}/v1/channels/{channel}/claims/{wallet}"
    replay = (
        f"env $(grep -v '^#' {workdir / 'env'} | xargs) {sys.executable} -m aop.cli replay "
        f"--channel {channel} --root-seq {root_seq} --no-chain"
    )
    claim = httpx.get(f"{api}/v1/channels/{channel}/claims/{wallet}", timeout=5)
    console.print("\n[bold]A wallet's proof, from the API:[/]")
    console.print(curl, soft_wrap=True)
    console.print(json.dumps(claim.json(), indent=1), soft_wrap=True)
    console.print("\n[bold]Re-verify that root from the log:[/]")
    console.print(replay, soft_wrap=True)
    result = subprocess.run(
        [
            *_aop(),
            "replay",
            "--channel",
            channel,
            "--root-seq",
            str(root_seq),
            "--no-chain",
            "--quiet",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    console.print(result.stdout.strip() or result.stderr.strip()[-800:])
    return 0 if claim.status_code == 200 and result.returncode == 0 else 1


def _first_wallet(api: str, channel: str, root_seq: int) -> str | None:
    """The first wallet of a root's dataset (read from the head of the streamed array)."""
    with httpx.stream("GET", f"{api}/v1/roots/{channel}/{root_seq}/dataset", timeout=10) as reply:
        if reply.status_code != 200:
            return None
        head = ""
        for chunk in reply.iter_text():
            head += chunk
            found = re.search(r'"wallet"\s*:\s*"([1-9A-HJ-NP-Za-km-z]+)"', head)
            if found:
                return found.group(1)
    return None


def _start_detached_api(workdir: Path, env: Mapping[str, str]) -> None:
    log = open(workdir / "logs" / "api.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [*_aop(), "api"],
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (workdir / "api.pid").write_text(str(process.pid))


def _stop_leftover_api(workdir: Path) -> None:
    pidfile = workdir / "api.pid"
    if pidfile.exists():
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
            time.sleep(1)
        pidfile.unlink()
