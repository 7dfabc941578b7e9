"""How every Kafka client reaches the brokers: the `AOP_KAFKA_*` security settings, checked
together, with the SASL password read from its file.

One `KafkaSecurity` feeds both client libraries: `librdkafka_options()` for confluent-kafka
(the services' producers, consumers and admin clients, the replay's readers) and
`ssl_context()` plus the SASL fields for Faust's aiokafka (`aop.streams.fold.credentials`).

| protocol | needs | optional |
|---|---|---|
| PLAINTEXT | — | — |
| SSL | — | CA file (else the system's CAs), client certificate + key (mutual TLS) |
| SASL_PLAINTEXT | mechanism, username, password file | — |
| SASL_SSL | mechanism, username, password file | CA file, client certificate + key |
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from aop.runtime.errors import SettingsError
from aop.runtime.secrets import Secret, read_secret_file
from aop.runtime.settings import Settings

__all__ = ["KafkaSecurity", "kafka_security"]

_PASSWORD_VAR = "AOP_KAFKA_SASL_PASSWORD_FILE"


@dataclass(frozen=True)
class KafkaSecurity:
    """The checked security settings; `password` prints as `***`."""

    protocol: str
    mechanism: str | None = None
    username: str = ""
    password: Secret | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def librdkafka_options(self) -> dict[str, str]:
        """The librdkafka configuration keys of these settings (the password in clear: hand it
        to a client, never to a log)."""
        options = {"security.protocol": self.protocol}
        if self.sasl and self.mechanism and self.password is not None:
            options |= {
                "sasl.mechanism": self.mechanism,
                "sasl.username": self.username,
                "sasl.password": self.password.reveal(),
            }
        if self.ca_file is not None:
            options["ssl.ca.location"] = str(self.ca_file)
        if self.cert_file is not None and self.key_file is not None:
            options["ssl.certificate.location"] = str(self.cert_file)
            options["ssl.key.location"] = str(self.key_file)
        return options

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS client context verifying the brokers (host names included) for aiokafka; None
        without TLS.

        Raises:
            SettingsError: the CA file, the certificate or the key cannot be loaded.
        """
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(
                f"AOP_KAFKA_SSL_CA_FILE: {self.ca_file} is not a PEM CA bundle ({exc})"
            ) from None
        if self.cert_file is not None and self.key_file is not None:
            try:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (OSError, ssl.SSLError) as exc:
                raise SettingsError(
                    f"AOP_KAFKA_SSL_CERT_FILE / AOP_KAFKA_SSL_KEY_FILE: {self.cert_file} and "
                    f"{self.key_file} are not a PEM certificate and its unencrypted key ({exc})"
                ) from None
        return context


def kafka_security(settings: Settings) -> KafkaSecurity:
    """The security settings, checked together, the password read from its file.

    Raises:
        SettingsError: a setting the protocol needs is missing, one it ignores is set (a sign
            of a wrong protocol), a file is missing or unreadable, or the password file is
            readable by others (see `read_secret_file`). The message names the variable.
    """
    protocol = settings.kafka_security_protocol
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    _check_combination(settings, sasl=sasl, tls=tls)
    password = read_secret_file(settings.kafka_sasl_password_file, _PASSWORD_VAR) if sasl else None
    for variable, path in (
        ("AOP_KAFKA_SSL_CA_FILE", settings.kafka_ssl_ca_file),
        ("AOP_KAFKA_SSL_CERT_FILE", settings.kafka_ssl_cert_file),
    ):
        if path is not None and not path.is_file():
            raise SettingsError(f"{variable}: file {path} does not exist")
    if settings.kafka_ssl_key_file is not None:
        read_secret_file(settings.kafka_ssl_key_file, "AOP_KAFKA_SSL_KEY_FILE")  # mode 600
    return KafkaSecurity(
        protocol=protocol,
        mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_sasl_username,
        password=password,
        ca_file=settings.kafka_ssl_ca_file,
        cert_file=settings.kafka_ssl_cert_file,
        key_file=settings.kafka_ssl_key_file,
    )


def _check_combination(settings: Settings, *, sasl: bool, tls: bool) -> None:
    protocol = settings.kafka_security_protocol
    sasl_settings = {
        "AOP_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "AOP_KAFKA_SASL_USERNAME": settings.kafka_sasl_username or None,
        _PASSWORD_VAR: settings.kafka_sasl_password_file,
    }
    tls_settings = {
        "AOP_KAFKA_SSL_CA_FILE": settings.kafka_ssl_ca_file,
        "AOP_KAFKA_SSL_CERT_FILE": settings.kafka_ssl_cert_file,
        "AOP_KAFKA_SSL_KEY_FILE": settings.kafka_ssl_key_file,
    }
    if sasl:
        missing = [name for name, value in sasl_settings.items() if value is None]
        if missing:
            raise SettingsError(
                f"AOP_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)} (unset)"
            )
    ignored = [name for name, value in sasl_settings.items() if value is not None and not sasl]
    ignored += [name for name, value in tls_settings.items() if value is not None and not tls]
    if ignored:
        raise SettingsError(
            f"{', '.join(ignored)} set but AOP_KAFKA_SECURITY_PROTOCOL={protocol} does not use "
            "it; operator action: set the protocol the brokers' listener speaks, or unset them"
        )
    if (settings.kafka_ssl_cert_file is None) != (settings.kafka_ssl_key_file is None):
        raise SettingsError(
            "AOP_KAFKA_SSL_CERT_FILE and AOP_KAFKA_SSL_KEY_FILE go together (mutual TLS): "
            "set both or neither"
        )
