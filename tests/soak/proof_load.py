"""A light, steady stream of the requests wallets make, so the API's memory is exercised.

Mostly proofs (`/v1/channels/{channel}/claims/{wallet}`), some every-channel lookups
(`/v1/wallets/{wallet}/claims`), for wallets of each channel's newest root. The wallets come
from that root's dataset, fetched again whenever a channel has a newer root, so the API's
caches keep seeing new roots as they would in production. Runs in a thread of the test.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence

import httpx

__all__ = ["ProofLoad"]

#: one request in this many asks for a wallet's claims over every channel.
WALLET_CLAIMS_EVERY = 5


class ProofLoad:
    """`rate` requests per second against `api` until `stop()`."""

    def __init__(self, api: str, channels: Sequence[str], rate: float, seed: int = 5) -> None:
        self._api = api
        self._channels = list(channels)
        self._interval = 1.0 / rate
        self._random = random.Random(seed)
        self._wallets: dict[str, tuple[int, list[str]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proof-load", daemon=True)
        #: HTTP status (or exception name) -> count, for proof and wallet requests.
        self.outcomes: Counter[str] = Counter()
        self.seconds_total = 0.0
        self.seconds_max = 0.0
        #: every request's latency in seconds, in order (a probe's minute: a few hundred).
        self.latencies_s: list[float] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    def p99_ms(self) -> float:
        """The 99th percentile of the latencies, in ms (NaN with fewer than 2 requests)."""
        if len(self.latencies_s) < 2:
            return float("nan")
        return 1000 * statistics.quantiles(self.latencies_s, n=100, method="inclusive")[98]

    def _run(self) -> None:
        with httpx.Client(base_url=self._api, timeout=10) as client:
            count = 0
            while not self._stop.wait(self._interval):
                channel = self._random.choice(self._channels)
                wallet = self._pick_wallet(client, channel)
                if wallet is None:
                    continue
                count += 1
                path = (
                    f"/v1/wallets/{wallet}/claims"
                    if count % WALLET_CLAIMS_EVERY == 0
                    else f"/v1/channels/{channel}/claims/{wallet}"
                )
                self._timed(client, path)

    def _timed(self, client: httpx.Client, path: str) -> None:
        started = time.monotonic()
        try:
            outcome = str(client.get(path).status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        elapsed = time.monotonic() - started
        self.outcomes[outcome] += 1
        self.seconds_total += elapsed
        self.seconds_max = max(self.seconds_max, elapsed)
        self.latencies_s.append(elapsed)

    def _pick_wallet(self, client: httpx.Client, channel: str) -> str | None:
        """A wallet of the channel's newest root (its dataset read again when newer)."""
        try:
            roots = client.get(f"/v1/channels/{channel}/roots", params={"limit": 1})
            newest = roots.json().get("roots", []) if roots.status_code == 200 else []
            if not newest:
                return None
            root_seq = int(newest[0]["root_seq"])
            known_seq, wallets = self._wallets.get(channel, (-1, []))
            if root_seq != known_seq:
                dataset = client.get(f"/v1/roots/{channel}/{root_seq}/dataset")
                if dataset.status_code != 200:
                    return None
                wallets = [leaf["wallet"] for leaf in dataset.json()]
                self._wallets[channel] = (root_seq, wallets)
        except (httpx.HTTPError, ValueError):
            return None
        return self._random.choice(wallets) if wallets else None
