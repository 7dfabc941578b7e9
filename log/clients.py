"""The configuration of every confluent-kafka client, and the connection check at start.

`producer_config`, `consumer_config` and `admin_config` all start from `client_config`: the
bootstrap servers, the security settings (`aop.log.security`) and the pass-through
`AOP_KAFKA_CLIENT_OPTIONS`. Faust's aiokafka clients get the same security settings through
`aop.streams.fold.credentials`.

`connected_admin` is what a service calls first: it connects with the configured credentials
and, where the broker refuses them, stops the service with one line naming the setting and
the broker's reason, rather than letting librdkafka retry a wrong password for ever.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from aop.log.security import kafka_security
from aop.runtime.errors import AopError
from aop.runtime.settings import Settings

__all__ = [
    "KafkaConnectError",
    "admin_config",
    "client_config",
    "connected_admin",
    "consumer_config",
    "producer_config",
    "transactional_producer_config",
]

#: how long a service waits at start for a broker that does not answer at all.
CONNECT_TIMEOUT_S = 10.0


class KafkaConnectError(AopError):
    """Raised when no broker can be reached, or a broker refuses the client's credentials."""


def client_config(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers, security options and the pass-through options of any client.

    Raises:
        SettingsError: a bad security setting (`aop.log.security.kafka_security`).
    """
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        **kafka_security(settings).librdkafka_options(),
        **settings.kafka_client_options,
    }


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """An idempotent producer: retries never duplicate or reorder within a partition."""
    return {
        **client_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": 4194304,
        **extra,
    }


#: how long a service's open transaction may stay open before the broker aborts it; what a
#: read_committed reader (and the export's cut) may wait on a writer that died mid-transaction.
TRANSACTION_TIMEOUT_MS = 60_000


def transactional_producer_config(
    settings: Settings,
    transactional_id: str,
    *,
    timeout_ms: int = TRANSACTION_TIMEOUT_MS,
    **extra: Any,
) -> dict[str, Any]:
    """A transactional producer (the listener's, the combiner's, the import's): one
    `transactional.id` per writer role, so a restarted writer fences its predecessor and
    aborts its open transaction; small batches (`linger.ms` 2: a transaction is flushed at its
    commit anyway)."""
    return producer_config(
        settings,
        **{
            "transactional.id": transactional_id,
            "transaction.timeout.ms": timeout_ms,
            "linger.ms": 2,
            **extra,
        },
    )


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    """A consumer that commits only what the caller says it has durably handled."""
    return {
        **client_config(settings),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.max.bytes": 16777216,
        "max.partition.fetch.bytes": 4194304,
        **extra,
    }


def admin_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """An admin client (topics, offsets, groups)."""
    return {**client_config(settings), **extra}


class _Collected(logging.Handler):
    """Keeps librdkafka's log lines of one client (they say why a connection failed)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def connected_admin(settings: Settings, *, timeout: float = CONNECT_TIMEOUT_S) -> AdminClient:
    """An admin client that has reached the cluster with the configured credentials.

    1. Build the client (a bad setting fails here, naming its variable).
    2. Ask for the cluster's metadata, in short rounds, until it answers or `timeout` passes.
    3. After each failed round, look at what the client reported: a refusal (authentication,
       TLS verification, a client certificate the broker rejects) ends the wait at once; a
       broker that does not answer is waited for.

    Raises:
        SettingsError: a bad security setting.
        KafkaConnectError: a broker refused the credentials (the message names the setting
            and gives the broker's reason), or no broker answered within `timeout`.
    """
    errors: list[KafkaError] = []
    collected = _Collected()
    quiet = logging.Logger("aop.log.clients.check")  # unregistered: nothing reaches stderr
    quiet.addHandler(collected)
    admin = AdminClient(admin_config(settings, error_cb=errors.append, logger=quiet))
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
            return admin
        except KafkaException as exc:
            last = str(exc.args[0].str())
        admin.poll(0)  # serves error_cb and the log lines
        reasons = [e.str() for e in errors] + collected.lines
        refusal = _refusal(settings, errors, reasons)
        if refusal is not None:
            raise KafkaConnectError(refusal)
        if time.monotonic() >= deadline:
            detail = next((r for r in reversed(reasons) if "brokers are down" not in r), last)
            raise KafkaConnectError(
                f"AOP_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: no broker answered in "
                f"{timeout:.0f} s with AOP_KAFKA_SECURITY_PROTOCOL="
                f"{settings.kafka_security_protocol} ({_strip(detail)})"
            )


def _refusal(settings: Settings, errors: list[KafkaError], reasons: list[str]) -> str | None:
    """The one-line message for a refusal among what the client reported, or None."""
    for error in errors:
        text = _strip(error.str())
        if error.code() == KafkaError._AUTHENTICATION:
            if "mechanism" in text.lower() and "supported mechanisms" in text.lower():
                return f"AOP_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism}: {text}"
            return (
                f"AOP_KAFKA_SASL_USERNAME={settings.kafka_sasl_username} / "
                f"AOP_KAFKA_SASL_PASSWORD_FILE: the broker refused the login: {text}"
            )
    for reason in reasons:
        text = _strip(reason)
        lowered = text.lower()
        if "certificate verify failed" in lowered:
            return (
                f"AOP_KAFKA_SSL_CA_FILE={settings.kafka_ssl_ca_file or '(system CAs)'}: the "
                f"broker's certificate is not trusted: {text}"
            )
        if "bad certificate" in lowered or "certificate required" in lowered:
            return (
                "AOP_KAFKA_SSL_CERT_FILE / AOP_KAFKA_SSL_KEY_FILE: the broker refused the "
                f"client certificate (mutual TLS): {text}"
            )
    return None


#: the head of a librdkafka log line: `FAIL [rdkafka#producer-1] [thrd:host:port/bootstrap]: `.
_LOG_HEAD = re.compile(r"^[A-Z_]+ \[rdkafka#[^\]]*\] \[thrd:[^\]]*\]: ")


def _strip(reason: str) -> str:
    """librdkafka's reason without its log line head and timing suffix
    (`(after 305ms in state AUTH_REQ)`)."""
    reason = _LOG_HEAD.sub("", reason)
    head, sep, tail = reason.rpartition(" (after ")
    return head if sep and tail.endswith(")") else reason
