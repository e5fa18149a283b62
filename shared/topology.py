"""Who reads and who writes each topic: the one statement of the pipeline's wiring.

Kafka ACLs (one principal per service), the Strimzi `KafkaUser` resources and the event catalogue
are derived from this table, so a new topic or a new consumer is declared once, here. It states
the topics without the deployment's `EXPORTWATCH_TOPIC_PREFIX`; `Settings.topic` adds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import (
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
)


@dataclass(frozen=True)
class ServiceWiring:
    """One service's place on the bus.

    `group` is its consumer group id (several instances share the work of `consumes`);
    `follows` are topics every instance reads in full without a group (state it rebuilds, such as
    the clearances); `produces` are the topics it may write.
    """

    service: str
    group: str
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    follows: tuple[str, ...] = ()

    @property
    def reads(self) -> tuple[str, ...]:
        return (*self.consumes, *self.follows)


# Topics the ERP publishes (no service of the pipeline writes them, but records replaying a dead letter).
ERP_TOPICS = (TOPIC_SUBMITTED, TOPIC_SHIPPED)
# Topics records does not keep in the trail: a re-screen request is screening's input, one per open
# order per list change; what it leads to (an amended screening, an alert) is kept. The catalog's
# versions are kept by the catalog database itself, and each classification stamps the catalog
# version it used on the classified order records keeps.
NOT_RECORDED = (TOPIC_RESCREEN, TOPIC_CATALOG)

# The pipeline's inputs, which records may write again when on-call replays a dead letter.
REPLAYABLE_TOPICS = (TOPIC_SUBMITTED, TOPIC_CLASSIFIED, TOPIC_SCREENED, TOPIC_DECIDED)

WIRING: dict[str, ServiceWiring] = {
    "classifier": ServiceWiring(
        service="classifier",
        group="classifier",
        consumes=(TOPIC_SUBMITTED,),
        # Every instance knows every SKU's current classification, whichever instance stored it.
        follows=(TOPIC_CATALOG,),
        produces=(TOPIC_CLASSIFIED, TOPIC_DEADLETTER, TOPIC_CATALOG),
    ),
    "screening": ServiceWiring(
        service="screening",
        group="screening",
        # Re-screen requests share the group with new orders: any instance answers either.
        consumes=(TOPIC_CLASSIFIED, TOPIC_RESCREEN),
        follows=(TOPIC_CLEARANCES,),
        produces=(TOPIC_SCREENED, TOPIC_DEADLETTER, TOPIC_LISTS_UPDATED, TOPIC_CLEARANCES, TOPIC_ALERTS),
    ),
    "risk": ServiceWiring(
        service="risk",
        group="risk",
        consumes=(TOPIC_SCREENED,),
        produces=(TOPIC_DECIDED, TOPIC_DEADLETTER),
    ),
    "records": ServiceWiring(
        service="records",
        group="records",
        consumes=(
            TOPIC_SUBMITTED,
            TOPIC_CLASSIFIED,
            TOPIC_SCREENED,
            TOPIC_DECIDED,
            TOPIC_REVIEWED,
            TOPIC_DEADLETTER,
            TOPIC_LISTS_UPDATED,
            TOPIC_CLEARANCES,
            TOPIC_REVIEW_STEPS,
            TOPIC_SHIPPED,
            TOPIC_ALERTS,
        ),
        # Every instance knows every anchor of the audit chain (GET /audit/verify checks them).
        follows=(TOPIC_ANCHORS,),
        # The review workflow's steps and outcome, and reviewers' "not a match" (published from
        # records' outbox); a replayed dead letter goes back to its source topic; re-screen
        # requests after a list change; the audit chain's anchors.
        produces=(
            TOPIC_REVIEWED,
            TOPIC_REVIEW_STEPS,
            TOPIC_CLEARANCES,
            TOPIC_DEADLETTER,
            *REPLAYABLE_TOPICS,
            TOPIC_RESCREEN,
            TOPIC_ANCHORS,
        ),
    ),
}


def producers_of(topic: str) -> list[str]:
    return [w.service for w in WIRING.values() if topic in w.produces]


def readers_of(topic: str) -> list[str]:
    return [w.service for w in WIRING.values() if topic in w.reads]
