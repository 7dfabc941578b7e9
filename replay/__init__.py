"""Replay, parity and rebuild: any root rebuilt from the log, compared byte for byte.

`run_replay` (`aop.replay.run`) folds aop.chain.events again with the reference fold and
compares every root it asks for with Postgres and the chain; `run_parity` does it for the
newest roots of every channel (metrics + JSON report); `rebuild` (`aop.replay.rebuild`)
rebuilds the projections into a fresh schema and switches to it. See README.md here.
"""
