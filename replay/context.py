"""What the replay commands build from the settings: the fold's configuration and the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.pool import NullPool

from aop.core.errors import CoreError
from aop.core.fold_config import FoldConfig
from aop.replay.chain import ChainMode, ChainReader
from aop.replay.errors import ReplayError
from aop.replay.stored_roots import RootStore
from aop.runtime.settings import Settings
from aop.streams.fold.config import fold_config

__all__ = ["chain_mode", "chain_reader", "deployment_config", "open_store"]


def deployment_config(settings: Settings) -> FoldConfig:
    """The fold's configuration, built exactly as `aop fold` builds it.

    Raises:
        ReplayError: a channel setting is invalid, or no channel is served.
    """
    try:
        config = fold_config(settings)
    except (CoreError, ValueError) as exc:
        raise ReplayError(f"bad channel settings: {exc}") from exc
    if not config.channels:
        raise ReplayError(
            "AOP_CHANNELS is empty: there is no channel to replay; operator action: run with "
            "the settings the fold runs with"
        )
    return config


@contextmanager
def open_store(settings: Settings) -> Iterator[RootStore]:
    """A `RootStore` on the settings' schema (checked to be at the head migration).

    Raises:
        SchemaNotCurrentError: the schema is not migrated (operator action: `aop db upgrade`).
    """
    from aop.projections.db import check_schema_current, engine_for

    check_schema_current(settings)
    engine = engine_for(settings, poolclass=NullPool)
    try:
        yield RootStore(engine)
    finally:
        engine.dispose()


def chain_mode(flag: bool | None) -> ChainMode:
    """`--chain` -> on, `--no-chain` -> off, neither -> auto."""
    if flag is None:
        return "auto"
    return "on" if flag else "off"


def chain_reader(settings: Settings, mode: ChainMode) -> ChainReader:
    """The chain side of a comparison: the configured RPC, commitment and replay timeout."""
    return ChainReader(
        settings.rpc_url,
        mode=mode,
        commitment=settings.commitment,
        timeout=settings.replay_rpc_timeout_s,
    )
