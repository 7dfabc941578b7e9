"""`aop rebuild`: rebuild every projection from the log into a fresh schema, then switch.

Readers and writers find the projections by schema NAME (`AOP_DATABASE_SCHEMA`, set as each
connection's `search_path`). Switching is renaming, in one transaction:
`<schema>` -> `<schema>_old_<ts>`, `<schema>_rb_<ts>` -> `<schema>`. PostgreSQL re-resolves
`search_path` on the next statement of every open session (prepared statements included), so
the API keeps answering throughout: a query runs against the old tables or the new ones,
never a mix, and no connection is dropped. The old schema is kept for the operator to drop.

Protocol of `rebuild` (`<ts>` is the UTC start time):

1. create `<schema>_rb_<ts>` and migrate it (`projections.db.upgrade`);
2. inspect `<schema>` (the old one): missing, intact, or damaged (a table unreadable); keep
   its root ids (the API caches roots by root_id);
3. load the log into the new schema with the projector's components (`aop.replay.load`):
   every EpochRoot + LeafChunks of aop.epoch.roots verified and written by
   `ProjectionWriter.write_root`, claimed totals from aop.chain.events, and the projector's
   offsets, so `aop project` resumes where the load ended;
4. verify the new schema against the fold: replay every served channel (`run_replay`, every
   root): each stored root must MATCH the replayed one (root, dataset_hash, every field,
   leaf and tree level); roots the fold emitted after the load are allowed, and so are
   roots the roots purge deleted from the log (`projections.purge`): a replayed root missing
   from the new schema, older than every root it holds of its account, on a roots topic whose
   log start offset is above 0, is reported `purged` (expected-absent), not a failure;
5. compare with the old schema: row counts and digests of every table (`digest`) and one
   digest per root; the old is consistent when each of its roots is in the new one,
   identical (the row; the leaves and levels unless either schema pruned them: both prune
   by `projections.retention`, so with the same AOP_PROOF_ROOTS_KEPT they prune alike);
   otherwise replay against the old too: any root that fails makes it damaged. An old root
   whose header offset (`source_partition/source_offset`) is below its roots topic's log
   start offset cannot be in the new one: it is expected-absent and only counted
   (`purged_absent`); after a purge a rebuild gives back the newest AOP_PROOF_ROOTS_KEPT
   roots of each account and every later one;
6. decide: switch if step 4 passed and the old is missing, damaged or consistent; otherwise
   refuse (exit 1; `--force` switches anyway). `--no-switch` stops here;
7. switch: catch up (step 3 again, to the current ends), then in ONE transaction: lock the
   old schema's written tables in EXCLUSIVE mode (readers go on, writers wait, at most
   AOP_REBUILD_LOCK_TIMEOUT_S), check the live projector did not get ahead (else roll back,
   catch up and retry, up to 5 times), copy the settlement state (outbox status and the
   attempts, ids kept) from the old schema — or, when it cannot be read, rebuild it from the
   final results on aop.settlement — (`settlement.carry_over`), re-check consistency,
   rename both schemas, commit.

Common failure scenarios: a crash before step 7 leaves `<schema>` untouched and a
`<schema>_rb_<ts>` to drop. The switch is one transaction: it happens whole or not at all.
A projector or settlement writing the old schema during the switch waits for the lock; its
transaction then lands in `<schema>_old_<ts>`, and its next one finds the new schema: the
projector's offset check fails (another process moved the offsets), it re-reads its offsets
and re-projects what it had written (identical roots are skipped); settlement re-reads the
chain before sending, so a root it published meanwhile is recorded, not re-sent. After a
rebuild without a readable old schema (lost database), root ids are new: restart the API
replicas (rolling) so their caches drop ids of the lost database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from aop.core.fold_config import FoldConfig
from aop.log.avro import AvroDecodeError, codec_for
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS, SETTLEMENT
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.projections.db import engine_for, libpq_options, upgrade
from aop.projections.projector import CONSUMER_NAME
from aop.projections.schemas import stamped_name
from aop.replay.chain import ChainReader
from aop.replay.compare import Status
from aop.replay.digest import DIGEST_TABLES, TableDigest, root_digests, schema_digests
from aop.replay.engine import ReadProgress, root_account
from aop.replay.errors import RebuildError
from aop.replay.global_roots import global_channel_run, replay_global
from aop.replay.load import LoadResult, load_schema
from aop.replay.run import ReplayReport, channel_targets, run_replay
from aop.replay.stored_roots import RootStore
from aop.runtime.settings import Settings
from aop.settlement.carry_over import (
    SETTLEMENT_TABLES,
    apply_settlement_results,
    copy_settlement_state,
)

__all__ = ["RebuildReport", "rebuild"]

log = logging.getLogger(__name__)

SettlementSource = Literal["auto", "old", "log"]
#: tables the live services write (locked during the switch).
_WRITTEN = (
    "consumer_offsets",
    "roots",
    "claimed_totals",
    "settlement_outbox",
    "settlement_attempts",
)
_DATA_TABLES = (
    "channels",
    "roots",
    "leaves",
    "tree_levels",
    "claimed_totals",
    "settlement_outbox",
    "settlement_attempts",
    "consumer_offsets",
)
_SWITCH_ATTEMPTS = 5


@dataclass
class RebuildReport:
    """What a rebuild did, found and decided."""

    schema: str
    build_schema: str
    old_state: str = "missing"
    #: where the old schema went (after a switch).
    old_schema: str | None = None
    loads: list[LoadResult] = field(default_factory=list)
    verification: ReplayReport | None = None
    #: channels with roots in the new schema that AOP_CHANNELS does not serve.
    unverified: list[str] = field(default_factory=list)
    old_verification: ReplayReport | None = None
    tables: dict[str, dict[str, TableDigest | None]] = field(default_factory=dict)
    #: old roots missing from the new schema or different there.
    old_differs: list[str] = field(default_factory=list)
    #: old roots whose header offset is below their roots topic's log start offset (purged
    #: from the log: expected-absent from the new schema).
    purged_absent: int = 0
    #: replayed roots the new schema lacks because they were purged from the log (step 4).
    purged_replayed: int = 0
    settlement_source: str = "none"
    decision: str = "refused"
    reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.decision in ("switched", "built")


def _quote(name: str) -> str:
    return f'"{name}"'


def _schema_exists(conn: Connection, name: str) -> bool:
    return bool(
        conn.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"), {"n": name}
        ).scalar_one()
    )


def _readable(conn: Connection, schema: str, table: str) -> str:
    """'' if `schema.table` can be read, else why not."""
    savepoint = conn.begin_nested()
    try:
        conn.execute(text(f"SELECT 1 FROM {_quote(schema)}.{table} LIMIT 1"))
    except DBAPIError as exc:
        savepoint.rollback()
        return str(exc.orig).splitlines()[0] if exc.orig else str(exc)
    savepoint.commit()
    return ""


def _names(settings: Settings) -> tuple[str, str, str]:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    schema = settings.database_schema
    return schema, stamped_name(schema, "rb", stamp), stamped_name(schema, "old", stamp)


def _for_schema(settings: Settings, schema: str) -> Settings:
    return settings.model_copy(update={"database_schema": schema})


def rebuild(
    settings: Settings,
    config: FoldConfig,
    *,
    switch: bool = True,
    force: bool = False,
    settlement_from: SettlementSource = "auto",
    progress: ReadProgress | None = None,
) -> RebuildReport:
    """Run the protocol of the module docstring.

    Raises:
        RebuildError: the new schema cannot be created or the switch cannot take its locks.
        ReplayError: the log cannot be read.
    """
    started = time.perf_counter()
    libpq_options(settings)  # refuses an AOP_DATABASE_SCHEMA that is not a plain identifier
    schema, build, old_target = _names(settings)
    report = RebuildReport(schema=schema, build_schema=build)
    admin = engine_for(settings, poolclass=NullPool)
    new_settings = _for_schema(settings, build)
    new_engine = engine_for(new_settings, poolclass=NullPool)
    try:
        upgrade(new_settings)  # step 1
        root_ids = _inspect_old(admin, schema, report)  # step 2
        report.loads.append(load_schema(new_settings, new_engine, root_ids=root_ids))  # 3
        _verify_new(new_settings, config, new_engine, report, progress)  # step 4
        old_ok = _compare_old(
            settings, config, admin, new_settings, new_engine, report, progress
        )  # step 5
        verified = not report.verification or report.verification.ok
        if not verified or report.unverified:
            report.reason = (
                "the rebuilt schema does not match the fold's replay"
                if not verified
                else f"channels not in AOP_CHANNELS cannot be verified: {report.unverified}"
            )
        elif not old_ok:
            report.reason = (
                "the old schema matches the log but differs from the rebuilt one "
                f"({'; '.join(report.old_differs[:5])})"
            )
        good = verified and not report.unverified and old_ok  # step 6
        if not switch:
            report.decision = "built" if good else "refused"
            if good:
                report.reason = "verified; --no-switch: the rebuilt schema is left as is"
        elif good or force:
            if not good:
                log.warning("switching although refused (--force)", extra={"why": report.reason})
            _switch(
                settings,
                admin,
                new_settings,
                new_engine,
                report,
                old_target,
                settlement_from,
                check_consistent=report.old_state == "intact"
                and not report.old_differs
                and not force,
            )
            report.decision = "switched"
            report.reason = report.reason if not good else "verified"
    finally:
        new_engine.dispose()
        admin.dispose()
        report.seconds = time.perf_counter() - started
    return report


def _inspect_old(admin: Engine, schema: str, report: RebuildReport) -> dict[tuple[str, int], int]:
    """Step 2: the old schema's state and root ids."""
    with admin.connect() as conn:
        if not _schema_exists(conn, schema):
            report.old_state = "missing"
            return {}
        problems = []
        for table in _DATA_TABLES:
            why = _readable(conn, schema, table)
            if why:
                problems.append(f"{table}: {why}")
        report.old_state = "intact" if not problems else "damaged (" + "; ".join(problems) + ")"
        if _readable(conn, schema, "roots"):
            return {}
        rows = conn.execute(
            text(f"SELECT channel_config, root_seq, root_id FROM {_quote(schema)}.roots")
        ).all()
    return {(str(c), int(s)): int(i) for c, s, i in rows}


