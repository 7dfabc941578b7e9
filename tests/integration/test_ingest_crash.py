"""kill -9 of `aop ingest` mid-stream loses no acknowledged signal and writes none twice.

Clients post batches of fresh signals without a pause and record every id a 202 answered; a
request that gets no answer (the process died) or a 503 is sent again with the same ids, as
a collector does. Mid-stream the ingest dies by SIGKILL and is started again:

* `sigkill`: the test kills it at whatever moment the load is at;
* `mid_transaction`: it kills itself with a transaction's records flushed but not committed
  (AOP_INGEST_CRASH_AT): the restart aborts that transaction, the retries write the ids once;
* `after_commit`: it kills itself right after a commit, before answering: the retries of
  those requests must be answered as duplicates (the restart rebuilt its ids from the log).

Afterwards every acknowledged id is on the log exactly once (read_committed; the raw count
of ids on the log twice is 0), nothing else is there, and a batch acknowledged before the
kill, posted again, counts as duplicates.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from aop.runtime.settings import load_settings
from tests.conftest import new_topic_prefix
from tests.support.ingest import IngestProcess, read_batches, write_tokens

CHANNELS = ("crash:a", "crash:b", "crash:c")
CLIENTS = 4
BATCH = 50


class Client(threading.Thread):
    """Posts batches of new signals until stopped; retries a batch until it is answered."""

    def __init__(self, url: str, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.token = token
        self.stop = stop
        self.acknowledged: list[str] = []
        self.batches: list[list[dict[str, object]]] = []
        self.retries = 0
        self.duplicates_answered = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(headers=headers, timeout=15) as client:
            while not self.stop.is_set():
                now = time.time_ns() // 1_000_000
                batch = [
                    {
                        "id": uuid.uuid4().hex,
                        "channel": CHANNELS[i % len(CHANNELS)],
                        "user": f"user{i}",
                        "kind": "chat",
                        "value": 1,
                        "observed_at": now,
                    }
                    for i in range(BATCH)
                ]
                while True:  # the same ids until answered
                    try:
                        answer = client.post(f"{self.url}/v1/signals", json={"items": batch})
                    except httpx.HTTPError:
                        answer = None
                    if answer is not None and answer.status_code == 202:
                        body = answer.json()
                        assert body["accepted"] + body["duplicates"] == BATCH
                        self.duplicates_answered += body["duplicates"]
                        self.acknowledged += [str(item["id"]) for item in batch]
                        self.batches.append(batch)
                        break
                    assert answer is None or answer.status_code == 503, answer.text
                    self.retries += 1
                    time.sleep(0.05)


@pytest.mark.parametrize(
    "death",
    [
        "sigkill",
        "after_commit:15",
        # the broker's side of an open transaction at a crash is the listener's too
        # (tests/integration/test_listener_process.py); kept for `-m slow` runs
        pytest.param("mid_transaction:15", marks=pytest.mark.slow),
    ],
)
def test_kill_9_mid_stream_loses_no_acknowledged_signal(
    kafka_bootstrap: str, tmp_path: Path, death: str
) -> None:
    tokens = write_tokens(tmp_path / "tokens", ["collector"])
    env = {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_TOPIC_PREFIX": new_topic_prefix(),
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_ATTENTION_ALLOWED_LATENESS_S": "120",
        "AOP_INGEST_WATERMARK_INTERVAL_S": "0.2",
        "AOP_INGEST_TOKENS_FILE": str(tmp_path / "tokens"),
        "AOP_INGEST_RATE_LIMIT": "1000000",
        "AOP_INGEST_RATE_BURST": "1000000",
        "AOP_LOG_LEVEL": "WARNING",
    }
    if death != "sigkill":
        env["AOP_INGEST_CRASH_AT"] = death
    settings = load_settings(env)
    service = IngestProcess(env, tmp_path / "ingest.log")
    service.start()
    stop = threading.Event()
    clients = [Client(service.url, tokens["collector"], stop) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        if death == "sigkill":
            time.sleep(1.5)
            service.kill()
        else:
            assert service.wait_dead(timeout_s=20) == -9, service.log()[-2000:]
        before_kill = sum(len(c.acknowledged) for c in clients)
        time.sleep(0.5)
        service.env.pop("AOP_INGEST_CRASH_AT", None)
        service.start()
        time.sleep(1.5)
    finally:
        stop.set()
        for client in clients:
            client.join(30)
    acknowledged = [i for c in clients for i in c.acknowledged]
    assert before_kill > 0 and len(acknowledged) > before_kill  # it went on after the restart
    # the same batch, acknowledged before the kill, posted to the restarted ingest
    first = clients[0].batches[0]
    again = httpx.post(
        f"{service.url}/v1/signals",
        json={"items": first},
        headers={"Authorization": f"Bearer {tokens['collector']}"},
        timeout=15,
    )
    assert (again.status_code, again.json()["accepted"], again.json()["duplicates"]) == (
        202,
        0,
        BATCH,
    )
    assert service.stop() == 0, service.log()[-3000:]
    on_log = Counter(s["id"] for b in read_batches(settings) for s in b.value["signals"])
    missing = [i for i in acknowledged if i not in on_log]
    twice = sorted(i for i, n in on_log.items() if n > 1)
    print(
        f"acknowledged {len(acknowledged)} ({before_kill} before the kill), on the log "
        f"{sum(on_log.values())} ({len(on_log)} distinct), raw duplicates {len(twice)}, "
        f"retries {sum(c.retries for c in clients)}, answered as duplicates "
        f"{sum(c.duplicates_answered for c in clients)} ({death})"
    )
    if death.startswith("after_commit"):
        assert sum(c.duplicates_answered for c in clients) > 0  # the unanswered commit
    assert missing == []
    assert twice == []
    assert len(set(acknowledged)) == len(acknowledged)
    # nothing on the log that no client sent (an unanswered request's ids are its retry's)
    assert set(on_log) == set(acknowledged)
