"""Simulated collectors: attention signals and bindings for the simulated chain's channels and
wallets, posted to `aop ingest` as a trusted collector would (`aop simulate-collectors`).

Users are `sim-user-<i>` for i below the simulator's wallet count, each bound to the
simulator's wallet i (`aop.simchain.keys.Keys(seed).wallet_key(i)`), so the wallets that stake
on the simulated chain earn attention too.

Steps of `run_collectors`:

1. Post a binding of every user to its wallet, `batch` per request (ids
   `sim-bind-<run>-<i>`; `run` is fresh per process, so a restarted collector binds again to
   the same wallets).
2. Post signals at `rate` a second in requests of `batch`: a random channel and user, a kind
   drawn from `KIND_WEIGHTS`, a value for it, observed now; ids `sim-<run>-<n>`.
3. Answers: 202 counted; 429 waits Retry-After; a 5xx or no answer retries the same request
   (the same ids: it counts once) after a backoff; a 422 is logged and counted, and the
   collector goes on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from aop.runtime.backoff import Backoff
from aop.runtime.errors import AopError
from aop.runtime.secrets import Secret
from aop.simchain.keys import Keys

__all__ = ["KIND_WEIGHTS", "CollectorOptions", "CollectorReport", "run_collectors", "user_name"]

log = logging.getLogger(__name__)

#: how often each kind is drawn, and the range of its value.
KIND_WEIGHTS: Final[dict[str, tuple[float, int, int]]] = {
    "presence": (0.50, 1, 1),
    "chat": (0.28, 1, 3),
    "bits": (0.10, 1, 500),
    "sub": (0.04, 1, 1),
    "resub": (0.02, 1, 1),
    "gift": (0.03, 1, 5),
    "raid": (0.01, 1, 50),
    "view_seconds": (0.02, 30, 600),
}


def user_name(index: int) -> str:
    """The platform user of the simulator's wallet `index`."""
    return f"sim-user-{index}"


@dataclass(frozen=True)
class CollectorOptions:
    url: str
    token: Secret
    seed: int
    wallets: int
    channels: Sequence[str]
    rate: float
    batch: int
    duration_s: float = 0.0
    bindings: bool = True


@dataclass
class CollectorReport:
    """What the collectors posted and how the ingest answered."""

    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    bindings: int = 0
    retries: int = 0
    refusals: dict[str, int] = field(default_factory=dict)


def run_collectors(options: CollectorOptions, stop: threading.Event) -> CollectorReport:
    """Steps 1-3 of the module docstring until `stop` is set or the duration is over."""
    if not options.channels:
        raise ValueError("no channels to collect for (AOP_CHANNELS or --channels)")
    if options.wallets < 1 or options.rate <= 0 or options.batch < 1:
        raise ValueError(
            f"need wallets >= 1, rate > 0 and batch >= 1 (got {options.wallets}, "
            f"{options.rate}, {options.batch})"
        )
    run = uuid.uuid4().hex[:8]
    rng = random.Random(f"{options.seed}:{run}")
    report = CollectorReport()
    ends = time.monotonic() + options.duration_s if options.duration_s > 0 else float("inf")
    headers = {"Authorization": f"Bearer {options.token.reveal()}"}
    with httpx.Client(base_url=options.url, headers=headers, timeout=10.0) as client:
        poster = _Poster(client, report, stop)
        if options.bindings:
            keys = Keys(options.seed)
            for at in range(0, options.wallets, options.batch):
                items = [
                    {
                        "id": f"sim-bind-{run}-{i}",
                        "user": user_name(i),
                        "wallet": str(keys.wallet_key(i)),
                        "observed_at": _now_ms(),
                    }
                    for i in range(at, min(options.wallets, at + options.batch))
                ]
                if not poster.post("/v1/bindings", items):
                    return report
                report.bindings += len(items)
        kinds = list(KIND_WEIGHTS)
        weights = [KIND_WEIGHTS[k][0] for k in kinds]
        period_s = options.batch / options.rate
        next_at = time.monotonic()
        serial = 0
        while not stop.is_set() and time.monotonic() < ends:
            items = []
            for kind in rng.choices(kinds, weights, k=options.batch):
                _, low, high = KIND_WEIGHTS[kind]
                items.append(
                    {
                        "id": f"sim-{run}-{serial}",
                        "channel": rng.choice(options.channels),
                        "user": user_name(rng.randrange(options.wallets)),
                        "kind": kind,
                        "value": rng.randint(low, high),
                        "observed_at": _now_ms(),
                    }
                )
                serial += 1
            if not poster.post("/v1/signals", items):
                break
            next_at += period_s
            stop.wait(max(0.0, next_at - time.monotonic()))
    return report


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Poster:
    """Step 3: one request, answered or given up (stop)."""

    def __init__(self, client: httpx.Client, report: CollectorReport, stop: threading.Event):
        self._client = client
        self._report = report
        self._stop = stop
        self._backoff = Backoff(initial_s=0.2, cap_s=5.0)

    def post(self, path: str, items: list[dict[str, Any]]) -> bool:
        """Post until answered; False when stopped first."""
        report = self._report
        while not self._stop.is_set():
            try:
                response = self._client.post(path, json={"items": items})
            except httpx.HTTPError as exc:
                log.warning("ingest did not answer; retrying", extra={"error": str(exc)})
                report.retries += 1
                self._stop.wait(self._backoff.next_delay())
                continue
            report.requests += 1
            if response.status_code == 202:
                self._backoff.reset()
                body = response.json()
                report.accepted += body["accepted"]
                report.duplicates += body["duplicates"]
                return True
            if response.status_code == 429:
                self._stop.wait(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code == 422:
                refused = response.json()["error"]["items"]
                report.refused += len(refused)
                for item in refused:
                    report.refusals[item["reason"]] = report.refusals.get(item["reason"], 0) + 1
                log.warning("items refused", extra={"refused": refused[:5], "path": path})
                return True
            if response.status_code >= 500:
                report.retries += 1
                self._stop.wait(self._backoff.next_delay())
                continue
            raise AopError(
                f"POST {path} answered {response.status_code}: {response.text[:300]} "
                "(operator action: check --url and --token-file)"
            )
        return False
