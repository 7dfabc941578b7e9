"""A scenario's measured figures: printed as one JSON line and appended to a results file.

RELIABILITY.md is filled from `.local/faults/results.jsonl` (or `AOP_FAULT_RESULTS`), one
line per scenario run, so its table reports a real run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

__all__ = ["ScenarioFigures", "record"]

RESULTS = ROOT / ".local" / "faults" / "results.jsonl"


@dataclass
class ScenarioFigures:
    """What one scenario injected and measured.

    Attributes:
        rate_target: events/s asked of the simulator; `rate_achieved` is what it produced
            (finalized events / wall-clock seconds of the loaded phase, warm-up included:
            the services' start slows the simulator; `extra["rate_after_warm_up"]` leaves it
            out, the load while the faults happen).
        recovery_s: per injected fault, seconds from restart (or fault cleared) until caught
            up (`tests.faults.progress`).
        crashes: services that exited on their own during the run (restarted by the test).
    """

    scenario: str
    injected: str
    rate_target: float
    rate_achieved: float = 0.0
    emitted: int = 0
    on_log: int = 0
    lost: int = 0
    duplicated: int = 0
    foreign: int = 0
    roots_checked: int = 0
    roots_mismatched: int = 0
    roots_unprojected: int = 0
    recovery_s: dict[str, float] = field(default_factory=dict)
    crashes: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def record(figures: ScenarioFigures) -> None:
    """Print the figures as a JSON line and append it to the results file."""
    line = json.dumps(
        {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **asdict(figures)},
    )
    print(f"FAULT-FIGURES {line}")
    target = Path(os.environ.get("AOP_FAULT_RESULTS", RESULTS))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
