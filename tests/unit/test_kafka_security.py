"""Kafka connection settings: refused at startup with the variable's name, never a password shown."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.kafka.secure import BrokerSecurity
from shared.kafka_security import KafkaClientSettings, client_options, client_settings
from shared.settings import load_settings

PASSWORD = "correct-horse-battery-staple"
SECURITY_VARIABLES = (
    "EXPORTWATCH_KAFKA_SECURITY_PROTOCOL",
    "EXPORTWATCH_KAFKA_SASL_MECHANISM",
    "EXPORTWATCH_KAFKA_SASL_USERNAME",
    "EXPORTWATCH_KAFKA_SASL_PASSWORD",
    "EXPORTWATCH_KAFKA_SSL_CAFILE",
    "EXPORTWATCH_KAFKA_SSL_CERTFILE",
    "EXPORTWATCH_KAFKA_SSL_KEYFILE",
    "EXPORTWATCH_KAFKA_SSL_KEY_PASSWORD",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in SECURITY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> BrokerSecurity:
    return BrokerSecurity.create(tmp_path_factory.mktemp("tls"), users=["exportwatch-risk"])


def _refused(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        load_settings("risk")
    return _everything_said(caught.value)


def _everything_said(error: ValidationError) -> str:
    """The message and the full raw input pydantic keeps with it (the message shortens the input)."""
    return f"{error}\n{error.errors()!r}"


def test_plaintext_is_the_default_and_needs_no_credentials() -> None:
    options = client_options(load_settings("risk", kafka_bootstrap_servers="broker-1:9092"))
    assert options == {"bootstrap_servers": "broker-1:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_with_scram_gives_aiokafka_a_verifying_tls_context(
    monkeypatch: pytest.MonkeyPatch, tls: BrokerSecurity
) -> None:
    monkeypatch.setenv("EXPORTWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("EXPORTWATCH_KAFKA_SASL_MECHANISM", "scram-sha-256")
    monkeypatch.setenv("EXPORTWATCH_KAFKA_SASL_USERNAME", "exportwatch-risk")
    monkeypatch.setenv("EXPORTWATCH_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("EXPORTWATCH_KAFKA_SSL_CAFILE", str(tls.ca_file))
    settings = load_settings("risk")
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "exportwatch-risk"
    assert options["sasl_plain_password"] == PASSWORD
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # Only the configured CA is trusted, not the system's: the broker's certificate is pinned.
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "exportwatch-local-ca"),),)]
    # The password is in the options aiokafka needs, and nowhere a log line could pick it up.
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    assert PASSWORD not in settings.describe()
    assert "SCRAM-SHA-256 as exportwatch-risk" in settings.describe()


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"EXPORTWATCH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "EXPORTWATCH_KAFKA_SECURITY_PROTOCOL='TLS'"),
        (
            {"EXPORTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "EXPORTWATCH_KAFKA_SASL_MECHANISM": "PLAIN"},
            "EXPORTWATCH_KAFKA_SASL_MECHANISM='PLAIN'",
        ),
        (
            {"EXPORTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "EXPORTWATCH_KAFKA_SASL_PASSWORD": PASSWORD},
            "EXPORTWATCH_KAFKA_SASL_USERNAME is required with EXPORTWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {"EXPORTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "EXPORTWATCH_KAFKA_SASL_USERNAME": "u"},
            "EXPORTWATCH_KAFKA_SASL_PASSWORD is required",
        ),
        (
            {"EXPORTWATCH_KAFKA_SASL_USERNAME": "u", "EXPORTWATCH_KAFKA_SASL_PASSWORD": PASSWORD},
            "EXPORTWATCH_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not authenticate",
        ),
        (
            {"EXPORTWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "EXPORTWATCH_KAFKA_SSL_CAFILE": "/no/such/ca.pem"},
            "EXPORTWATCH_KAFKA_SSL_CAFILE='/no/such/ca.pem' is not a file",
        ),
    ],
)
def test_an_inconsistent_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    message = _refused(monkeypatch, **variables)
    assert named in message
    assert PASSWORD not in message  # the raw input pydantic echoes shows the password masked


def test_tls_files_without_tls_are_refused(monkeypatch: pytest.MonkeyPatch, tls: BrokerSecurity) -> None:
    message = _refused(monkeypatch, EXPORTWATCH_KAFKA_SSL_CAFILE=str(tls.ca_file))
    assert "EXPORTWATCH_KAFKA_SSL_CAFILE set but EXPORTWATCH_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in message


def test_a_file_that_is_no_certificate_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    message = _refused(
        monkeypatch,
        EXPORTWATCH_KAFKA_SECURITY_PROTOCOL="SSL",
        EXPORTWATCH_KAFKA_SSL_CAFILE=str(not_pem),
    )
    assert f"EXPORTWATCH_KAFKA_SSL_CAFILE={str(not_pem)!r}: not a PEM CA certificate" in message


def test_a_client_key_needs_its_certificate(monkeypatch: pytest.MonkeyPatch, tls: BrokerSecurity) -> None:
    message = _refused(
        monkeypatch,
        EXPORTWATCH_KAFKA_SECURITY_PROTOCOL="SSL",
        EXPORTWATCH_KAFKA_SSL_CAFILE=str(tls.ca_file),
        EXPORTWATCH_KAFKA_SSL_KEYFILE=str(tls.ca_file),
    )
    assert "EXPORTWATCH_KAFKA_SSL_KEYFILE is set without EXPORTWATCH_KAFKA_SSL_CERTFILE" in message


def test_a_client_certificate_is_loaded_into_the_context(tls: BrokerSecurity) -> None:
    settings = tls.certificate_client("127.0.0.1:9094", "exportwatch-risk")
    assert settings.kafka_ssl_certfile is not None and settings.kafka_ssl_certfile.stat().st_mode & 0o077 == 0
    options = client_options(settings)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_a_password_given_in_code_is_masked_in_errors_too(tls: BrokerSecurity) -> None:
    with pytest.raises(ValidationError) as caught:
        KafkaClientSettings(
            kafka_security_protocol="SASL_SSL", kafka_sasl_password=PASSWORD, kafka_ssl_cafile=tls.ca_file
        )
    said = _everything_said(caught.value)
    assert "EXPORTWATCH_KAFKA_SASL_USERNAME is required" in said
    assert PASSWORD not in said and "SecretStr('**********')" in said


def test_a_bare_address_takes_its_security_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tls: BrokerSecurity
) -> None:
    assert client_settings("h:1").kafka_security_protocol == "PLAINTEXT"
    monkeypatch.setenv("EXPORTWATCH_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("EXPORTWATCH_KAFKA_SSL_CAFILE", str(tls.ca_file))
    secured = client_settings("h:1")
    assert (secured.kafka_bootstrap_servers, secured.kafka_security_protocol) == ("h:1", "SSL")
    assert client_settings(secured) is secured