def _verify_new(
    settings: Settings,
    config: FoldConfig,
    engine: Engine,
    report: RebuildReport,
    progress: ReadProgress | None,
) -> None:
    """Step 4: every root of the new schema against the fold's replay (the global roots
    against the combiner's replay, `replay.global_roots`)."""
    store = RootStore(engine)
    served = {root_account(config, s) for s in config.channels}
    accounts = {c.channel_config for c in store.channels()}
    global_key = settings.global_root_account
    report.unverified = sorted(
        f"{c.name} ({c.channel_config})"
        for c in store.channels()
        if c.channel_config not in served and c.channel_config != global_key
    )
    report.verification = _replay_all(settings, config, store, progress)
    if global_key in accounts:
        chain = ChainReader(settings.rpc_url, mode="off", commitment=settings.commitment, timeout=1)
        run = replay_global(settings, config, store=store, chain=chain)
        report.verification.channels.append(global_channel_run(run, "all"))
    report.purged_replayed = _mark_purged(settings, engine, report.verification)


def _log_starts(settings: Settings) -> dict[tuple[str, int], int]:
    """(topic, partition) -> log start offset, of both roots topics."""
    out = {}
    for name, parts in ((EPOCH_ROOTS, range(settings.chain_partitions)), (GLOBAL_ROOTS, [0])):
        topic = settings.topic(name)
        out.update({(topic, p): b.low for p, b in log_bounds(settings, topic, parts).items()})
    return out


