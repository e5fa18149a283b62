"""The event contract: one pydantic model per topic (docs/architecture.md, "Contracts").

The input contract (`orders.submitted.v1`) is what ERP integrators rely on; it is validated
exactly as docs/architecture.md states it and only ever extended additively. Each later stage
publishes the whole envelope again with its own section added (`derive`); the submitted order
travels unchanged inside it, and an envelope whose `order_id` is not its order's is refused by the
model itself, whoever reads it.

Event ids of derived events are deterministic (uuid5 of the input event id and the stage), so a
redelivered input produces the very same output event and records deduplicates it by `event_id`.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypedDict

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from shared.finite import Event

# --- topics ------------------------------------------------------------------------------------

TOPIC_SUBMITTED = "orders.submitted.v1"
TOPIC_CLASSIFIED = "orders.classified.v1"
TOPIC_SCREENED = "orders.screened.v1"
TOPIC_DECIDED = "orders.decided.v1"
TOPIC_REVIEWED = "orders.reviewed.v1"
# Every step of a review (request, approval, rejection, request for information, a match cleared):
# records publishes them from its outbox and records them as trail steps; only the final outcome goes
# to orders.reviewed.v1.
TOPIC_REVIEW_STEPS = "orders.review-steps.v1"
TOPIC_DEADLETTER = "orders.deadletter.v1"
# Screening's own topics: a list version changed (records re-screens from it), and reviewers'
# "not a match" decisions that every screening instance reads in full (compacted, keyed per pair).
TOPIC_LISTS_UPDATED = "lists.updated.v1"
TOPIC_CLEARANCES = "screening.clearances.v1"
# The ERP says an order left: records marks it shipped (an order is open while decided, not shipped).
TOPIC_SHIPPED = "orders.shipped.v1"
# Delta screening: records asks screening to screen an open order's parties again against the
# entries a list change added or changed; screening answers on orders.screened.v1 (an amended
# screening, when something new matches) or, for an order already shipped, on orders.alerts.v1.
TOPIC_RESCREEN = "orders.rescreen.v1"
TOPIC_ALERTS = "orders.alerts.v1"
# The head of records' store-wide audit chain, published at intervals and on shutdown: kept
# outside the database, so a rewritten or truncated chain no longer agrees with it.
TOPIC_ANCHORS = "records.anchors.v1"
# The product catalog's current classification per SKU, published by the classifier instance that
# stored it and followed in full by every instance (compacted, keyed by SKU), so all of them classify
# with the same catalog without a restart.
TOPIC_CATALOG = "catalog.products.v1"

ALL_TOPICS = (
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
    TOPIC_RESCREEN,
    TOPIC_ALERTS,
    TOPIC_ANCHORS,
    TOPIC_CATALOG,
)

# Topic-level settings the topics are created with. Clearances are state, keyed per (entry, name):
# compaction keeps the latest per key forever, so every screening instance can rebuild it in full.
# So is the catalog, keyed per SKU: the newest version of each is what every classifier instance needs.
# Anchors are evidence, every one of them: deleted never (retention -1 by time and size), not
# compacted (compaction by a fixed key would keep only the newest, and a forged newest anchor would
# then be the only one left to check against).
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    TOPIC_CLEARANCES: {"cleanup.policy": "compact"},
    TOPIC_CATALOG: {"cleanup.policy": "compact"},
    TOPIC_ANCHORS: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
}

# Namespace for deterministic ids of derived events (uuid5).
EXPORTWATCH_NS = uuid.UUID("6f1d8c2e-4b7a-5e3f-9a1c-2d4e6f8a0b1c")


def derived_event_id(source_event_id: str, stage: str) -> str:
    """Id of the event a stage derives from `source_event_id`: the same input gives the same id."""
    return str(uuid.uuid5(EXPORTWATCH_NS, f"{source_event_id}:{stage}"))


def _uuid_text(value: object) -> str:
    """A UUID, kept as its canonical text (lower case, hyphenated), as the wire carries it."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a UUID such as '5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11'")


# Every event's id is text: the order's own (a UUID the ERP chose), the derived ones (uuid5 text),
# a review's or a clearance's (uuid4 text). One type, so no caller converts it.
EventId = str
SubmittedEventId = Annotated[str, BeforeValidator(_uuid_text), Field(json_schema_extra={"format": "uuid"})]


