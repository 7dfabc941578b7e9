"""The log's topics and the Kafka client configurations every service shares.

One import for the rest of the code: topic names and specs, `ensure_topics`
(`aop.log.topics`), and the client configurations with the connection check
(`aop.log.clients`), which carry the security settings (`aop.log.security`).
"""

from __future__ import annotations

from aop.log.clients import (
    KafkaConnectError,
    admin_config,
    client_config,
    connected_admin,
    consumer_config,
    producer_config,
    transactional_producer_config,
)
from aop.log.topics import (
    ATTENTION_SIGNALS,
    CHAIN_EVENTS,
    DLQ,
    EPOCH_ROOTS,
    GLOBAL_ROOTS,
    SETTLEMENT,
    TopicMismatchError,
    TopicSpec,
    ensure_topics,
    replicated,
    topic_specs,
)

__all__ = [
    "ATTENTION_SIGNALS",
    "CHAIN_EVENTS",
    "DLQ",
    "EPOCH_ROOTS",
    "GLOBAL_ROOTS",
    "SETTLEMENT",
    "KafkaConnectError",
    "TopicMismatchError",
    "TopicSpec",
    "admin_config",
    "client_config",
    "connected_admin",
    "consumer_config",
    "ensure_topics",
    "producer_config",
    "replicated",
    "topic_specs",
    "transactional_producer_config",
]