def _mark_purged(settings: Settings, engine: Engine, verification: ReplayReport) -> int:
    """Step 4: replayed roots the new schema lacks, older than each of its roots of the
    account, while a roots topic was purged, become `purged`; returns how many."""
    if not any(low > 0 for low in _log_starts(settings).values()):
        return 0
    with engine.connect() as conn:
        oldest = {
            str(c): int(q)
            for c, q in conn.execute(
                text("SELECT channel_config, min(root_seq) FROM roots GROUP BY channel_config")
            )
        }
    count = 0
    for root in verification.roots:
        first = oldest.get(root.channel_config)
        if root.status == Status.MISSING_IN_STORE and first is not None and root.root_seq < first:
            root.status = Status.PURGED
            count += 1
    return count


def _purged_keys(settings: Settings, conn: Connection, schema: str) -> set[tuple[str, int]]:
    """Roots of `schema` whose header offset is below their roots topic's log start."""
    starts = _log_starts(settings)
    if not any(low > 0 for low in starts.values()):
        return set()
    epoch_topic, global_topic = settings.topic(EPOCH_ROOTS), settings.topic(GLOBAL_ROOTS)
    rows = conn.execute(
        text(
            "SELECT r.channel_config, r.root_seq, r.source_partition, r.source_offset, "
            f"c.scope = 'global' FROM {_quote(schema)}.roots r "
            f"JOIN {_quote(schema)}.channels c USING (channel_config)"
        )
    ).all()
    return {
        (str(c), int(q))
        for c, q, p, o, is_global in rows
        if int(o) < starts.get((global_topic if is_global else epoch_topic, int(p)), 0)
    }