# --- field types -------------------------------------------------------------------------------

# ISO 3166-1 alpha-2 plus XK (Kosovo, user-assigned but used by the Country Chart and OFAC).
ISO_COUNTRIES: frozenset[str] = frozenset({c.alpha_2 for c in pycountry.countries} | {"XK"})
ISO_CURRENCIES: frozenset[str] = frozenset({c.alpha_3 for c in pycountry.currencies})
# ISO 3166-2 subdivision codes ("UA-43" Crimea, "UA-14" Donetsk oblast, ...).
ISO_SUBDIVISIONS: frozenset[str] = frozenset(s.code for s in pycountry.subdivisions)

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DECIMAL = re.compile(r"^\d{1,15}(\.\d{1,6})?$")


def _country(value: str) -> str:
    if value not in ISO_COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. 'DE', 'US')")
    return value


def _subdivision(value: str) -> str:
    if value not in ISO_SUBDIVISIONS:
        raise ValueError(f"{value!r} is not an ISO 3166-2 subdivision code (e.g. 'UA-43', 'DE-BY')")
    return value


def _currency(value: str) -> str:
    if value not in ISO_CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. 'USD', 'EUR')")
    return value


def _decimal_string(value: str) -> str:
    if not _DECIMAL.match(value):
        raise ValueError(f"{value!r} is not a non-negative decimal string such as '1250.00'")
    try:
        Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees this
        raise ValueError(f"{value!r} is not a decimal") from exc
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()!r} has no time zone; use e.g. '2026-11-30T12:00:00Z'")
    return value


