"""docs/runbook.md's command blocks run, as written, against the test services.

Every ```bash block of the runbook carries a marker on the line before it:

* `<!-- runbook: NAME -->`: run here, in the order of the runbook, each in its own `bash -e
  -o pipefail` in one working directory, with what earlier blocks exported (a block that
  sets `PGURL` serves the next); its exit code and output shape are checked (`EXPECT`);
* `<!-- runbook: not-run (REASON) -->`: not run, and REASON says why (Docker, systemd, the
  machine's shared services, a broker to wipe). At most `MAX_NOT_RUN` of these.

The deployment they run against is the cutover story of the runbook, on a simulated chain:
the mint's GlobalRootConfig is at root_seq 1803 (a legacy publisher's), `aop chain status`
(block chain-status-before) prints `AOP_GLOBAL_FIRST_ROOT_SEQ=1804`, the pipeline runs with
it as a dry run, the "legacy publisher" publishes up to 1806 meanwhile (settlement stops the
global root: sequence_mismatch), then stops; once our global roots pass it, every service is
stopped and the remaining blocks run. Substituted settings: `/etc/aop/env` is the test's
settings file, `/etc/aop/` its directory (password files), the login names get a unique
suffix (roles are cluster-wide), `CHANNEL` is `global`, `OFFSET` the first dead letter's,
`/var/backups/aop/` a directory of the test's, the ingest's `127.0.0.1:8090` a free port and
its example channel `twitch:lofigirl` the deployment's first channel. The test starts `aop
ingest` for the block that posts to it (ingest-signals), as step 2 of "Setting up a
collector" says.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from aop.cli.services import SERVICES
from aop.cli.supervisor import ServiceSpec, Supervisor
from aop.simchain.process import spawn_simchain
from tests.conftest import ROOT, libpq_url
from tests.live_pipeline import (
    AOP,
    fresh_schema,
    pipeline_env,
    service_env,
)
from tests.support.ingest import IngestProcess

RUNBOOK = ROOT / "docs" / "runbook.md"
MAX_NOT_RUN = 4
LEGACY_SEQ = 1803
#: how far past our newest global root the legacy publisher publishes during the dry run.
LEGACY_LEAD = 3
#: what the GlobalRootConfig's ring holds at LEGACY_SEQ (the simulator fills the last 4).
ADDRESS = r"[1-9A-HJ-NP-Za-km-z]{32,44}"
RING = ",".join(str(s) for s in range(LEGACY_SEQ - 3, LEGACY_SEQ + 1))
CHANNELS = ("rb:alpha", "rb:beta")
SIM_ARGS = ["--rate", "20", "--wallets", "20", "--slot-ms", "40", "--finality-depth", "4"]
SIM_ARGS += ["--claim-channels", "", "--seed", "21", "--channels", ",".join(CHANNELS)]
WAIT_S = 240.0
SECRET = f"pw-{uuid.uuid4().hex}"

_MARKER = re.compile(r"^\s*<!-- runbook: (?:not-run \((?P<reason>.+)\)|(?P<name>[\w-]+)) -->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\w*)\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced block of the runbook and the marker before it."""

    line: int
    lang: str
    text: str
    name: str | None
    not_run: str | None


def runbook_blocks(text: str) -> list[Block]:
    """Every fenced block, dedented, with the marker on the closest non-blank line above."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening["indent"], opening["lang"]
        body = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j])
            j += 1
        above = i - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        marker = _MARKER.match(lines[above]) if above >= 0 else None
        blocks.append(
            Block(
                i + 1,
                lang,
                textwrap.dedent("\n".join(body)) if indent else "\n".join(body),
                marker["name"] if marker else None,
                marker["reason"] if marker else None,
            )
        )
        i = j + 1
    return blocks


def command_blocks() -> list[Block]:
    return [b for b in runbook_blocks(RUNBOOK.read_text()) if b.lang in ("bash", "sh")]


@dataclass(frozen=True)
class Expect:
    """A run block's exit code and the patterns its output (stdout + stderr) must match."""

    code: int
    patterns: tuple[str, ...]
    absent: tuple[str, ...] = ()


