"""How a scenario runs and what is checked after it.

A scenario publishes a wave of valid orders with poison mixed in, waits until the pipeline is in
the middle of it, injects its fault, waits for every order of the wave to be decided, then checks
the invariants on what records holds (through its HTTP API only):

- every order has exactly one current decision, for the version that was sent, and it is the
  decision the same sample order got before any fault;
- its trail holds each of the four steps once (no event recorded twice) and its chain verifies;
  (in the order records received them: each comes from its own topic)
- every poison message has exactly one dead letter of an expected kind, a message the contract
  accepts (unknown fields) has none, and no valid order has one.

What the fault did to the bus is measured too: how many events were published more than once
(redeliveries that records had to deduplicate), and how readiness moved.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.events import (
    ALL_TOPICS,
    TOPIC_CLASSIFIED,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_SCREENED,
    TOPIC_SUBMITTED,
)
from tests.faults.harness import INSTANCES, FaultStack
from tests.faults.traffic import (
    STAGES,
    Order,
    RecordsApi,
    Wave,
    dead_letter_key,
    event_ids_between,
    group_lag,
    make_order,
    make_poison,
    publish,
    topic_ends,
)

# What records logs when an event it already holds comes again (services/records/handler.py).
DEDUPLICATED = "already recorded; redelivery ignored"
OUTPUT_TOPICS = [TOPIC_CLASSIFIED, TOPIC_SCREENED, TOPIC_DECIDED, TOPIC_DEADLETTER]


@dataclass
class Outcome:
    """One row of the fault table."""

    scenario: str
    orders: int
    poison: int
    fault: dict[str, Any]
    seconds_to_all_decided: float
    published: dict[str, int]
    redelivered: dict[str, int]
    # Events records received again and recognised as already recorded (its own log's count).
    deduplicated: int
    decided: int
    wrong_decision: int
    trail_problems: int
    dead_letters: int
    readiness: dict[str, str]
    problems: list[str] = field(default_factory=list)


@dataclass
class Ledger:
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    waves: list[Wave] = field(default_factory=list)
    # Sample index -> (decision, reason codes) seen before any fault: the reference.
    baseline: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    # Poison kind -> what became of its messages over all waves ("service:error_type" or "decided").
    poison: dict[str, dict[str, int]] = field(default_factory=dict)
    # Valid orders a service gave up on (HandlerError) during an outage, replayed as on-call would.
    replayed: set[str] = field(default_factory=set)
    _next: int = 0

    def new_wave(self, name: str, size: int) -> Wave:
        orders = [make_order(self.run, self._next + i) for i in range(size)]
        self._next += size
        wave = Wave(name, orders, make_poison(self.run, len(self.waves)))
        self.waves.append(wave)
        return wave

    @property
    def orders(self) -> list[Order]:
        return [o for w in self.waves for o in w.orders]

    def report(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "orders": len(self.orders),
            "poison_messages": sum(len(w.poison) for w in self.waves),
            "outcomes": [o.__dict__ for o in self.outcomes],
            "poison_outcomes": self.poison,
        }

    def table(self) -> str:
        rows = [
            "| scenario | orders (+poison) | fault | all decided after | published twice | records deduplicated | "
            "decided once, same decision | trails valid | dead letters | readiness |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for o in self.outcomes:
            fault = ", ".join(f"{k} {v}" for k, v in o.fault.items())
            redelivered = ", ".join(f"{k.split('.')[1]} {v}" for k, v in o.redelivered.items() if v) or "0"
            rows.append(
                f"| {o.scenario} | {o.orders} (+{o.poison}) | {fault} | {o.seconds_to_all_decided:.1f} s | "
                f"{redelivered} | {o.deduplicated} | {o.decided - o.wrong_decision}/{o.orders} | "
                f"{o.orders - o.trail_problems}/{o.orders} | {o.dead_letters} | "
                f"{'; '.join(f'{k}: {v}' for k, v in o.readiness.items())} |"
            )
        rows += ["", "| poison | messages | what became of them |", "| --- | --- | --- |"]
        for kind, outcome in self.poison.items():
            became = ", ".join(f"{what} x{n}" for what, n in sorted(outcome.items()))
            rows.append(f"| {kind} | {len(self.waves)} | {became} |")
        return "\n".join(rows)


def interleave(wave: Wave, seed: int) -> list[tuple[str, bytes]]:
    messages = [(o.order_id, o.value) for o in wave.orders]
    rng = random.Random(seed)
    for poison in wave.poison:
        messages.insert(rng.randrange(len(messages) + 1), (poison.key, poison.value))
    return messages


def records_api(stack: FaultStack, avoid: str | None = None) -> RecordsApi:
    """A records instance's API, not the one a scenario is about to hurt."""
    instance = "records-2" if avoid == "records" else "records"
    return RecordsApi(stack.url(instance))


