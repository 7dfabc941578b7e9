"""The `aop` command and process orchestration (demo, supervisor): the top layer.

Nothing imports this package; it imports every layer below it. `main` is the console
script's entry point (`aop = "aop.cli:main"`).
"""

from aop.cli.entry import main

__all__ = ["main"]
