"""The event catalogue, generated from the event models: `python -m deploy.catalogue write | check`.

For every topic a JSON Schema (draft-07, the dialect AsyncAPI schemas extend) under `docs/schemas/`,
and one AsyncAPI 3.0 document for the whole topology (`docs/asyncapi.yaml`): channels are the
topics, messages their schemas, and each service's operations come from `shared/topology.py`
(what it consumes or follows is a `receive`, what it produces a `send`). `check` exits 1 naming
every file that no longer matches the code (`make generate` rewrites them; a test runs `check`).

The schemas are the models' validation schemas by alias (`schema`, not `schema_`): what a consumer
built on `shared/events.py` accepts. Rules pydantic cannot express from an `AfterValidator` (ISO
codes, decimal strings, time zones) are stated by `_CONTRACT_RULES`, keyed by the validator's name;
an unknown validator stops the generator, so a new rule cannot reach the catalogue undescribed.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from deploy import generated
from shared import catalog_events, events, lifecycle_events
from shared.events import (
    TOPIC_ALERTS,
    TOPIC_ANCHORS,
    TOPIC_CATALOG,
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_CONFIGS,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_LISTS_UPDATED,
    TOPIC_RESCREEN,
    TOPIC_REVIEW_STEPS,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
    TOPIC_SHIPPED,
    TOPIC_SUBMITTED,
)
from shared.settings import Settings
from shared.topology import ERP_TOPICS, REPLAYABLE_TOPICS, WIRING

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCHEMA_DIR = DOCS / "schemas"
ASYNCAPI_FILE = DOCS / "asyncapi.yaml"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


@dataclass(frozen=True)
class TopicEvent:
    """What travels on one topic: its model, the message's name, what the Kafka key is, and who
    publishes it in words an integrator reads (the services come from the topology)."""

    model: type[BaseModel]
    message: str
    title: str
    key: str
    description: str
    tombstones: str | None = None


TOPIC_EVENTS: dict[str, TopicEvent] = {
    TOPIC_SUBMITTED: TopicEvent(
        events.SubmittedOrder,
        "OrderSubmitted",
        "An export order, as the ERP submits it",
        "order_id",
        "The input contract. Published by the ERP (and again by records when on-call replays a dead "
        "letter). A later event with the same order_id is an amendment: the newest occurred_at is the "
        "order's current state. Unknown fields are kept and ignored; additions to this schema are "
        "additive only.",
    ),
    TOPIC_CLASSIFIED: TopicEvent(
        events.ClassifiedOrder,
        "OrderClassified",
        "The order with each line's ECCN, reasons for control and Country Chart columns",
        "order_id",
        "The classifier's envelope: the submitted order unchanged under `order`, and `classification` "
        "(15 CFR 774 Supp. 1: the ECCN in force per line and where it came from: erp, catalog, none).",
    ),
    TOPIC_SCREENED: TopicEvent(
        events.ScreenedOrder,
        "OrderScreened",
        "The classified order with every party screened against the restricted-party lists",
        "order_id",
        "The screening envelope: `screening` names every list version screened and, per party, the "
        "matches above the review threshold with their evidence and the list's effect.",
    ),
    TOPIC_DECIDED: TopicEvent(
        events.DecidedOrder,
        "OrderDecided",
        "The order's decision: RELEASE, LICENSE_REQUIRED, HOLD or BLOCK, with its reasons",
        "order_id",
        "What the ERP acts on. `decision.decision` is the most severe of the reasons (BLOCK > HOLD > "
        "LICENSE_REQUIRED > RELEASE); every reason names its rule, regulation, list entry or data "
        "version; `policy_version` and `data_versions` say what it was decided under.",
    ),
    TOPIC_REVIEWED: TopicEvent(
        events.ReviewedOrder,
        "OrderReviewed",
        "A compliance officer's decision on a held or blocked order",
        "order_id",
        "Published by records with a review's final outcome (POST /orders/{order_id}/review): raising "
        "severity takes effect with one reviewer, lowering it with two approvals by two different "
        "approver keys (`approvals`). It names the decided event it reviewed; a review of an order "
        "amended since applies to that version only. Deduplicate by event_id: records' outbox "
        "publishes at least once.",
    ),
    TOPIC_REVIEW_STEPS: TopicEvent(
        events.ReviewStep,
        "ReviewStep",
        "One step of a review: requested, approved, rejected, information requested, superseded, a "
        "match cleared",
        "order_id",
        "Published by records from its outbox for every step of the four-eyes review, with who (the "
        "API key's name, role and id), when and why; records keeps each as a trail step of the order. "
        "Not an outcome: the ERP acts on orders.reviewed.v1 only.",
    ),
    TOPIC_DEADLETTER: TopicEvent(
        events.DeadLetter,
        "DeadLetter",
        "A message a service could not process, with its bytes and origin",
        "the original message's key (its event_id where the message had none)",
        "Every service publishes here instead of dropping a message it cannot decode or validate: the "
        "raw bytes (base64), the topic, partition and offset they came from, the service, and an error "
        "that names the field and the value.",
    ),
    TOPIC_LISTS_UPDATED: TopicEvent(
        events.ListsUpdated,
        "ListUpdated",
        "A restricted-party list changed version",
        "list_id",
        "Published by screening when a list update is verified and swapped in: the old and new "
        "version (content hashes) and the entry ids added, changed and removed.",
    ),
    TOPIC_CLEARANCES: TopicEvent(
        events.ScreeningClearance,
        "ScreeningClearance",
        "A reviewer's 'not a match' for one party name and one list entry version",
        "list_id:entry_id:normalised_name",
        "Compacted: the latest clearance per key is kept forever, and every screening instance reads "
        "the topic in full. A clearance holds for its entry_version only.",
        tombstones="A record with this key and a null value revokes the clearance.",
    ),
    TOPIC_SHIPPED: TopicEvent(
        lifecycle_events.ShippedOrder,
        "OrderShipped",
        "The ERP shipped an order",
        "order_id",
        "Published by the ERP when the goods leave. records marks the order shipped (a trail step): "
        "an order is open, and re-screened when a list changes, while decided and not shipped; a "
        "list change that makes a party of a shipped order match raises a post-shipment alert "
        "instead. event_id is the ERP's own UUID for the shipment: a resent event is kept once.",
    ),
    TOPIC_RESCREEN: TopicEvent(
        lifecycle_events.RescreenRequest,
        "RescreenRequested",
        "Screen an open order again after a list change",
        "order_id",
        "Published by records for every open order when lists.updated.v1 says entries were added or "
        "changed: the classified envelope as records stored it, the decision's party screening and "
        "the change. Screening screens the parties against the added and changed entries only and, "
        "when something new matches, publishes the whole screening again (amended) on "
        "orders.screened.v1, or an alert on orders.alerts.v1 for a shipped order.",
    ),
    TOPIC_ALERTS: TopicEvent(
        lifecycle_events.OrderAlert,
        "OrderAlert",
        "A post-shipment alert: a list change matches a party of a shipped order",
        "order_id",
        "Published by screening instead of an amended screening when the order has already shipped: "
        "the new matches, the list change and when the order shipped. records keeps it as a trail "
        "step and lists it in GET /alerts until acknowledged.",
    ),
    TOPIC_CATALOG: TopicEvent(
        catalog_events.CatalogEntry,
        "CatalogProduct",
        "A SKU's current classification in the product catalog",
        "sku",
        "Published by the classifier instance that stored a new version of the SKU in the catalog "
        "database (PUT and DELETE /products/{sku}, POST /products/import, the seed at start-up). Compacted: the "
        "newest version per SKU is kept forever, and every classifier instance reads the topic in "
        "full, so a product classified through one instance is used by all of them. A SKU leaves the "
        "catalog by a version with withdrawn: true (DELETE /products/{sku}; every version is kept), "
        "never by a tombstone: a null value is refused as a dead letter.",
    ),
    TOPIC_ANCHORS: TopicEvent(
        lifecycle_events.ChainAnchor,
        "ChainAnchor",
        "The head of records' store-wide audit chain",
        "chain_id",
        "Published by records at an interval and on shutdown: the position and hash of the chain's "
        "head. Kept forever (retention -1, not compacted): GET /audit/verify checks the stored chain "
        "against every anchor, so a rewritten or truncated chain is found.",
    ),
}


# --- JSON Schema -----------------------------------------------------------------------------------

# Rules the contract's AfterValidators enforce, as JSON Schema can state them (keyed by the
# validator function's name). A description is appended; other keywords are added.
_CONTRACT_RULES: dict[str, dict[str, Any]] = {
    "_country": {
        "pattern": "^[A-Z]{2}$",
        "description": "ISO 3166-1 alpha-2 country code (XK for Kosovo), e.g. DE",
    },
    "_currency": {"pattern": "^[A-Z]{3}$", "description": "ISO 4217 currency code, e.g. USD"},
    "_decimal_string": {
        "pattern": events._DECIMAL.pattern,
        "description": "non-negative decimal string (up to 15 digits, 6 decimals), e.g. '1250.00'",
    },
    "_aware": {
        "pattern": "(Z|z|[+-]\\d{2}:\\d{2})$",
        "description": "RFC 3339 date-time with its time zone, e.g. 2026-11-30T12:00:00Z",
    },
    "_text": {"minLength": 1, "description": "not blank; no control characters; kept NFC-normalised"},
    "_eccn_trimmed": {
        "description": "the ERP's ECCN as its product master states it; whether it is on the CCL is "
        "the classifier's finding (INVALID_ECCN), not a contract violation"
    },
    "_roles_and_lines": {
        "description": "parties include a buyer or an ultimate_consignee; line_no is unique per order"
    },
    "_one_order": {"description": "order_id equals order.order_id: one envelope is about one order"},
    "_subdivision": {
        "pattern": "^[A-Z]{2}-[A-Z0-9]{1,3}$",
        "description": "ISO 3166-2 subdivision code, e.g. UA-43 (Crimea)",
    },
    "_subdivision_in_country": {
        "description": "subdivision, when given, is a subdivision of the party's country (its prefix)"
    },
}


class _ContractSchema(GenerateJsonSchema):
    def function_after_schema(self, schema: core_schema.AfterValidatorFunctionSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        function: Callable[..., Any] = schema["function"]["function"]
        name = getattr(function, "__name__", repr(function))
        if name not in _CONTRACT_RULES:
            raise ValueError(
                f"validator {name!r} of the event contract is not described in deploy/catalogue.py "
                "_CONTRACT_RULES; say there what it enforces so the catalogue states it"
            )
        rule = dict(_CONTRACT_RULES[name])
        target = inner
        if "$ref" in inner:  # a model-level rule: describe the model, not the reference
            target = self.definitions[inner["$ref"].split("/")[-1]]
        description = rule.pop("description")
        target["description"] = "; ".join(d for d in (target.get("description"), description) if d)
        target.update(rule)
        return inner


def event_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema (draft-07) of the events on `topic`."""
    event = TOPIC_EVENTS[topic]
    raw = event.model.model_json_schema(
        by_alias=True, ref_template="#/definitions/{model}", schema_generator=_ContractSchema
    )
    definitions = raw.pop("$defs", {})
    # The class docstring is the code's own note; the catalogue says what the event is for.
    raw.pop("description", None)
    rules = _model_rules(event.model)
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{topic}.json",
        "title": event.message,
        "description": " ".join([event.title + ".", event.description, *rules]),
        **{k: v for k, v in raw.items() if k != "title"},
    }
    # An event carried inside another (the submitted order in every envelope) is described by the
    # catalogue too, not by its class docstring.
    for inner_topic, inner in TOPIC_EVENTS.items():
        if inner.model.__name__ in definitions:
            definitions[inner.model.__name__]["description"] = " ".join(
                [f"{inner.title}, as published on {inner_topic}.", *_model_rules(inner.model)]
            )
    if definitions:
        schema["definitions"] = definitions
    return schema