def _replay_all(
    settings: Settings, config: FoldConfig, store: RootStore, progress: ReadProgress | None
) -> ReplayReport:
    chain = ChainReader(settings.rpc_url, mode="off", commitment=settings.commitment, timeout=1)
    targets = channel_targets(config, sorted(config.channels, key=lambda s: s.name), mode="all")
    return run_replay(
        settings,
        config,
        targets,
        store=store,
        chain=chain,
        progress=progress,
        explain=False,
        workers=settings.replay_workers,
    )


def _compare_old(
    settings: Settings,
    config: FoldConfig,
    admin: Engine,
    new_settings: Settings,
    new_engine: Engine,
    report: RebuildReport,
    progress: ReadProgress | None,
) -> bool:
    """Step 5: True when the old schema does not stand in the way of a switch."""
    schema, build = report.schema, report.build_schema
    for _ in range(3):
        with admin.connect() as conn:
            new_tables = schema_digests(conn, build)
            old_tables = schema_digests(conn, schema) if report.old_state != "missing" else {}
            report.tables = {
                t: {"old": old_tables.get(t), "new": new_tables[t]} for t in DIGEST_TABLES
            }
            if report.old_state != "intact":
                return True
            absent = _purged_keys(settings, conn, schema)
            report.purged_absent = len(absent)
            missing, differing = _root_differences(conn, schema, build, absent)
        if not missing or differing:
            break
        # the live projector wrote roots after the load: catch up and compare again
        report.loads.append(load_schema(new_settings, new_engine))
    report.old_differs = missing + differing
    if not report.old_differs:
        return True
    old_engine = engine_for(_for_schema(settings, schema), poolclass=NullPool)
    try:
        report.old_verification = _replay_all(settings, config, RootStore(old_engine), progress)
    finally:
        old_engine.dispose()
    if not report.old_verification.ok:
        report.old_state = (
            f"damaged ({report.old_verification.mismatches} root(s) differ from the log)"
        )
        return True
    return False


def _root_differences(
    conn: Connection, old: str, new: str, absent: set[tuple[str, int]]
) -> tuple[list[str], list[str]]:
    """Roots of `old` that `new` lacks (but the `absent` ones: purged from the log), and roots
    both hold with different content."""
    mine, theirs = root_digests(conn, new), root_digests(conn, old)
    missing, differing = [], []
    for key in sorted(theirs):
        if key not in mine and key in absent:
            continue
        if key not in mine:
            missing.append(f"{key[0]} root_seq {key[1]} is not in the rebuilt schema")
        elif mine[key].differs_from(theirs[key]):
            differing.append(f"{key[0]} root_seq {key[1]} differs")
    return missing, differing


