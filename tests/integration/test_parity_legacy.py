"""`aop parity --legacy-dsn-file` on the real broker and database: the parallel run against
the legacy aggregator.

One day of collector traffic (tests/support/legacy_scenario.py) goes two ways: as
SignalBatches onto aop.attention.signals, folded by `aop fold` (a subprocess) and projected
by the projector into PostgreSQL; and into a second, independent implementation of the
legacy rules (tests/support/legacy_aggregator.py), whose sealed roots fill a legacy-shaped
`roots(epoch, channel, root)` table in a schema of its own, read through a login of its own
(read-only grants, its password only in a mode-600 file). Then: a full MATCH (exit 0), the
parallel run's metrics and report, an altered legacy root (MISMATCH, exit 1, the metric, the
report line), a deleted legacy row and one we lack (MISSING_LEGACY, MISSING_OURS), and the
refusals (a query without the named parameters, a DSN file of mode 644, an unreachable
database, options that do not go together)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from aop.cli.entry import main
from aop.log.kafka import ensure_topics
from aop.projections.db import engine_for, upgrade
from aop.runtime.settings import Settings, load_settings
from tests.conftest import libpq_url, new_topic_prefix
from tests.integration.fold.support import FoldWorker, produce_log
from tests.integration.test_projections import count, run_projector
from tests.support.legacy_db import LegacyDb, legacy_database
from tests.support.legacy_scenario import legacy_roots, legacy_scenario, signal_batches
from tests.unit.replay.test_legacy_parity import metric_samples

CHANNELS = ["lofigirl", "ansem", "mixed"]
LEGACY_CHANNELS = ("ansem", "lofigirl")
#: 2026-11-18 00:00 UTC: three hourly epochs, long closed.
FIRST = 1_794_960_000
L = 3600
EPOCHS = [FIRST, FIRST + L, FIRST + 2 * L]

Roots = dict[tuple[str, int], bytes]


@dataclass
class Ours:
    """The deployment's settings (AOP_* as a dict too) and the independent legacy's roots."""

    env: dict[str, str]
    settings: Settings
    legacy: Roots


def _env(kafka_bootstrap: str, database_url: str) -> dict[str, str]:
    return {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_DATABASE_URL": database_url,
        "AOP_TOPIC_PREFIX": new_topic_prefix(),
        "AOP_DATABASE_SCHEMA": f"t_{uuid.uuid4().hex[:12]}",
        "AOP_CHAIN_PARTITIONS": "2",
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_ATTENTION_ENABLED": "true",
        "AOP_ATTENTION_EPOCH_SECONDS": str(L),
        "AOP_ATTENTION_FORMATS": json.dumps(dict.fromkeys(LEGACY_CHANNELS, "ring-v0-legacy")),
        "AOP_FOLD_COMMIT_INTERVAL": "0.5",
        "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2",
        "AOP_METRICS_PORT": "0",
        "AOP_LOG_LEVEL": "WARNING",
    }


def _fold_and_project(settings: Settings, env: dict[str, str], workdir: Path, want: int) -> None:
    """`aop fold` over the signals until the projector has stored `want` ring-v0-legacy roots."""
    engine = engine_for(settings)
    worker = FoldWorker(env, workdir / "fold.log").start()
    try:
        sql_count = "SELECT count(*) FROM roots WHERE format = 'ring-v0-legacy'"
        run_projector(settings, engine, lambda: count(engine, sql_count) >= want, timeout=90)
        assert worker.stop() == 0
    finally:
        worker.kill()
        engine.dispose()


@pytest.fixture(scope="module")
def ours(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ours]:
    """The scenario on the log, folded and projected; the legacy's roots beside it."""
    env = _env(kafka_bootstrap, database_url)
    schema = env["AOP_DATABASE_SCHEMA"]
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        settings = load_settings(env)
        upgrade(settings)
        ensure_topics(settings)
        from aop.streams.fold.config import fold_config

        attention = fold_config(settings).attention
        assert attention is not None
        partition_of = {c.name: c.partition for c in attention.channels}
        assert len(set(partition_of.values())) == 2, partition_of  # both partitions in use
        steps = legacy_scenario(CHANNELS, seed=7, first_epoch=FIRST)
        produce_log(settings, signal_batches(steps, partition_of, 2), record_type="SignalBatch")
        legacy = legacy_roots(steps)
        assert sorted(k for k in legacy if k[0] in LEGACY_CHANNELS) == [
            (c, e) for c in LEGACY_CHANNELS for e in EPOCHS
        ]
        _fold_and_project(settings, env, tmp_path_factory.mktemp("fold"), want=6)
        yield Ours(env, settings, legacy)
    finally:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def legacy_db(ours: Ours, database_url: str, tmp_path: Path) -> Iterator[LegacyDb]:
    """`roots(epoch bigint, channel text, root bytea)` holding every root the independent
    legacy sealed (the cumulative channel's too), in a fresh schema; a login that may only
    read it (its search_path on that schema); the DSN in a mode-600 file."""
    with legacy_database(database_url, tmp_path) as legacy:
        legacy.upsert(ours.legacy)
        yield legacy


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def parity(
    ours: Ours, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """`aop parity ARGS...` in this process with the deployment's settings."""
    for name, value in ours.env.items():
        monkeypatch.setenv(name, value)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(["parity", *argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def _start(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _match_lines(legacy: Roots) -> list[str]:
    return [
        f"MATCH {c} epoch {e} ({_start(e)}): root 0x{legacy[(c, e)].hex()}"
        for c in LEGACY_CHANNELS
        for e in EPOCHS
    ]


def _summary(match: int, mismatch: int = 0, ours: int = 0, legacy: int = 0) -> str:
    """The summary's counts, up to the rounds."""
    return (
        f"{match} MATCH, {mismatch} MISMATCH, {ours} MISSING_OURS, {legacy} MISSING_LEGACY, "
        f"0 PENDING; exit {1 if mismatch or ours or legacy else 0}"
    )


def _rounds(summary: str) -> int:
    return int(summary.split(" over ")[1].split(" round")[0])


def _parallel_run(
    parity: Callable[..., Run], legacy_db: LegacyDb, tmp_path: Path, *argv: str
) -> tuple[Run, Path, Path]:
    """A 2 s parallel run, a round a second: its outcome, metrics file and report."""
    metrics, report = tmp_path / "legacy.prom", tmp_path / "parallel-run.log"
    options = ["--interval", "1", "--duration", "2", "--metrics-file", str(metrics)]
    options += ["--report", str(report), *argv]
    return parity("--legacy-dsn-file", str(legacy_db.dsn_file), *options), metrics, report


def test_every_legacy_epoch_matches_our_roots_byte_for_byte(
    ours: Ours, legacy_db: LegacyDb, parity: Callable[..., Run]
) -> None:
    """Exit 0: six MATCH lines with the independent legacy's roots, then the summary; the
    connection string never shows."""
    run = parity("--legacy-dsn-file", str(legacy_db.dsn_file))
    assert run.code == 0, run.out + run.err
    lines = run.out.splitlines()
    assert lines[0] == (
        "legacy parity: ansem, lofigirl; epochs of 3600 s from our first root to our last "
        f"closed epoch; grace 900 s; legacy database of {legacy_db.dsn_file} (default query)"
    )
    assert lines[1:-1] == _match_lines(ours.legacy)
    assert lines[-1] == f"SUMMARY 6 (channel, epoch) over 1 round(s): {_summary(6)}"
    assert legacy_db.password not in run.out + run.err


def test_a_custom_query_reading_0x_hex_text_gives_the_same_verdicts(
    ours: Ours, legacy_db: LegacyDb, parity: Callable[..., Run]
) -> None:
    query = (
        "SELECT '0x' || encode(root, 'hex') FROM roots "
        "WHERE channel = %(channel)s AND epoch = %(epoch)s"
    )
    run = parity("--legacy-dsn-file", str(legacy_db.dsn_file), "--legacy-query", query)
    assert run.code == 0, run.out + run.err
    assert run.out.splitlines()[1:-1] == _match_lines(ours.legacy)
    assert "(--legacy-query query)" in run.out.splitlines()[0]


def test_the_parallel_run_counts_each_match_once_and_writes_metrics_and_report(
    ours: Ours, legacy_db: LegacyDb, parity: Callable[..., Run], tmp_path: Path
) -> None:
    """--interval 1 --duration 2: two rounds at least; each (channel, epoch) matched once
    (a match is not checked again), reported once; the run ended (running 0)."""
    started = time.time()
    run, metrics, report = _parallel_run(parity, legacy_db, tmp_path)
    assert run.code == 0, run.out + run.err
    summary = run.out.splitlines()[-1]
    assert summary.endswith(_summary(6)) and _rounds(summary) >= 2
    values = metric_samples(metrics.read_text())
    for channel in LEGACY_CHANNELS:
        assert values[("aop_parity_legacy_matched_total", (("channel", channel),))] == 3
        assert values[("aop_parity_legacy_mismatched_total", (("channel", channel),))] == 0
        for side in ("ours", "legacy"):
            key = (("channel", channel), ("side", side))
            assert values[("aop_parity_legacy_missing_total", key)] == 0
    assert values[("aop_parity_legacy_running", ())] == 0
    assert values[("aop_parity_legacy_interval_seconds", ())] == 1
    assert started <= values[("aop_parity_legacy_last_success_timestamp_seconds", ())]
    lines = report.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [*_match_lines(ours.legacy), summary]
    stamp = dt.datetime.strptime(lines[0].split(" ", 1)[0], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(stamp.replace(tzinfo=dt.UTC).timestamp() - started) < 30


def test_an_altered_legacy_root_is_a_mismatch_counted_every_round(
    ours: Ours, legacy_db: LegacyDb, parity: Callable[..., Run], tmp_path: Path
) -> None:
    """ansem's second epoch altered in the legacy: exit 1, both roots printed, one report
    line naming channel and epoch, mismatched_total counted in each round."""
    epoch = EPOCHS[1]
    legacy_db.execute(
        "UPDATE {s}.roots SET root = set_byte(root, 0, 255 - get_byte(root, 0)) "
        "WHERE channel = %s AND epoch = %s",
        "ansem",
        epoch,
    )
    altered = bytes([255 - ours.legacy[("ansem", epoch)][0]]) + ours.legacy[("ansem", epoch)][1:]
    run, metrics, report = _parallel_run(parity, legacy_db, tmp_path, "--quiet")
    assert run.code == 1, run.out + run.err
    mismatch = (
        f"MISMATCH ansem epoch {epoch} ({_start(epoch)}): ours "
        f"0x{ours.legacy[('ansem', epoch)].hex()} legacy 0x{altered.hex()}"
    )
    summary = run.out.splitlines()[-1]
    assert run.out.splitlines()[1:] == [summary]  # --quiet: the summary only
    assert summary.endswith(_summary(5, mismatch=1))
    reported = [line.split(" ", 1)[1] for line in report.read_text().splitlines()]
    assert [line for line in reported if not line.startswith("MATCH")] == [mismatch, summary]
    values = metric_samples(metrics.read_text())
    rounds = _rounds(summary)
    assert rounds >= 2
    assert values[("aop_parity_legacy_mismatched_total", (("channel", "ansem"),))] == rounds
    assert values[("aop_parity_legacy_mismatched_total", (("channel", "lofigirl"),))] == 0
    assert values[("aop_parity_legacy_matched_total", (("channel", "ansem"),))] == 2


def test_a_deleted_legacy_row_is_missing_legacy_and_a_legacy_only_epoch_missing_ours(
    ours: Ours, legacy_db: LegacyDb, parity: Callable[..., Run], tmp_path: Path
) -> None:
    """lofigirl's last epoch deleted from the legacy, and a legacy root for the hour before
    our first (asked for with --from): exit 1, one of each, counted by side."""
    last, before = EPOCHS[2], FIRST - L
    legacy_db.execute("DELETE FROM {s}.roots WHERE channel = %s AND epoch = %s", "lofigirl", last)
    legacy_db.execute("INSERT INTO {s}.roots VALUES (%s, %s, %s)", before, "lofigirl", b"\x07" * 32)
    metrics = tmp_path / "legacy.prom"
    run = parity(
        "--legacy-dsn-file",
        str(legacy_db.dsn_file),
        "--from",
        str(before),
        "--metrics-file",
        str(metrics),
    )
    assert run.code == 1, run.out + run.err
    lines = run.out.splitlines()
    ours_last = ours.legacy[("lofigirl", last)].hex()
    assert [line for line in lines[1:-1] if not line.startswith("MATCH")] == [
        f"MISSING_OURS lofigirl epoch {before} ({_start(before)}): ours none legacy 0x{'07' * 32}",
        f"MISSING_LEGACY lofigirl epoch {last} ({_start(last)}): ours 0x{ours_last} legacy none",
    ]
    assert lines[-1] == (
        f"SUMMARY 7 (channel, epoch) over 1 round(s): {_summary(5, ours=1, legacy=1)}"
    )
    values = metric_samples(metrics.read_text())
    missing = "aop_parity_legacy_missing_total"
    assert values[(missing, (("channel", "lofigirl"), ("side", "ours")))] == 1
    assert values[(missing, (("channel", "lofigirl"), ("side", "legacy")))] == 1
    assert values[(missing, (("channel", "ansem"), ("side", "legacy")))] == 0


def test_a_query_without_the_named_parameters_is_refused_before_any_read(
    legacy_db: LegacyDb, parity: Callable[..., Run]
) -> None:
    run = parity(
        "--legacy-dsn-file",
        str(legacy_db.dsn_file),
        "--legacy-query",
        "SELECT root FROM roots WHERE epoch = %(epoch)s",
    )
    assert run.code == 2
    assert run.out == ""
    assert run.err == (
        "aop parity: --legacy-query must use the named parameters %(epoch)s and %(channel)s "
        "and no other placeholder (got missing %(channel)s in 'SELECT root FROM roots WHERE "
        "epoch = %(epoch)s')\n"
    )


def test_a_dsn_file_others_can_read_is_refused_without_showing_it(
    legacy_db: LegacyDb, parity: Callable[..., Run]
) -> None:
    legacy_db.dsn_file.chmod(0o644)
    run = parity("--legacy-dsn-file", str(legacy_db.dsn_file))
    assert run.code == 2
    assert run.err == (
        f"aop parity: --legacy-dsn-file: file {legacy_db.dsn_file} must not be accessible to "
        f"group or others (mode 0o644); operator action: chmod 600 {legacy_db.dsn_file}\n"
    )
    assert legacy_db.password not in run.out + run.err


def test_an_unreachable_legacy_database_is_exit_2_with_the_password_masked(
    legacy_db: LegacyDb, parity: Callable[..., Run], tmp_path: Path
) -> None:
    """A wrong password: the server's refusal is shown, the password is not."""
    wrong = tmp_path / "wrong.dsn"
    wrong.write_text(legacy_db.dsn_file.read_text().replace(legacy_db.password, "pw-wrong"))
    wrong.chmod(0o600)
    run = parity("--legacy-dsn-file", str(wrong))
    assert run.code == 2
    assert run.err.startswith("aop parity: cannot connect to the legacy database: ")
    assert "password authentication failed" in run.err
    assert "pw-wrong" not in run.err and legacy_db.password not in run.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--interval", "5"], "--interval and --duration go together"),
        (["--duration", "5"], "--interval and --duration go together"),
        (["--roots", "2"], "--roots does not apply with --legacy-dsn-file"),
        (["--from", str(FIRST + 1)], "--from must be an epoch id"),
        (["--channel", "mixed"], "channel 'mixed' has attention format cumulative-v2"),
    ],
)
def test_options_that_do_not_go_together_are_refused(
    legacy_db: LegacyDb, parity: Callable[..., Run], argv: list[str], message: str
) -> None:
    run = parity("--legacy-dsn-file", str(legacy_db.dsn_file), *argv)
    assert run.code == 2
    assert run.err.startswith(f"aop parity: {message}"), run.err


def test_legacy_options_need_the_dsn_file(parity: Callable[..., Run]) -> None:
    run = parity("--from", str(FIRST))
    assert (run.code, run.err) == (2, "aop parity: --from needs --legacy-dsn-file\n")


def test_our_side_is_what_the_projector_stored(ours: Ours) -> None:
    """Six ring-v0-legacy roots and the cumulative channel's, under scope 'attention'."""
    engine: Engine = engine_for(ours.settings)
    try:
        assert count(engine, "SELECT count(*) FROM roots WHERE format = 'ring-v0-legacy'") == 6
        assert count(engine, "SELECT count(*) FROM channels WHERE scope = 'attention'") == 3
    finally:
        engine.dispose()


def test_rounds_that_fail_are_logged_and_the_run_ends_with_exit_2(
    legacy_db: LegacyDb,
    parity: Callable[..., Run],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A query the legacy fails on at every (channel, epoch) (it connects fine): each round
    is logged and retried, nothing is counted, the run ends with exit 2."""
    metrics = tmp_path / "legacy.prom"
    query = (
        "SELECT root FROM roots WHERE epoch = %(epoch)s AND channel = %(channel)s "
        "AND 1 / (epoch - epoch) = 1"
    )
    run = parity(
        "--legacy-dsn-file",
        str(legacy_db.dsn_file),
        "--legacy-query",
        query,
        "--interval",
        "1",
        "--duration",
        "1",
        "--metrics-file",
        str(metrics),
    )
    assert run.code == 2, run.out + run.err
    assert run.out.splitlines()[-1] == (
        "SUMMARY 0 (channel, epoch) over 0 round(s): 0 MATCH, 0 MISMATCH, 0 MISSING_OURS, "
        "0 MISSING_LEGACY, 0 PENDING; exit 2 (the last round failed)"
    )
    failed = [r.getMessage() for r in caplog.records if "round failed" in r.getMessage()]
    assert len(failed) >= 2
    assert failed[0] == (
        f"parallel run: round failed (the legacy query failed for channel 'ansem' epoch "
        f"{FIRST}: division by zero); trying again in 1 s"
    )
    values = metric_samples(metrics.read_text())
    assert values[("aop_parity_legacy_last_success_timestamp_seconds", ())] == 0
    assert values[("aop_parity_legacy_running", ())] == 0
    assert values[("aop_parity_legacy_mismatched_total", (("channel", "ansem"),))] == 0
