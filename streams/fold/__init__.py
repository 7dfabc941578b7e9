"""The fold: aop.chain.events -> per-(channel, epoch) Merkle roots on aop.epoch.roots.

`create_app(settings)` builds the Faust app (`streams.fold.app`), `run_fold(settings)` runs a
worker (`aop fold`), and `fold_config(settings)` gives the pure fold's configuration, which
replays share (`core.fold.ReferenceFold`).
"""

from __future__ import annotations

from aop.streams.fold.app import create_app
from aop.streams.fold.config import fold_app_id, fold_config
from aop.streams.fold.worker import run_fold

__all__ = ["create_app", "fold_app_id", "fold_config", "run_fold"]
