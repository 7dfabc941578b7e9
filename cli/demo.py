"""`aop demo`: the whole pipeline on a simulated chain running the program as deployed
today, watched live, in a few minutes, ending with a wallet's claim.

1. Fresh names for this run (topic prefix, database schema) and a publisher keypair file
   (mode 0600) under `.local/demo/`; every setting goes to `.local/demo/env` so the printed
   commands can reuse them.
2. `aop simulate-chain --program deployed` at a lively rate (several channels, thousands of
   wallets staking, fast slots): the mint's GlobalRootConfig starts at root_seq 1800, as the
   live one is past it, and the publisher of step 1 is the protocol's.
3. `aop run`'s services under the supervisor: listener, fold, combiner, projector, settlement
   (publishing global-v5 roots from root_seq 1801: AOP_SETTLEMENT_TARGET=global-v5,
   AOP_AUTO_PUBLISH=true), API and ingest; with attention on (AOP_ATTENTION_ENABLED, epochs
   of 10 s instead of an hour so a few minutes hold several), a source's token minted with
   `aop ingest token new`, and `aop simulate-collectors` posting the chain's users' signals
   and their wallet bindings, so the global roots' leaves carry an attention_bonus.
4. A live view of events/s, slot lag, open epoch, signals, channel and global roots,
   publications.
5. Once `roots` global roots are published (or the time budget is spent): the roots, a curl
   line that fetches a wallet's proof from the API (`GET /v1/claims/{wallet}`, the live
   API's shape), that wallet's claim (`aop claim`: claim_global_v2 with the API's proof, on
   the simulated chain; a wallet whose leaf has both base_yield and attention_bonus), the
   API's answer once the claim is projected, and the `aop replay`
   line that re-verifies the global root from the log (each run once here, results shown).
6. Without --keep it stops the chain and the writers and leaves only the API running (pid in
   `.local/demo/api.pid`, stopped by `make down`), so the printed curl line keeps working.
"""

from __future__ import annotations