def expectations(legacy_more: int) -> dict[str, Expect]:
    """EXPECT for a run where the legacy publisher reached root_seq `legacy_more`."""
    return {
        "chain-status-before": Expect(
            0,
            (
                r"schema \S+: revision \w+",
                rf"│ global +│ global-v5 +│ {ADDRESS} +│ {LEGACY_SEQ} +│ {RING} +│ - +│ - +│ "
                r"no_roots",
                rf"global: no_roots: no root projected; the account's latest_root_seq is "
                rf"{LEGACY_SEQ}\n",
                r"│ rb:alpha +│ cumulative-v2 +│ \w{43,44} +│ 0 +│ - +│ - +│ - +│ no_roots",
                rf"AOP_GLOBAL_FIRST_ROOT_SEQ={LEGACY_SEQ + 1}\n",
                r"AOP_FIRST_ROOT_SEQ='\{\}'",
            ),
        ),
        "chain-status-switch": Expect(
            1,
            (
                rf"│ global +│ global-v5 +│ \w{{43,44}} +│ {legacy_more} +│ .*│ behind",
                rf"global: behind: \d+ root\(s\) to publish \(latest_root_seq {legacy_more}, ",
                r"│ rb:alpha +│ cumulative-v2 .*│ behind",
                r"│ global +│ global-v5 +│ stopped +│ 0 \(-\) +│ \d+ \(\w+\)",
                r"sequence_mismatch",
                r"│ rb:alpha +│ cumulative-v2 +│ outside_target",
                r"stopped: global; operator action",
            ),
        ),
        "chain-status-rollback": Expect(0, (rf"AOP_GLOBAL_FIRST_ROOT_SEQ={legacy_more + 1}\n",)),
        "db-roles": Expect(
            0,
            (
                r"aop_api: alembic_version, channels",
                r"login aop_api_1_\w+: created, member of aop_api\n",
                r"login aop_projector_1_\w+: created, member of aop_projector\n",
                r"login aop_settle_1_\w+: created, member of aop_settle\n",
            ),
            absent=(SECRET,),
        ),
        "pg-dump": Expect(0, ()),
        "pg-restore": Expect(
            0, (r"schema (\S+) set aside as \1_aside_\d{14}\n", r"revision (\w+) \(head \1\)")
        ),
        "log-export": Expect(
            0,
            (
                r"export \S+/backups/log: manifest \S+/manifests/00000001\.json — [\d,]+ records",
                r"  aop\.chain\.events\[0\] offsets 0\.\.[1-9]\d*: [\d,]+ records",
                r"verify \S+/backups/log: manifest \S+ \(.+\) OK — [1-9]\d* files, [\d,]+ records",
            ),
        ),
        "rebuild": Expect(
            0,
            (r"rebuild of schema \S+ into \S+_rb_\d{14}:", r"verified; --no-switch", r"switched"),
        ),
        "rebuild-drop-old": Expect(
            0,
            (
                r"  \S+_aside_\d{14}  \(aside, 9 tables",
                r"  \S+_rb_\d{14}  \(rb, 9 tables",
                r"  \S+_old_\d{14}  \(old, 9 tables",
                r"drop these 3 schema\(s\)\? \[y/N\] dropped 3 schema\(s\)",
            ),
        ),
        "settle-status": Expect(1, (r"│ global +│ global-v5 +│ stopped", r"sequence_mismatch")),
        "settle-release": Expect(
            0, (r"released [1-9]\d* entr(y|ies) of global\n", r"│ global +│ global-v5 +│ waiting")
        ),
        "ingest-token": Expect(
            0,
            (
                r"token of source twitch-irc written to \S+/etc/twitch-irc\.token \(mode 600\)",
                r"added to \S+/etc/ingest-tokens",
                r"\ntwitch-irc sha256:[0-9a-f]{64}\n",
            ),
            absent=("aopi_",),
        ),
        "ingest-signals": Expect(
            0, (r'^\{"accepted":2,"duplicates":0,"request_id":"[0-9a-f]{32}"\}',)
        ),
        "ingest-backfill": Expect(
            0,
            (
                r"backfilled buffered\.ndjson as source twitch-irc: 2 lines, 2 accepted, "
                r"0 duplicates, 1 transaction\(s\)",
            ),
        ),
        "parity": Expect(0, (r"MATCH",)),
        "dlq": Expect(
            0,
            (
                r"\d+ dead letter\(s\)",
                r"listener failed_transaction",
                r"stage: listener\nreason: failed_transaction\n",
                r"payload base64: ",
            ),
        ),
    }


