"""Risk's use cases: the decision for a screened order (published, with the licence ledger, or
asked for as a what-if), the licences held, the policy reload and the Part 746 update.

Routes and the Kafka handler translate to these calls and back; the rules are in domain.py
(`assess`, `finish`) and the modules it names; docs/architecture.md lists where each rule lives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.risk import part746 as part746_updater
from services.risk.domain import Assessment, Coverage, ReferenceData, RiskPolicy, assess, decide, finish
from services.risk.ledger import Drawdown, Ledger, Licence, LicenceSpec, Settlement
from services.risk.part746 import Part746, Part746Error
from services.risk.refdata import load_reference_data
from shared.events import (
    Classification,
    DecidedOrder,
    Decision,
    ScreenedOrder,
    Screening,
    SubmittedOrder,
    derive,
)
from shared.policy import Policy, load_policy
from shared.settings import Settings

SERVICE = "risk"
log = logging.getLogger("exportwatch.risk")


class PolicyRefused(ValueError):
    """A policy file that does not load; the message names the key at fault."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RiskRuntime:
    """What the lifespan loaded: reference data, the policy and Part 746 in force (each replaced
    whole by a reload or an update; a decision reads each once), and the licence ledger."""

    refdata: ReferenceData
    policy: Policy
    risk_policy: RiskPolicy
    policy_file: Path
    part746: Part746 | None
    part746_missing: str
    part746_cache_dir: Path
    ecfr_api_url: str
    ledger: Ledger | None = None
    part746_min_codes: int = part746_updater.MIN_CODES
    clock: Callable[[], datetime] = _now
    update_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def require_ledger(self) -> Ledger:
        if self.ledger is None:
            raise RuntimeError("the licence ledger is not open")
        return self.ledger


def load_risk_policy(path: Path, refdata: ReferenceData) -> tuple[Policy, RiskPolicy]:
    """The policy file, refused with the key at fault (PolicyRefused)."""
    try:
        policy = load_policy(path)
        risk_policy = RiskPolicy.from_policy(policy)
    except (OSError, ValueError) as exc:
        raise PolicyRefused(str(exc)) from exc
    unknown = [g for g in risk_policy.embargo_country_groups if g not in refdata.group_names]
    if unknown:
        raise PolicyRefused(
            f"policy {policy.version}: risk.embargo_country_groups {unknown} are not Country Groups"
        )
    return policy, risk_policy


def load_runtime(settings: Settings) -> RiskRuntime:
    """Reference data, policy and the newest cached Part 746 (the ledger is opened by the app)."""
    refdata = load_reference_data(settings.require_data_dir())
    policy, risk_policy = load_risk_policy(settings.policy_file, refdata)
    loaded, missing = part746_updater.load_cached(settings.part746_cache_dir)
    if loaded is None:
        log.warning("Part 746 supplements not loaded: %s", missing)
    return RiskRuntime(
        refdata=refdata,
        policy=policy,
        risk_policy=risk_policy,
        policy_file=settings.policy_file,
        part746=loaded,
        part746_missing=missing or "",
        part746_cache_dir=settings.part746_cache_dir,
        ecfr_api_url=settings.ecfr_api_url,
    )


# --- decisions ---------------------------------------------------------------------------------


def assess_order(
    *, order: SubmittedOrder, classification: Classification, screening: Screening, runtime: RiskRuntime
) -> Decision:
    """What-if: the decision, published nowhere, the ledger untouched (licence-needing lines stay
    LICENSE_REQUIRED)."""
    return decide(
        order,
        classification,
        screening,
        runtime.refdata,
        runtime.risk_policy,
        runtime.part746,
        runtime.part746_missing,
    )


async def decide_order(*, screened: ScreenedOrder, runtime: RiskRuntime) -> DecidedOrder:
    """The next stage's envelope: the screened order with its decision, the licence ledger drawn
    down (once per line) for the lines a licence held covers."""
    policy = runtime.risk_policy
    assessment = _assess(screened, runtime, policy)
    coverage = await runtime.require_ledger().settle(
        screened.order, assessment.needs, blocked=assessment.blocked, now=runtime.clock()
    )
    return _decided(screened, assessment, coverage, policy)


async def decide_orders(*, orders: Sequence[ScreenedOrder], runtime: RiskRuntime) -> list[DecidedOrder]:
    """decide_order for a whole consumer poll, the ledger settled in one transaction
    (Ledger.settle_all; it raises, with nothing written, when the poll must go one by one)."""
    policy = runtime.risk_policy
    assessments = [_assess(screened, runtime, policy) for screened in orders]
    coverages = await runtime.require_ledger().settle_all(
        [Settlement(s.order, a.needs, a.blocked) for s, a in zip(orders, assessments, strict=True)],
        now=runtime.clock(),
    )
    return [
        _decided(screened, assessment, coverage, policy)
        for screened, assessment, coverage in zip(orders, assessments, coverages, strict=True)
    ]


def _assess(screened: ScreenedOrder, runtime: RiskRuntime, policy: RiskPolicy) -> Assessment:
    return assess(
        screened.order,
        screened.classification,
        screened.screening,
        runtime.refdata,
        policy,
        runtime.part746,
        runtime.part746_missing,
    )


def _decided(
    screened: ScreenedOrder, assessment: Assessment, coverage: dict[int, Coverage], policy: RiskPolicy
) -> DecidedOrder:
    return DecidedOrder(
        **derive(screened, SERVICE),
        classification=screened.classification,
        screening=screened.screening,
        decision=finish(assessment, coverage, policy),
    )


# --- commands ----------------------------------------------------------------------------------


async def reload_policy(runtime: RiskRuntime) -> Policy:
    """Read the policy file again and put it in force; the one in force stays if it is refused."""
    async with runtime.update_lock:
        policy, risk_policy = await asyncio.to_thread(load_risk_policy, runtime.policy_file, runtime.refdata)
        runtime.policy, runtime.risk_policy = policy, risk_policy
    log.info("policy %s in force (reloaded)", policy.version)
    return policy


async def update_part746(
    runtime: RiskRuntime, *, date: str | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> Part746:
    """Fetch, verify, cache and swap Part 746; on failure (Part746Error) the one in use stays."""
    async with runtime.update_lock:
        async with part746_updater.api_client(runtime.ecfr_api_url, transport=transport) as client:
            loaded = await part746_updater.update_part746(
                client, runtime.part746_cache_dir, date=date, min_codes=runtime.part746_min_codes
            )
        runtime.part746, runtime.part746_missing = loaded, ""
    log.info("Part 746 %s in force", loaded.version)
    return loaded


async def add_licence(runtime: RiskRuntime, spec: LicenceSpec) -> Licence:
    return await runtime.require_ledger().add_licence(spec, runtime.clock())


async def list_licences(runtime: RiskRuntime) -> list[Licence]:
    return await runtime.require_ledger().licences()


async def get_licence(runtime: RiskRuntime, number: str) -> tuple[Licence, list[Drawdown]] | None:
    return await runtime.require_ledger().licence(number)


__all__ = ["Part746Error", "PolicyRefused", "RiskRuntime", "decide_order", "load_runtime"]