import json
import os
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
#: the simulated GlobalRootConfig's latest_root_seq at genesis (the live one is past 1,800).
LATEST_ON_CHAIN = 1800
#: the simulated chain's seed: its wallets are `Keys(SIM_SEED).wallet(i)`.
SIM_SEED = 7
#: attention epochs of the demo (the legacy's are an hour), and how late a signal may be.
ATTENTION_EPOCH_S = 10
ATTENTION_LATENESS_S = 5
#: the simulated collectors' signals per second.
SIGNAL_RATE = 100.0


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
    ingest_port: int = 8090
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
    _stop_leftover_api(workdir)  # the API a previous demo left serving (its pid file)
    _require_free_port(options.api_port)
    _require_free_port(options.ingest_port)
    signals = _Signals()
    for sub in ("", "fold", "audit", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
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
    collector_token = _mint_collector_token(workdir, env)
    from aop.simchain.process import spawn_simchain

    with ExitStack() as running:
        signals.holding = True  # the chain's process is registered before a signal stops us
        sim = spawn_simchain(
            [
                "--program",
                "deployed",
                "--rate",
                str(options.rate),
                "--wallets",
                str(options.wallets),
                "--slot-ms",
                str(options.slot_ms),
                "--channels",
                ",".join(DEMO_CHANNELS),
                "--seed",
                str(SIM_SEED),
                "--wall-clock",  # attention epochs are wall-clock windows: block times too
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
        signals.holding = True
        collectors = _start_collectors(options, workdir, env, collector_token)
        running.callback(_stop_process, collectors)
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


def _mint_collector_token(workdir: Path, env: dict[str, str]) -> Path:
    """A fresh token of source `simulated` (`aop ingest token new`): its hash goes to the
    ingest's tokens file (AOP_INGEST_TOKENS_FILE, set in `env`), the token to a file the
    collectors read; both mode 600."""
    tokens, token = workdir / "ingest.tokens", workdir / "collector.token"
    tokens.unlink(missing_ok=True)
    token.unlink(missing_ok=True)
    env["AOP_INGEST_TOKENS_FILE"] = str(tokens)
    command = ["ingest", "token", "new", "--source", "simulated"]
    command += ["--tokens-file", str(tokens), "--output", str(token)]
    _check(
        subprocess.run(
            [*_aop(), *command], env={**os.environ, **env}, capture_output=True, text=True
        )
    )
    return token


def _start_collectors(
    options: DemoOptions, workdir: Path, env: Mapping[str, str], token: Path
) -> subprocess.Popen[bytes]:
    """`aop simulate-collectors` for the chain's wallets and channels (step 3); its log and
    final report in logs/collectors.log."""
    log = open(workdir / "logs" / "collectors.log", "ab")  # noqa: SIM115 - handed to the child
    command = ["simulate-collectors", "--token-file", str(token), "--seed", str(SIM_SEED)]
    command += ["--wallets", str(options.wallets), "--channels", ",".join(DEMO_CHANNELS)]
    command += ["--rate", str(SIGNAL_RATE), "--batch", "100"]
    return subprocess.Popen(
        [*_aop(), *command],
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _demo_env(options: DemoOptions, workdir: Path) -> dict[str, str]:
    run = time.strftime("%Y%m%d%H%M%S")
    keypair = workdir / "publisher.json"
    if not keypair.exists():
        from solders.keypair import Keypair

        from aop.settlement.keypair import write_keypair

        write_keypair(keypair, Keypair())
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
        # the deployed program takes global roots only; the chain's ring is at 1800
        "AOP_SIM_GLOBAL_LATEST_ROOT_SEQ": str(LATEST_ON_CHAIN),
        "AOP_GLOBAL_FIRST_ROOT_SEQ": str(LATEST_ON_CHAIN + 1),
        "AOP_SETTLEMENT_TARGET": "global-v5",
        "AOP_AUTO_PUBLISH": "true",
        "AOP_API_PORT": str(options.api_port),
        "AOP_ATTENTION_ENABLED": "true",
        "AOP_ATTENTION_EPOCH_SECONDS": str(ATTENTION_EPOCH_S),
        "AOP_ATTENTION_ALLOWED_LATENESS_S": str(ATTENTION_LATENESS_S),
        "AOP_INGEST_PORT": str(options.ingest_port),
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
    `reason` or `outcome` label are also summed per value, under `<name>|reason=<value>`
    (`|outcome=<value>`)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1.0).text
    except httpx.HTTPError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
            for label in ("reason", "outcome"):
                if label in sample.labels:
                    key = f"{sample.name}|{label}={sample.labels[label]}"
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
    shown = sorted((reason, n) for reason, n in reasons.items() if n)  # reasons seen, not 0s
    return ", ".join(f"{n:,.0f} {reason}" for reason, n in shown) or "0"


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


def _global_roots(api: str) -> list[dict[str, Any]]:
    """The newest global roots the API lists (newest first; empty before the first)."""
    try:
        reply = httpx.get(f"{api}/v1/global/roots", params={"limit": 100}, timeout=2)
    except httpx.HTTPError:
        return []
    roots: list[dict[str, Any]] = reply.json().get("roots", []) if reply.status_code == 200 else []
    return roots


def _published(roots: list[dict[str, Any]]) -> int:
    return sum(1 for root in roots if root.get("settlement_status") == "published")


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
                for name in ("listener", "fold", "combiner", "projector", "settlement", "ingest")
                for key, value in _metrics(options.metrics_ports[name]).items()
            }
            try:
                status = sim.control("sim_status", timeout=2)
            except Exception:
                status = {}
            roots = _roots_per_channel(api)
            published = _published(_global_roots(api))
            sample = _Sample(now, values)
            live.update(
                _view(
                    options, sample, previous, status, roots, published, supervisor, now - started
                )
            )
            previous = sample
            if published >= options.roots:
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
    published: int,
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
    table.add_row(
        "signals accepted/s (ingest)",
        f"{_rate('ingest:aop_ingest_items_total|outcome=accepted', sample, previous):,.0f}",
    )
    table.add_row("roots built (fold)", f"{v.get('fold:aop_fold_roots_total', 0):,.0f}")
    table.add_row("roots projected", f"{v.get('projector:aop_projection_roots_total', 0):,.0f}")
    table.add_row("projector lag", f"{v.get('projector:aop_projection_consumer_lag', 0):,.0f}")
    table.add_row(
        "global roots (combiner)", f"{v.get('combiner:aop_combiner_global_roots_total', 0):,.0f}"
    )
    table.add_row("global roots published (API)", f"{published} of {options.roots} wanted")
    table.add_row(
        "settlement (published / failed)",
        f"{v.get('settlement:aop_settlement_attempts_total|outcome=published', 0):,.0f} / "
        f"{v.get('settlement:aop_settlement_attempts_total|outcome=failed', 0):,.0f}",
    )
    table.add_row("DLQ (by reason)", _dlq_by_reason(v))
    table.add_row("roots per channel (API)", ", ".join(f"{c}={n}" for c, n in roots.items()) or "-")
    table.add_row("service restarts", ", ".join(f"{n}={supervisor.restarts(n)}" for n in SERVICES))
    return Group(table)


def _summary(console: Console, api: str, workdir: Path, env: Mapping[str, str]) -> int:
    """Step 5: the roots, a wallet's proof, its claim, and the replay of its root."""
    _channel_table(console, api)
    roots = _global_roots(api)
    _global_table(console, roots)
    pick = _claimable_wallet(api)
    if pick is None:
        console.print("[red]no wallet has a claimable amount in a published global root[/]")
        return 1
    index, answer = pick
    wallet = answer["wallet"]
    console.print("\n[bold]A wallet's proof, from the API (the live API's shape):[/]")
    console.print(f"curl -s {api}/v1/claims/{wallet}", soft_wrap=True)
    console.print(json.dumps(httpx.get(f"{api}/v1/claims/{wallet}", timeout=5).json(), indent=1))
    claimed = _claim(console, api, workdir, env, index)
    console.print("\n[bold]Re-verify that global root from the log:[/]")
    root_seq = str(claimed["root_seq"]) if claimed else str(answer["root_seq"])
    console.print(
        f"env $(grep -v '^#' {workdir / 'env'} | xargs) {sys.executable} -m aop.cli replay "
        f"--global --root-seq {root_seq} --no-chain",
        soft_wrap=True,
    )
    result = subprocess.run(
        [*_aop(), "replay", "--global", "--root-seq", root_seq, "--no-chain", "--quiet"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    console.print(result.stdout.strip() or result.stderr.strip()[-800:])
    return 0 if claimed is not None and result.returncode == 0 else 1


def _channel_table(console: Console, api: str) -> None:
    table = Table(title="channel roots (inputs of the global root; not published themselves)")
    for column in ("channel", "roots", "latest root_seq", "epoch", "leaves", "total"):
        table.add_column(column)
    for channel in DEMO_CHANNELS:
        reply = httpx.get(f"{api}/v1/channels/{channel}/roots", params={"limit": 100}, timeout=5)
        items = reply.json().get("roots", []) if reply.status_code == 200 else []
        if not items:
            table.add_row(channel, "0", "-", "-", "-", "-")
            continue
        latest = max(items, key=lambda r: r["root_seq"])
        table.add_row(
            channel,
            str(len(items)),
            str(latest["root_seq"]),
            str(latest.get("epoch", "-")),
            str(latest.get("leaf_count", "-")),
            str(latest.get("total", "-")),
        )
    console.print(table)


def _global_table(console: Console, roots: list[dict[str, Any]]) -> None:
    table = Table(title="global roots (global-v5, one per chain epoch; newest first)")
    for column in ("root_seq", "epoch", "root", "leaves", "total", "settlement"):
        table.add_column(column)
    for root in roots[:6]:
        table.add_row(
            str(root["root_seq"]),
            str(root.get("epoch", "-")),
            str(root["root"])[:16] + "…",
            str(root.get("leaf_count", "-")),
            str(root.get("total", "-")),
            str(root.get("settlement_status", "-")),
        )
    console.print(table)


def _claimable_wallet(api: str, tries: int = 400) -> tuple[int, dict[str, Any]] | None:
    """The first simulated wallet (`Keys(SIM_SEED).wallet(i)`) with something claimable in a
    published global root, preferring one whose leaf has both a base_yield and an
    attention_bonus: its index and the API's answer (amounts as strings)."""
    from aop.simchain.keys import Keys

    keys = Keys(SIM_SEED)
    fallback: tuple[int, dict[str, Any]] | None = None
    for index in range(tries):
        reply = httpx.get(f"{api}/v1/global/claims/{keys.wallet_key(index)}", timeout=5)
        if reply.status_code != 200:
            continue
        answer: dict[str, Any] = reply.json()
        if answer["settlement_status"] != "published" or int(answer["claimable"]) <= 0:
            continue
        if int(answer.get("base_yield", 0)) > 0 and int(answer.get("attention_bonus", 0)) > 0:
            return index, answer
        fallback = fallback or (index, answer)
    return fallback


def _claim(
    console: Console, api: str, workdir: Path, env: Mapping[str, str], index: int
) -> dict[str, Any] | None:
    """The wallet's claim, by running the printed `aop claim` line (its keypair written mode
    600 under the demo's directory), then the API's answer once the projector has seen
    GlobalRewardsClaimed. None unless the claim paid what was claimable and the API shows it."""
    from aop.settlement.keypair import write_keypair
    from aop.simchain.keys import Keys

    keypair = Keys(SIM_SEED).wallet(index)
    path = workdir / f"wallet-{index}.json"
    path.unlink(missing_ok=True)
    write_keypair(path, keypair)
    console.print("\n[bold]The wallet claims with it (claim_global_v2, on the simulated chain):[/]")
    command = ["claim", "--keypair", str(path), "--api", api]
    console.print(
        f"env $(grep -v '^#' {workdir / 'env'} | xargs) {sys.executable} -m aop.cli "
        + shlex.join(command),
        soft_wrap=True,
    )
    result = subprocess.run(
        [*_aop(), *command, "--json"], env={**os.environ, **env}, capture_output=True, text=True
    )
    if result.returncode != 0:
        console.print(f"[red]the claim failed: {result.stderr.strip()[-800:]}[/]")
        return None
    claim: dict[str, Any] = json.loads(result.stdout)
    console.print(
        f"claimed {claim['received']:,} at root_seq {claim['root_seq']} (base_yield "
        f"{int(claim['base_yield']):,} + attention_bonus {int(claim['attention_bonus']):,}); "
        f"token balance {claim['balance_before']:,} -> {claim['balance_after']:,}; "
        f"signature {claim['signature']}",
        soft_wrap=True,
    )
    deadline = time.monotonic() + 60
    after: dict[str, Any] = {}
    while time.monotonic() < deadline:
        reply = httpx.get(f"{api}/v1/global/claims/{claim['wallet']}", timeout=5)
        after = reply.json() if reply.status_code == 200 else {}
        if after and int(after["claimed_total"]) >= int(claim["cumulative_total"]):
            break
        time.sleep(0.5)
    console.print(
        f"the API after the claim: claimed_total {after.get('claimed_total')}, claimable "
        f"{after.get('claimable')} (root_seq {after.get('root_seq')})"
    )
    received_all = claim["received"] == int(claim["claimable"]) > 0
    projected = bool(after) and int(after["claimed_total"]) >= int(claim["cumulative_total"])
    return claim if received_all and projected else None


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
    """SIGTERM the API a previous demo left running (`api.pid`), and wait up to 15 s for it
    to exit."""
    pidfile = workdir / "api.pid"
    if not pidfile.exists():
        return
    with suppress(ProcessLookupError, ValueError):
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # ProcessLookupError once it is gone
            time.sleep(0.2)
    pidfile.unlink()
