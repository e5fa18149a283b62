"""Loader of the Commerce Control List (15 CFR Part 774, Supplement No. 1) in its publisher's JSON.

Reads `<data_dir>/controls/us/us_ccl_part774_supp1.json` (eCFR versioner API parse; see
controls/PROVENANCE.md) and turns each entry's "License Requirements" table into `LicenseRequirement`
rows with a Country Chart column and a paragraph `Scope`. The control texts are regulation prose, so
the parser recognises the few shapes BIS uses ("applies to entire entry", "... except 0A501.y",
"applies to 9A515.e and .x") and treats anything else as a condition it cannot evaluate: such rows
are applied to the whole entry, never silently dropped.

The CCL version is the eCFR issue date plus the file's sha256, e.g. `ecfr-2026-07-23+sha256:27f7e1fd44cb`.
The same JSON structure is written by the eCFR updater (`ecfr.py`) into a cache folder; `load_ccl`
uses the newest of the reference copy and the cached copies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.classifier.domain import (
    COUNTRY_CHART_COLUMNS,
    ENTIRE_ENTRY,
    REASONS_FOR_CONTROL,
    Ccl,
    CclEntry,
    LicenseExceptionFlag,
    LicenseRequirement,
    ParagraphPath,
    ParsedEccn,
    Scope,
    parse_eccn,
)

CCL_FILE = Path("controls") / "us" / "us_ccl_part774_supp1.json"
# Written by the eCFR updater: one file per eCFR date, `us_ccl_part774_2026-07-23.json`.
CACHE_PATTERN = "us_ccl_part774_*.json"

log = logging.getLogger("exportwatch.classifier")

_ECCN_REF = re.compile(r"\b\d[A-E]\d{3}\b")
_COLUMN = re.compile(r"(?:\b(CB|NP|NS|MT|RS|FC|CC|AT)\s+)?\bColumn\s+(\d)\b")
# "(These items are “subject to the ITAR.” See 22 CFR parts 120 through 130.)" - the entry only points
# to the USML. Not "... 9A101 (except for items in 9A101.b that are “subject to the ITAR”)".
_ITAR_POINTER = re.compile(r"\b(?:these items are|this entry is)\W+subject to the ITAR\b", re.I)
_ROW = re.compile(
    r"^(?:(?P<reason>[A-Z]{2})|Russian industry sector sanctions?)\s+(?:also\s+)?appl(?:y|ies)\b"
    r"\s*(?:to\b)?\s*(?P<rest>.*)$",
    re.S,
)
_ROW_START = re.compile(r"\b[A-Z]{2}\s+appl(?:y|ies)\b")
_ENTIRE = re.compile(r"^(?:the\s+)?entire\s+entry\b[.,]?\s*(?P<tail>.*)$", re.S | re.I)
_EXCEPT_LEAD = re.compile(r"^except\b:?\s*(?P<excepted>.*)$", re.S | re.I)
_EXCEPT_SPLIT = re.compile(r",?\s*\bexcept\b", re.I)
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")
_PARENTHESES = re.compile(r"\([^()]*\)")
# The words that may surround paragraph references in a plain list ("paragraphs .a and .x",
# "items controlled by 5A002.z.1.a, z.2.a", "9A990.a only").
_REF_TOKEN = re.compile(
    r"""(?P<space>\s+|[,;:])
    |(?P<range>\b(?:to|through)\b)
    |(?P<word>\b(?:and|or|only|paragraphs?|items?|controlled|by|in|of|this|entry|the|ECCNs?|software
        |technology|commodities)\b)
    |(?P<eccn>\b\d[A-E]\d{3}\b)(?P<path>(?:\.(?:[a-z]|\d{1,3})\b)*)
    |(?<![\w.])\.?(?P<relative>(?:[a-z]|\d{1,3})(?:\.(?:[a-z]|\d{1,3}))*)\b
    """,
    re.X,
)
_FULL_REF = re.compile(r"\b(?P<eccn>\d[A-E]\d{3})(?P<path>(?:\.(?:[a-z]|\d{1,3})\b)+)")
_AS_PARAMETER = re.compile(
    r"\b(?:parameters?|criteria|characteristics?|accurac(?:y|ies))\b(?:\s+\w+){0,3}\s+(?:of|in)\s+(?:ECCNs?\s+)?$"
)
# ".c", "b.3", "e.1": a paragraph reference without its ECCN.
_PARAGRAPH_LIKE = re.compile(r"(?<![\w.])(?:\.[a-z]|[a-z]\.(?:[a-z]|\d{1,3}))\b")
_CONTINUED = re.compile(
    r"(?:(?:\s*(?:,|\band\b|\bor\b))+\s*|\s+(?P<range>to|through)\s+)"
    r"\.?(?P<relative>(?:[a-z]|\d{1,3})(?:\.(?:[a-z]|\d{1,3}))*)\b"
)
_NOT_AVAILABLE = re.compile(r"^(?:N/A|No)\b", re.I)
_EXCEPTION_FOR = re.compile(r"^(?:Yes,?\s*(?:for\s+)?|\$[\d,]+\s+for\s+)(?P<scope>.+)$", re.S)


class CclFormatError(ValueError):
    """The CCL file is not in the expected publisher's format; the message names the file and entry."""


