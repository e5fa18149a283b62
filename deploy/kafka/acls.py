"""Each service's Kafka principal and what it may do, derived from `shared.topology.WIRING`.

A service authenticates as `User:exportwatch-<service>` and may read the topics it consumes or
follows, join its own consumer group, and write the topics it produces; nothing else (the broker
runs the StandardAuthorizer with `allow.everyone.if.no.acl.found=false`). So a compromised or
misconfigured risk service cannot forge a reviewer's `orders.reviewed.v1`, and only records may
replay a dead letter onto a pipeline topic.

`service_acls` is pure data (also what a Strimzi `KafkaUser` would list); `grant` writes the
bindings to a running broker through the Kafka protocol's CreateAcls request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.kafka_security import KafkaClientSettings, client_options
from shared.topology import WIRING, ServiceWiring

PRINCIPAL_PREFIX = "exportwatch-"

# Kafka protocol codes (org.apache.kafka.common.resource / acl): ResourceType, PatternType,
# AclOperation and AclPermissionType as CreateAcls v1 carries them.
RESOURCE_TYPES = {"TOPIC": 2, "GROUP": 3}
PATTERN_LITERAL = 3
OPERATIONS = {"READ": 3, "WRITE": 4, "DESCRIBE": 8}
PERMISSION_ALLOW = 3


def principal_name(service: str) -> str:
    """The SCRAM user name (and certificate common name) of a service."""
    return f"{PRINCIPAL_PREFIX}{service}"


@dataclass(frozen=True, order=True)
class AclRule:
    """Allow `principal` the `operation` on the literal resource `resource_type`:`name`."""

    principal: str
    resource_type: str
    name: str
    operation: str

    def __str__(self) -> str:
        return f"{self.principal} {self.operation} {self.resource_type}:{self.name}"


def service_acls(wiring: ServiceWiring, *, topic_prefix: str = "") -> list[AclRule]:
    """READ on what the service consumes or follows (READ implies DESCRIBE: metadata, offsets),
    READ on its consumer group (join, commit, fetch offsets), WRITE on what it produces (WRITE on a
    topic also lets its idempotent producer obtain a producer id, KIP-679)."""
    principal = f"User:{principal_name(wiring.service)}"
    rules = {AclRule(principal, "TOPIC", f"{topic_prefix}{topic}", "READ") for topic in wiring.reads}
    rules |= {AclRule(principal, "TOPIC", f"{topic_prefix}{topic}", "WRITE") for topic in wiring.produces}
    rules.add(AclRule(principal, "GROUP", wiring.group, "READ"))
    return sorted(rules)


def pipeline_acls(*, topic_prefix: str = "", services: Iterable[str] | None = None) -> list[AclRule]:
    """The rules of every service of the wiring table (or of `services`)."""
    names = list(services) if services is not None else list(WIRING)
    return [rule for name in names for rule in service_acls(WIRING[name], topic_prefix=topic_prefix)]


class AclError(RuntimeError):
    """The broker refused to create an ACL (the admin is not a super user, no authorizer, ...)."""


async def grant(admin: KafkaClientSettings, rules: Iterable[AclRule], *, timeout: float = 30.0) -> int:
    """Create `rules` on the broker as `admin` (a super user). Creating an existing binding is a
    no-op on the broker, so this can run on every start. Returns how many rules were sent."""
    # aiokafka has no public ACL API; its protocol module has CreateAcls (v0/v1), sent here with
    # the admin client's own connection (version negotiated per broker: Kafka 4 accepts v1+).
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest

    pending = list(rules)
    client = AIOKafkaAdminClient(
        **client_options(admin), client_id="exportwatch-acls", request_timeout_ms=int(timeout * 1000)
    )
    await client.start()
    try:
        for rule in pending:
            request = CreateAclsRequest(
                RESOURCE_TYPES[rule.resource_type],
                rule.name,
                PATTERN_LITERAL,
                rule.principal,
                "*",
                OPERATIONS[rule.operation],
                PERMISSION_ALLOW,
            )
            response: Any = await client._send_request(request)
            for error_code, error_message in response.creation_responses:
                if error_code != 0:
                    raise AclError(f"creating ACL {rule} failed: error {error_code} {error_message}")
    finally:
        await client.close()
    return len(pending)
