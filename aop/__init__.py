"""Attention Oracle Pipeline: Solana program events -> the log -> Merkle roots -> on-chain.

One import namespace. In the repository each layer is a top-level folder (`core/`,
`runtime/`, `log/`, `streams/`, `projections/`, `settlement/`, `api/`, `replay/`, `cli/`,
`simchain/`, `schemas/`), mapped to `aop.<folder>` by setuptools `package-dir` when built and
by the relative links beside this file when run from a checkout. Layers import downward only;
the contract is in `pyproject.toml` (`[tool.importlinter]`) and `docs/architecture.md`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("attention-oracle-pipeline")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
