"""Who reads and who writes each topic: the one statement of the pipeline's wiring.

Kafka ACLs (one principal per service), the Strimzi `KafkaUser` resources and the event catalogue
are derived from this table, so a new topic or a new consumer is declared once, here. It states
the topics without the deployment's `EXPORTWATCH_TOPIC_PREFIX`; `Settings.topic` adds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import (
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_LISTS_UPDATED,
    TOPIC_REVIEW_STEPS,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
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


# The pipeline's inputs, which records may write again when on-call replays a dead letter.
REPLAYABLE_TOPICS = (TOPIC_SUBMITTED, TOPIC_CLASSIFIED, TOPIC_SCREENED, TOPIC_DECIDED)

WIRING: dict[str, ServiceWiring] = {
    "classifier": ServiceWiring(
        service="classifier",
        group="classifier",
        consumes=(TOPIC_SUBMITTED,),
        produces=(TOPIC_CLASSIFIED, TOPIC_DEADLETTER),
    ),
    "screening": ServiceWiring(
        service="screening",
        group="screening",
        consumes=(TOPIC_CLASSIFIED,),
        follows=(TOPIC_CLEARANCES,),
        produces=(TOPIC_SCREENED, TOPIC_DEADLETTER, TOPIC_LISTS_UPDATED, TOPIC_CLEARANCES),
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
        ),
        # The review workflow's steps and outcome, and reviewers' "not a match" (published from
        # records' outbox); a replayed dead letter goes back to its source topic.
        produces=(
            TOPIC_REVIEWED,
            TOPIC_REVIEW_STEPS,
            TOPIC_CLEARANCES,
            TOPIC_DEADLETTER,
            *REPLAYABLE_TOPICS,
        ),
    ),
}


def producers_of(topic: str) -> list[str]:
    return [w.service for w in WIRING.values() if topic in w.produces]


def readers_of(topic: str) -> list[str]:
    return [w.service for w in WIRING.values() if topic in w.reads]
