"""HTTP: ad-hoc screening of one name or a batch, what the loaded lists are, list updates for
on-call, and reviewers' clearances ("not a match")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.screening import MATCHER_BUILD, service
from services.screening.clearing import ClearanceRefused
from services.screening.domain import EntryType, normalise_name
from services.screening.registry import ListSnapshot
from services.screening.service import ScreeningRuntime
from shared.auth import ReviewerDep, require
from shared.events import (
    ClearedMatch,
    CountryCode,
    ListEffect,
    LongText,
    PartyMatch,
    ScreenedList,
    ScreeningClearance,
    Text,
)
from shared.kafka import PublishError
from shared.service import PublishDep, runtime_dependency

router = APIRouter(tags=["screening"])

MAX_BATCH = 1000


def _screenable(value: str) -> str:
    if not normalise_name(value):
        raise ValueError(f"{value!r} has no letters or digits to screen")
    return value


# A party name that leaves something to screen once punctuation and legal forms are set aside.
ScreenableName = Annotated[Text, AfterValidator(_screenable)]


RuntimeDep = Annotated[ScreeningRuntime, Depends(runtime_dependency(ScreeningRuntime))]


# --- screening -----------------------------------------------------------------------------------


class ScreenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ScreenableName
    country: CountryCode | None = None
    type: EntryType | None = None
    # Supporting evidence: a place shared with one of the entry's addresses.
    address: Text | None = None


class ScreenedName(BaseModel):
    name: str
    normalised_tokens: list[str]
    country: str | None
    type: EntryType | None
    address: str | None
    matches: list[PartyMatch]
    cleared_matches: list[ClearedMatch]


class ScreenResponse(ScreenedName):
    policy_version: str
    review_threshold: float
    block_threshold: float
    lists_generation: int
    lists: list[ScreenedList]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parties: Annotated[list[ScreenRequest], Field(min_length=1, max_length=MAX_BATCH)]


class BatchResponse(BaseModel):
    policy_version: str
    review_threshold: float
    block_threshold: float
    lists_generation: int
    lists: list[ScreenedList]
    results: list[ScreenedName]


def _basis(snapshot: ListSnapshot) -> dict[str, Any]:
    """What every screening answer states it was made on: the policy, its thresholds, the lists."""
    policy = snapshot.policy
    return {
        "policy_version": policy.version,
        "review_threshold": policy.review_threshold,
        "block_threshold": policy.block_threshold,
        "lists_generation": snapshot.generation,
        "lists": snapshot.screener.screened_lists(),
    }


def _screen_one(runtime: ScreeningRuntime, snapshot: ListSnapshot, request: ScreenRequest) -> ScreenedName:
    answer = service.screen_name(
        snapshot=snapshot,
        book=runtime.clearances,
        name=request.name,
        country=request.country,
        entry_type=request.type,
        address=request.address,
    )
    return ScreenedName(
        name=request.name,
        normalised_tokens=list(normalise_name(request.name, entry_type=request.type)),
        country=request.country,
        type=request.type,
        address=request.address,
        matches=answer.matches,
        cleared_matches=answer.cleared,
    )


@router.post("/screen", summary="Screen one name against every loaded list", dependencies=[require("viewer")])
async def screen(request: ScreenRequest, runtime: RuntimeDep) -> ScreenResponse:
    snapshot = runtime.snapshot  # one snapshot for the whole answer, even if a swap happens meanwhile
    return ScreenResponse(**_screen_one(runtime, snapshot, request).model_dump(), **_basis(snapshot))


@router.post(
    "/screen/batch",
    summary=f"Screen up to {MAX_BATCH} names against every loaded list",
    dependencies=[require("viewer")],
)
async def screen_batch(request: BatchRequest, runtime: RuntimeDep) -> BatchResponse:
    snapshot = runtime.snapshot

    def run() -> list[ScreenedName]:
        return [_screen_one(runtime, snapshot, party) for party in request.parties]

    # Up to a second of CPU for a full batch: off the event loop, so single screens and probes answer.
    results = await asyncio.to_thread(run) if len(request.parties) > 20 else run()
    return BatchResponse(**_basis(snapshot), results=results)


# --- lists ---------------------------------------------------------------------------------------


class ListOut(BaseModel):
    list_id: str
    name: str
    version: str
    published: str | None
    entries: int
    aliases: int
    effect: ListEffect


class SourceOut(BaseModel):
    source_id: str
    kind: str
    folder: str
    configured_folder: str
    files: list[str]
    version: str
    published: str | None
    age_seconds: float
    entries: int
    aliases: int
    rows_read: int
    rows_merged: int
    rows_skipped: int
    skipped_examples: list[str]
    loaded_at: datetime
    last_update_attempt_at: datetime | None
    last_update_outcome: str
    last_update_success_at: datetime | None
    last_update_error: str | None
    last_update_error_at: datetime | None
    consecutive_update_failures: int
    update_failures_total: int
    lists: list[ListOut]


class ListsResponse(BaseModel):
    policy_version: str
    # "compiled" (mypyc) or "interpreted", and why (see services/screening/__init__.py)
    matcher_build: str
    matcher_build_detail: str
    lists_generation: int
    indexed_at: datetime
    index_build_seconds: float
    changes_unpublished: int
    sources: list[SourceOut]


@router.get("/lists", summary="Loaded list sources: versions, dates, age, counts, skipped rows, updates")
async def lists(runtime: RuntimeDep) -> ListsResponse:
    snapshot = runtime.snapshot
    policy = snapshot.policy
    sources = []
    for loaded in snapshot.sources:
        info = loaded.info
        status = runtime.registry.status[info.kind]
        sources.append(
            SourceOut(
                source_id=info.source_id,
                kind=info.kind,
                folder=info.folder,
                configured_folder=status.configured_folder,
                files=list(info.files),
                version=info.version,
                published=info.published,
                age_seconds=round(runtime.registry.age_seconds(info.kind), 1),
                entries=len(loaded.entries),
                aliases=sum(x.aliases for x in info.lists),
                rows_read=info.rows_read,
                rows_merged=loaded.rows_merged,
                rows_skipped=info.rows_skipped,
                skipped_examples=list(info.skipped_examples),
                loaded_at=status.loaded_at,
                last_update_attempt_at=status.last_attempt_at,
                last_update_outcome=status.last_outcome,
                last_update_success_at=status.last_success_at,
                last_update_error=status.last_error,
                last_update_error_at=status.last_error_at,
                consecutive_update_failures=status.consecutive_failures,
                update_failures_total=status.failures_total,
                lists=[
                    ListOut(
                        list_id=x.list_id,
                        name=x.name,
                        version=x.version,
                        published=x.published,
                        entries=x.entries,
                        aliases=x.aliases,
                        effect=policy.effect(x.list_id),
                    )
                    for x in info.lists
                ],
            )
        )
    return ListsResponse(
        policy_version=policy.version,
        matcher_build=MATCHER_BUILD.build,
        matcher_build_detail=MATCHER_BUILD.detail,
        lists_generation=snapshot.generation,
        indexed_at=snapshot.built_at,
        index_build_seconds=round(snapshot.build_seconds, 3),
        changes_unpublished=len(runtime.changes.unpublished),
        sources=sources,
    )


class EntryRecord(BaseModel):
    source_id: str
    list_name: str
    list_version: str
    published: str | None
    effect: ListEffect
    content_version: str
    name: str
    aliases: list[str]
    weak_aliases: list[str]
    type: EntryType | None
    programs: list[str]
    countries: list[str]
    addresses: list[str]
    details: dict[str, str]


class EntryResponse(BaseModel):
    list_id: str
    entry_id: str
    entry_version: str
    records: list[EntryRecord]


@router.get(
    "/lists/{list_id}/entries/{entry_id}", summary="One list entry, from every source that carries it"
)
async def entry(list_id: str, entry_id: str, runtime: RuntimeDep) -> EntryResponse:
    snapshot = runtime.snapshot
    catalog = snapshot.catalog
    if list_id not in catalog.list_ids():
        raise HTTPException(
            status_code=404, detail=f"list_id {list_id!r} is not loaded; loaded: {sorted(catalog.list_ids())}"
        )
    found = catalog.entries.get((list_id, entry_id))
    if not found:
        raise HTTPException(status_code=404, detail=f"entry_id {entry_id!r} is not on list {list_id!r}")
    infos = {(info.source_id, info.list_id): info for info in catalog.lists}
    return EntryResponse(
        list_id=list_id,
        entry_id=entry_id,
        entry_version=snapshot.entry_versions[(list_id, entry_id)],
        records=[
            EntryRecord(
                source_id=e.source_id,
                list_name=infos[(e.source_id, list_id)].name,
                list_version=infos[(e.source_id, list_id)].version,
                published=infos[(e.source_id, list_id)].published,
                effect=snapshot.policy.effect(list_id),
                content_version=e.content_version,
                name=e.name,
                aliases=list(e.aliases),
                weak_aliases=list(e.weak_aliases),
                type=e.entry_type,
                programs=list(e.programs),
                countries=list(e.countries),
                addresses=list(e.addresses),
                details=dict(e.details),
            )
            for e in found
        ],
    )


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] | None = Field(
        default=None, description="kinds to update; default: every loaded source"
    )


class UpdateOut(BaseModel):
    source: str
    outcome: str
    old_version: str | None
    new_version: str | None
    published: str | None
    entries: int | None
    added: int
    changed: int
    removed: int
    error: str | None

    model_config = ConfigDict(from_attributes=True)


class UpdateResponse(BaseModel):
    lists_generation: int
    outcomes: list[UpdateOut]


@router.post(
    "/lists/update",
    summary="Fetch the lists from their publishers, verify, swap while serving (on-call)",
    dependencies=[require("admin")],
)
async def update_lists(runtime: RuntimeDep, request: UpdateRequest | None = None) -> UpdateResponse:
    loaded = [s.info.kind for s in runtime.snapshot.sources]
    kinds = request.sources if request is not None and request.sources else loaded
    unknown = [k for k in kinds if k not in loaded]
    if unknown:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["body", "sources"],
                    "msg": f"{unknown[0]!r} is not a loaded source; loaded: {loaded}",
                    "type": "value_error",
                }
            ],
        )
    outcomes = await service.update_lists(updater=runtime.updater, kinds=kinds)
    return UpdateResponse(
        lists_generation=runtime.snapshot.generation,
        outcomes=[UpdateOut.model_validate(o) for o in outcomes],
    )


# --- clearances ----------------------------------------------------------------------------------


class ClearanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party_name: ScreenableName
    list_id: Annotated[str, Field(min_length=1, max_length=32)]
    entry_id: Annotated[str, Field(min_length=1, max_length=200)]
    entry_version: Annotated[str, Field(min_length=1, max_length=80)] | None = Field(
        default=None,
        description="the entry version the reviewer saw (a hit's entry_version); default: current",
    )
    reason: LongText


class ClearanceOut(BaseModel):
    key: str
    clearance: ScreeningClearance
    in_force: bool
    current_entry_version: str | None
    why_not_in_force: str | None


@router.post(
    "/clearances", status_code=202, summary="Clear a party name against one list entry (not a match)"
)
async def clear(
    reviewer: ReviewerDep, request: ClearanceRequest, runtime: RuntimeDep, publish: PublishDep
) -> ClearanceOut:
    try:
        key, clearance = await service.clear_match(
            snapshot=runtime.snapshot,
            book=runtime.clearances,
            publish=publish,
            topic=service.clearances_topic(runtime.settings),
            party_name=request.party_name,
            list_id=request.list_id,
            entry_id=request.entry_id,
            entry_version=request.entry_version,
            # Who cleared it is the key's name, never a name sent in the body.
            reviewer=reviewer.name,
            reason=request.reason,
            now=datetime.now(UTC),
        )
    except ClearanceRefused as exc:
        raise HTTPException(status_code=404 if exc.kind == "unknown" else 409, detail=str(exc)) from exc
    except PublishError as exc:
        raise HTTPException(status_code=503, detail=f"the clearance was not published: {exc}") from exc
    return ClearanceOut(
        key=key,
        clearance=clearance,
        in_force=True,
        current_entry_version=clearance.entry_version,
        why_not_in_force=None,
    )


@router.get("/clearances", summary="Reviewers' clearances and whether each is still in force")
async def clearances(
    runtime: RuntimeDep, list_id: str | None = None, entry_id: str | None = None
) -> list[ClearanceOut]:
    states = runtime.clearances.states(runtime.snapshot.entry_versions)
    return [
        ClearanceOut(
            key=s.key,
            clearance=s.clearance,
            in_force=s.in_force,
            current_entry_version=s.current_entry_version,
            why_not_in_force=s.why_not,
        )
        for s in states
        if (list_id is None or s.clearance.list_id == list_id)
        and (entry_id is None or s.clearance.entry_id == entry_id)
    ]