async def wait_decided(
    api: RecordsApi, orders: list[Order], *, fraction: float, timeout: float, what: str
) -> float:
    """Seconds until `fraction` of `orders` have a decision; TimeoutError saying how many."""
    started = time.monotonic()
    wanted = {o.order_id for o in orders}
    need = max(1, int(len(wanted) * fraction))
    done = 0
    last_error: Exception | None = None
    while True:
        try:
            decisions = await api.decisions()
            done = sum(1 for order_id in wanted if decisions.get(order_id))
        except Exception as exc:  # records may be restarting: keep asking until the deadline
            last_error = exc
        else:
            last_error = None
        if done >= need:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: {done}/{len(wanted)} decided after {timeout:.0f}s ({last_error!r})")
        await asyncio.sleep(0.5)


GROUP_INPUTS = {
    "classifier": [TOPIC_SUBMITTED],
    "screening": [TOPIC_CLASSIFIED],
    "risk": [TOPIC_SCREENED],
    "records": list(ALL_TOPICS),
}


async def in_flight(stack: FaultStack, *groups: str) -> int:
    """Messages the groups have read or not yet read, but not committed: their work in flight."""
    return await group_lag(stack.broker.bootstrap_servers, {g: GROUP_INPUTS[g] for g in groups})


async def wait_caught_up(stack: FaultStack, timeout: float) -> None:
    started = time.monotonic()
    while (lag := await in_flight(stack, *GROUP_INPUTS)) > 0:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"consumer groups still {lag} messages behind after {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def check_orders(
    api: RecordsApi,
    orders: list[Order],
    baseline: dict[int, Any],
    *,
    listed: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Per order: one current decision for the version sent, equal to the baseline; a trail with
    each step once whose chain verifies, its decided step the current decision.

    With `listed` (every order's decision from `GET /orders`) one request an order instead of two:
    the decision is read from the trail's decided step and must be the listed one."""
    semaphore = asyncio.Semaphore(8)
    problems: list[str] = []
    wrong = trail_bad = decided = 0

    async def one(order: Order) -> None:
        nonlocal wrong, trail_bad, decided
        async with semaphore:
            trail = await api.get(f"/orders/{order.order_id}/trail")
            current = await api.get(f"/orders/{order.order_id}") if listed is None else None
        steps = trail["steps"]
        ids = [s["event_id"] for s in steps]
        decided_step = next((s for s in steps if s["stage"] == "decided"), None)
        if current is None:
            decision = decided_step["payload"]["decision"] if decided_step else None
            version_ok = decision is not None and decision["decision"] == (listed or {}).get(order.order_id)
            current_event = decided_step["event_id"] if decided_step else None
        else:
            decision = current["decision"]
            version_ok = current["submitted_event_id"] == order.event_id
            current_event = current["decided_event_id"]
        if decision is not None and version_ok:
            decided += 1
            codes = tuple(sorted({r["code"] for r in decision["reasons"]}))
            expected = baseline.get(order.template)
            if expected is not None and (decision["decision"], codes) != expected:
                wrong += 1
                problems.append(f"{order.order_id}: {decision['decision']} {codes}, expected {expected}")
        else:
            problems.append(f"{order.order_id}: no current decision for event {order.event_id}")
        if (
            # Each step once; their order is the order records received them in (one topic each,
            # read by whichever records instance holds that partition), not the pipeline's.
            sorted(s["stage"] for s in steps) != sorted(STAGES)
            or len(set(ids)) != len(ids)
            or not trail["chain_valid"]
            or {s["submitted_event_id"] for s in steps} != {order.event_id}
            or decided_step is None
            or current_event != decided_step["event_id"]
        ):
            trail_bad += 1
            problems.append(
                f"{order.order_id}: trail {[s['stage'] for s in steps]} chain_valid={trail['chain_valid']} "
                f"{trail['chain_problems']}"
            )

    await asyncio.gather(*(one(o) for o in orders))
    return {"decided": decided, "wrong": wrong, "trail_bad": trail_bad, "problems": problems}


async def check_dead_letters(api: RecordsApi, ledger: Ledger) -> dict[str, Any]:
    """Exactly one dead letter per poison message that must be refused, of an expected kind; none
    for a message the contract accepts; none for a valid order. Over every wave so far."""
    letters = await api.dead_letters()
    by_key = Counter(dead_letter_key(letter) for letter in letters)
    types: dict[str | None, set[str]] = {}
    for letter in letters:
        types.setdefault(dead_letter_key(letter), set()).add(f"{letter['service']}:{letter['error_type']}")
    problems: list[str] = []
    by_kind: dict[str, Counter[str]] = {}
    for wave in ledger.waves:
        for poison in wave.poison:
            outcome = by_kind.setdefault(poison.kind, Counter())
            outcome.update(types.get(poison.key, set()) or {"no dead letter"})
    valid = {o.order_id for o in ledger.orders}
    for key in by_key:
        # A valid order dead-lettered by risk and replayed is its own test's failure (test_faults.py).
        if key in valid and not (key in ledger.replayed and types[key] == {"risk:HandlerError"}):
            problems.append(f"valid order {key} was dead-lettered: {types[key]}")
    for wave in ledger.waves:
        for poison in wave.poison:
            count = by_key.get(poison.key, 0)
            if not poison.expected_errors:
                if count:
                    problems.append(f"{poison.kind} ({poison.key}) was dead-lettered: {types[poison.key]}")
                continue
            kinds = {t.split(":")[1] for t in types.get(poison.key, set())}
            if count != 1 or not kinds <= poison.expected_errors:
                problems.append(f"{poison.kind} ({poison.key}): {count} dead letters {sorted(kinds)}")
    return {"count": len(letters), "problems": problems, "by_kind": by_kind}


async def run_scenario(
    stack: FaultStack,
    ledger: Ledger,
    name: str,
    fault: Callable[[Wave], Awaitable[dict[str, Any]]],
    *,
    size: int,
    hurt: str | None = None,
    inject_at: float = 0.2,
    hold_back: int = 0,
    timeout: float = 240.0,
) -> Outcome:
    """Publish a wave, inject `fault` once `inject_at` of it is decided, wait, check, measure.
    With `inject_at=0` the fault starts while the wave is being published (it decides its moment);
    with `hold_back` the fault publishes the wave's last orders itself, while it lasts."""
    wave = ledger.new_wave(name, size)
    topics = [TOPIC_SUBMITTED, *OUTPUT_TOPICS]
    before = await topic_ends(stack.broker.bootstrap_servers, topics)
    dedup_before = stack.count_in_logs(DEDUPLICATED, "records", "records-2")
    wave.published_at = time.monotonic()
    messages = interleave(wave, len(ledger.waves))
    # The last `hold_back` orders are the fault's to publish (while it lasts): wave.extra["held_back"].
    held = {o.order_id for o in wave.orders[len(wave.orders) - hold_back :]} if hold_back else set()
    wave.extra["held_back"] = [m for m in messages if m[0] in held]
    publishing = asyncio.create_task(
        publish(stack.broker.bootstrap_servers, TOPIC_SUBMITTED, [m for m in messages if m[0] not in held])
    )
    api = records_api(stack, avoid=hurt)
    try:
        if inject_at > 0:
            await publishing
            await wait_decided(api, wave.orders, fraction=inject_at, timeout=timeout, what=f"{name}: warm-up")
        fault_started = time.monotonic()
        measured = await fault(wave)
        await publishing
        await wait_decided(api, wave.orders, fraction=1.0, timeout=timeout, what=f"{name}: recovery")
        seconds = time.monotonic() - wave.published_at
        # A decision can be recorded before another step of the same order: records reads each topic
        # on its own. The checks wait until every group has committed everything it was sent.
        await wait_caught_up(stack, timeout=timeout)
        await asyncio.to_thread(stack.wait_all_ready, 300)
        after = await topic_ends(stack.broker.bootstrap_servers, topics)
        ids = await event_ids_between(stack.broker.bootstrap_servers, before, after)
        orders = await check_orders(api, wave.orders, ledger.baseline)
        letters = await check_dead_letters(api, ledger)
    finally:
        await api.close()
    readiness = {instance: _readiness_summary(stack, instance, fault_started) for instance in INSTANCES}
    outcome = Outcome(
        scenario=name,
        orders=len(wave.orders),
        poison=len(wave.poison),
        fault=measured,
        seconds_to_all_decided=seconds,
        published={topic: len(found) for topic, found in ids.items()},
        deduplicated=stack.count_in_logs(DEDUPLICATED, "records", "records-2") - dedup_before,
        redelivered={
            topic: len(found) - len(set(found)) for topic, found in ids.items() if topic in OUTPUT_TOPICS
        },
        decided=orders["decided"],
        wrong_decision=orders["wrong"],
        trail_problems=orders["trail_bad"],
        dead_letters=letters["count"],
        readiness=readiness,
        problems=orders["problems"][:20] + letters["problems"],
    )
    wave.extra["fault_started"] = fault_started
    ledger.outcomes.append(outcome)
    return outcome


def _readiness_summary(stack: FaultStack, instance: str, since: float) -> str:
    samples = stack.readiness.since(instance, since)
    refused = sum(1 for s in samples if not s.ready and s.detail.startswith("503"))
    silent = sum(1 for s in samples if not s.ready and not s.detail.startswith("503"))
    if not refused and not silent:
        return "ready throughout"
    down = stack.readiness.not_ready_seconds(instance, since)
    return f"not ready {down:.0f} s ({'503' if refused else ''}{', ' if refused and silent else ''}{'no answer' if silent else ''})"


def answered_not_ready(stack: FaultStack, instance: str, since: float) -> bool:
    """The instance itself said 503 at least once (not merely: did not answer)."""
    return any(not s.ready and s.detail.startswith("503") for s in stack.readiness.since(instance, since))