EXPECT_NAMES = frozenset(expectations(0))


# -- the blocks and their markers (no services) ------------------------------------------


def test_every_command_block_is_marked_and_known() -> None:
    """Each bash block is run here or says why not; run blocks have expectations."""
    blocks = command_blocks()
    unmarked = [b.line for b in blocks if b.name is None and b.not_run is None]
    assert not unmarked, f"docs/runbook.md blocks without a runbook marker at lines {unmarked}"
    not_run = [b for b in blocks if b.not_run is not None]
    assert len(not_run) <= MAX_NOT_RUN, [b.line for b in not_run]
    assert all(b.not_run and b.not_run.strip() for b in not_run)
    names = [b.name for b in blocks if b.name]
    assert len(names) == len(set(names)), names
    assert sorted(names) == sorted(EXPECT_NAMES), "expectations and run blocks differ"


def test_no_block_pastes_python_or_sql() -> None:
    """Routine work is `aop` commands: no heredoc of Python, no psql with hand SQL."""
    for block in command_blocks():
        assert "<<" not in block.text, f"line {block.line}: a heredoc"
        assert "python" not in block.text, f"line {block.line}: Python"
        assert "psql" not in block.text, f"line {block.line}: hand SQL"


def test_runbook_blocks_parse_from_indented_and_plain_fences() -> None:
    text = (
        "<!-- runbook: a -->\n```bash\necho a\n```\n\n1. step\n\n"
        "   <!-- runbook: not-run (why) -->\n   ```bash\n   echo b\n   ```\n```text\nout\n```\n"
    )
    assert runbook_blocks(text) == [
        Block(2, "bash", "echo a", "a", None),
        Block(9, "bash", "echo b", None, "why"),
        Block(12, "text", "out", None, None),
    ]


# -- the deployment they run against ----------------------------------------------------


@dataclass
class Deployment:
    workdir: Path
    env_file: Path
    env: dict[str, str]
    bin_dir: Path
    suffix: str

    def substitute(self, text: str, dlq_offset: int) -> str:
        text = text.replace("/etc/aop/env", str(self.env_file))
        text = text.replace("/etc/aop/", f"{self.workdir / 'etc'}/")
        text = text.replace("/var/backups/aop/", f"{self.workdir / 'backups'}/")
        for login in ("aop_api_1", "aop_projector_1", "aop_settle_1"):
            text = text.replace(login, f"{login}_{self.suffix}")
        text = re.sub(r"\bCHANNEL\b", "global", text)
        text = text.replace("twitch:lofigirl", CHANNELS[0])
        text = text.replace("127.0.0.1:8090", f"127.0.0.1:{self.env['AOP_INGEST_PORT']}")
        return re.sub(r"\bOFFSET\b", str(dlq_offset), text)


