"""The pipeline over a broker that speaks only TLS, authenticates with SCRAM and enforces ACLs.

One secured broker for the module (its own CA, made here), the services' ACLs granted from the
wiring table, each service process connecting as its own principal `User:exportwatch-<service>`.
"""

from __future__ import annotations

import json
import logging
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from deploy.kafka.acls import grant, pipeline_acls, principal_name
from deploy.kafka.broker import KafkaBroker, free_port
from deploy.kafka.secure import BrokerSecurity
from deploy.local.stack import REPO_ROOT, SERVICES, ServiceProcess, start_service, wait_ready
from shared.events import TOPIC_CLASSIFIED, TOPIC_DECIDED, TOPIC_REVIEWED, TOPIC_SCREENED, TOPIC_SUBMITTED
from shared.kafka_security import KafkaClientSettings, client_options
from tests.auth_support import bearer
from tests.faults.traffic import SCREENING_SOURCES
from tests.integration.kafka_helpers import (
    create_prefixed_topics,
    publish,
    read_topic,
    unique_prefix,
    wait_for,
)
from tests.integration.test_pipeline_e2e import line, make_order

pytestmark = pytest.mark.integration


@dataclass
class SecuredBroker:
    broker: KafkaBroker
    security: BrokerSecurity
    prefix: str

    def as_user(self, service: str, *, password: str | None = None) -> KafkaClientSettings:
        return self.security.client(self.broker.bootstrap_servers, principal_name(service), password=password)

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecuredBroker]:
    root = tmp_path_factory.mktemp("kafka-secure")
    security = BrokerSecurity.create(root / "tls")
    broker = KafkaBroker.start(data_dir=root / "data", log_file=root / "kafka.log", security=security)
    try:
        prefix = unique_prefix()
        await create_prefixed_topics(broker.client(), prefix)
        await grant(broker.client(), pipeline_acls(topic_prefix=prefix))
        yield SecuredBroker(broker=broker, security=security, prefix=prefix)
    finally:
        broker.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def secured_pipeline(
    secured: SecuredBroker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, ServiceProcess]]:
    tmp = tmp_path_factory.mktemp("secure-e2e")
    common = {
        "EXPORTWATCH_TOPIC_PREFIX": secured.prefix,
        "EXPORTWATCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'records.db'}",
        "EXPORTWATCH_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}",
        "EXPORTWATCH_CATALOG_SEED_CSV": str(REPO_ROOT / "samples" / "catalog.csv"),
        "EXPORTWATCH_RISK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'risk.db'}",
        "EXPORTWATCH_PART746_CACHE_DIR": str(tmp / "part746"),
        # What is tested is the broker's security, not the lists: the CSL alone, as in the fault
        # suite (tests/faults/traffic.py), 26k entries to index instead of 46k; the order below is
        # to a party on no list.
        "EXPORTWATCH_SCREENING_SOURCES": SCREENING_SOURCES,
    }
    services = {
        name: start_service(
            name,
            port=free_port(),
            env={
                **common,
                **secured.security.client_environment(secured.broker.bootstrap_servers, principal_name(name)),
            },
            log_dir=tmp / "logs",
        )
        for name in SERVICES
    }
    try:
        wait_ready(list(services.values()), timeout=180)
        yield services
    finally:
        exit_codes = {name: service.stop() for name, service in services.items()}
        print("\n".join(f"--- {s.name} log tail ---\n{s.log_tail(15)}" for s in services.values()))
    assert exit_codes == dict.fromkeys(SERVICES, -signal.SIGTERM)