def load_ccl(data_dir: Path, cache_dir: Path | None = None) -> Ccl:
    """The newest CCL available: the reference copy in the data directory, or a copy the eCFR
    updater cached (a later eCFR date wins; on the same date the cached copy, which has item
    paragraphs for every category). An unreadable cached copy is skipped with a warning."""
    reference = read_ccl_file(data_dir / CCL_FILE)
    best, skipped = reference, []
    for path in sorted(cache_dir.glob(CACHE_PATTERN)) if cache_dir is not None and cache_dir.is_dir() else []:
        try:
            cached = read_ccl_file(path)
        except CclFormatError as exc:
            skipped.append(f"cached CCL {path.name} ignored: {exc}")
            continue
        if cached.issue_date >= best.issue_date:
            best = cached
    if skipped:
        log.warning("%s", "; ".join(skipped))
        best = Ccl(
            version=best.version,
            issue_date=best.issue_date,
            source=best.source,
            entries=best.entries,
            missing_referenced=best.missing_referenced,
            warnings=(*skipped, *best.warnings),
        )
    return best


def ccl_version(issue_date: str, raw: bytes) -> str:
    return f"ecfr-{issue_date}+sha256:{hashlib.sha256(raw).hexdigest()[:12]}"


def read_ccl_file(path: Path) -> Ccl:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CclFormatError(f"cannot read the Commerce Control List at {path}: {exc}") from exc
    return parse_ccl_bytes(raw, source=str(path))


def parse_ccl_bytes(raw: bytes, *, source: str) -> Ccl:
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CclFormatError(f"{source}: invalid JSON: {exc}") from exc
    issue_date = document.get("ecfrIssueDate") if isinstance(document, dict) else None
    if not isinstance(issue_date, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", issue_date):
        raise CclFormatError(f"{source}: 'ecfrIssueDate' is missing; is this the eCFR Part 774 JSON?")
    return parse_ccl(document, version=ccl_version(issue_date, raw), source=source)


def parse_ccl(document: Mapping[str, Any], *, version: str, source: str) -> Ccl:
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise CclFormatError(f"{source}: 'entries' is missing or empty")
    entries: dict[str, CclEntry] = {}
    warnings: list[str] = []
    referenced: dict[str, set[str]] = {}
    for index, raw in enumerate(raw_entries):
        entry = _entry(raw, where=f"{source} entries[{index}]", warnings=warnings)
        if entry.eccn in entries:
            warnings.append(f"{entry.eccn}: appears more than once; the first occurrence is used")
            continue
        entries[entry.eccn] = entry
        texts = [
            entry.heading,
            entry.related_controls or "",
            *(r.control for r in entry.license_requirements),
        ]
        for name in _ECCN_REF.findall(" ".join(texts)):
            if name != entry.eccn:
                referenced.setdefault(name, set()).add(entry.eccn)
    missing = {name: tuple(sorted(by)) for name, by in sorted(referenced.items()) if name not in entries}
    warnings.extend(
        f"{name}: referenced by {', '.join(by)} but not in this copy of the CCL"
        for name, by in missing.items()
    )
    declared = document.get("entryCount")
    if isinstance(declared, int) and declared != len(entries):
        warnings.append(f"the file declares {declared} entries but {len(entries)} were loaded")
    return Ccl(
        version=version,
        issue_date=str(document.get("ecfrIssueDate")),
        source=source,
        entries=entries,
        missing_referenced=missing,
        warnings=tuple(warnings),
    )


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())


