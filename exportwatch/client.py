"""A small typed client for ERP integrations: the records API over HTTP, and an order publisher.

    from exportwatch.client import OrderPublisher, RecordsClient

    async with OrderPublisher("kafka:9092") as publisher:
        await publisher.publish(order)                      # a dict or a SubmittedOrder
    async with RecordsClient("http://records:8004", api_key=key) as records:
        decided = await records.wait_for_decision(order["order_id"], within=60)

The response models accept fields they do not know (`extra="allow"`): the API grows additively, and a
client built today keeps working against a newer server. docs/integration.md shows the whole flow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared import tracing
from shared.events import (
    TOPIC_SHIPPED,
    TOPIC_SUBMITTED,
    Decision,
    DecisionCode,
    ReviewedOrder,
    ReviewStep,
    ScreeningClearance,
    SubmittedOrder,
    envelope_dump,
)
from shared.lifecycle_events import ShippedOrder

__all__ = [
    "Alert",
    "Alerts",
    "Approval",
    "AuditReport",
    "DeadLetterInfo",
    "ExportwatchError",
    "LegalHold",
    "Order",
    "OrderPage",
    "OrderPublisher",
    "OrderSummary",
    "PublishedOrder",
    "Queue",
    "QueueItem",
    "RecordsClient",
    "Replay",
    "Review",
    "ReviewOutcome",
    "ReviewRequest",
    "ShippedOrder",
    "Stats",
    "SubmittedOrder",
    "Trail",
    "TrailStep",
]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class OrderSummary(_Response):
    order_id: str
    destination_country: str | None
    decision: DecisionCode | None
    risk_score: int | None
    reason_codes: list[str]
    review_decision: str | None
    updated_at: datetime
    created_at: datetime | None = None
    decided_at: datetime | None = None
    shipped_at: datetime | None = None
    legal_hold: bool = False


@dataclass(frozen=True)
class OrderPage:
    """A page of `GET /orders`; `next_cursor` asks for the next one (None: this was the last)."""

    orders: list[OrderSummary]
    next_cursor: str | None


class Review(_Response):
    review_event_id: str
    review_decision: DecisionCode
    reviewer: str
    comment: str
    reviewed_at: datetime


class Approval(_Response):
    approver_name: str
    approver_role: str
    approver_key_id: str
    approved_at: datetime
    comment: str | None


class ReviewRequest(_Response):
    """A request to change a decision, and where its four-eyes review stands."""

    request_id: str
    status: Literal["pending", "approved", "rejected", "superseded"]
    decided_event_id: str
    submitted_event_id: str
    original_decision: str
    requested_decision: str
    reason_codes: list[str]
    comment: str
    approvals_required: int
    requested_by_name: str
    requested_by_role: str
    requested_by_key_id: str
    requested_at: datetime
    closed_at: datetime | None
    closed_by_name: str | None
    close_comment: str | None
    reviewed_event_id: str | None
    approvals: list[Approval]


class ReviewOutcome(_Response):
    """After a review command: `awaiting_approval` (a lowering waits for a second approver),
    `approved` (final; `reviewed` is what orders.reviewed.v1 carries) or `rejected`."""

    status: Literal["awaiting_approval", "approved", "rejected"]
    approvals: int
    approvals_required: int
    request: ReviewRequest
    reviewed: ReviewedOrder | None


class QueueItem(_Response):
    order_id: str
    decision: str
    risk_score: int | None
    destination_country: str | None
    reason_codes: list[str]
    lists: list[str]
    decided_event_id: str
    decided_at: datetime
    age_seconds: float
    pending_review: ReviewRequest | None


class Queue(_Response):
    total: int
    awaiting_approval: int
    by_decision: dict[str, int]
    by_reason: dict[str, int]
    by_destination: dict[str, int]
    by_list: dict[str, int]
    items: list[QueueItem]


class Order(_Response):
    order_id: str
    # pending: submitted, not decided yet; decided; reviewed: a person's decision stands over it.
    status: Literal["pending", "decided", "reviewed"]
    destination_country: str | None
    submitted_event_id: str | None
    occurred_at: datetime | None
    decided_event_id: str | None
    decision: Decision | None
    review: Review | None
    order: dict[str, Any]
    updated_at: datetime
    review_requests: list[ReviewRequest] = Field(default_factory=list)
    shipped_at: datetime | None = None
    carrier_reference: str | None = None
    legal_hold: bool = False

    @property
    def final_decision(self) -> DecisionCode | None:
        """What the ERP acts on: a reviewer's decision where there is one, else the machine's."""
        if self.review is not None:
            return self.review.review_decision
        return self.decision.decision if self.decision is not None else None


class TrailStep(_Response):
    seq: int
    stage: str
    schema_: str = Field(alias="schema")
    event_id: str
    submitted_event_id: str
    topic: str
    partition: int
    offset: int
    received_at: datetime
    payload: dict[str, Any]
    payload_sha256: str
    prev_hash: str
    step_hash: str
    hash_version: int = 1


class Trail(_Response):
    order_id: str
    chain_valid: bool
    chain_problems: list[str]
    steps: list[TrailStep]


class DeadLetterInfo(_Response):
    event_id: str
    service: str
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    error: str
    key: str | None
    key_b64: str | None
    payload_text: str | None
    payload_b64: str
    failed_at: datetime
    received_at: datetime


class Replay(_Response):
    replayed: str
    topic: str
    key: str
    bytes: int


class AuditReport(_Response):
    """GET /audit/verify: both chains recomputed and checked against the anchors."""

    ok: bool
    orders_checked: int
    steps_checked: int
    anchors_checked: int
    chain_positions_checked: int
    head: dict[str, Any]
    problems: list[str]
    problems_total: int
    range: dict[str, str | None]


class Alert(_Response):
    event_id: str
    order_id: str
    kind: str
    submitted_event_id: str
    decided_event_id: str
    list_change_event_id: str
    list_id: str
    list_version: str
    entries: list[dict[str, Any]]
    shipped_at: datetime | None
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement: str | None


class Alerts(_Response):
    open: int
    alerts: list[Alert]


class LegalHold(_Response):
    hold_id: str
    order_id: str
    reason: str
    placed_by_name: str
    placed_by_key_id: str
    placed_at: datetime
    released_at: datetime | None
    released_by_name: str | None
    released_by_key_id: str | None
    release_reason: str | None


class Stats(_Response):
    orders: int
    pending: int
    decisions: dict[str, int]
    reviewed: int
    dead_letters: int
    start: datetime | None
    end: datetime | None
    decided: int
    by_day: list[dict[str, Any]]
    by_reason: dict[str, int]
    by_destination: dict[str, int]
    by_list: dict[str, int]
    latency_seconds: dict[str, float | int | None]


class ExportwatchError(Exception):
    """An API call that did not succeed: the HTTP status and the server's own explanation (a 422
    names the field and the value)."""

    def __init__(self, method: str, url: str, status: int, detail: Any) -> None:
        super().__init__(f"{method} {url}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


_SUMMARIES = TypeAdapter(list[OrderSummary])
_DEAD_LETTERS = TypeAdapter(list[DeadLetterInfo])
_HOLDS = TypeAdapter(list[LegalHold])


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class RecordsClient:
    """The records API (orders, trail, queue, reviews, dead letters), typed.

    `api_key` is sent as `Authorization: Bearer <key>`; `transport` lets tests (and applications
    embedding the service) call an ASGI app directly.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self._respond(method, url, **kwargs)
        return response.json()

    async def _respond(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, url, **kwargs)
        if response.is_success:
            return response
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ExportwatchError(method, url, response.status_code, detail)

    async def orders(
        self,
        *,
        decision: DecisionCode | None = None,
        reviewed: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[OrderSummary]:
        """Orders with their current decision, most recently changed first."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if decision is not None:
            params["decision"] = decision
        if reviewed is not None:
            params["reviewed"] = str(reviewed).lower()
        return _SUMMARIES.validate_python(await self._call("GET", "/orders", params=params))

    async def search_orders(self, *, limit: int = 50, cursor: str | None = None, **filters: Any) -> OrderPage:
        """A keyset page of orders matching `filters` (GET /orders: decision, review, reason, party,
        party_country, destination, list, entry_id, created_from/to, decided_from/to (datetimes),
        shipped, legal_hold); pass the page's `next_cursor` back for the next one."""
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        for name, value in filters.items():
            if value is None:
                continue
            key = "list" if name == "list_id" else name
            params[key] = (
                value.isoformat()
                if isinstance(value, datetime)
                else str(value).lower()
                if isinstance(value, bool)
                else value
            )
        response = await self._respond("GET", "/orders", params=params)
        return OrderPage(_SUMMARIES.validate_python(response.json()), response.headers.get("X-Next-Cursor"))

    async def stats(self, *, start: datetime | None = None, end: datetime | None = None) -> Stats:
        params = {k: v for k, v in (("from", _moment(start)), ("to", _moment(end))) if v is not None}
        return Stats.model_validate(await self._call("GET", "/stats", params=params))

    async def verify(self, *, start: datetime | None = None, end: datetime | None = None) -> AuditReport:
        """Recompute the audit chains and check the anchors (needs a reviewer key)."""
        params = {k: v for k, v in (("from", _moment(start)), ("to", _moment(end))) if v is not None}
        return AuditReport.model_validate(await self._call("GET", "/audit/verify", params=params))

    async def export_trail(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        format: Literal["jsonl", "csv"] = "jsonl",
    ) -> AsyncIterator[bytes]:
        """Every trail step recorded in [start, end) with its hashes, streamed (needs an admin key)."""
        params = {k: v for k, v in (("from", _moment(start)), ("to", _moment(end)), ("format", format)) if v}
        async with self._http.stream("GET", "/exports/trail", params=params) as response:
            if not response.is_success:
                await response.aread()
                raise ExportwatchError("GET", "/exports/trail", response.status_code, response.text)
            async for chunk in response.aiter_bytes():
                yield chunk

    async def dossier(self, order_id: str) -> bytes:
        """The auditor's dossier of the order, as PDF bytes."""
        return (await self._respond("GET", f"/orders/{order_id}/dossier.pdf")).content

    async def hold(self, order_id: str, *, reason: str) -> LegalHold:
        """Place a legal hold (needs an admin key): the order is not purged while it is in force."""
        return LegalHold.model_validate(
            await self._call("POST", f"/orders/{order_id}/hold", json={"reason": reason})
        )

    async def release_hold(self, order_id: str, *, reason: str, hold_id: str | None = None) -> LegalHold:
        body: dict[str, str] = {"reason": reason}
        if hold_id is not None:
            body["hold_id"] = hold_id
        return LegalHold.model_validate(
            await self._call("POST", f"/orders/{order_id}/hold/release", json=body)
        )

    async def holds(self, order_id: str) -> list[LegalHold]:
        return _HOLDS.validate_python(await self._call("GET", f"/orders/{order_id}/holds"))

    async def alerts(
        self, *, state: Literal["open", "acknowledged"] | None = None, limit: int = 50, offset: int = 0
    ) -> Alerts:
        """Post-shipment alerts: a list change matches a party of an order already shipped."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state is not None:
            params["state"] = state
        return Alerts.model_validate(await self._call("GET", "/alerts", params=params))

    async def acknowledge_alert(self, event_id: str, *, comment: str) -> Alert:
        return Alert.model_validate(
            await self._call("POST", f"/alerts/{event_id}/acknowledge", json={"comment": comment})
        )

    async def queue(self, *, limit: int = 50, offset: int = 0) -> list[OrderSummary]:
        """Held orders nobody has reviewed yet: what waits for a person."""
        return await self.orders(decision="HOLD", reviewed=False, limit=limit, offset=offset)

    async def order(self, order_id: str) -> Order:
        return Order.model_validate(await self._call("GET", f"/orders/{order_id}"))

    async def trail(self, order_id: str) -> Trail:
        """Every recorded step of the order and whether its hash chain verifies (15 CFR 762)."""
        return Trail.model_validate(await self._call("GET", f"/orders/{order_id}/trail"))

    async def review_queue(
        self,
        *,
        reason: str | None = None,
        destination: str | None = None,
        list_id: str | None = None,
        min_age_hours: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Queue:
        """HOLD and BLOCK orders waiting for a reviewer, oldest first, with the queue's counts."""
        params: dict[str, str | int | float] = {"limit": limit, "offset": offset}
        for name, value in (
            ("reason", reason),
            ("destination", destination),
            ("list", list_id),
            ("min_age_hours", min_age_hours),
        ):
            if value is not None:
                params[name] = value
        return Queue.model_validate(await self._call("GET", "/queue", params=params))

    async def review(
        self,
        order_id: str,
        *,
        review_decision: DecisionCode,
        comment: str,
        reason_codes: list[str] | None = None,
        decided_event_id: str | None = None,
    ) -> ReviewOutcome:
        """A reviewer's decision, signed by this client's key (202). Raising severity takes effect at
        once; lowering it waits for two approver keys (`status` says which)."""
        body: dict[str, Any] = {"review_decision": review_decision, "comment": comment}
        if reason_codes is not None:
            body["reason_codes"] = reason_codes
        if decided_event_id is not None:
            body["decided_event_id"] = decided_event_id
        return ReviewOutcome.model_validate(await self._call("POST", f"/orders/{order_id}/review", json=body))

    async def approve(
        self, order_id: str, *, comment: str | None = None, decided_event_id: str | None = None
    ) -> ReviewOutcome:
        """Approve the order's open review request (needs an approver key)."""
        body = {
            k: v for k, v in (("comment", comment), ("decided_event_id", decided_event_id)) if v is not None
        }
        return ReviewOutcome.model_validate(
            await self._call("POST", f"/orders/{order_id}/review/approve", json=body)
        )

    async def reject(self, order_id: str, *, comment: str) -> ReviewOutcome:
        """Reject the order's open review request (needs an approver key)."""
        return ReviewOutcome.model_validate(
            await self._call("POST", f"/orders/{order_id}/review/reject", json={"comment": comment})
        )

    async def request_information(self, order_id: str, *, comment: str) -> ReviewStep:
        return ReviewStep.model_validate(
            await self._call(
                "POST", f"/orders/{order_id}/review/request-information", json={"comment": comment}
            )
        )

    async def not_a_match(
        self, order_id: str, *, party_name: str, list_id: str, entry_id: str, reason: str
    ) -> ScreeningClearance:
        """A party of the current decision is not the list entry it matched: screening stops holding
        the pair until the entry changes."""
        body = {"party_name": party_name, "list_id": list_id, "entry_id": entry_id, "reason": reason}
        return ScreeningClearance.model_validate(
            await self._call("POST", f"/orders/{order_id}/not-a-match", json=body)
        )

    async def dead_letters(self, *, limit: int = 50, offset: int = 0) -> list[DeadLetterInfo]:
        data = await self._call("GET", "/deadletters", params={"limit": limit, "offset": offset})
        return _DEAD_LETTERS.validate_python(data)

    async def replay(self, event_id: str) -> Replay:
        """Publish a dead letter's original bytes and key again to the topic it came from."""
        return Replay.model_validate(await self._call("POST", f"/deadletters/{event_id}/replay"))

    async def wait_for_decision(self, order_id: str, *, within: float = 60.0, interval: float = 0.5) -> Order:
        """The order once it is decided (or reviewed); TimeoutError naming the order otherwise.

        The pipeline is asynchronous: records knows of an order a moment after it is submitted, and
        of its decision after the three stages ran."""
        deadline = time.monotonic() + within
        while True:
            try:
                order = await self.order(order_id)
                if order.status != "pending":
                    return order
            except ExportwatchError as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() >= deadline:
                raise TimeoutError(f"order {order_id!r} not decided within {within:.0f}s")
            await asyncio.sleep(interval)


@dataclass(frozen=True)
class PublishedOrder:
    order_id: str
    event_id: str
    topic: str
    partition: int
    offset: int


class OrderPublisher:
    """Publishes orders to orders.submitted.v1 as the contract asks: key = order_id (one order's
    versions stay in order on one partition), acks=all and an idempotent producer (a retried send is
    written once). Each order is validated first, so a contract violation raises pydantic's
    ValidationError, naming the field and the value, before anything is sent.

    `producer_options` go to aiokafka's producer (e.g. `security_protocol="SASL_SSL"`,
    `sasl_mechanism="SCRAM-SHA-512"`, `sasl_plain_username`, `sasl_plain_password`, `ssl_context`).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic_prefix: str = "",
        client_id: str = "exportwatch-order-publisher",
        **producer_options: Any,
    ) -> None:
        self.topic = f"{topic_prefix}{TOPIC_SUBMITTED}"
        self.shipped_topic = f"{topic_prefix}{TOPIC_SHIPPED}"
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            **producer_options,
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, order: SubmittedOrder | Mapping[str, Any]) -> PublishedOrder:
        """Send one order and wait for the broker's acknowledgement.

        Resending the same order after a failure is safe: records keeps each `event_id` once. A
        changed order (an amendment) is a new event: a new `event_id` and a later `occurred_at`."""
        model = order if isinstance(order, SubmittedOrder) else SubmittedOrder.model_validate(order)
        return await self._send(self.topic, model.order_id, model)

    async def publish_shipment(self, shipment: ShippedOrder | Mapping[str, Any]) -> PublishedOrder:
        """Say an order has shipped (orders.shipped.v1, key = order_id): records marks it shipped,
        ending its re-screening as an open order. `event_id` is yours, so a resend is kept once."""
        model = shipment if isinstance(shipment, ShippedOrder) else ShippedOrder.model_validate(shipment)
        return await self._send(self.shipped_topic, model.order_id, model)

    async def _send(self, topic: str, order_id: str, model: SubmittedOrder | ShippedOrder) -> PublishedOrder:
        # The order's trace begins (or, for a shipment, a trace of its own) here: the W3C trace
        # context in the record's headers when this process traces, with Exportwatch's own set-up
        # or the application's OpenTelemetry provider.
        with tracing.producing(topic, order_id) as headers:
            metadata = await self._producer.send_and_wait(
                topic, envelope_dump(model), key=order_id.encode("utf-8"), headers=list(headers) or None
            )
        return PublishedOrder(
            order_id=order_id,
            event_id=str(model.event_id),
            topic=metadata.topic,
            partition=metadata.partition,
            offset=metadata.offset,
        )
