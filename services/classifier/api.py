"""HTTP API of the classifier: ad-hoc classification, ECCN look-up, the product catalog, the CCL
and its eCFR update."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from services.classifier import service
from services.classifier.catalog import MAX_DOCUMENTS, CatalogConflict, CatalogImportError, products_csv
from services.classifier.domain import (
    EAR99,
    EAR99_HEADING,
    REASONS_FOR_CONTROL,
    InvalidEccn,
    check_eccn,
    item_controls,
    parse_eccn,
)
from services.classifier.ecfr import EcfrError
from services.classifier.eu_annex import paragraph_texts
from services.classifier.service import ClassifierRuntime, InvalidField
from shared.auth import require
from shared.events import LineClassification, LongText, Text
from shared.service import runtime_dependency

log = logging.getLogger("exportwatch.classifier")

router = APIRouter()

HsCode = Annotated[str, Field(pattern=r"^\d{4}(\.?\d{2}){0,3}$")]
EccnText = Annotated[str, Field(min_length=1, max_length=40)]
Sku = Annotated[str, Path(min_length=1, max_length=128)]


RuntimeDep = Annotated[ClassifierRuntime, Depends(runtime_dependency(ClassifierRuntime))]


def _unprocessable(location: list[str | int], value: object, message: str) -> NoReturn:
    # The shape of FastAPI's own 422 body, so clients read one format.
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"type": "value_error", "loc": location, "msg": message, "input": value}],
    )


def _refused(exc: InvalidField) -> NoReturn:
    _unprocessable(exc.location, exc.value, str(exc))


# --- classification ----------------------------------------------------------------------------


class ClassifyRequest(BaseModel):
    description: LongText
    sku: Text | None = None
    # Ranks suggestions (the HS heading's subject and usual CCL categories); it never classifies:
    # no official HS <-> ECCN correlation exists (docs/architecture.md, "Reference data").
    hs_code: HsCode | None = None
    eccn: EccnText | None = Field(default=None, description="The ERP's ECCN, if any (or EAR99)")


class ClassifyResponse(LineClassification):
    ccl_version: str
    catalog_version: str


@router.post(
    "/classify",
    tags=["classification"],
    summary="Classify one line as the handler would",
    dependencies=[require("viewer")],
)
async def classify(body: ClassifyRequest, runtime: RuntimeDep) -> ClassifyResponse:
    reference, snapshot = runtime.reference, runtime.catalog.snapshot
    line = service.classify_one(
        reference=reference,
        snapshot=snapshot,
        description=body.description,
        sku=body.sku,
        hs_code=body.hs_code,
        eccn=body.eccn,
    )
    return ClassifyResponse(
        **line.model_dump(), ccl_version=reference.ccl.version, catalog_version=snapshot.version
    )


# --- ECCN look-up ------------------------------------------------------------------------------


class LicenseRequirementOut(BaseModel):
    reason: str | None
    reason_name: str | None
    control: str = Field(description="The License Requirements row as published")
    destinations: str = Field(description="Its Country Chart cell: a column, or a pointer to a section")
    country_chart_column: str | None
    scope: str
    applies: bool = Field(description="Whether the row applies to the ECCN asked for (with its paragraph)")


class LicenseExceptionOut(BaseModel):
    symbol: str
    text: str
    available: bool
    scope: str
    applies: bool


class EccnResponse(BaseModel):
    eccn: str
    entry: str
    heading: str
    subject_to_itar: bool
    reasons_for_control: list[str] = Field(description="For the ECCN asked for, paragraph included")
    country_chart_columns: list[str] = Field(description="For the ECCN asked for, paragraph included")
    license_exceptions: list[str] = Field(description="May be available for the ECCN asked for")
    entry_reasons_for_control: list[str]
    entry_country_chart_columns: list[str]
    reason_for_control_text: str | None
    license_requirements: list[LicenseRequirementOut]
    license_exception_flags: list[LicenseExceptionOut]
    related_controls: str | None
    paragraph_text: str | None
    paragraph_text_source: str | None = Field(
        description="ccl, or eu_annex_i: the EU Annex I paragraph with the same number, where the loaded "
        "CCL has no text for it (a lead to the wording, not the CCL's own)"
    )
    ccl_version: str


@router.get("/eccn/{code}", tags=["classification"], summary="What the CCL says about an ECCN")
async def eccn(code: Annotated[str, Path(max_length=40)], runtime: RuntimeDep) -> EccnResponse:
    parsed = parse_eccn(code)
    if isinstance(parsed, InvalidEccn):
        _unprocessable(["path", "code"], code, parsed.message)
    reference = runtime.reference
    ccl = reference.ccl
    if parsed.is_ear99:
        return EccnResponse(
            eccn=EAR99,
            entry=EAR99,
            heading=EAR99_HEADING,
            subject_to_itar=False,
            reasons_for_control=[],
            country_chart_columns=[],
            license_exceptions=[],
            entry_reasons_for_control=[],
            entry_country_chart_columns=[],
            reason_for_control_text=None,
            license_requirements=[],
            license_exception_flags=[],
            related_controls=None,
            paragraph_text=None,
            paragraph_text_source=None,
            ccl_version=ccl.version,
        )
    entry = ccl.get(parsed.base)
    if entry is None:
        missing = check_eccn(ccl, code)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, missing.message if isinstance(missing, InvalidEccn) else code
        )
    controls = item_controls(entry, parsed)
    found = paragraph_texts(entry, reference.eu_annex).get(".".join(parsed.paragraphs))
    text, text_source = found if found is not None else (None, None)
    return EccnResponse(
        eccn=parsed.code,
        entry=entry.eccn,
        heading=entry.heading,
        subject_to_itar=entry.itar_pointer,
        reasons_for_control=list(controls.reasons_for_control),
        country_chart_columns=list(controls.country_chart_columns),
        license_exceptions=list(controls.license_exceptions),
        entry_reasons_for_control=list(entry.reasons_for_control),
        entry_country_chart_columns=list(entry.country_chart_columns),
        reason_for_control_text=entry.reason_for_control_text,
        license_requirements=[
            LicenseRequirementOut(
                reason=row.reason,
                reason_name=REASONS_FOR_CONTROL.get(row.reason or ""),
                control=row.control,
                destinations=row.destinations,
                country_chart_column=row.column,
                scope=row.scope.describe(),
                applies=row in controls.requirements,
            )
            for row in entry.license_requirements
        ],
        license_exception_flags=[
            LicenseExceptionOut(
                symbol=flag.symbol,
                text=flag.text,
                available=flag.available,
                scope=flag.scope.describe(),
                applies=flag.symbol in controls.license_exceptions,
            )
            for flag in entry.license_exceptions
        ],
        related_controls=entry.related_controls,
        paragraph_text=text,
        paragraph_text_source=text_source,
        ccl_version=ccl.version,
    )


# --- the product catalog -----------------------------------------------------------------------


class ProductIn(BaseModel):
    eccn: EccnText
    classified_by: Text
    rationale: LongText | None = None
    reference_documents: list[Text] = Field(
        default_factory=list,
        max_length=MAX_DOCUMENTS,
        description="What the classification rests on: CCATS numbers, data sheets, manufacturer statements",
    )


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    version: int
    eccn: str
    classified_by: str
    classified_at: datetime
    rationale: str | None
    reference_documents: list[str]
    # This version took the SKU out of the catalog (classified_by: who; rationale: why).
    withdrawn: bool = False


class ImportOut(BaseModel):
    created: list[str]
    unchanged: list[str]
    catalog_version: str


def _not_in_catalog(sku: str) -> NoReturn:
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"SKU {sku!r} is not in the product catalog")


@router.get("/products", tags=["catalog"], summary="Current classifications, optionally of one ECCN")
async def list_products(
    runtime: RuntimeDep,
    eccn: Annotated[
        str | None,
        Query(max_length=40, description="An entry (6A003: all its paragraphs) or a paragraph (6A003.b.4)"),
    ] = None,
) -> list[ProductOut]:
    products = list(runtime.catalog.snapshot.products.values())
    if eccn is not None:
        try:
            products = service.products_within(products, eccn)
        except InvalidField as exc:
            _refused(exc)
    return [ProductOut.model_validate(product) for product in products]


@router.get(
    "/products/export",
    tags=["catalog"],
    summary="The catalog as CSV (what /products/import reads), current versions or the full history",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_products(
    runtime: RuntimeDep,
    history: Annotated[bool, Query(description="Every version of every SKU, not only the current")] = False,
) -> Response:
    if history:
        products = await runtime.catalog.all_versions()
    else:
        products = list(runtime.catalog.snapshot.products.values())
    return Response(
        products_csv(products),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="catalog.csv"',
            "x-catalog-version": runtime.catalog.snapshot.version,
        },
    )


@router.get("/products/{sku}", tags=["catalog"], summary="The current classification of a SKU")
async def get_product(sku: Sku, runtime: RuntimeDep) -> ProductOut:
    # What the handler classifies with (every instance's stored versions), not this instance's database.
    product = runtime.catalog.current(sku)
    if product is None:
        _not_in_catalog(sku)
    if product.withdrawn:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"SKU {sku!r} was withdrawn from the product catalog (version {product.version}; "
            f"GET /products/{{sku}}/history has every version)",
        )
    return ProductOut.model_validate(product)


@router.delete(
    "/products/{sku}",
    tags=["catalog"],
    summary="Withdraw a SKU from the catalog: a new version that takes it out (its history stays)",
    responses={404: {"description": "the catalog never had the SKU"}, 409: {"description": "retry"}},
    dependencies=[require("reviewer")],
)
async def withdraw_product(
    sku: Sku,
    runtime: RuntimeDep,
    withdrawn_by: Annotated[Text, Query(min_length=1, description="Who withdraws it")],
    reason: Annotated[LongText | None, Query(description="Why (kept as the version's rationale)")] = None,
) -> ProductOut:
    try:
        outcome = await service.withdraw_product(
            catalog=runtime.catalog, sku=sku, withdrawn_by=withdrawn_by, reason=reason, now=datetime.now(UTC)
        )
    except CatalogConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if outcome is None:
        _not_in_catalog(sku)
    return ProductOut.model_validate(outcome[0])


@router.put(
    "/products/{sku}",
    tags=["catalog"],
    summary="Classify a SKU: a new version (201), or 200 if it already says exactly this",
    responses={201: {"model": ProductOut}, 409: {"description": "concurrent write; retry"}},
    dependencies=[require("reviewer")],
)
async def put_product(sku: Sku, body: ProductIn, runtime: RuntimeDep, response: Response) -> ProductOut:
    try:
        product, created = await service.put_product(
            catalog=runtime.catalog,
            ccl=runtime.ccl,
            sku=sku,
            eccn=body.eccn,
            classified_by=body.classified_by,
            rationale=body.rationale,
            reference_documents=body.reference_documents,
            now=datetime.now(UTC),
        )
    except InvalidField as exc:
        _refused(exc)
    except CatalogConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ProductOut.model_validate(product)


@router.get("/products/{sku}/history", tags=["catalog"], summary="Every version of a SKU, oldest first")
async def product_history(sku: Sku, runtime: RuntimeDep) -> list[ProductOut]:
    versions = await runtime.catalog.history(sku)
    if not versions:
        _not_in_catalog(sku)
    return [ProductOut.model_validate(product) for product in versions]


@router.post(
    "/products/import",
    tags=["catalog"],
    summary="Import a CSV (sku,eccn,classified_by,rationale[,reference_documents]): every row or, "
    "on any bad row, none",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
    dependencies=[require("reviewer")],
)
async def import_products(request: Request, runtime: RuntimeDep) -> ImportOut:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("text/csv", "text/plain"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"content-type {media_type!r}: send the CSV as text/csv"
        )
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _unprocessable(["body"], None, f"the CSV is not UTF-8: {exc}")
    try:
        result = await service.import_products(
            catalog=runtime.catalog, ccl=runtime.ccl, text=text, now=datetime.now(UTC)
        )
    except CatalogImportError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"type": "value_error", "loc": ["body"], "msg": error} for error in exc.errors],
        ) from exc
    except CatalogConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return ImportOut(
        created=result.created, unchanged=result.unchanged, catalog_version=runtime.catalog.snapshot.version
    )


# --- status ------------------------------------------------------------------------------------


class CclOut(BaseModel):
    version: str
    issue_date: str
    source: str
    eu_annex_version: str | None
    entries: int
    entries_by_category: dict[str, int]
    itar_pointer_entries: list[str]
    warnings: list[str]
    catalog_version: str
    catalog_skus: int
    suggestion_texts: int


@router.get("/ccl", tags=["classification"], summary="The loaded CCL: version, counts and data warnings")
async def ccl_status(runtime: RuntimeDep) -> CclOut:
    reference = runtime.reference
    ccl = reference.ccl
    by_category: dict[str, int] = {}
    for name in sorted(ccl.entries):
        by_category[name[0]] = by_category.get(name[0], 0) + 1
    snapshot = runtime.catalog.snapshot
    return CclOut(
        version=ccl.version,
        issue_date=ccl.issue_date,
        source=ccl.source,
        eu_annex_version=reference.eu_annex.version if reference.eu_annex else None,
        entries=len(ccl.entries),
        entries_by_category=by_category,
        itar_pointer_entries=sorted(e.eccn for e in ccl.entries.values() if e.itar_pointer),
        warnings=list(ccl.warnings),
        catalog_version=snapshot.version,
        catalog_skus=len(snapshot.products),
        suggestion_texts=len(reference.suggestions),
    )


class CclUpdateIn(BaseModel):
    date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = Field(
        default=None, description="eCFR date to fetch; default: the last date Part 774 changed"
    )


class CclUpdateOut(BaseModel):
    previous_version: str
    version: str
    issue_date: str
    entries: int
    entries_with_item_paragraphs: int
    warnings: int
    source_url: str
    cached_as: str


@router.post(
    "/ccl/update",
    tags=["classification"],
    summary="Fetch Part 774 from the eCFR, rebuild and verify the CCL, then swap it in",
    responses={502: {"description": "the eCFR could not be read or sent no plausible CCL; nothing changed"}},
    dependencies=[require("admin")],
)
async def ccl_update(runtime: RuntimeDep, body: Annotated[CclUpdateIn | None, Body()] = None) -> CclUpdateOut:
    try:
        updated = await service.update_ccl(runtime=runtime, date=body.date if body else None)
    except EcfrError as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            f"CCL not updated ({exc}); the loaded CCL {runtime.ccl.version} stays in force",
        ) from exc
    update = updated.update
    return CclUpdateOut(
        previous_version=updated.previous_version,
        version=update.ccl.version,
        issue_date=update.ccl.issue_date,
        entries=len(update.ccl.entries),
        entries_with_item_paragraphs=update.entries_with_items,
        warnings=len(update.ccl.warnings),
        source_url=update.url,
        cached_as=str(update.path),
    )
