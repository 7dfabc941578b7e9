"""The listener: Solana program events → SlotBatches on `aop.chain.events` (see `service`).

Modules, one job each: `rpc_source` (JSON-RPC over HTTP and websocket), `decode` (a
transaction's logs → events and dead letters, pure), `batcher` (a slot range → SlotBatches per
partition, pure), `sink` (one Kafka transaction per range), `checkpoint` (recovered from the
log), `audit` (NDJSON file), `metrics`, and `service` (the wiring).
"""

from aop.streams.listener.service import Listener, StepResult

__all__ = ["Listener", "StepResult"]
