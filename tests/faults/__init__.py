"""Fault scenarios: the whole pipeline on a real broker, a real Postgres and the simulated
chain, a fault injected mid-run, then an audit (`scenario.py`). All are marked `slow`."""
