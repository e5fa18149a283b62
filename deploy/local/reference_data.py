"""Reference data on a machine without the snapshot: `make run` fetches every source from its
publisher into `var/data/`, verifies each, and then starts.

Which data a run uses:
- `EXPORTWATCH_DATA_DIR` set: that folder, as it is (a snapshot: `controls/` and `screening/`);
- else `../shared/data` beside the checkout when it exists (the team's snapshot);
- else `var/data/`, fetched on first start (and kept: later starts reuse it without the network;
  `--refresh-data` fetches again):
  - from the eCFR versioner API (`EXPORTWATCH_ECFR_API_URL`): 15 CFR Parts 738 (Country Chart), 740
    (Country Groups, licence exceptions), 744 (end-use and end-user rules), 746 (embargoes) and 774
    (the CCL), and 22 CFR Part 121 (the USML). Parts 738, 740 and 746 are converted into the shapes
    risk reads (services/risk/ecfr_destinations.py), Part 774 into the CCL JSON (the classifier's
    eCFR parser); 744 and 121 are kept as the XML they are;
  - the six screening lists through the screening updater (services/screening/update.py), from
    their publishers or `EXPORTWATCH_SCREENING_UPDATE_BASE_URL`.

Each download shows a progress bar. Each source is verified before anything is kept: it parses, its
counts are sane (a truncated or different document is refused), and the converted files load with
the services' own loaders. Everything is written to `var/data.partial/` and renamed to `var/data/`
only when every source passed, so a run never starts on half a snapshot. When a publisher cannot
be reached, one line says what is missing and how to point `EXPORTWATCH_DATA_DIR` at a snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from services.classifier import ecfr as ccl_ecfr
from services.risk import ecfr_destinations as destinations
from services.risk import refdata
from services.screening import update as lists_update
from services.screening.lists import ListFormatError
from shared import ecfr
from shared.http import Progress as ProgressCallback
from shared.settings import REPO_ROOT, Settings, default_data_dir

DATA_DIR_VARIABLE = "EXPORTWATCH_DATA_DIR"
MANIFEST = "manifest.json"
# (title, part, what it is): every eCFR part the services read.
ECFR_PARTS = (
    (15, "738", "Commerce Country Chart"),
    (15, "740", "Country Groups and licence exceptions"),
    (15, "744", "end-use and end-user controls"),
    (15, "746", "embargoes and other special controls"),
    (15, "774", "Commerce Control List"),
    (22, "121", "US Munitions List"),
)
LIST_KINDS = tuple(lists_update.PUBLISHED_FILES)
# Far below each real list (OFAC SDN ~15,000 entries, CSL ~25,000, DPL ~550, UN ~1,000, OFSI
# ~4,700, OFAC non-SDN ~440): fewer means a truncated or different file, refused.
MIN_LIST_ENTRIES = {
    "ofac_sdn": 5000,
    "ofac_non_sdn": 100,
    "csl": 5000,
    "bis_dpl": 200,
    "un_sc": 500,
    "uk_ofsi": 1000,
}
# The Country Chart has about 200 rows, the groups about 200 destinations, Part 740 ~27 exceptions.
MIN_CHART_ROWS = 180
MIN_GROUP_MEMBERS = 180
MIN_EXCEPTIONS = 20
MIN_PART744_SUPP2 = 10
USML_CATEGORIES = 21
CONTROLS = Path("controls") / "us"


class ReferenceDataMissing(Exception):
    """No snapshot and the fetch failed: the message is one line saying what and what to do."""


@dataclass(frozen=True)
class DataChoice:
    """The data folder a run uses, where it came from, and the environment the services need."""

    data_dir: Path
    origin: str  # "EXPORTWATCH_DATA_DIR", "snapshot beside the checkout", "fetched", "fetched earlier"
    environment: dict[str, str] = field(default_factory=dict)


def _hint(what: str) -> str:
    return (
        f"reference data missing: {what}; point {DATA_DIR_VARIABLE} at a snapshot (the folder holding "
        "controls/ and screening/), or EXPORTWATCH_ECFR_API_URL and EXPORTWATCH_SCREENING_UPDATE_BASE_URL "
        "at a mirror of the publishers"
    )


def _everything() -> str:
    parts = ", ".join(f"{title} CFR {part}" for title, part, _ in ECFR_PARTS)
    return f"the eCFR ({parts}) and the screening lists ({', '.join(LIST_KINDS)})"


# --- what a run uses ------------------------------------------------------------------------------


def choose(
    var_dir: Path, settings: Settings, *, refresh: bool = False, console: Console | None = None
) -> DataChoice:
    """The data a run uses (see the module's docstring); fetches into `<var>/data/` when there is no
    snapshot. Raises ReferenceDataMissing (one line) when it cannot."""
    given = os.environ.get(DATA_DIR_VARIABLE)
    if given:
        folder = Path(given)
        if not folder.is_dir():
            raise ReferenceDataMissing(
                f"{DATA_DIR_VARIABLE}={given!r} is not a directory; point it at a snapshot (the folder "
                "holding controls/ and screening/), or unset it to fetch from the publishers"
            )
        return DataChoice(folder, DATA_DIR_VARIABLE)
    beside = default_data_dir()
    if beside.is_dir():
        return DataChoice(beside, "snapshot beside the checkout")
    target = var_dir / "data"
    manifest = read_manifest(target)
    if manifest is not None and not refresh:
        return DataChoice(target, "fetched earlier", environment(target, manifest))
    manifest = asyncio.run(fetch_all(target, settings, console=console or Console()))
    return DataChoice(target, "fetched", environment(target, manifest))


def environment(data_dir: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """What the services are started with: the fetched folder and the lists' folders in it."""
    return {
        DATA_DIR_VARIABLE: str(data_dir),
        "EXPORTWATCH_SCREENING_SOURCES": str(manifest["screening_sources"]),
    }


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The manifest of a complete fetched snapshot, or None."""
    try:
        manifest = json.loads((data_dir / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("complete") is True else None


# --- fetching -------------------------------------------------------------------------------------


@dataclass
class _Fetch:
    """One run of the fetch: where it writes, what it kept, how it shows progress."""

    staging: Path
    settings: Settings
    progress: Progress
    sources: list[dict[str, Any]] = field(default_factory=list)
    xml: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)  # part -> (xml, date, url)

    def bar(self, description: str) -> tuple[TaskID, ProgressCallback]:
        task = self.progress.add_task(description, total=None)

        def advance(received: int, total: int | None) -> None:
            self.progress.update(task, completed=received, total=total)

        return task, advance

    def keep(self, relative: Path, body: bytes, **about: Any) -> None:
        path = self.staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        self.sources.append(
            {"file": str(relative), "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), **about}
        )


async def fetch_all(target: Path, settings: Settings, *, console: Console) -> dict[str, Any]:
    """Fetch, verify and convert every source into `target` (replaced whole on success)."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        async with ecfr.api_client(
            settings.ecfr_api_url, user_agent="exportwatch-make-run (reference data)"
        ) as api:
            dates = await _dates(api)
            console.print(
                f"no reference snapshot ({DATA_DIR_VARIABLE} unset, none beside the checkout): fetching "
                f"{len(ECFR_PARTS)} eCFR parts and {len(LIST_KINDS)} screening lists into {target}"
            )
            with _progress(console) as progress:
                run = _Fetch(staging, settings, progress)
                await _fetch_ecfr(run, api, dates)
                spec = await _fetch_lists(run)
        await asyncio.to_thread(_convert, run)
    except _SOURCE_ERRORS as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ReferenceDataMissing(_hint(" ".join(str(exc).split()))) from exc
    except ReferenceDataMissing:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = {
        "complete": True,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ecfr_api_url": settings.ecfr_api_url,
        "screening_update_base_url": settings.screening_update_base_url,
        "screening_sources": spec,
        "sources": run.sources,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return manifest


class _FetchError(Exception):
    """A source could not be fetched or did not verify; names the source."""


_SOURCE_ERRORS: tuple[type[Exception], ...] = (
    _FetchError,
    ccl_ecfr.EcfrError,
    destinations.EcfrDataError,
    lists_update.UpdateError,
    ListFormatError,
    refdata.RefDataError,
    OSError,
)


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        yield progress


async def _dates(api: httpx.AsyncClient) -> dict[tuple[int, str], str]:
    """The eCFR date of each part (small requests, before any progress bar): offline, this is where
    the run stops, with one line naming everything it lacks."""
    dates: dict[tuple[int, str], str] = {}
    for title, part, _ in ECFR_PARTS:
        try:
            dates[(title, part)] = await ecfr.latest_part_date(api, part, _FetchError, title=title)
        except _FetchError as exc:
            raise ReferenceDataMissing(_hint(f"{_everything()} ({exc})")) from exc
    return dates


async def _fetch_ecfr(run: _Fetch, api: httpx.AsyncClient, dates: dict[tuple[int, str], str]) -> None:
    for title, part, _ in ECFR_PARTS:
        date = dates[(title, part)]
        _, advance = run.bar(f"{title} CFR {part} ({date})")
        try:
            xml, url = await ecfr.fetch_part_xml(api, date, part, _FetchError, title=title, progress=advance)
        except _FetchError as exc:
            raise _FetchError(f"{title} CFR {part}: {exc}") from exc
        run.xml[f"{title}/{part}"] = (xml, date, url)


async def _fetch_lists(run: _Fetch) -> str:
    """Each list through the screening updater into `screening/<kind>/<stamp>/`; the sources
    setting that names them."""
    folders: list[str] = []
    async with lists_update.make_client(run.settings) as client:
        for kind in LIST_KINDS:

            def bar(name: str, kind: str = kind) -> ProgressCallback:
                return run.bar(f"{kind} {name}")[1]

            folder = await lists_update.fetch_source(
                kind,
                client=client,
                cache_dir=run.staging / "screening",
                base_url=run.settings.screening_update_base_url,
                now=datetime.now(UTC),
                progress=bar,
            )
            loaded = await asyncio.to_thread(lists_update.verify_source, kind, folder, None, min_ratio=1.0)
            if len(loaded.entries) < MIN_LIST_ENTRIES[kind]:
                raise _FetchError(
                    f"{kind}: {len(loaded.entries)} entries, fewer than {MIN_LIST_ENTRIES[kind]}; refused as truncated"
                )
            final = await asyncio.to_thread(lists_update.accept, folder, loaded)
            relative = final.relative_to(run.staging)
            folders.append(f"{kind}:{relative.as_posix()}")
            run.sources.append(
                {
                    "file": relative.as_posix(),
                    "kind": kind,
                    "entries": len(loaded.entries),
                    "version": loaded.info.version,
                }
            )
    return ",".join(folders)


# --- converting and verifying ---------------------------------------------------------------------


def _convert(run: _Fetch) -> None:
    """Every eCFR part into the files the services read, each verified; then the whole folder
    loaded with risk's and the classifier's own loaders."""
    _convert_ccl(run)
    xml744, date744, url744 = run.xml["15/744"]
    supp2 = refdata.parse_part744_supp2(xml744)
    if len(supp2) < MIN_PART744_SUPP2 or "Supplement No. 4 to Part 744" not in xml744.decode(
        "utf-8", "replace"
    ):
        raise ReferenceDataMissing(
            _hint(f"15 CFR 744 from {url744} lacks Supplement No. 2 or No. 4; refused")
        )
    run.keep(CONTROLS / "us_ecfr_title15_part744.xml", xml744, url=url744, ecfr_date=date744)
    xml121, date121, url121 = run.xml["22/121"]
    _verify_usml(xml121, url121)
    run.keep(CONTROLS / "us_ecfr_title22_part121_usml.xml", xml121, url=url121, ecfr_date=date121)
    _convert_destinations(run)
    try:
        loaded = refdata.load_reference_data(run.staging)
    except (refdata.RefDataError, ValueError) as exc:
        raise ReferenceDataMissing(_hint(f"the converted destination data does not load: {exc}")) from exc
    if len(loaded.chart) < MIN_CHART_ROWS or len(loaded.groups) < MIN_GROUP_MEMBERS:
        raise ReferenceDataMissing(
            _hint(
                f"the Country Chart ({len(loaded.chart)} rows) or Country Groups ({len(loaded.groups)}) are too small"
            )
        )


def _convert_ccl(run: _Fetch) -> None:
    xml, date, url = run.xml["15/774"]
    try:
        document = ccl_ecfr.parse_part774_xml(xml, issue_date=date, url=url)
        raw = ccl_ecfr.encode_document(document)
        ccl = ccl_ecfr.verify_document(raw, source=url)
    except ccl_ecfr.EcfrError as exc:
        raise ReferenceDataMissing(_hint(f"15 CFR 774: {exc}")) from exc
    run.keep(CONTROLS / "us_ccl_part774_supp1.json", raw, url=url, ecfr_date=date, entries=len(ccl.entries))


def _verify_usml(xml: bytes, url: str) -> None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ReferenceDataMissing(_hint(f"22 CFR 121 from {url}: not well-formed XML: {exc}")) from exc
    text = " ".join(root.itertext())
    categories = {c for c in _ROMAN[:USML_CATEGORIES] if f"Category {c}" in text}
    if root.get("N") != "121" or len(categories) < USML_CATEGORIES:
        raise ReferenceDataMissing(
            _hint(
                f"22 CFR 121 from {url} names {len(categories)} of the USML's {USML_CATEGORIES} categories; refused"
            )
        )


_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI",
          "XVII", "XVIII", "XIX", "XX", "XXI")  # fmt: skip


