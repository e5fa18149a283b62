"""Loader of Annex I of Regulation (EU) 2021/821 (the EU dual-use list) in the consolidated JSON.

Why the classifier reads it: the EU list and the CCL both transpose the Wassenaar Arrangement (and
the MTCR, NSG and Australia Group lists), so an EU entry shares its number with the ECCN for the same
items (EU 6A003.b.4.b = ECCN 6A003.b.4.b), and the reference copy of the CCL has item paragraphs only
for categories 1, 3, 4 and 5 (a known gap of the reference copy). Its paragraph text is a lead for the
suggester, never a classification: only the CCL decides what an ECCN controls, and the numbering may
differ below the entry level, so a suggestion found in EU text says where its text came from.

`<data_dir>/controls/eu/eu_dual_use_annex_i_*.json`: `entries[]` with `entry_code` and `verbatim_text`,
one line per paragraph, each line starting with the paragraph's code (`6A003.b.4.b Incorporating
...`); notes, technical notes and N.B.s are lines whose code is followed by "Note", "Technical Note"
or "N.B.".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.classifier.domain import CclEntry

EU_ANNEX_DIR = Path("controls") / "eu"
EU_ANNEX_PATTERN = "eu_dual_use_annex_i_*.json"

_LINE = re.compile(r"^(?P<code>\d[A-E]\d{3})(?P<path>(?:\.(?:[a-z]|\d{1,3}))*)\.?\s+(?P<text>\S.*)$")
_NOTE = re.compile(r"^(?:(?:Technical\s+)?Notes?\b|N\.\s?B\.|Nota\b)", re.I)


class EuAnnexError(ValueError):
    """The EU Annex I file is missing or not in the expected format; the message names it."""


@dataclass(frozen=True, slots=True)
class EuEntry:
    code: str
    heading: str
    # paragraph path ("b.4.b") -> its text, in document order; notes left out.
    paragraph_texts: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class EuAnnex:
    version: str
    source: str
    entries: Mapping[str, EuEntry]


def paragraph_texts(entry: CclEntry, eu_annex: EuAnnex | None) -> dict[str, tuple[str, str]]:
    """Paragraph path -> (text, source) of a CCL entry: the CCL's own text ("ccl"), else the text of
    the EU Annex I paragraph with the same number ("eu_annex_i"). The CCL's paragraphs come first, in
    its order, then the EU paragraphs it lacks (all of them for categories 0, 2, 6-9 in the reference
    copy, and e.g. 1C210.a, which it lost with its "Items:" line)."""
    texts = {paragraph: (text, "ccl") for paragraph, text in entry.paragraph_texts.items()}
    eu_entry = eu_annex.entries.get(entry.eccn) if eu_annex is not None else None
    if eu_entry is not None:
        for paragraph, text in eu_entry.paragraph_texts.items():
            texts.setdefault(paragraph, (text, "eu_annex_i"))
    return texts


def load_eu_annex(data_dir: Path) -> EuAnnex:
    folder = data_dir / EU_ANNEX_DIR
    candidates = sorted(folder.glob(EU_ANNEX_PATTERN)) if folder.is_dir() else []
    if not candidates:
        raise EuAnnexError(f"no EU Annex I file {EU_ANNEX_PATTERN} in {folder}")
    path = candidates[-1]  # the file name carries the consolidation date
    try:
        raw = path.read_bytes()
        document = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise EuAnnexError(f"cannot read the EU Annex I at {path}: {exc}") from exc
    return parse_eu_annex(document, source=str(path), raw=raw)


def parse_eu_annex(document: object, *, source: str, raw: bytes = b"") -> EuAnnex:
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise EuAnnexError(f"{source}: 'entries' is missing; is this the Annex I JSON?")
    entries: dict[str, EuEntry] = {}
    for index, item in enumerate(document["entries"]):
        if not isinstance(item, dict):
            raise EuAnnexError(f"{source} entries[{index}]: expected an object")
        code, text = item.get("entry_code"), item.get("verbatim_text")
        if not isinstance(code, str) or not re.fullmatch(r"\d[A-E]\d{3}", code) or not isinstance(text, str):
            raise EuAnnexError(
                f"{source} entries[{index}]: entry_code {code!r} or its verbatim_text is invalid"
            )
        heading = ""
        paragraphs: dict[str, str] = {}
        for line in text.splitlines():
            found = _LINE.match(line.strip())
            if found is None or found["code"] != code:
                continue
            body = " ".join(found["text"].split())
            path = found["path"].lstrip(".")
            if _NOTE.match(body):
                continue
            if not path:
                heading = heading or body
            else:
                paragraphs.setdefault(path, body)
        entries[code] = EuEntry(code=code, heading=heading, paragraph_texts=paragraphs)
    corpus = document.get("corpus_version")
    digest = hashlib.sha256(raw).hexdigest()[:12] if raw else "unhashed"
    return EuAnnex(version=f"eu-{corpus or 'unknown'}+sha256:{digest}", source=source, entries=entries)