def _entry(raw: object, *, where: str, warnings: list[str]) -> CclEntry:
    if not isinstance(raw, dict):
        raise CclFormatError(f"{where}: expected an object")
    name = raw.get("eccn")
    parsed = parse_eccn(name) if isinstance(name, str) else None
    if not isinstance(parsed, ParsedEccn) or parsed.paragraphs or parsed.is_ear99:
        raise CclFormatError(f"{where}: 'eccn' {name!r} is not a five-character ECCN")
    eccn = parsed.base
    heading = _text(raw.get("heading"))
    if heading is None:
        raise CclFormatError(f"{where} ({eccn}): 'heading' is missing")
    requirements = tuple(
        requirement
        for cell in raw.get("countryChart") or []
        for requirement in _requirements(eccn, cell, warnings)
    )
    reason_text = _text(raw.get("reasonForControl"))
    reasons = _reason_codes(reason_text)
    if not reasons:
        # A few entries lost their "Reason for Control" line in the source parse; their licence
        # table still names the reasons.
        reasons = tuple(dict.fromkeys(r.reason for r in requirements if r.reason))
    itar_pointer = _ITAR_POINTER.search(heading) is not None
    if not reasons and not itar_pointer:
        warnings.append(
            f"{eccn}: no reasons for control in the source (Reason for Control {reason_text!r}, "
            f"{len(requirements)} licence-requirement rows); verify against the eCFR"
        )
    flags = raw.get("licenceExceptionFlags") or {}
    exceptions = tuple(
        _license_exception(eccn, symbol, text) for symbol, text in flags.items() if isinstance(text, str)
    )
    labelled: list[tuple[str, str | None, str]] = []
    for item in raw.get("items") or []:
        text = _text(item.get("text")) if isinstance(item, dict) else None
        if isinstance(item, dict) and text:
            paragraph = item.get("paragraph")
            labelled.append((str(item.get("kind")), paragraph if isinstance(paragraph, str) else None, text))
    paragraph_texts = {".".join(path): text for path, text in item_sequence(labelled)}
    return CclEntry(
        eccn=eccn,
        heading=heading,
        reasons_for_control=reasons,
        reason_for_control_text=reason_text,
        license_requirements=requirements,
        license_exceptions=exceptions,
        related_controls=_text(raw.get("relatedControls")),
        itar_pointer=itar_pointer,
        paragraph_texts=paragraph_texts,
    )


_PathKey = tuple[tuple[int, int | str], ...]


def _path_key(path: ParagraphPath) -> _PathKey:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in path)


# Text that opens a note's own lettered list: "5A002.a does not control any of the following items
# ...", "For the purposes of 3A001.a.5.b:", "Details of items must be accessible ... any of the
# following:". A definition that ends in a full stop ("For the purposes of 5A002.b, a 'cryptographic
# activation token' is ...") opens no list.
_NOTE_OPENER = re.compile(r":\s*$|\bdoes\s+not\s+(?:control|apply)\b", re.I)
_PARAGRAPH_PATH = re.compile(r"[a-z](?:\.(?:[a-z]|\d{1,3}))*")
# A run that follows a note opener is read as the note's own list when it competes with other runs.
_NOTE_RUN_WEIGHT = 0.3


@dataclass(slots=True)
class _Run:
    """Paragraphs in increasing order; `resumes_after` is set on a note's run: where the entry's
    list stopped before the note."""

    weight: float
    resumes_after: _PathKey | None
    items: list[tuple[ParagraphPath, str]] = field(default_factory=list)
    last: _PathKey = ()