def _text(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("must not be empty or blank")
    if _CONTROL_CHARS.search(value):
        raise ValueError(f"{value!r} contains control characters")
    return value


CountryCode = Annotated[str, AfterValidator(_country)]
SubdivisionCode = Annotated[str, AfterValidator(_subdivision)]
# A point in time the sender states: it must say its time zone (ordering amendments depends on it).
Timestamp = Annotated[datetime, AfterValidator(_aware)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
DecimalString = Annotated[str, AfterValidator(_decimal_string)]
Text = Annotated[str, Field(max_length=512), AfterValidator(_text)]
LongText = Annotated[str, Field(max_length=4000), AfterValidator(_text)]

PartyRole = Literal[
    "buyer",
    "ultimate_consignee",
    "intermediate_consignee",
    "end_user",
    "freight_forwarder",
    "purchaser_agent",
    # Who the company buys from (responsible sourcing): screened, never an export destination.
    "supplier",
]
DecisionCode = Literal["RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK"]
# What a reviewer may decide. HOLD was added with the four-eyes review (a reviewer may hold an order
# the machine released): an additive value, published only when a reviewer chose it.
ReviewDecisionCode = Literal["RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK"]
ListEffect = Literal["block", "licence", "review"]

DECISION_SEVERITY: dict[str, int] = {"RELEASE": 0, "LICENSE_REQUIRED": 1, "HOLD": 2, "BLOCK": 3}


def most_severe(decisions: list[str]) -> str:
    """The final decision is the most severe, BLOCK > HOLD > LICENSE_REQUIRED > RELEASE
    (docs/architecture.md, "Decision semantics")."""
    return max(decisions, key=DECISION_SEVERITY.__getitem__, default="RELEASE")


# --- orders.submitted.v1 -----------------------------------------------------------------------


class _AsReceived(Event):
    """Serialises without the optional fields the sender left out, so the order travels on
    through every stage as it was received (the original order is never modified)."""

    @model_serializer(mode="wrap")
    def _drop_unsent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in type(self).model_fields:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data


class Party(_AsReceived):
    model_config = ConfigDict(extra="allow", frozen=True)

    role: PartyRole
    name: Text
    address: Text | None = None
    city: Text | None = None
    country: CountryCode
    # ISO 3166-2 (e.g. "UA-43" Crimea): the region within `country`; its prefix is `country`.
    subdivision: SubdivisionCode | None = None

    @model_validator(mode="after")
    def _subdivision_in_country(self) -> Party:
        if self.subdivision is not None and self.subdivision.split("-", 1)[0] != self.country:
            raise ValueError(
                f"subdivision {self.subdivision!r} is not in country {self.country!r} "
                f"(an ISO 3166-2 code starts with its country's code)"
            )
        return self


class OrderLine(_AsReceived):
    model_config = ConfigDict(extra="allow", frozen=True)

    line_no: int = Field(ge=1)
    sku: Text
    description: LongText
    quantity: int = Field(gt=0)
    unit_price: DecimalString
    currency: CurrencyCode
    hs_code: Annotated[str, Field(pattern=r"^\d{4}(\.?\d{2}){0,3}$")] | None = None
    eccn: Annotated[str, Field(min_length=1, max_length=40)] | None = None

    @field_validator("eccn")
    @classmethod
    def _eccn_trimmed(cls, value: str | None) -> str | None:
        # The ERP's ECCN is kept as given (paragraphs are lower case on the CCL: 6A003.b.4.b);
        # whether it exists is the classifier's finding (INVALID_ECCN), not a contract violation.
        if value is None:
            return None
        value = value.strip()
        if not value or _CONTROL_CHARS.search(value):
            raise ValueError(f"{value!r} is empty or contains control characters")
        return value


class SubmittedOrder(_AsReceived):
    """`orders.submitted.v1` exactly as docs/architecture.md states it; unknown fields are kept, not used."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_: Literal["order.submitted.v1"] = Field(alias="schema")
    event_id: SubmittedEventId
    order_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
    occurred_at: Timestamp
    source: Text
    ship_from_country: CountryCode
    destination_country: CountryCode
    parties: list[Party] = Field(min_length=1, max_length=50)
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    end_use: LongText | None = None
    transit_countries: list[CountryCode] | None = None
    payment_terms: Text | None = None
    incoterms: Text | None = None

    @model_validator(mode="after")
    def _roles_and_lines(self) -> SubmittedOrder:
        roles = {p.role for p in self.parties}
        if not roles & {"buyer", "ultimate_consignee"}:
            raise ValueError(
                f"parties must include a 'buyer' or an 'ultimate_consignee' (roles given: {sorted(roles)})"
            )
        seen: set[int] = set()
        for line in self.lines:
            if line.line_no in seen:
                raise ValueError(f"lines: line_no {line.line_no} appears more than once")
            seen.add(line.line_no)
        return self

    def party(self, role: str) -> Party | None:
        return next((p for p in self.parties if p.role == role), None)


# --- classification (classifier) ---------------------------------------------------------------


class EccnSuggestion(Event):
    eccn: str
    score: float
    heading: str
    matched_text: str
    # Where `matched_text` comes from: "ccl" (15 CFR 774 Supp. 1), "eu_annex_i" (Regulation (EU)
    # 2021/821 Annex I, the entry with the same number), "none" (the EAR99 suggestion).
    source: str | None = None


class LineClassification(Event):
    line_no: int
    sku: str
    eccn: str | None
    source: Literal["erp", "catalog", "none"]
    status: Literal["classified", "ear99", "unclassified", "invalid", "itar"]
    erp_eccn: str | None = None
    catalog_eccn: str | None = None
    heading: str | None = None
    reasons_for_control: list[str] = Field(default_factory=list)
    country_chart_columns: list[str] = Field(default_factory=list)
    license_exceptions: list[str] = Field(default_factory=list)
    # The CCL's own words for each licence exception above (symbol -> text): "$1500" for LVS, "Yes"
    # for GBS, the STA exclusions; risk compares the LVS value limit with the line's value.
    license_exception_terms: dict[str, str] = Field(default_factory=dict)
    discrepancy: str | None = None
    error: str | None = None
    suggestions: list[EccnSuggestion] = Field(default_factory=list)


class Classification(Event):
    ccl_version: str
    catalog_version: str | None = None
    lines: list[LineClassification]


# --- screening (screening) ---------------------------------------------------------------------


class TokenPair(Event):
    query: str
    listed: str
    similarity: float


class ScoreContribution(Event):
    """One calibrated signal of a match (services/screening/calibration.py): its value (0..1) and
    how much it moved the score (its policy coefficient times the value)."""

    signal: str
    value: float
    contribution: float


class MatchEvidence(Event):
    token_pairs: list[TokenPair] = Field(default_factory=list)
    unmatched_query_tokens: list[str] = Field(default_factory=list)
    unmatched_listed_tokens: list[str] = Field(default_factory=list)
    party_country: str | None = None
    entry_countries: list[str] = Field(default_factory=list)
    country_agreement: bool | None = None
    entry_type: str | None = None
    programs: list[str] = Field(default_factory=list)
    # The name alignment's own score, before country, address and entity type moved it.
    name_score: float | None = None
    # Canonical legal forms written with the party's name ("llc", "jsc"): set aside, not scored.
    party_legal_forms: list[str] = Field(default_factory=list)
    # The matched alias is one the publisher marks weak / low quality (OFAC FAQ 122).
    weak_alias: bool = False
    # Whether the party's address names a place one of the entry's addresses names, and which.
    address_agreement: bool | None = None
    matched_address: str | None = None
    # What the list says the listing requires, where it says it (the CSL's Entity List and MEU
    # rows): "For all items subject to the EAR" or named ECCNs / supplements, the licence review
    # policy, and the Federal Register notice and date of the listing.
    license_requirement: str | None = None
    license_policy: str | None = None
    federal_register_notice: str | None = None
    start_date: str | None = None
    # What moved the name score to the match's score, signal by signal (additive: score = name
    # score + contributions, bounded; an address naming the same place adds up to 0.02 more), and
    # the version of the policy's calibration that weighed them.
    score_contributions: list[ScoreContribution] = Field(default_factory=list)
    calibration_version: str | None = None


class PartyMatch(Event):
    list_id: str
    list_name: str
    list_version: str
    entry_id: str
    entry_name: str
    matched_name: str
    matched_alias: bool
    score: float
    effect: ListEffect
    evidence: MatchEvidence
    # The entry's content version (a hash of what the list says about it): a reviewer's clearance
    # holds for this version only, and lapses when the publisher changes the entry.
    entry_version: str | None = None


class ClearedMatch(PartyMatch):
    """A match a reviewer cleared as "not this party" for this entry version: kept as evidence,
    not acted on (risk reads `matches` only)."""

    cleared_by: str
    cleared_at: datetime
    clearance_reason: str
    clearance_id: str


class PartyScreening(Event):
    role: str
    name: str
    country: str
    matches: list[PartyMatch] = Field(default_factory=list)
    cleared_matches: list[ClearedMatch] = Field(default_factory=list)
    # The name as screening's matcher normalises it: the name part of a clearance's key
    # (`clearance_key`), so a reviewer's "not a match" from records names the pair exactly as
    # screening does. Added with issue 12; older events lack it.
    normalised_name: str | None = Field(default=None, exclude_if=lambda value: value is None)


class ScreenedList(Event):
    list_id: str
    name: str
    version: str
    published: str | None = None
    entries: int
    effect: ListEffect


class ListChangeRef(Event):
    """The list change (a `lists.updated.v1` event) that caused a re-screening."""

    model_config = ConfigDict(extra="allow")

    event_id: EventId
    source: str
    list_id: str
    list_name: str
    old_version: str | None
    new_version: str
    published: str | None = None
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)


class AmendedMatch(Event):
    """One party's match on one entry, as an amendment names it."""

    party_role: str
    party_name: str
    list_id: str
    entry_id: str
    entry_version: str | None = None
    score: float


class ScreeningAmendment(Event):
    """Why a screening was redone after the order was decided: a list change added or changed an
    entry that now matches a party (`new_matches`). The whole screening is redone on the lists in
    use; the classification is kept. A match of the decision amended that the current lists no
    longer give (its entry removed or changed) is carried forward (`carried_forward`): a list change
    never lowers a decision by itself, only a review does."""

    model_config = ConfigDict(extra="allow")

    cause: Literal["list_change"] = "list_change"
    rescreen_request_id: EventId
    list_change: ListChangeRef
    amends_decided_event_id: EventId
    new_matches: list[AmendedMatch]
    carried_forward: list[AmendedMatch] = Field(default_factory=list)


class Screening(Event):
    policy_version: str
    review_threshold: float
    block_threshold: float
    lists: list[ScreenedList]
    parties: list[PartyScreening]
    # Set when the screening was redone because a list changed after the decision (issue 12):
    # risk decides again and the amended decision goes to orders.decided.v1 with this section.
    amendment: ScreeningAmendment | None = Field(default=None, exclude_if=lambda value: value is None)


# --- decision (risk) ---------------------------------------------------------------------------


class Reason(Event):
    code: str
    severity: DecisionCode
    message: str
    line_no: int | None = None
    party_role: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    # How many points of the decision's risk score this reason adds (the highest reason its own
    # score, every further one the policy's increment, up to the cap of 100).
    score_contribution: int | None = None


class LineDetermination(Event):
    line_no: int
    eccn: str | None
    license_required: bool
    columns_applicable: list[str] = Field(default_factory=list)
    countries_checked: list[str] = Field(default_factory=list)
    license_exceptions_possible: list[str] = Field(default_factory=list)
    # What authorises a line that needs a licence, when the decision releases it: "licence <number>"
    # (a LICENSE_COVERED draw-down) or "licence exception <symbol>" (LICENSE_EXCEPTION).
    authorised_by: str | None = None


class Decision(Event):
    decision: DecisionCode
    risk_score: int = Field(ge=0, le=100)
    reasons: list[Reason]
    line_determinations: list[LineDetermination] = Field(default_factory=list)
    policy_version: str
    data_versions: dict[str, str] = Field(default_factory=dict)


# --- envelopes of the enrichment chain ---------------------------------------------------------


class OrderEnvelope(Event):
    """What every stage's event has in common: its own id, the order it is about, the event it was
    derived from, the stage that made it, and the submitted order unchanged."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_id: EventId
    order_id: str
    causation_id: EventId = Field(description="event_id of the event this one was derived from")
    produced_by: str
    order: SubmittedOrder

    @model_validator(mode="after")
    def _one_order(self) -> OrderEnvelope:
        # The key, the trail and the decision are all per order: an envelope that names two orders
        # cannot be decided, nor recorded, for either.
        if self.order_id != self.order.order_id:
            raise ValueError(
                f"order_id {self.order_id!r} differs from order.order_id {self.order.order_id!r}"
            )
        return self

    @property
    def submitted_event_id(self) -> EventId:
        return self.order.event_id


class DerivedHeader(TypedDict):
    """The envelope fields of the event a stage derives from another (see `derive`)."""

    event_id: EventId
    order_id: str
    causation_id: EventId
    produced_by: str
    order: SubmittedOrder


def derive(previous: SubmittedOrder | OrderEnvelope, stage: str) -> DerivedHeader:
    """The envelope of the event `stage` derives from `previous`: a deterministic id (the same input
    gives the same output, so records keeps a redelivery once), the same order, caused by `previous`.

    `ClassifiedOrder(**derive(order, "classifier"), classification=...)`.
    """
    order = previous if isinstance(previous, SubmittedOrder) else previous.order
    return DerivedHeader(
        event_id=derived_event_id(previous.event_id, stage),
        order_id=order.order_id,
        causation_id=previous.event_id,
        produced_by=stage,
        order=order,
    )


class ClassifiedOrder(OrderEnvelope):
    schema_: Literal["order.classified.v1"] = Field(default="order.classified.v1", alias="schema")
    classification: Classification


class ScreenedOrder(OrderEnvelope):
    schema_: Literal["order.screened.v1"] = Field(default="order.screened.v1", alias="schema")
    classification: Classification
    screening: Screening


class DecidedOrder(OrderEnvelope):
    schema_: Literal["order.decided.v1"] = Field(default="order.decided.v1", alias="schema")
    classification: Classification
    screening: Screening
    decision: Decision


# --- orders.reviewed.v1 and orders.review-steps.v1 (records' review workflow) ------------------

ReviewRole = Literal["viewer", "reviewer", "approver", "admin"]


class ReviewActor(Event):
    """Who acted: the API key's name and role, and its id (a name can be reused after a revocation,
    an id never is). Taken from the key the request was signed with, never from a request body."""

    model_config = ConfigDict(extra="allow")

    key_id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Text
    role: ReviewRole


class ReviewApproval(Event):
    """One approval of a review request."""

    model_config = ConfigDict(extra="allow")

    approver: ReviewActor
    approved_at: Timestamp
    comment: LongText | None = None


class ReviewedOrder(Event):
    """The final outcome of a review: what the ERP acts on instead of the machine's decision.

    Raising severity (to HOLD or BLOCK) takes effect with one reviewer; lowering it (to
    LICENSE_REQUIRED or RELEASE) with two approvals by two different approver keys: `approvals` says
    who, `requested_by` who asked (both added with the four-eyes review; older events lack them)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["order.reviewed.v1"] = Field(default="order.reviewed.v1", alias="schema")
    event_id: EventId
    order_id: str
    decided_event_id: EventId
    submitted_event_id: EventId
    original_decision: DecisionCode
    review_decision: ReviewDecisionCode
    # The name of the key that completed the review (the last approver).
    reviewer: Text
    comment: LongText
    reviewed_at: datetime
    review_request_id: str | None = None
    # The decision's reason codes the review overrules or confirms.
    reason_codes: list[str] = Field(default_factory=list)
    requested_by: ReviewActor | None = None
    approvals: list[ReviewApproval] = Field(default_factory=list)
    approvals_required: int | None = None


ReviewAction = Literal[
    "requested", "approved", "rejected", "information_requested", "superseded", "match_cleared"
]


class ClearedEntry(Event):
    """A match a reviewer resolved as "not a match" from the order: the clearance published to
    screening.clearances.v1."""

    model_config = ConfigDict(extra="allow")

    clearance_event_id: EventId
    party_role: str
    party_name: str
    list_id: str
    entry_id: str
    entry_version: str


class ReviewStep(Event):
    """One step of a review, kept in the order's trail: who did what, when and why, on which
    decision of which order version."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["order.review-step.v1"] = Field(default="order.review-step.v1", alias="schema")
    event_id: EventId
    order_id: str
    submitted_event_id: EventId
    decided_event_id: EventId
    review_request_id: str | None = None
    action: ReviewAction
    actor: ReviewActor
    occurred_at: Timestamp
    original_decision: DecisionCode
    requested_decision: ReviewDecisionCode | None = None
    reason_codes: list[str] = Field(default_factory=list)
    comment: LongText | None = None
    approvals: list[ReviewApproval] = Field(default_factory=list)
    approvals_required: int | None = None
    cleared: ClearedEntry | None = None


# --- lists.updated.v1 (screening) ---------------------------------------------------------------


class ListsUpdated(Event):
    """One list of one source changed version; entry ids as the list writes them."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["list.updated.v1"] = Field(default="list.updated.v1", alias="schema")
    event_id: EventId
    source: str = Field(description="the configured source kind: ofac_sdn, csl, un_sc, ...")
    list_id: str
    list_name: str
    old_version: str | None
    new_version: str
    published: str | None = None
    entries: int
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    updated_at: datetime
    produced_by: str = "screening"


# --- screening.clearances.v1 (screening) -------------------------------------------------------


def clearance_key(list_id: str, entry_id: str, normalised_name: str) -> str:
    """Kafka key of a clearance: one per (entry, party name), so compaction keeps the latest and a
    tombstone on the same key revokes it."""
    return f"{list_id}:{entry_id}:{normalised_name}"


class ScreeningClearance(Event):
    """A reviewer's "not a match": this party name is not this list entry, as the entry stood at
    `entry_version`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["screening.clearance.v1"] = Field(default="screening.clearance.v1", alias="schema")
    event_id: EventId
    party_name: Text
    normalised_name: Annotated[str, Field(min_length=1, max_length=1024)]
    list_id: Annotated[str, Field(min_length=1, max_length=32)]
    entry_id: Annotated[str, Field(min_length=1, max_length=200)]
    entry_version: Annotated[str, Field(min_length=1, max_length=80)]
    reviewer: Text
    reason: LongText
    cleared_at: Timestamp

    @property
    def key(self) -> str:
        return clearance_key(self.list_id, self.entry_id, self.normalised_name)


# --- orders.deadletter.v1 ----------------------------------------------------------------------


class DeadLetter(Event):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["order.deadletter.v1"] = Field(default="order.deadletter.v1", alias="schema")
    event_id: EventId
    service: str
    source_topic: str
    source_partition: int
    source_offset: int
    key_b64: str | None
    payload_b64: str
    error_type: str
    error: str
    failed_at: datetime
    # The whole original message's size and SHA-256; `payload_truncated`: `payload_b64` holds only
    # its beginning, because the whole would not fit in one Kafka request (the error says so too).
    payload_size: int | None = None
    payload_sha256: str | None = None
    payload_truncated: bool = False


def envelope_dump(model: BaseModel) -> bytes:
    """Wire form of every event: JSON with aliases (`schema`), no None-valued optional noise."""
    return model.model_dump_json(by_alias=True).encode("utf-8")
