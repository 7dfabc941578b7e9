"""Waiting for the API's background work, for tests (the API itself never waits for it)."""

from __future__ import annotations

import asyncio

from aop.api.hot_roots import HotRoots

__all__ = ["wait_hot_root_loaded"]


async def wait_hot_root_loaded(hot_roots: HotRoots) -> None:
    """Wait for the hot-root load in progress, if any (`HotRoots.note_claim` starts one)."""
    loading = hot_roots._loading
    if loading is not None:
        await asyncio.shield(loading)
