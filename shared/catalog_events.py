"""The product catalog's event (docs/architecture.md, "Contracts"): `catalog.products.v1`, named with
the other topics in shared/events.py. The classifier instance that stores a SKU's new version in the
catalog database publishes it; every instance follows the topic in full (compacted, keyed by SKU), so
each one classifies with the same catalog without a restart.

Additive changes only, as for every event of the contract.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from shared.events import LongText, Timestamp
from shared.finite import Event


class CatalogEntry(Event):
    """A SKU's classification as the product catalog holds it: `version` n of the SKU, stored by
    one classifier instance in the catalog database and carried to every other one. The ECCN is
    the canonical form the storing instance checked against its CCL."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["catalog.product.v1"] = Field(default="catalog.product.v1", alias="schema")
    sku: Annotated[str, Field(min_length=1, max_length=128)]
    version: Annotated[int, Field(ge=1)]
    eccn: Annotated[str, Field(min_length=1, max_length=40)]
    classified_by: Annotated[str, Field(min_length=1, max_length=256)]
    classified_at: Timestamp
    rationale: LongText | None = None
    reference_documents: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        default_factory=list, max_length=50
    )
    # This version takes the SKU out of the catalog (by whom: classified_by; why: rationale); `eccn`
    # is the one it had. A later version classifies it again.
    withdrawn: bool = False
