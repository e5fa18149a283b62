"""How every Kafka client of the project reaches the broker: address, TLS and SASL/SCRAM.

`KafkaClientSettings` holds the connection settings (`EXPORTWATCH_KAFKA_*`; `Settings` inherits
them) and refuses an inconsistent set at startup with the variable's name. `client_options` is the
one place that turns them into aiokafka keyword arguments; every producer, consumer and admin
client the project makes (services, the screening clearance feed, `deploy/`, tests) is built with
it, so a deployment switches to TLS + SCRAM by environment alone:

    EXPORTWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL
    EXPORTWATCH_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
    EXPORTWATCH_KAFKA_SASL_USERNAME=exportwatch-risk
    EXPORTWATCH_KAFKA_SASL_PASSWORD=...
    EXPORTWATCH_KAFKA_SSL_CAFILE=/etc/exportwatch/kafka-ca.pem

Passwords are `SecretStr`: they print as `**********` in reprs, logs and validation errors (the
settings sources wrap them before pydantic sees them, so no error message can echo one).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# SCRAM only: the password never crosses the wire (RFC 5802), and the credentials live in the
# cluster's metadata, so a broker can be given per-service users without a restart.
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
SECRET_FIELDS = frozenset({"kafka_sasl_password", "kafka_ssl_key_password"})

_ENV = {
    "kafka_security_protocol": "EXPORTWATCH_KAFKA_SECURITY_PROTOCOL",
    "kafka_sasl_mechanism": "EXPORTWATCH_KAFKA_SASL_MECHANISM",
    "kafka_sasl_username": "EXPORTWATCH_KAFKA_SASL_USERNAME",
    "kafka_sasl_password": "EXPORTWATCH_KAFKA_SASL_PASSWORD",
    "kafka_ssl_cafile": "EXPORTWATCH_KAFKA_SSL_CAFILE",
    "kafka_ssl_certfile": "EXPORTWATCH_KAFKA_SSL_CERTFILE",
    "kafka_ssl_keyfile": "EXPORTWATCH_KAFKA_SSL_KEYFILE",
    "kafka_ssl_key_password": "EXPORTWATCH_KAFKA_SSL_KEY_PASSWORD",
}


class _SecretsMasked(PydanticBaseSettingsSource):
    """A settings source whose password values arrive as `SecretStr`, so that a validation error
    (which echoes the raw input of a model validator) shows `**********`, never the password."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return {
            name: SecretStr(value) if name in SECRET_FIELDS and isinstance(value, str) else value
            for name, value in self.inner().items()
        }


class KafkaClientSettings(BaseSettings):
    """The broker's address and how to authenticate to it (the `EXPORTWATCH_KAFKA_*` variables)."""

    model_config = SettingsConfigDict(env_prefix="EXPORTWATCH_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM files. No CA file means the system's trusted CAs (a broker with a public certificate).
    kafka_ssl_cafile: Path | None = None
    # A client certificate (and its key, unless in the same file) for brokers that require one
    # (ssl.client.auth=required); the broker then names the principal after the certificate.
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return tuple(
            _SecretsMasked(settings_cls, source)
            for source in (init_settings, env_settings, dotenv_settings, file_secret_settings)
        )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"KAFKA_BOOTSTRAP_SERVERS={value!r}: expected host:port[,host:port]")
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism")
    @classmethod
    def _choice(cls, value: str, info: ValidationInfo) -> str:
        choices = SECURITY_PROTOCOLS if info.field_name == "kafka_security_protocol" else SASL_MECHANISMS
        if value.upper() not in choices:
            raise ValueError(f"{_ENV[str(info.field_name)]}={value!r}: use {', '.join(choices)}")
        return value.upper()

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{_ENV[str(info.field_name)]}={str(value)!r} is not a file")
        return value

    @property
    def uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaClientSettings:
        protocol = f"EXPORTWATCH_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        if self.uses_sasl:
            if not self.kafka_sasl_username:
                raise ValueError(f"EXPORTWATCH_KAFKA_SASL_USERNAME is required with {protocol}")
            if self.kafka_sasl_password is None or not self.kafka_sasl_password.get_secret_value():
                raise ValueError(f"EXPORTWATCH_KAFKA_SASL_PASSWORD is required with {protocol}")
        elif self.kafka_sasl_username is not None or self.kafka_sasl_password is not None:
            # Credentials with a protocol that never sends them: a typo that would otherwise run
            # unauthenticated without a word.
            raise ValueError(
                f"EXPORTWATCH_KAFKA_SASL_USERNAME/PASSWORD are set but {protocol} does not authenticate "
                "with them: use SASL_SSL (or SASL_PLAINTEXT), or unset them"
            )
        tls_files = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "kafka_ssl_key_password")
        if not self.uses_tls:
            given = [_ENV[name] for name in tls_files if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but {protocol} does not use TLS: use SSL or SASL_SSL, or unset them"
                )
            return self
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError(
                "EXPORTWATCH_KAFKA_SSL_KEYFILE is set without EXPORTWATCH_KAFKA_SSL_CERTFILE (the client certificate)"
            )
        self.ssl_context()  # unreadable PEM files fail here, at startup, with the variable's name
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a client (None without TLS): the broker's certificate verified against
        the CA file, its host name checked, and the client certificate presented if one is set."""
        if not self.uses_tls:
            return None
        cafile = str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile is not None else None
        try:
            # With a CA file only that CA is trusted (as a Java client's truststore), else the system's.
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError(
                f"EXPORTWATCH_KAFKA_SSL_CAFILE={cafile!r}: not a PEM CA certificate ({exc})"
            ) from exc
        if self.kafka_ssl_certfile is not None:
            password = self.kafka_ssl_key_password
            try:
                context.load_cert_chain(
                    certfile=str(self.kafka_ssl_certfile),
                    keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
                    password=password.get_secret_value() if password is not None else None,
                )
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(
                    f"EXPORTWATCH_KAFKA_SSL_CERTFILE={str(self.kafka_ssl_certfile)!r} / EXPORTWATCH_KAFKA_SSL_KEYFILE="
                    f"{str(self.kafka_ssl_keyfile)!r}: not a PEM certificate and matching key, or the key "
                    f"password is wrong ({exc})"
                ) from exc
        return context

    def describe(self) -> str:
        """What a log line may say about the connection: never a password."""
        parts = [self.kafka_bootstrap_servers, self.kafka_security_protocol]
        if self.uses_sasl:
            parts.append(f"{self.kafka_sasl_mechanism} as {self.kafka_sasl_username}")
        if self.kafka_ssl_cafile is not None:
            parts.append(f"CA {self.kafka_ssl_cafile}")
        if self.kafka_ssl_certfile is not None:
            parts.append(f"client certificate {self.kafka_ssl_certfile}")
        return " ".join(parts)


def client_options(settings: KafkaClientSettings) -> dict[str, Any]:
    """Keyword arguments for `AIOKafkaProducer`, `AIOKafkaConsumer` and `AIOKafkaAdminClient`.

    The result holds the password in clear (aiokafka needs it): pass it to the client, never log it.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.uses_tls:
        options["ssl_context"] = settings.ssl_context()
    if settings.uses_sasl:
        assert settings.kafka_sasl_password is not None  # refused at validation otherwise
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def client_settings(kafka: str | KafkaClientSettings) -> KafkaClientSettings:
    """Tools that are handed a bare `host:port` (CLIs, test helpers) connect with the security
    settings of the environment, exactly like a service would."""
    if isinstance(kafka, KafkaClientSettings):
        return kafka
    return KafkaClientSettings(kafka_bootstrap_servers=kafka)
