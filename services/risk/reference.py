"""What risk reads the licence question from: the Commerce Country Chart (15 CFR 738 Supp. 1), the
Country Groups (15 CFR 740 Supp. 1), the Part 746 destinations and the licence exceptions of Part
740, as plain values (refdata.py loads them), and the country profile a decision looks at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChartRow:
    """One row of the Commerce Country Chart (15 CFR 738 Supp. 1)."""

    country: str
    iso2: str
    marked_columns: frozenset[str]
    footnotes: tuple[int, ...]
    embargo_pointer: str | None


@dataclass(frozen=True)
class Part746Destination:
    """A destination under Part 746 (embargoes and other special controls)."""

    destination: str
    codes: tuple[str, ...]
    restriction_type: str
    ear_sections: str
    un_arms_embargo: bool
    note: str


@dataclass(frozen=True)
class LicenseExceptionInfo:
    symbol: str
    section: str
    title: str


@dataclass(frozen=True)
class RowInheritance:
    row_iso2: str
    basis: str


# Destinations the EAR send to another country's row. Only those the regulation itself names:
# any other destination without a row is UNKNOWN_DESTINATION_ROW, not a pass. This is law, not
# policy (85 FR 83788 for Hong Kong; 738.3(b) and chart footnote 5 for Liechtenstein): a compliance
# officer cannot choose another row, so it is not in the policy file.
ROW_INHERITANCE: Mapping[str, RowInheritance] = {
    "HK": RowInheritance(
        "CN",
        "Hong Kong has no Country Chart row or Country Group entry: since 85 FR 83788 (Dec. 23, 2020) "
        "the EAR treat it as China",
    ),
    "LI": RowInheritance(
        "CH",
        "15 CFR 738 Supp. 1 footnote 5 and 738.3(b): Liechtenstein follows Switzerland",
    ),
}


@dataclass(frozen=True)
class CountryProfile:
    """What the reference data says about one ISO-2 country, after row inheritance."""

    iso2: str
    row_iso2: str
    inheritance: RowInheritance | None
    chart: ChartRow | None
    groups: frozenset[str]
    part746: tuple[Part746Destination, ...]

    @property
    def known(self) -> bool:
        return self.chart is not None or bool(self.groups) or bool(self.part746)

    @property
    def label(self) -> str:
        name = self.chart.country if self.chart is not None else self.iso2
        if self.inheritance is not None:
            return f"{self.iso2} (as {self.row_iso2}, {name})"
        return f"{self.iso2} ({name})" if self.chart is not None else self.iso2


@dataclass(frozen=True)
class ReferenceData:
    chart: Mapping[str, ChartRow]
    chart_columns: tuple[str, ...]
    chart_footnotes: Mapping[int, str]
    groups: Mapping[str, frozenset[str]]
    group_names: tuple[str, ...]
    part746: Mapping[str, tuple[Part746Destination, ...]]
    license_exceptions: Mapping[str, LicenseExceptionInfo]
    versions: Mapping[str, str]
    # Supplement No. 2 to Part 744 (items subject to the military end-use/end-user rule of 744.21):
    # ECCN -> the supplement's description of it ("Limited to ..." where it narrows the entry).
    part744_supp2: Mapping[str, str] = field(default_factory=dict)

    def profile(self, iso2: str) -> CountryProfile:
        inheritance = ROW_INHERITANCE.get(iso2)
        row_iso2 = inheritance.row_iso2 if inheritance is not None else iso2
        part746 = tuple(dict.fromkeys(self.part746.get(iso2, ()) + self.part746.get(row_iso2, ())))
        return CountryProfile(
            iso2=iso2,
            row_iso2=row_iso2,
            inheritance=inheritance,
            chart=self.chart.get(row_iso2),
            groups=self.groups.get(row_iso2, frozenset()),
            part746=part746,
        )


@dataclass(frozen=True)
class CheckedCountry:
    """A country whose Country Chart row decides licence requirements, and why it is checked."""

    profile: CountryProfile
    roles: tuple[str, ...]

    @property
    def iso2(self) -> str:
        return self.profile.iso2

    @property
    def party_role(self) -> str | None:
        return None if "destination" in self.roles else self.roles[0]
