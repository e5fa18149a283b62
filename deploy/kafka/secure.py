"""TLS + SCRAM + ACLs for the local broker: its own CA, certificates, users and listeners.

`BrokerSecurity.create(folder)` makes (once; later calls reuse the folder) a self-signed CA, the
broker's certificate (for 127.0.0.1 and localhost), and a random SCRAM password for the admin and
for each service of `shared.topology.WIRING`, kept in ``credentials.json`` (mode 0600).
`KafkaBroker.start(..., security=...)` then runs the broker with three listeners:

- ``SASL_SSL``   clients: TLS, then SCRAM-SHA-512 or -256 (the users are written into the metadata
  log when the storage is formatted, ``kafka-storage format --add-scram``);
- ``SSL``        clients with a certificate of this CA (``ssl.client.auth=required``); also the
  inter-broker listener, where the broker authenticates with its own certificate;
- ``CONTROLLER`` KRaft's controller listener, mutual TLS as well (SCRAM is not available there:
  the credentials live in the very metadata the controller serves).

Both TLS listeners name the principal after the certificate's common name
(``ssl.principal.mapping.rules``), so ``CN=exportwatch-risk`` is ``User:exportwatch-risk`` whether
it logs in with SCRAM or a certificate, and the ACLs of `deploy.kafka.acls` apply to both.
The StandardAuthorizer denies whatever no ACL allows; the admin and the broker are super users.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deploy.kafka.acls import principal_name
from shared.kafka_security import SASL_MECHANISMS, KafkaClientSettings
from shared.topology import WIRING

ADMIN_USER = "exportwatch-admin"
BROKER_PRINCIPAL = "exportwatch-broker"
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
BROKER_KEYSTORE = "broker.pem"
CREDENTIALS_FILE = "credentials.json"
CERT_DAYS = 3650  # a development CA; production certificates come from the platform (cert-manager, Strimzi)


def _write_private(path: Path, data: bytes) -> None:
    """Write a key or password file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject: str, public_key: ec.EllipticCurvePublicKey, issuer: x509.Name | None = None
) -> x509.CertificateBuilder:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
    )


class _Authority:
    """A self-signed CA (EC P-256) that signs the broker's and the clients' certificates."""

    def __init__(self, folder: Path) -> None:
        ca_path, key_path = folder / CA_FILE, folder / CA_KEY_FILE
        if ca_path.is_file() and key_path.is_file():
            self.cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(
                    f"{key_path} is not the EC key this module makes; remove {folder} to start anew"
                )
            self.key = key
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            _certificate("exportwatch-local-ca", self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        _write_private(key_path, _pkcs8(self.key))
        ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, path: Path, common_name: str, *, server: bool) -> Path:
        """A PEM file with a new private key (PKCS#8), its certificate signed by this CA, then the
        CA's: the layout of Kafka's PEM keystore (``ssl.keystore.type=PEM``) and of
        `ssl.SSLContext.load_cert_chain`. Server certificates name 127.0.0.1 and localhost."""
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = _certificate(common_name, key.public_key(), issuer=self.cert.subject).add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        if server:
            # The broker is also a client of its own controller listener: both usages.
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False).sign(
            self.key, hashes.SHA256()
        )
        pem = (
            _pkcs8(key)
            + cert.public_bytes(serialization.Encoding.PEM)
            + self.cert.public_bytes(serialization.Encoding.PEM)
        )
        _write_private(path, pem)
        return path


@dataclass(frozen=True)
class BrokerSecurity:
    """The TLS material and SCRAM users of one local broker, kept in `folder`."""

    folder: Path
    passwords: dict[str, str]

    @classmethod
    def create(cls, folder: Path, *, users: Iterable[str] | None = None) -> BrokerSecurity:
        """Make the CA, the broker's keystore and the users' passwords in `folder`, or reuse them.

        `users` defaults to `exportwatch-admin` and `exportwatch-<service>` for every service of
        the wiring table. A user added later gets a password here, but the broker only knows the
        users it was formatted with (see `format_args`): format a fresh data directory then.
        """
        folder = folder.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        authority = _Authority(folder)
        if not (folder / BROKER_KEYSTORE).is_file():
            authority.issue(folder / BROKER_KEYSTORE, BROKER_PRINCIPAL, server=True)
        wanted = [ADMIN_USER, *(principal_name(s) for s in WIRING)] if users is None else list(users)
        path = folder / CREDENTIALS_FILE
        passwords: dict[str, str] = json.loads(path.read_text("utf-8")) if path.is_file() else {}
        missing = [user for user in wanted if user not in passwords]
        for user in missing:
            passwords[user] = secrets.token_hex(24)
        if missing or not path.is_file():
            _write_private(path, json.dumps(passwords, indent=2, sort_keys=True).encode())
        return cls(folder=folder, passwords=passwords)

    @property
    def ca_file(self) -> Path:
        return self.folder / CA_FILE

    def format_args(self) -> list[str]:
        """`StorageTool format` arguments that write every user's SCRAM credentials (both
        mechanisms) into the new metadata log, before the broker ever starts."""
        args: list[str] = []
        for user, password in sorted(self.passwords.items()):
            for mechanism in SASL_MECHANISMS:
                args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        return args

    def server_properties(self, *, port: int, ssl_port: int, controller_port: int) -> dict[str, str | int]:
        """The listener, TLS, SASL and authorizer settings that replace the plaintext ones."""
        keystore = self.folder / BROKER_KEYSTORE
        scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "listeners": (
                f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port},CONTROLLER://127.0.0.1:{controller_port}"
            ),
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.controller.ssl.client.auth": "required",
            "listener.name.sasl_ssl.ssl.client.auth": "none",
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            **{
                f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config": scram_login
                for mechanism in SASL_MECHANISMS
            },
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN_USER};User:{BROKER_PRINCIPAL}",
        }

    def client(
        self,
        bootstrap: str,
        user: str = ADMIN_USER,
        *,
        password: str | None = None,
        mechanism: str = "SCRAM-SHA-512",
    ) -> KafkaClientSettings:
        """Connection settings of `user` on the SASL_SSL listener (`password` overrides the real one)."""
        return KafkaClientSettings(
            kafka_bootstrap_servers=bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism=mechanism,
            kafka_sasl_username=user,
            kafka_sasl_password=password if password is not None else self.passwords[user],
            kafka_ssl_cafile=self.ca_file,
        )

    def client_environment(self, bootstrap: str, user: str) -> dict[str, str]:
        """The `EXPORTWATCH_KAFKA_*` variables a service process needs to connect as `user`."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXPORTWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "EXPORTWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "EXPORTWATCH_KAFKA_SASL_USERNAME": user,
            "EXPORTWATCH_KAFKA_SASL_PASSWORD": self.passwords[user],
            "EXPORTWATCH_KAFKA_SSL_CAFILE": str(self.ca_file),
        }

    def certificate_client(self, ssl_bootstrap: str, user: str) -> KafkaClientSettings:
        """Connection settings of `user` on the SSL listener, authenticated by a certificate of
        this CA issued now (common name = user name)."""
        clients = self.folder / "clients"
        clients.mkdir(exist_ok=True, mode=0o700)
        keystore = _Authority(self.folder).issue(clients / f"{user}.pem", user, server=False)
        return KafkaClientSettings(
            kafka_bootstrap_servers=ssl_bootstrap,
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=self.ca_file,
            kafka_ssl_certfile=keystore,
        )