def _switch(
    settings: Settings,
    admin: Engine,
    new_settings: Settings,
    new_engine: Engine,
    report: RebuildReport,
    old_target: str,
    settlement_from: SettlementSource,
    *,
    check_consistent: bool,
) -> None:
    """Step 7 (module docstring)."""
    schema, build = report.schema, report.build_schema
    results = None
    deadline = time.monotonic() + settings.rebuild_catchup_timeout_s
    for attempt in range(1, _SWITCH_ATTEMPTS + 1):
        report.loads.append(load_schema(new_settings, new_engine))
        with admin.connect() as conn:
            exists = _schema_exists(conn, schema)
            source = _settlement_source(conn, schema, exists, settlement_from)
        if source == "log" and results is None:
            results = _settlement_results(settings)
        try:
            with admin.begin() as conn:
                timeout_ms = int(settings.rebuild_lock_timeout_s * 1000)
                conn.execute(text(f"SET LOCAL lock_timeout = {timeout_ms}"))
                if exists:
                    locked = [t for t in _WRITTEN if not _readable(conn, schema, t)]
                    if locked:
                        tables = ", ".join(f"{_quote(schema)}.{t}" for t in locked)
                        conn.execute(text(f"LOCK TABLE {tables} IN EXCLUSIVE MODE"))
                    ahead = (
                        _projector_ahead(conn, schema, build)
                        if "consumer_offsets" in locked
                        else []
                    )
                    if ahead:
                        raise _Retry(f"the live projector is ahead on {ahead}")
                    if check_consistent:
                        absent = _purged_keys(settings, conn, schema)
                        missing, differing = _root_differences(conn, schema, build, absent)
                        if missing or differing:
                            raise _Retry(f"old roots differ: {(missing + differing)[:3]}")
                if source == "old":
                    copy_settlement_state(conn, old_schema=schema, new_schema=build)
                elif source == "log" and results is not None:
                    apply_settlement_results(conn, build, results)
                report.settlement_source = source
                if exists:
                    conn.execute(
                        text(f"ALTER SCHEMA {_quote(schema)} RENAME TO {_quote(old_target)}")
                    )
                    report.old_schema = old_target
                conn.execute(text(f"ALTER SCHEMA {_quote(build)} RENAME TO {_quote(schema)}"))
            return
        except _Retry as exc:
            why = str(exc)
        except OperationalError as exc:  # lock_timeout
            why = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        log.warning("switch attempt failed", extra={"attempt": attempt, "why": why})
        if time.monotonic() > deadline:
            break
    raise RebuildError(
        f"could not switch {schema} to {build} after {_SWITCH_ATTEMPTS} attempts ({why}); "
        f"the rebuilt schema is kept as {build}. Operator action: retry, or stop `aop project` "
        "during the switch"
    )


class _Retry(Exception):
    """Roll the switch transaction back and try again after catching up."""


def _settlement_source(
    conn: Connection, schema: str, exists: bool, wanted: SettlementSource
) -> str:
    readable = exists and not any(_readable(conn, schema, t) for t in SETTLEMENT_TABLES)
    if wanted == "old" and not readable:
        raise RebuildError(
            f"--settlement-from old: {schema}.settlement_outbox/settlement_attempts cannot be "
            "read; operator action: use --settlement-from log"
        )
    if wanted == "log" or not readable:
        return "log"
    return "old"


def _projector_ahead(conn: Connection, old: str, new: str) -> list[str]:
    rows = conn.execute(
        text(
            f"SELECT o.topic, o.partition FROM {_quote(old)}.consumer_offsets o "
            f"LEFT JOIN {_quote(new)}.consumer_offsets n ON n.consumer = o.consumer AND "
            "n.topic = o.topic AND n.partition = o.partition "
            "WHERE o.consumer = :c AND o.next_offset > coalesce(n.next_offset, 0)"
        ),
        {"c": CONSUMER_NAME},
    ).all()
    return [f"{t}[{p}]" for t, p in rows]


def _settlement_results(settings: Settings) -> list[dict[str, Any]]:
    """Every SettlementResult on aop.settlement, in log order."""
    topic = settings.topic(SETTLEMENT)
    codec = codec_for(settings)
    bounds = log_bounds(settings, topic, [0])[0]
    out = []
    with LogReader(settings, [ReadRange(topic, 0, bounds.low, bounds.stop)]) as reader:
        for records in reader.batches():
            for _, _, offset, value in records:
                try:
                    out.append(codec.decode_as("SettlementResult", value))
                except AvroDecodeError as exc:
                    log.warning(
                        "undecodable settlement result", extra={"offset": offset, "error": str(exc)}
                    )
    return out