def item_sequence(items: Iterable[tuple[str, str | None, str]]) -> list[tuple[ParagraphPath, str]]:
    """The entry's own item paragraphs among everything the source labels with a designator.

    `items` are (kind, paragraph, text) in document order, kind `item`, `note` (numbered) or `text`.
    Notes carry lettered lists of their own ("a. For conventional DACs ...") and the licence section
    of 1C350 has one before the items, so a designator alone does not make an item. The items form
    one list whose paragraph paths strictly increase through the entry (a, a.1, a.1.a, ..., b, ...).
    The lettered text is cut into runs of increasing paths (a new run at every restart and after
    every note opener); the entry's items are the chain of runs, in order and still increasing, with
    the most paragraphs - a run that restarts right after a note opener counting for less, so that
    5A002's long list of exclusions ("5A002.a does not control ...: a. smart cards ... j.") loses to
    the items a.1 ... a.4 and b ... e it interrupts.
    """
    runs: list[_Run] = []
    after_note = False
    for kind, paragraph, text in items:
        if kind != "item" or paragraph is None:
            if kind in ("note", "text") and _NOTE_OPENER.search(text):
                after_note = True
            continue
        if not _PARAGRAPH_PATH.fullmatch(paragraph.lower()):
            continue
        path = tuple(paragraph.lower().split("."))
        key = _path_key(path)
        current = runs[-1] if runs else None
        if current is None or key <= current.last:
            # Only a restart after a note opener looks like the note's own list; a run that goes on
            # from where the last one stopped ("c" after "b") is the entry's list resumed.
            if after_note and current is not None:
                stopped = current.resumes_after if current.resumes_after is not None else current.last
                runs.append(_Run(_NOTE_RUN_WEIGHT, stopped))
            else:
                runs.append(_Run(1.0, None))
        elif current.resumes_after is not None and key > current.resumes_after:
            # Inside a note's list, the first paragraph past where the entry's list stopped may be
            # the entry's list resumed (5A001: ".d.4, note a-c, .e") or the note going on (5A002:
            # "note a.2, b, c"): a run of its own, still counted as a note, lets the longest chain
            # decide.
            runs.append(_Run(current.weight, None))
        after_note = False
        runs[-1].items.append((path, text))
        runs[-1].last = key
    best: list[float] = []
    previous: list[int] = []
    for index, run in enumerate(runs):
        first = _path_key(run.items[0][0])
        options = [(best[i], i) for i in range(index) if runs[i].last < first]
        score, before = max(options, default=(0.0, -1))
        best.append(score + run.weight * len(run.items))
        previous.append(before)
    chain: list[int] = []
    cursor = max(range(len(runs)), key=lambda i: (best[i], i), default=-1)
    while cursor >= 0:
        chain.append(cursor)
        cursor = previous[cursor]
    return [item for index in reversed(chain) for item in runs[index].items]


def _reason_codes(text: str | None) -> tuple[str, ...]:
    # "NS, MT NP, AT", "CC 1", "MT and AT", "AT, RS, foreign policy": keep the known codes in order.
    found = re.findall(r"\b([A-Z]{2})(?:\s?\d)?\b", text or "")
    return tuple(dict.fromkeys(code for code in found if code in REASONS_FOR_CONTROL))


def _requirements(eccn: str, cell: object, warnings: list[str]) -> Iterator[LicenseRequirement]:
    if not isinstance(cell, dict):
        warnings.append(f"{eccn}: a licence-requirement row is not an object; ignored")
        return
    control = _text(cell.get("control")) or ""
    destinations = _text(cell.get("countryChart")) or ""
    if cell.get("singleCellRow") and (column := _COLUMN.search(control)):
        # Both table cells merged into one: "CB applies to entire entry CB Column 2."
        control, destinations = control[: column.start()].strip(), control[column.start() :]
    starts = [m.start() for m in _ROW_START.finditer(control)]
    columns = list(_COLUMN.finditer(destinations))
    if len(starts) > 1 and len(starts) == len(columns):
        # Two rows merged: "NP applies to entire entry AT applies to entire entry" | "NP Column 1 AT Column 1".
        ends = [*starts[1:], len(control)]
        cuts = [*(m.start() for m in columns[1:]), len(destinations)]
        for i, start in enumerate(starts):
            yield _requirement(
                eccn,
                control[start : ends[i]].strip(),
                destinations[columns[i].start() : cuts[i]].strip(),
                warnings,
            )
        return
    yield _requirement(eccn, control, destinations, warnings)