def _model_rules(model: type[BaseModel]) -> list[str]:
    decorators = model.__pydantic_decorators__.model_validators
    return [
        _CONTRACT_RULES[d.func.__name__]["description"].capitalize() + "."
        for d in decorators.values()
        if d.func.__name__ in _CONTRACT_RULES
    ]


# --- AsyncAPI --------------------------------------------------------------------------------------


def _project_version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return str(project["version"])


def _channel(topic: str) -> dict[str, Any]:
    event = TOPIC_EVENTS[topic]
    producers = [
        f"{w.service} (replays of dead letters)"
        if w.service == "records" and topic in REPLAYABLE_TOPICS
        else w.service
        for w in WIRING.values()
        if topic in w.produces
    ]
    readers = [w.service for w in WIRING.values() if topic in w.reads]
    if topic in ERP_TOPICS:
        producers.insert(0, "the ERP")
    who = f"Written by {', '.join(producers)}; read by {', '.join(readers)}."
    config: dict[str, Any] = {}
    topic_config = TOPIC_CONFIGS.get(topic, {})
    if topic_config.get("cleanup.policy"):
        config["cleanup.policy"] = topic_config["cleanup.policy"].split(",")
    for setting in ("retention.ms", "retention.bytes"):
        if setting in topic_config:
            config[setting] = int(topic_config[setting])
    binding: dict[str, Any] = {
        "topic": topic,
        "partitions": Settings.model_fields["topic_partitions"].default,
        "bindingVersion": KAFKA_BINDING_VERSION,
    }
    if config:
        binding["topicConfiguration"] = config
    return {
        "address": topic,
        "title": event.title,
        "description": " ".join(
            [event.description, who, "Deployments may prefix the name (EXPORTWATCH_TOPIC_PREFIX)."]
        ),
        "messages": {event.message: {"$ref": f"#/components/messages/{event.message}"}},
        "bindings": {"kafka": binding},
    }