def _convert_destinations(run: _Fetch) -> None:
    (xml738, date738, url738), (xml740, date740, url740) = run.xml["15/738"], run.xml["15/740"]
    xml746, date746, url746 = run.xml["15/746"]
    chart = destinations.parse_part738_xml(xml738, issue_date=date738, url=url738)
    groups = destinations.parse_part740_xml(xml740, issue_date=date740, url=url740)
    sections = destinations.parse_part746_sections(xml746, issue_date=date746, url=url746)
    problems = destinations.sanity(
        chart, groups, min_chart_rows=MIN_CHART_ROWS, min_exceptions=MIN_EXCEPTIONS
    )
    if problems:
        raise ReferenceDataMissing(_hint("; ".join(problems)))
    files = {**destinations.chart_files(chart), **destinations.groups_files(groups)}
    names = {
        "chart_csv": refdata.CHART_CSV,
        "footnotes_csv": refdata.FOOTNOTES_CSV,
        "chart_json": refdata.CHART_JSON,
        "groups_csv": refdata.GROUPS_CSV,
        "groups_json": refdata.GROUPS_JSON,
        "exceptions_json": refdata.EXCEPTIONS_JSON,
    }
    for key, relative in names.items():
        url, date = (url738, date738) if key.startswith(("chart", "footnotes")) else (url740, date740)
        run.keep(Path(relative), files[key], url=url, ecfr_date=date)
    rows = destinations.destination_rows(chart, groups, sections)
    run.keep(Path(refdata.EMBARGO_CSV), destinations.destinations_csv(rows), url=url746, ecfr_date=date746)
    compiled = datetime.now(UTC).date().isoformat()
    provenance = [
        "# Reference data fetched by `make run` (deploy/local/reference_data.py)",
        "",
        f"Compiled {compiled} from the publishers: the eCFR versioner API and the screening lists' own",
        "download locations. Each file's source URL, eCFR date and SHA-256 are in ../manifest.json.",
        "The Part 746 destinations are derived from Parts 738, 740 and 746 (services/risk/ecfr_destinations.py).",
    ]
    run.keep(Path(refdata.PROVENANCE), "\n".join(provenance).encode("utf-8") + b"\n")


# --- command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    """`python -m deploy.local.reference_data [--var-dir var] [--refresh]`: what `make run` does
    before it starts anything (fetch only when there is no snapshot)."""
    from shared.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m deploy.local.reference_data", description=main.__doc__)
    parser.add_argument("--var-dir", type=Path, default=REPO_ROOT / "var")
    parser.add_argument("--refresh", action="store_true", help="fetch again even if var/data is complete")
    args = parser.parse_args(argv)
    try:
        choice = choose(args.var_dir, load_settings("launcher"), refresh=args.refresh)
    except ReferenceDataMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    out(f"reference data: {choice.data_dir} ({choice.origin})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