def _requirement(eccn: str, control: str, destinations: str, warnings: list[str]) -> LicenseRequirement:
    row = _ROW.match(control)
    if row is None:
        warnings.append(
            f"{eccn}: licence-requirement row {control!r} not understood; applied to the entire entry"
        )
    reason = row["reason"] if row else None
    if reason is not None and reason not in REASONS_FOR_CONTROL:
        warnings.append(f"{eccn}: unknown reason for control {reason!r} in {control!r}")
    scope = _row_scope(eccn, row["rest"]) if row else Scope("conditional")
    column = None
    if found := _COLUMN.search(destinations):
        code = found[1] or reason
        column = f"{code}{found[2]}"
        if column not in COUNTRY_CHART_COLUMNS:
            warnings.append(f"{eccn}: {destinations!r} names no Country Chart column; treated as a pointer")
            column = None
    return LicenseRequirement(
        reason=reason, control=control, destinations=destinations, column=column, scope=scope
    )


def _normalise(text: str) -> str:
    text = re.sub(r"[\u201c\u201d\"']", "", text)
    text = re.sub(r"\b(\d[A-E]\d{3})\s+\.(?=[a-z0-9])", r"\1.", text)  # "9A004 .g"
    text = re.sub(r"(?<=[0-9A-Za-z])\.\s+(?=[a-z0-9]\b)", ".", text)  # "8A620. b", "3A001.z. 1.b"
    return " ".join(text.split()).rstrip(" .")


def _row_scope(eccn: str, rest: str) -> Scope:
    text = _normalise(rest)
    entire = _ENTIRE.match(text)
    if entire is None:
        # "RS applies to 9D515.y, except to Russia for ... ISS": what follows "except" only narrows
        # the listed paragraphs further; ignoring it keeps a possible requirement.
        head = _EXCEPT_SPLIT.split(_without_parentheses(text), maxsplit=1)[0]
        listed = _paragraph_list(eccn, head)
        return Scope("paragraphs", listed) if listed else Scope("conditional", _named_paragraphs(eccn, text))
    excepted = _EXCEPT_LEAD.match(entire["tail"])
    if excepted is None:
        return ENTIRE_ENTRY
    # "except 1B001.d.4, e and f. Note: MT applies to ..." - the exception ends with its sentence.
    clause = _SENTENCE_END.split(excepted["excepted"], maxsplit=1)[0]
    exempt: list[ParagraphPath] = []
    for chunk in clause.split(";"):
        whole = _paragraph_list(eccn, chunk)
        if whole:
            exempt.extend(whole)
            continue
        # "except 0A509.a for items for ECCN 0A502 ..., and 0A509.d": a segment naming this entry's
        # paragraph in full is exempt, but only if the list does not end in a qualifier that could
        # govern all of it. A bare ".a.11" here may continue another entry's list ("except software
        # for 1C607.a.10, .a.11"), so it exempts nothing.
        segments = [s for s in chunk.split(",") if s.strip()]
        plain = [_paragraph_list(eccn, s) if eccn in s else () for s in segments]
        if plain and plain[-1]:
            for listed in plain:
                exempt.extend(listed)
    # Nothing plain to exempt ("except equipment for ECCN 0A501.y"): a condition, kept entry-wide.
    return Scope("except", tuple(dict.fromkeys(exempt))) if exempt else Scope("conditional")


def _without_parentheses(text: str) -> str:
    # "5A001.b (except .b.5), .c" - asides, possibly nested, never widen a list of paragraphs.
    while (shorter := _PARENTHESES.sub(" ", text)) != text:
        text = shorter
    return text