async def test_an_order_is_decided_and_recorded_over_tls_and_scram(
    secured: SecuredBroker, secured_pipeline: dict[str, ServiceProcess]
) -> None:
    order = make_order(
        f"SEC-{uuid.uuid4().hex[:8]}",
        destination="CN",
        buyer="Hangzhou Rongda Information Systems Co., Ltd.",
        buyer_country="CN",
        lines=[line("HSM-9000", "Network hardware security module", eccn="5A002.a")],
    )
    # The ERP's stand-in is the admin principal: no service may write orders.submitted.v1 but records.
    await publish(
        secured.broker.client(),
        secured.topic(TOPIC_SUBMITTED),
        [(order["order_id"], json.dumps(order).encode())],
    )
    async with httpx.AsyncClient(
        base_url=secured_pipeline["records"].url, timeout=10, headers=bearer()
    ) as client:

        async def decided() -> dict[str, Any] | None:
            response = await client.get(f"/orders/{order['order_id']}")
            body: dict[str, Any] = response.json()
            return body if response.status_code == 200 and body["decision"] is not None else None

        result = await wait_for(decided, timeout=120, what="the order decided over TLS + SCRAM")
        assert result["decision"]["decision"] == "LICENSE_REQUIRED", result["decision"]

        async def complete_trail() -> dict[str, Any] | None:
            trail: dict[str, Any] = (await client.get(f"/orders/{order['order_id']}/trail")).json()
            return trail if len(trail["steps"]) >= 4 else None

        # records reads the four topics independently: the steps arrive in any order.
        trail = await wait_for(complete_trail, timeout=30, what="four trail steps")
    assert sorted(s["stage"] for s in trail["steps"]) == ["classified", "decided", "screened", "submitted"]
    assert trail["chain_valid"] is True
    for name, service in secured_pipeline.items():  # each stage logged in as its own principal
        assert service.process.poll() is None, name


async def test_a_wrong_password_is_refused(secured: SecuredBroker, caplog: pytest.LogCaptureFixture) -> None:
    producer = AIOKafkaProducer(**client_options(secured.as_user("risk", password="not-the-password")))
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        try:
            await producer.start()
        finally:
            await producer.stop()
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text
    # The same user with its real password gets in: the refusal was the password's.
    producer = AIOKafkaProducer(**client_options(secured.as_user("risk")))
    await producer.start()
    await producer.stop()


async def test_a_plaintext_client_is_not_served(secured: SecuredBroker) -> None:
    plain = KafkaClientSettings(
        kafka_bootstrap_servers=secured.broker.bootstrap_servers, kafka_security_protocol="PLAINTEXT"
    )
    producer = AIOKafkaProducer(**client_options(plain), request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        try:
            await producer.start()
        finally:
            await producer.stop()


async def _writes_only(kafka: KafkaClientSettings, *, allowed: str, refused: str) -> None:
    """`kafka`'s principal can publish to `allowed` and is refused on `refused`."""
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(allowed, b"{}", key=b"SEC-ACL")
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(refused, b'{"forged": true}', key=b"SEC-ACL")
    finally:
        await producer.stop()


async def test_risk_may_publish_decisions_but_not_reviews(secured: SecuredBroker) -> None:
    reviewed = secured.topic(TOPIC_REVIEWED)
    await _writes_only(secured.as_user("risk"), allowed=secured.topic(TOPIC_DECIDED), refused=reviewed)
    assert await read_topic(secured.broker.client(), reviewed, expect=1, timeout=3) == []


async def test_a_service_may_not_read_other_topics_or_use_another_group(secured: SecuredBroker) -> None:
    risk = client_options(secured.as_user("risk"))
    outsider = AIOKafkaConsumer(secured.topic(TOPIC_SUBMITTED), **risk, group_id="risk")
    with pytest.raises(TopicAuthorizationFailedError):
        try:
            await outsider.start()
            await outsider.getmany(timeout_ms=5000)
        finally:
            await outsider.stop()
    # Its own input topic, but in records' consumer group: refused at the group coordinator.
    impostor = AIOKafkaConsumer(secured.topic(TOPIC_SCREENED), **risk, group_id="records")
    with pytest.raises(GroupAuthorizationFailedError):
        try:
            await impostor.start()
            await impostor.getmany(timeout_ms=5000)
        finally:
            await impostor.stop()


async def test_a_client_certificate_authenticates_as_its_common_name(secured: SecuredBroker) -> None:
    classifier = secured.security.certificate_client(
        secured.broker.ssl_bootstrap_servers, principal_name("classifier")
    )
    await _writes_only(
        classifier, allowed=secured.topic(TOPIC_CLASSIFIED), refused=secured.topic(TOPIC_DECIDED)
    )
