"""Risk's use cases: the decision for a screened order, published or asked for (what-if).

Routes and the Kafka handler translate to these calls and back; the rules are in domain.py
(`decide`). docs/architecture.md lists where each rule lives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.risk.domain import ReferenceData, RiskPolicy, decide
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


@dataclass(frozen=True)
class RiskRuntime:
    """What the lifespan loaded once: the reference data and the policy in force."""

    refdata: ReferenceData
    policy: Policy
    risk_policy: RiskPolicy


def load_runtime(settings: Settings) -> RiskRuntime:
    """Reference data and policy, refused at start-up when the policy names unknown Country Groups."""
    refdata = load_reference_data(settings.require_data_dir())
    policy = load_policy(settings.policy_file)
    risk_policy = RiskPolicy.from_policy(policy)
    unknown = [g for g in risk_policy.embargo_country_groups if g not in refdata.group_names]
    if unknown:
        raise ValueError(
            f"policy {policy.version}: risk.embargo_country_groups {unknown} are not Country Groups"
        )
    return RiskRuntime(refdata=refdata, policy=policy, risk_policy=risk_policy)


def assess(
    *,
    order: SubmittedOrder,
    classification: Classification,
    screening: Screening,
    refdata: ReferenceData,
    policy: RiskPolicy,
) -> Decision:
    """What-if: the decision, published nowhere."""
    return decide(order, classification, screening, refdata, policy)


def decide_order(*, screened: ScreenedOrder, refdata: ReferenceData, policy: RiskPolicy) -> DecidedOrder:
    """The next stage's envelope: the screened order with its decision."""
    decision = decide(screened.order, screened.classification, screened.screening, refdata, policy)
    return DecidedOrder(
        **derive(screened, SERVICE),
        classification=screened.classification,
        screening=screened.screening,
        decision=decision,
    )
