"""Each service's ACLs follow the wiring table; the secured broker's configuration says so."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy.kafka.acls import AclRule, pipeline_acls, principal_name, service_acls
from deploy.kafka.broker import server_properties
from deploy.kafka.secure import ADMIN_USER, BrokerSecurity
from shared.events import ALL_TOPICS, TOPIC_DECIDED, TOPIC_REVIEWED, TOPIC_SCREENED
from shared.topology import WIRING


def _allowed(rules: list[AclRule], operation: str) -> set[str]:
    return {r.name for r in rules if r.resource_type == "TOPIC" and r.operation == operation}


def test_risk_reads_screened_writes_decided_and_may_not_write_reviews() -> None:
    rules = service_acls(WIRING["risk"], topic_prefix="p.")
    assert {r.principal for r in rules} == {"User:exportwatch-risk"}
    assert _allowed(rules, "READ") == {f"p.{TOPIC_SCREENED}"}
    assert f"p.{TOPIC_DECIDED}" in _allowed(rules, "WRITE")
    assert f"p.{TOPIC_REVIEWED}" not in _allowed(rules, "WRITE") | _allowed(rules, "READ")
    # The group is named as the services name it (unprefixed): `group_id or service`.
    assert [r.name for r in rules if r.resource_type == "GROUP"] == ["risk"]


def test_every_rule_comes_from_the_wiring_table_and_nothing_more() -> None:
    rules = pipeline_acls()
    for wiring in WIRING.values():
        mine = [r for r in rules if r.principal == f"User:{principal_name(wiring.service)}"]
        assert _allowed(mine, "READ") == set(wiring.reads)
        assert _allowed(mine, "WRITE") == set(wiring.produces)
        assert {(r.resource_type, r.name, r.operation) for r in mine if r.resource_type == "GROUP"} == {
            ("GROUP", wiring.group, "READ")
        }
    assert {r.operation for r in rules} == {"READ", "WRITE"}  # no ALL, no cluster rights
    assert _allowed(rules, "READ") == set(ALL_TOPICS)
    # Only records writes reviews.
    assert {r.principal for r in rules if r.name == TOPIC_REVIEWED and r.operation == "WRITE"} == {
        "User:exportwatch-records"
    }


def test_broker_security_material_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = BrokerSecurity.create(tmp_path / "tls")
    assert set(first.passwords) == {ADMIN_USER, *(principal_name(s) for s in WIRING)}
    again = BrokerSecurity.create(tmp_path / "tls")
    assert again.passwords == first.passwords  # the users formatted into the broker stay valid
    for name in ("credentials.json", "ca-key.pem", "broker.pem"):
        assert stat.S_IMODE((tmp_path / "tls" / name).stat().st_mode) == 0o600, name
    args = first.format_args()
    assert args.count("--add-scram") == 2 * len(first.passwords)  # SCRAM-SHA-512 and -256 each
    assert f"SCRAM-SHA-512=[name=exportwatch-risk,password={first.passwords['exportwatch-risk']}]" in args


def test_a_secured_broker_speaks_only_tls_and_enforces_acls(tmp_path: Path) -> None:
    security = BrokerSecurity.create(tmp_path / "tls")
    text = server_properties(
        port=1, controller_port=2, log_dir=tmp_path / "kraft", security=security, ssl_port=3
    )
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == "SASL_SSL://127.0.0.1:1,SSL://127.0.0.1:3,CONTROLLER://127.0.0.1:2"
    assert "PLAINTEXT" not in props["listener.security.protocol.map"]
    assert props["listener.name.ssl.ssl.client.auth"] == "required"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:exportwatch-admin;User:exportwatch-broker"
    for password in security.passwords.values():  # users live in the metadata log, not the config
        assert password not in text


def test_a_secured_broker_needs_its_mutual_tls_port(tmp_path: Path) -> None:
    security = BrokerSecurity.create(tmp_path / "tls")
    with pytest.raises(ValueError, match="ssl_port"):
        server_properties(port=1, controller_port=2, log_dir=tmp_path, security=security)
