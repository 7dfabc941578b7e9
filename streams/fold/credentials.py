"""Faust's (aiokafka's) credentials from the same security settings as every other client."""

from __future__ import annotations

import faust
from faust.types.auth import CredentialsT

from aop.log.security import kafka_security
from aop.runtime.settings import Settings

__all__ = ["fold_credentials"]


def fold_credentials(settings: Settings) -> CredentialsT | None:
    """`broker_credentials` of the fold's Faust app; None for PLAINTEXT.

    Raises:
        SettingsError: a bad security setting (`aop.log.security.kafka_security`).
    """
    security = kafka_security(settings)
    context = security.ssl_context()
    if security.sasl and security.password is not None:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password.reveal(),
            mechanism=security.mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
