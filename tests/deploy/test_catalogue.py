"""The event catalogue: generated from the code, valid against JSON Schema and AsyncAPI 3.0, and true
to the events the services really exchange."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from deploy import catalogue, generated
from deploy.validation import schemas
from services.classifier.catalog import CatalogProduct
from services.classifier.feed import entry_of
from shared.events import (
    ALL_TOPICS,
    TOPIC_ALERTS,
    TOPIC_ANCHORS,
    TOPIC_CATALOG,
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_LISTS_UPDATED,
    TOPIC_RESCREEN,
    TOPIC_REVIEW_STEPS,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
    TOPIC_SHIPPED,
    TOPIC_SUBMITTED,
    ListsUpdated,
    ReviewActor,
    ReviewApproval,
    ReviewStep,
    ScreeningClearance,
    envelope_dump,
)
from shared.topology import WIRING
from tests.records_support import (
    alert,
    anchor,
    classified,
    dead_letter,
    decided,
    list_change,
    rescreen_request,
    reviewed,
    screened,
    shipped,
    submitted,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = json.loads((ROOT / "samples" / "orders.json").read_text("utf-8"))


def _schema(topic: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((catalogue.SCHEMA_DIR / f"{topic}.json").read_text("utf-8"))
    return loaded


def _validator(topic: str) -> Draft7Validator:
    return Draft7Validator(_schema(topic), format_checker=Draft7Validator.FORMAT_CHECKER)


def _real_events() -> dict[str, list[dict[str, Any]]]:
    order = submitted("SO-2026-000901")
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    list_update = ListsUpdated(
        event_id="3f1e0a59-52a1-5b7d-8d6b-8f6f4a0c1d22",
        source="csl",
        list_id="EL",
        list_name="Entity List",
        old_version="a" * 16,
        new_version="b" * 16,
        entries=10,
        added=["EL-1"],
        updated_at=now,
    )
    clearance = ScreeningClearance(
        event_id="9d2b7c1e-7f0a-5a8e-b2d4-1c3e5f7a9b0d",
        party_name="Acme Trading LLC",
        normalised_name="acme trading",
        list_id="SDN",
        entry_id="12345",
        entry_version="c" * 16,
        reviewer="j.doe",
        reason="different country and address",
        cleared_at=now,
    )
    decision = decided(order, "BLOCK")
    approver = ReviewActor(key_id="0123456789abcdef", name="a.compliance", role="approver")
    approvals = [ReviewApproval(approver=approver, approved_at=now)]
    step = ReviewStep(
        event_id="5c1a2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        order_id=order["order_id"],
        submitted_event_id=order["event_id"],
        decided_event_id=decision["event_id"],
        review_request_id="7e6d5c4b-3a29-4817-8695-a4b3c2d1e0f9",
        action="requested",
        actor=approver,
        occurred_at=now,
        original_decision="BLOCK",
        requested_decision="RELEASE",
        reason_codes=["POTENTIAL_MATCH"],
        comment="another company",
        approvals=approvals,
        approvals_required=2,
    )
    four_eyes = {
        **reviewed(decision),
        "review_request_id": step.review_request_id,
        "reason_codes": ["POTENTIAL_MATCH"],
        "requested_by": approver.model_dump(mode="json"),
        "approvals": [a.model_dump(mode="json") for a in approvals],
        "approvals_required": 2,
    }
    change = list_change()
    return {
        TOPIC_SHIPPED: [shipped(order)],
        TOPIC_RESCREEN: [
            rescreen_request(decision, change),
            rescreen_request(decision, change, shipped_at=now),
        ],
        TOPIC_ALERTS: [alert(decision, change)],
        TOPIC_ANCHORS: [anchor()],
        TOPIC_REVIEW_STEPS: [json.loads(envelope_dump(step))],
        TOPIC_SUBMITTED: [*SAMPLES, order],
        TOPIC_CLASSIFIED: [classified(order)],
        TOPIC_SCREENED: [screened(order)],
        TOPIC_DECIDED: [decided(order, code) for code in ("RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK")],
        TOPIC_REVIEWED: [reviewed(decided(order, "HOLD")), four_eyes],
        TOPIC_DEADLETTER: [dead_letter(b"{not json")],
        TOPIC_LISTS_UPDATED: [json.loads(envelope_dump(list_update))],
        TOPIC_CLEARANCES: [json.loads(envelope_dump(clearance))],
        # As the classifier publishes them: a catalog version with and without its documents.
        TOPIC_CATALOG: [
            json.loads(envelope_dump(entry_of(product)))
            for product in (
                CatalogProduct(
                    "NV-LASER-01",
                    2,
                    "6A005.a.1",
                    "jane",
                    datetime(2026, 1, 5, tzinfo=UTC),
                    "CCATS",
                    ("G123",),
                ),
                CatalogProduct("NV-CABLE", 1, "EAR99", "jane", datetime(2026, 1, 5, tzinfo=UTC), None),
            )
        ],
    }


def test_committed_catalogue_matches_the_event_models_and_topology() -> None:
    assert catalogue.drift() == [], "run `make generate` and commit docs/schemas and docs/asyncapi.yaml"


def test_check_fails_naming_an_edited_and_a_left_over_file(tmp_path: Path) -> None:
    files = {
        tmp_path / "schemas" / f"{TOPIC_DECIDED}.json": catalogue.render()[
            catalogue.SCHEMA_DIR / f"{TOPIC_DECIDED}.json"
        ]
    }

    def owned() -> list[Path]:
        return sorted((tmp_path / "schemas").glob("*.json"))

    def check() -> int:
        return generated.main(["check"], prog="p", what="w", render=lambda: files, owned=owned, root=tmp_path)

    assert check() == 1  # missing
    generated.write(files, owned(), tmp_path)
    assert check() == 0
    [path] = files
    path.write_text(path.read_text("utf-8").replace('"RELEASE"', '"SHIP"'), encoding="utf-8")
    (tmp_path / "schemas" / "orders.retired.v0.json").write_text("{}", encoding="utf-8")
    assert check() == 1
    assert generated.drift(files, owned(), tmp_path) == [
        f"schemas/{TOPIC_DECIDED}.json",
        "schemas/orders.retired.v0.json",
    ]
    generated.write(files, owned(), tmp_path)
    assert owned() == [path] and check() == 0


def test_every_topic_has_a_schema_that_is_valid_json_schema_draft_07() -> None:
    assert {p.stem for p in catalogue.SCHEMA_DIR.glob("*.json")} == set(ALL_TOPICS)
    for topic in ALL_TOPICS:
        schema = _schema(topic)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("topic", ALL_TOPICS)
def test_schema_accepts_the_events_the_services_exchange(topic: str) -> None:
    validator = _validator(topic)
    for event in _real_events()[topic]:
        assert [e.message for e in validator.iter_errors(event)] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o.pop("order_id"), "order_id"),
        (lambda o: o.update(destination_country="Germany"), "destination_country"),
        (lambda o: o["lines"][0].update(unit_price="12,50"), "unit_price"),
        (lambda o: o["lines"][0].update(currency="usd"), "currency"),
        (lambda o: o.update(occurred_at="2026-11-30T12:00:00"), "occurred_at"),
        (lambda o: o["parties"][0].update(role="shipper"), "role"),
        (lambda o: o.update(parties=[]), "parties"),
        (lambda o: o.update(schema="order.submitted.v2"), "schema"),
    ],
)
def test_submitted_schema_refuses_what_the_contract_refuses(change: Any, field: str) -> None:
    order = copy.deepcopy(SAMPLES[0])
    change(order)
    errors = list(_validator(TOPIC_SUBMITTED).iter_errors(order))
    assert errors, f"the schema accepted an order with a bad {field}"
    assert any(field in (".".join(str(p) for p in e.absolute_path) + " " + e.message) for e in errors)


def test_submitted_schema_states_the_contract_size_limits() -> None:
    schema = _schema(TOPIC_SUBMITTED)
    assert schema["properties"]["parties"]["maxItems"] == 50
    assert schema["properties"]["lines"]["maxItems"] == 500
    assert schema["properties"]["order_id"]["maxLength"] == 128
    assert schema["definitions"]["OrderLine"]["properties"]["description"]["maxLength"] == 4000


def test_asyncapi_document_is_valid_against_the_official_asyncapi_3_schema() -> None:
    document = yaml.safe_load(catalogue.ASYNCAPI_FILE.read_text("utf-8"))
    assert document["asyncapi"] == "3.0.0"
    assert schemas.asyncapi_errors(document) == []


def test_asyncapi_validation_reports_a_broken_document() -> None:
    document = yaml.safe_load(catalogue.ASYNCAPI_FILE.read_text("utf-8"))
    document["channels"][TOPIC_SUBMITTED]["messages"] = "OrderSubmitted"
    del document["info"]["version"]
    errors = schemas.asyncapi_errors(document)
    assert any("channels" in e for e in errors) and any("version" in e for e in errors)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        target = catalogue.ASYNCAPI_FILE.parent / ref
        assert target.is_file(), f"{ref} does not exist"
        return json.loads(target.read_text("utf-8"))
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_in_the_asyncapi_document_resolves() -> None:
    document = yaml.safe_load(catalogue.ASYNCAPI_FILE.read_text("utf-8"))
    refs = _refs(document)
    assert len(refs) > len(ALL_TOPICS) * 3
    for ref in refs:
        _resolve(document, ref)


def test_asyncapi_operations_are_what_the_topology_says_each_service_does() -> None:
    document = yaml.safe_load(catalogue.ASYNCAPI_FILE.read_text("utf-8"))
    found = {
        (op["tags"][0]["name"], op["action"], _resolve(document, op["channel"]["$ref"])["address"])
        for op in document["operations"].values()
    }
    expected = {(w.service, "receive", t) for w in WIRING.values() for t in w.reads} | {
        (w.service, "send", t) for w in WIRING.values() for t in w.produces
    }
    assert found == expected
    groups = {
        op["tags"][0]["name"]: op["bindings"]["kafka"]["groupId"]["enum"]
        for op in document["operations"].values()
        if "bindings" in op
    }
    assert groups == {w.service: [w.group] for w in WIRING.values()}


def test_compacted_clearances_channel_says_so_and_tombstones_are_documented() -> None:
    document = yaml.safe_load(catalogue.ASYNCAPI_FILE.read_text("utf-8"))
    binding = document["channels"][TOPIC_CLEARANCES]["bindings"]["kafka"]
    assert binding["topicConfiguration"] == {"cleanup.policy": ["compact"]}
    assert "null value revokes" in document["components"]["messages"]["ScreeningClearance"]["description"]


def test_an_undescribed_contract_validator_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(catalogue._CONTRACT_RULES, "_currency")
    with pytest.raises(ValueError, match="'_currency'"):
        catalogue.event_schema(TOPIC_SUBMITTED)


def test_asyncapi_cluster_server_is_the_bootstrap_the_kubernetes_settings_give() -> None:
    document = yaml.safe_load(catalogue.ASYNCAPI_FILE.read_text("utf-8"))
    settings_env = (ROOT / "deploy" / "k8s" / "base" / "settings.env").read_text("utf-8")
    bootstrap = dict(line.split("=", 1) for line in settings_env.splitlines() if "=" in line)
    server = document["servers"]["cluster"]
    assert server["variables"]["bootstrap"]["default"] == bootstrap["EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS"]
    assert server["protocol"] == "kafka-secure"
