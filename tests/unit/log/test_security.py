"""The Kafka security settings: checked together, naming the variables; the password read
from its private file and shown nowhere; the same options for every confluent-kafka client."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from aop.log.kafka import admin_config, client_config, consumer_config, producer_config
from aop.log.security import KafkaSecurity, kafka_security
from aop.runtime.errors import SettingsError
from aop.runtime.secrets import Secret
from aop.runtime.settings import Settings, load_settings

PASSWORD = "pw-4f1c2b"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """A password file (600), a CA bundle, a client certificate and key (600): paths."""
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "pw").chmod(0o600)
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("PEM\n")
    (tmp_path / "client.key").chmod(0o600)
    return {name: str(tmp_path / name) for name in ("pw", "ca.crt", "client.crt", "client.key")}


def sasl_ssl(files: dict[str, str], **extra: str) -> Settings:
    env = {
        "AOP_KAFKA_BOOTSTRAP": "b1:9093,b2:9093",
        "AOP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "AOP_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "AOP_KAFKA_SASL_USERNAME": "aop-fold",
        "AOP_KAFKA_SASL_PASSWORD_FILE": files["pw"],
        "AOP_KAFKA_SSL_CA_FILE": files["ca.crt"],
    }
    return load_settings({**env, **extra})


def test_plaintext_default_adds_only_the_protocol() -> None:
    settings = load_settings({"AOP_KAFKA_BOOTSTRAP": "b1:9092"})
    assert client_config(settings) == {
        "bootstrap.servers": "b1:9092",
        "security.protocol": "PLAINTEXT",
    }
    assert kafka_security(settings).ssl_context() is None


def test_sasl_ssl_gives_every_client_the_same_security_options(files: dict[str, str]) -> None:
    settings = sasl_ssl(files)
    expected = {
        "bootstrap.servers": "b1:9093,b2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "aop-fold",
        "sasl.password": PASSWORD,
        "ssl.ca.location": files["ca.crt"],
    }
    assert client_config(settings) == expected
    for config in (
        producer_config(settings),
        consumer_config(settings, "g"),
        admin_config(settings),
    ):
        assert {k: config[k] for k in expected} == expected
    assert producer_config(settings)["acks"] == "all"
    assert consumer_config(settings, "g")["isolation.level"] == "read_committed"


def test_mutual_tls_adds_the_client_certificate_and_key(files: dict[str, str]) -> None:
    settings = sasl_ssl(
        files,
        AOP_KAFKA_SSL_CERT_FILE=files["client.crt"],
        AOP_KAFKA_SSL_KEY_FILE=files["client.key"],
    )
    options = kafka_security(settings).librdkafka_options()
    assert options["ssl.certificate.location"] == files["client.crt"]
    assert options["ssl.key.location"] == files["client.key"]


def test_pass_through_options_reach_every_client_after_the_security_ones(
    files: dict[str, str],
) -> None:
    settings = sasl_ssl(
        files, AOP_KAFKA_CLIENT_OPTIONS='{"socket.keepalive.enable": true, "client.rack": "a"}'
    )
    config = producer_config(settings)
    assert config["socket.keepalive.enable"] == "true"
    assert config["client.rack"] == "a"


def test_password_is_masked_in_the_security_repr_and_absent_from_the_settings(
    files: dict[str, str],
) -> None:
    settings = sasl_ssl(files)
    security = kafka_security(settings)
    assert security.password == Secret(PASSWORD)
    assert PASSWORD not in repr(security) and PASSWORD not in str(security)
    assert "password=Secret(***)" in repr(security)
    assert PASSWORD not in repr(settings)  # the settings hold the path only


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("AOP_KAFKA_SASL_MECHANISM", "AOP_KAFKA_SASL_MECHANISM"),
        ("AOP_KAFKA_SASL_USERNAME", "AOP_KAFKA_SASL_USERNAME"),
        ("AOP_KAFKA_SASL_PASSWORD_FILE", "AOP_KAFKA_SASL_PASSWORD_FILE"),
    ],
)
def test_sasl_without_one_of_its_settings_is_refused(
    files: dict[str, str], unset: str, named: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        kafka_security(sasl_ssl(files, **{unset: ""}))
    assert str(caught.value) == f"AOP_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs {named} (unset)"


def test_sasl_settings_with_a_protocol_that_ignores_them_are_refused(
    files: dict[str, str],
) -> None:
    with pytest.raises(SettingsError) as caught:
        kafka_security(sasl_ssl(files, AOP_KAFKA_SECURITY_PROTOCOL="SSL"))
    assert str(caught.value) == (
        "AOP_KAFKA_SASL_MECHANISM, AOP_KAFKA_SASL_USERNAME, AOP_KAFKA_SASL_PASSWORD_FILE set "
        "but AOP_KAFKA_SECURITY_PROTOCOL=SSL does not use it; operator action: set the protocol "
        "the brokers' listener speaks, or unset them"
    )


def test_tls_settings_without_tls_are_refused(files: dict[str, str]) -> None:
    settings = load_settings(
        {"AOP_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "AOP_KAFKA_SSL_CA_FILE": files["ca.crt"]}
    )
    with pytest.raises(SettingsError, match=r"^AOP_KAFKA_SSL_CA_FILE set but .*=PLAINTEXT"):
        kafka_security(settings)


def test_a_certificate_without_its_key_is_refused(files: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="AOP_KAFKA_SSL_CERT_FILE and AOP_KAFKA_SSL_KEY_FILE"):
        kafka_security(sasl_ssl(files, AOP_KAFKA_SSL_CERT_FILE=files["client.crt"]))


def test_a_missing_password_file_names_the_variable(files: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        producer_config(sasl_ssl(files, AOP_KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "gone")))
    assert (
        str(caught.value)
        == f"AOP_KAFKA_SASL_PASSWORD_FILE: file {tmp_path / 'gone'} does not exist"
    )


def test_a_password_file_readable_by_others_is_refused(files: dict[str, str]) -> None:
    Path(files["pw"]).chmod(0o644)
    with pytest.raises(SettingsError, match=r"^AOP_KAFKA_SASL_PASSWORD_FILE: .* chmod 600"):
        kafka_security(sasl_ssl(files))


def test_a_client_key_readable_by_others_is_refused(files: dict[str, str]) -> None:
    Path(files["client.key"]).chmod(0o644)
    settings = sasl_ssl(
        files,
        AOP_KAFKA_SSL_CERT_FILE=files["client.crt"],
        AOP_KAFKA_SSL_KEY_FILE=files["client.key"],
    )
    with pytest.raises(SettingsError, match=r"^AOP_KAFKA_SSL_KEY_FILE: .* chmod 600"):
        kafka_security(settings)


def test_empty_variables_mean_unset() -> None:
    settings = load_settings({"AOP_KAFKA_SSL_CA_FILE": "", "AOP_KAFKA_SASL_MECHANISM": ""})
    assert settings.kafka_ssl_ca_file is None and settings.kafka_sasl_mechanism is None


def test_a_ca_file_that_is_not_pem_is_refused_for_aiokafka(files: dict[str, str]) -> None:
    security = KafkaSecurity("SSL", ca_file=Path(files["ca.crt"]))
    with pytest.raises(SettingsError, match=r"^AOP_KAFKA_SSL_CA_FILE: .* is not a PEM CA bundle"):
        security.ssl_context()


def test_tls_without_a_ca_file_verifies_against_the_system_cas() -> None:
    context = KafkaSecurity("SSL").ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