def _query(database_url: str, schema: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return list(conn.execute(query).fetchall())


def _wait(what: str, check: object, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(1)


def _aop_shim(bin_dir: Path) -> None:
    """`aop` on PATH: this interpreter, with the checkout's PYTHONPATH."""
    bin_dir.mkdir()
    shim = bin_dir / "aop"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m aop.cli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)


@pytest.fixture(scope="module")
def deployment(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The settings file and a simulated chain whose GlobalRootConfig is at LEGACY_SEQ; the
    pipeline itself is started by the test after the first block (the cutover order)."""
    workdir = tmp_path_factory.mktemp("runbook")
    (workdir / "etc").mkdir()
    suffix = uuid.uuid4().hex[:8]
    for login in ("aop_api_1", "aop_projector_1", "aop_settle_1"):
        (workdir / "etc" / f"{login}_{suffix}.password").write_text(SECRET + "\n")
    with fresh_schema(database_url) as schema:
        env, ports = pipeline_env(
            kafka_bootstrap=kafka_bootstrap,
            database_url=database_url,
            schema=schema,
            workdir=workdir,
            channels=CHANNELS,
        )
        # the cutover is the global root's (live_pipeline's default targets channel roots)
        env["AOP_SETTLEMENT_TARGET"] = "global-v5"
        sim = spawn_simchain(SIM_ARGS, env=env)
        try:
            sim.control("sim_setupGlobalRoot", {"latest_root_seq": LEGACY_SEQ})
            env.update(AOP_RPC_URL=sim.http_url, AOP_WS_URL=sim.ws_url)
            env_file = workdir / "aop.env"
            env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
            _aop_shim(workdir / "bin")
            deployment = Deployment(workdir, env_file, env, workdir / "bin", suffix)
            deployment.env["_PORTS"] = json.dumps(ports)
            yield deployment
        finally:
            sim.stop()
            with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
                for login in ("aop_api_1", "aop_projector_1", "aop_settle_1"):
                    conn.execute(
                        sql.SQL("DROP ROLE IF EXISTS {}").format(
                            sql.Identifier(f"{login}_{suffix}")
                        )
                    )
                schemas = conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{schema}_%",)
                ).fetchall()
                for (name,) in schemas:
                    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _run_block(deployment: Deployment, block: Block, dlq_offset: int) -> tuple[int, str]:
    """The block in `bash -e -o pipefail`, with the variables earlier blocks exported."""
    state = deployment.workdir / "state.sh"
    script = (
        f"[ -f {shlex.quote(str(state))} ] && . {shlex.quote(str(state))}\n"
        f"trap 'export -p > {shlex.quote(str(state))}' EXIT\n"
        "set -a\n" + deployment.substitute(block.text, dlq_offset) + "\n"
    )
    env = {
        "PATH": f"{deployment.bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
    }
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=deployment.workdir,
        env=env,
        input="y\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, result.stdout + result.stderr


def _check(block: Block, code: int, output: str, legacy_more: int) -> list[str]:
    assert block.name is not None
    expect = expectations(legacy_more)[block.name]
    problems = []
    if code != expect.code:
        problems.append(f"exit {code}, expected {expect.code}")
    problems += [f"no match for {p!r}" for p in expect.patterns if not re.search(p, output)]
    problems += [f"{s!r} in the output" for s in expect.absent if s in output]
    return problems


def _run_pipeline(deployment: Deployment, database_url: str) -> int:
    """The cutover's dry run: every service with the settings step 1 printed, the legacy
    publisher publishing meanwhile, until settlement stopped the global root and our global
    roots passed the chain's; then every service stops (the chain keeps running). Returns
    the root_seq the legacy publisher reached."""
    env = deployment.env
    ports = json.loads(env["_PORTS"])
    schema = env["AOP_DATABASE_SCHEMA"]
    logs = deployment.workdir / "logs"
    logs.mkdir(exist_ok=True)
    specs = [
        ServiceSpec(name, [*AOP, command], service_env(env, ports, name), logs / f"{name}.log")
        for name, command in SERVICES.items()
    ]
    supervisor = Supervisor(specs, stop_timeout=15)
    thread = threading.Thread(
        target=supervisor.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()

    def outbox(fmt: str) -> dict[int, str]:
        rows = _query(
            database_url,
            schema,
            f"SELECT root_seq, status FROM settlement_outbox WHERE format = '{fmt}'",
        )
        return {int(seq): str(status) for seq, status in rows}  # type: ignore[call-overload]

    try:
        _wait("a dry run of global root 1804", lambda: outbox("global-v5").get(1804) == "dry_run")
        legacy_more = max(outbox("global-v5")) + LEGACY_LEAD
        sim = SimControl(env["AOP_RPC_URL"])
        sim.control("sim_setupGlobalRoot", {"latest_root_seq": legacy_more})  # the legacy one
        _wait(
            "settlement stopping the global root",
            lambda: "sequence_mismatch" in outbox("global-v5").values(),
        )
        _wait(
            f"global root {legacy_more + 1} projected",
            lambda: max(outbox("global-v5"), default=0) > legacy_more,
        )
        _wait(
            "a dead letter and a channel root",
            lambda: (
                _query(database_url, schema, "SELECT count(*) FROM roots")[0][0] > 0  # type: ignore[operator]
                and _dead_letters(env)
            ),
        )
    finally:
        supervisor.request_stop()
        thread.join(60)
    return legacy_more


class SimControl:
    """`sim_*` calls on the running chain (the process belongs to the fixture)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def control(self, method: str, params: dict[str, object]) -> object:
        import httpx

        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply = httpx.post(self.url, json=body, timeout=10).json()
        assert "error" not in reply, reply
        return reply["result"]


@contextmanager
def _ingest(deployment: Deployment) -> Iterator[None]:
    """`aop ingest` with the deployment's settings and the tokens file of block ingest-token,
    ready (/readyz) before the block runs (its port is the one the block's curl is sent to);
    stopped after it."""
    service = IngestProcess(
        {
            **deployment.env,
            "AOP_INGEST_TOKENS_FILE": str(deployment.workdir / "etc" / "ingest-tokens"),
            "AOP_METRICS_PORT": "0",
        },
        deployment.workdir / "ingest.log",
    )
    service.start(timeout_s=60)
    deployment.env["AOP_INGEST_PORT"] = str(service.port)
    try:
        yield
    finally:
        service.stop()


def _dead_letters(env: dict[str, str]) -> list[int]:
    """Offsets of the dead letters on the deployment's aop.dlq (read independently of
    `aop dlq`: the raw records' offsets)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": env["AOP_KAFKA_BOOTSTRAP"],
            "group.id": f"runbook-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        topic = TopicPartition(f"{env['AOP_TOPIC_PREFIX']}aop.dlq", 0, 0)
        consumer.assign([topic])
        offsets = []
        while batch := consumer.consume(500, timeout=2):
            offsets += [m.offset() for m in batch if m.error() is None]
        return offsets
    finally:
        consumer.close()


def test_runbook_command_blocks_run_and_print_what_they_should(
    deployment: Deployment, database_url: str
) -> None:
    """Every run block, in the runbook's order, against the cutover deployment: exit code and
    output shape as EXPECT says; the pipeline runs between the first block and the rest."""
    blocks = [b for b in command_blocks() if b.name]
    assert blocks[0].name == "chain-status-before"
    problems: list[str] = []
    outputs: dict[str, str] = {}
    legacy_more = 0
    for index, block in enumerate(blocks):
        if index == 1:
            suggested = re.search(r"AOP_GLOBAL_FIRST_ROOT_SEQ=(\d+)", outputs[blocks[0].name or ""])
            assert suggested and int(suggested[1]) == LEGACY_SEQ + 1, outputs
            # step 2 of the cutover: the settings file, and the shell that read it
            for path in (deployment.env_file, deployment.workdir / "state.sh"):
                with path.open("a") as env_file:
                    env_file.write(f"export AOP_GLOBAL_FIRST_ROOT_SEQ={suggested[1]}\n")
            deployment.env["AOP_GLOBAL_FIRST_ROOT_SEQ"] = suggested[1]
            started = time.monotonic()
            legacy_more = _run_pipeline(deployment, database_url)
            print(f"runbook pipeline: {time.monotonic() - started:.1f} s")
        offsets = _dead_letters(deployment.env) if block.name == "dlq" else [0]
        started = time.monotonic()
        if block.name == "ingest-signals":
            with _ingest(deployment):
                code, output = _run_block(deployment, block, offsets[0])
        else:
            code, output = _run_block(deployment, block, offsets[0])
        print(f"runbook block {block.name}: exit {code} in {time.monotonic() - started:.1f} s")
        outputs[block.name or ""] = output
        problems += [
            f"{block.name} (line {block.line}): {p}"
            for p in _check(block, code, output, legacy_more)
        ]
        if problems and problems[-1].startswith(str(block.name)):
            shown = output if len(output) < 6000 else f"{output[:3000]}\n[…]\n{output[-3000:]}"
            problems.append(f"--- output of {block.name}:\n{shown}")
    assert not problems, "\n".join(problems)