def _paragraph_list(eccn: str, text: str) -> tuple[ParagraphPath, ...]:
    """Paragraphs of `eccn` when `text` is nothing but a list of them (with ranges); else ()."""
    refs: list[ParagraphPath | None] = []  # None marks "to"/"through" between two references
    position, text = 0, text.strip()
    while position < len(text):
        token = _REF_TOKEN.match(text, position)
        if token is None or token.end() == position:
            return ()
        position = token.end()
        if token["range"]:
            refs.append(None)
        elif token["eccn"]:
            if token["eccn"] != eccn or not token["path"]:
                return ()
            refs.append(tuple(token["path"].lstrip(".").split(".")))
        elif token["relative"]:
            refs.append(tuple(token["relative"].split(".")))
    paragraphs: list[ParagraphPath] = []
    index = 0
    while index < len(refs):
        ref = refs[index]
        if ref is None:
            return ()
        if index + 2 < len(refs) and refs[index + 1] is None:
            last = refs[index + 2]
            expanded = _expand(ref, last) if last is not None else None
            if expanded is None:
                return ()
            paragraphs.extend(expanded)
            index += 3
            continue
        paragraphs.append(ref)
        index += 1
    return tuple(paragraphs)


def _named_paragraphs(eccn: str, text: str) -> tuple[ParagraphPath, ...]:
    """Paragraphs of `eccn` a conditional text is about: "pulse discharge capacitors in 3A001.e.2 and
    ... in 3A001.e.3 that meet ..." -> e.2, e.3. A list may continue a full reference ("1C002.b.3 or b.4").

    () - the condition may concern any item of the entry - unless every clause names a paragraph
    of the entry in full, none is named only as a parameter ("meet the parameters of 2B009.a"), and
    every paragraph-like token of the text was read (a missed ", b (carbon fibres)" in a list with
    an unbalanced parenthesis would otherwise drop a paragraph).
    """
    plain = _without_parentheses(text)
    if "(" in plain or ")" in plain:
        return ()
    own = re.compile(rf"\b{eccn}\.")
    if not all(own.search(clause) for clause in plain.split(";")):
        return ()
    named: list[ParagraphPath] = []
    read: list[tuple[int, int]] = []
    for full in _FULL_REF.finditer(plain):
        if full["eccn"] == eccn and _AS_PARAMETER.search(plain[: full.start()]):
            return ()
        refs = [full["path"]]
        position = full.end()
        while more := _CONTINUED.match(plain, position):
            if more["range"]:
                return ()
            refs.append(more["relative"])
            position = more.end()
        read.append((full.start(), position))
        if full["eccn"] == eccn:
            named.extend(tuple(ref.lstrip(".").split(".")) for ref in refs)
    for stray in _PARAGRAPH_LIKE.finditer(plain):
        if not any(start <= stray.start() < end for start, end in read):
            return ()
    return tuple(dict.fromkeys(named))


def _expand(first: ParagraphPath, last: ParagraphPath) -> list[ParagraphPath] | None:
    """`a.1 to a.3` -> a.1, a.2, a.3; `g to j` -> g, h, i, j. None if not a simple range."""
    if len(first) != len(last) or first[:-1] != last[:-1]:
        return None
    start, end = first[-1], last[-1]
    if start.isdigit() and end.isdigit() and int(start) <= int(end):
        return [(*first[:-1], str(n)) for n in range(int(start), int(end) + 1)]
    if start.isalpha() and end.isalpha() and start <= end:
        return [(*first[:-1], chr(c)) for c in range(ord(start), ord(end) + 1)]
    return None


def _license_exception(eccn: str, symbol: str, text: str) -> LicenseExceptionFlag:
    plain = _normalise(text)
    available = not _NOT_AVAILABLE.match(plain)
    if symbol == "STA" and re.match(
        rf"^License Exception STA may not be used (?:for|to ship(?: or transmit)? \w+ specified by ECCN) {eccn}$",
        plain,
    ):
        available = False
    scope = ENTIRE_ENTRY
    if available and (limited := _EXCEPTION_FOR.match(plain)):
        # "LVS: $500 for 0A501.c, .d, and .x" - eligible paragraphs only.
        listed = _paragraph_list(eccn, _without_parentheses(limited["scope"]))
        if listed:
            scope = Scope("paragraphs", listed)
    return LicenseExceptionFlag(symbol=symbol, text=" ".join(text.split()), available=available, scope=scope)