def _message(topic: str) -> dict[str, Any]:
    event = TOPIC_EVENTS[topic]
    description = f"Kafka key: {event.key}. {event.description}"
    if event.tombstones:
        description += f" {event.tombstones}"
    message: dict[str, Any] = {
        "name": event.message,
        "title": event.title,
        "contentType": "application/json",
        "description": description,
        "payload": {"$ref": f"schemas/{topic}.json"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": event.key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if event.key == "order_id":
        message["correlationId"] = {
            "description": "all events of one order share its key and its order_id",
            "location": "$message.payload#/order_id",
        }
    return message


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for wiring in WIRING.values():
        for topic in wiring.reads:
            grouped = topic in wiring.consumes
            operation: dict[str, Any] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{topic}"},
                "summary": (
                    f"{wiring.service} consumes {topic} in consumer group {wiring.group!r}"
                    if grouped
                    else f"every {wiring.service} instance reads {topic} in full, without a group"
                ),
                "messages": [{"$ref": f"#/channels/{topic}/messages/{TOPIC_EVENTS[topic].message}"}],
                "tags": [{"name": wiring.service}],
            }
            if grouped:
                operation["bindings"] = {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [wiring.group]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                }
            operations[f"{wiring.service}.receive.{topic}"] = operation
        for topic in wiring.produces:
            operations[f"{wiring.service}.send.{topic}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{topic}"},
                "summary": f"{wiring.service} publishes {topic} (acks=all, idempotent producer)",
                "messages": [{"$ref": f"#/channels/{topic}/messages/{TOPIC_EVENTS[topic].message}"}],
                "tags": [{"name": wiring.service}],
            }
    return operations


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the whole topology."""
    missing = sorted(set(events.ALL_TOPICS) - set(TOPIC_EVENTS))
    if missing:
        raise ValueError(f"topics without a catalogue entry in deploy/catalogue.py TOPIC_EVENTS: {missing}")
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Exportwatch events",
            "version": _project_version(),
            "description": (
                "Export orders checked against export-control law over Kafka: the ERP publishes "
                "orders.submitted.v1; classifier, screening and risk each add their section and publish "
                "the whole envelope on their own topic; records keeps the trail and publishes reviews. "
                "Every event is JSON (UTF-8); order events are keyed by order_id so one order's events "
                "stay in order on one partition. Generated from shared/events.py and shared/topology.py "
                "by `python -m deploy.catalogue write`; see docs/integration.md."
            ),
            "tags": [{"name": w.service} for w in WIRING.values()],
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker `make run` starts (plaintext, no authentication).",
            },
            "cluster": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "description": "A production cluster: TLS with SCRAM-SHA-512, one principal per service "
                "(see docs/deployment.md).",
                "variables": {
                    "bootstrap": {
                        "default": "exportwatch-kafka-bootstrap:9093",
                        "description": "KAFKA_BOOTSTRAP_SERVERS",
                    }
                },
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            },
        },
        "channels": {topic: _channel(topic) for topic in events.ALL_TOPICS},
        "operations": _operations(),
        "components": {
            "messages": {TOPIC_EVENTS[t].message: _message(t) for t in events.ALL_TOPICS},
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": "A KafkaUser per service (exportwatch-<service>) with its topic ACLs.",
                }
            },
        },
    }


# --- files -----------------------------------------------------------------------------------------


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _yaml(data: dict[str, Any]) -> str:
    header = (
        "# Generated by `python -m deploy.catalogue write` from shared/events.py and shared/topology.py.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def render() -> dict[Path, str]:
    """Every catalogue file and its content, as the code says it should be."""
    files = {SCHEMA_DIR / f"{topic}.json": _json(event_schema(topic)) for topic in events.ALL_TOPICS}
    files[ASYNCAPI_FILE] = _yaml(asyncapi_document())
    return files


def owned() -> list[Path]:
    return sorted([*SCHEMA_DIR.glob("*.json"), *([ASYNCAPI_FILE] if ASYNCAPI_FILE.is_file() else [])])


def drift() -> list[str]:
    return generated.drift(render(), owned())


def main(argv: list[str] | None = None) -> int:
    return generated.main(
        argv, prog="python -m deploy.catalogue", what="event catalogue", render=render, owned=owned
    )


if __name__ == "__main__":
    sys.exit(main())
