"""The combiner: aop.epoch.roots -> one global root per mint and chain epoch on aop.global.roots.

The rule is `core.combine.GlobalCombiner` (pure, shared with the replay); this package does the
I/O around it: a lease so one instance is active (`lease`), the checkpoint read back from the
log (`recovery`), transactional writes (`writer`), metrics, and the loop (`service`).
"""

from aop.streams.combiner.service import CombinerService, run_combiner

__all__ = ["CombinerService", "run_combiner"]
