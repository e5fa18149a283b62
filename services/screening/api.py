"""HTTP: ad-hoc screening of one name, and what the loaded lists are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, field_validator

from services.screening.domain import EntryType, ListCatalog, Screener, normalise_name
from shared.events import CountryCode, ListEffect, PartyMatch, ScreenedList, Text

router = APIRouter(tags=["screening"])


@dataclass
class ScreeningState:
    """Filled by the app's lifespan once the lists are loaded and indexed."""

    catalog: ListCatalog | None = None
    screener: Screener | None = None


def get_state(request: Request) -> ScreeningState:
    state: ScreeningState = request.app.state.screening
    if state.catalog is None or state.screener is None:
        raise HTTPException(status_code=503, detail="screening lists are not loaded yet")
    return state


StateDep = Annotated[ScreeningState, Depends(get_state)]


def get_screener(state: StateDep) -> Screener:
    assert state.screener is not None  # get_state answered 503 otherwise
    return state.screener


def get_catalog(state: StateDep) -> ListCatalog:
    assert state.catalog is not None
    return state.catalog


ScreenerDep = Annotated[Screener, Depends(get_screener)]
CatalogDep = Annotated[ListCatalog, Depends(get_catalog)]


class ScreenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    country: CountryCode | None = None
    type: EntryType | None = None
    # Recorded with the request; not scored: the loaded lists carry countries, not street addresses.
    address: Text | None = None

    @field_validator("name")
    @classmethod
    def _screenable(cls, value: str) -> str:
        if not normalise_name(value):
            raise ValueError(f"{value!r} has no letters or digits to screen")
        return value


class ScreenResponse(BaseModel):
    name: str
    normalised_tokens: list[str]
    country: str | None
    type: EntryType | None
    address: str | None
    policy_version: str
    review_threshold: float
    block_threshold: float
    matches: list[PartyMatch]
    lists: list[ScreenedList]


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
    files: list[str]
    version: str
    published: str | None
    rows_read: int
    rows_skipped: int
    skipped_examples: list[str]
    lists: list[ListOut]


class ListsResponse(BaseModel):
    policy_version: str
    sources: list[SourceOut]


class EntryRecord(BaseModel):
    source_id: str
    list_name: str
    list_version: str
    published: str | None
    effect: ListEffect
    name: str
    aliases: list[str]
    type: EntryType | None
    programs: list[str]
    countries: list[str]
    details: dict[str, str]


class EntryResponse(BaseModel):
    list_id: str
    entry_id: str
    records: list[EntryRecord]


@router.post("/screen", summary="Screen one name against every loaded list")
async def screen(request: ScreenRequest, screener: ScreenerDep) -> ScreenResponse:
    policy = screener.policy
    return ScreenResponse(
        name=request.name,
        normalised_tokens=list(normalise_name(request.name, entry_type=request.type)),
        country=request.country,
        type=request.type,
        address=request.address,
        policy_version=policy.version,
        review_threshold=policy.review_threshold,
        block_threshold=policy.block_threshold,
        matches=screener.screen_name(request.name, request.country, request.type),
        lists=screener.screened_lists(),
    )


@router.get("/lists", summary="Loaded list sources: versions, dates, counts, skipped rows, effects")
async def lists(catalog: CatalogDep, screener: ScreenerDep) -> ListsResponse:
    policy = screener.policy
    return ListsResponse(
        policy_version=policy.version,
        sources=[
            SourceOut(
                source_id=source.source_id,
                kind=source.kind,
                folder=source.folder,
                files=list(source.files),
                version=source.version,
                published=source.published,
                rows_read=source.rows_read,
                rows_skipped=source.rows_skipped,
                skipped_examples=list(source.skipped_examples),
                lists=[
                    ListOut(
                        list_id=info.list_id,
                        name=info.name,
                        version=info.version,
                        published=info.published,
                        entries=info.entries,
                        aliases=info.aliases,
                        effect=policy.effect(info.list_id),
                    )
                    for info in source.lists
                ],
            )
            for source in catalog.sources
        ],
    )


@router.get(
    "/lists/{list_id}/entries/{entry_id}", summary="One list entry, from every source that carries it"
)
async def entry(list_id: str, entry_id: str, catalog: CatalogDep, screener: ScreenerDep) -> EntryResponse:
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
        records=[
            EntryRecord(
                source_id=e.source_id,
                list_name=infos[(e.source_id, list_id)].name,
                list_version=infos[(e.source_id, list_id)].version,
                published=infos[(e.source_id, list_id)].published,
                effect=screener.policy.effect(list_id),
                name=e.name,
                aliases=list(e.aliases),
                type=e.entry_type,
                programs=list(e.programs),
                countries=list(e.countries),
                details=dict(e.details),
            )
            for e in found
        ],
    )
