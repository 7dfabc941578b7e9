"""The read API (`aop api`): roots, proofs and datasets for wallets and dashboards.

`create_app(settings)` builds the Starlette application; DESIGN §8 lists its endpoints and
`api.openapi` documents them.
"""

from aop.api.app import create_app

__all__ = ["create_app"]
