"""The bench's orders: a deterministic, stated mix of realistic `orders.submitted.v1` events.

Every order has three parties (buyer, ultimate consignee, and an end user, intermediate consignee
or freight forwarder) and 1-5 lines (uniform). A third of the orders hit something:
- two thirds of those hits (22% of all orders) name a real listed party, exactly as the trade.gov
  Consolidated Screening List writes it: 60% from a block list (SDN, DPL, ITAR debarred), 30% from
  a licence list (Entity List, MEU List), 10% from a review list (Unverified List);
- one third of them (11% of all orders) ship to an embargoed destination (Country Groups E:1/E:2,
  15 CFR 740 Supp. 1, read from the reference data).
The other parties come from a pool of customers (company names, cities and street addresses from
`faker`, in the destination's locale), drawn uniformly, so a customer orders several times in a
long run as customers do; the pool size is an option (a pool larger than the run gives names
never seen before).

Lines: 60% a product of the sample catalog (the ERP sends its ECCN on half of them), 35% an item
the ERP classifies itself with a real ECCN of the Commerce Control List (base entries with
reasons for control, not those pointing to the USML), 5% an item nobody has classified yet
(real product descriptions of the classification bench's labelled set: the classifier suggests
ECCNs, the order is held).

The same seed gives the same orders, event ids included, on every run and in every process.
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.events import ISO_COUNTRIES, derived_event_id

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG_CSV = REPO_ROOT / "samples" / "catalog.csv"
LABELLED_CSV = REPO_ROOT / "bench" / "classification" / "labelled.csv"
CSL_CSV = "screening/us_trade_csl/2026-07-31/consolidated.csv"
CCL_INDEX_CSV = "controls/us/us_ccl_part774_supp1_index.csv"
COUNTRY_GROUPS_CSV = "controls/us/us_country_groups_part740_supp1.csv"

SEED = 20261201
HIT_SHARE = 1 / 3
LISTED_SHARE_OF_HITS = 2 / 3
# Source lists of the CSL by the effect policy/policy.json gives them.
LIST_GROUPS: dict[str, tuple[float, tuple[str, ...]]] = {
    "block": (0.6, ("(SDN)", "(DPL)", "(DTC)")),
    "licence": (0.3, ("(EL)", "(MEU)")),
    "review": (0.1, ("(UVL)",)),
}
LINE_KINDS = (("catalog", 0.60), ("erp_eccn", 0.35), ("unclassified", 0.05))

# The sample catalog's products as an order line describes them (samples/catalog.csv).
CATALOG_DESCRIPTIONS: dict[str, tuple[str, str | None]] = {
    "OFF-CHAIR-200": ("Ergonomic office chair, mesh back", "9401.31"),
    "HT-PUMP-11": ("Centrifugal water pump, 11 kW, cast iron housing", "8413.70"),
    "PLC-S7-1500": ("Programmable logic controller, 24 V DC, 1 MB work memory", "8537.10"),
    "NS-2448": ("48-port gigabit Ethernet switch with SSH management", "8517.62"),
    "TC-640": ("Uncooled thermal imaging camera, 640x512, 30 Hz", "8525.89"),
    "HSM-9000": ("Network hardware security module, FIPS 140-3 level 3, AES-256 and RSA-4096", "8471.80"),
    "FPGA-XU9": ("Radiation-tolerant field programmable gate array, 600k logic cells", "8542.39"),
    "MC-5AX-800": ("5-axis simultaneous CNC machining centre, positioning accuracy 4 µm", "8457.10"),
    "OSC-4100": ("Bench digital oscilloscope, 100 MHz, 1 GSa/s, 4 channels", "9030.20"),
    "GNSS-RX-20": ("Multi-constellation GNSS receiver module, civil", "8526.91"),
    "PT-CAP-100": ("Capacitance manometer, 0-100 Pa absolute, Inconel sensing element", "9026.20"),
    "HSC-25K": ("High-speed framing camera, 250,000 frames per second", "8525.89"),
    "CF-T700-12K": ("Carbon fibre tow, 12K, 4900 MPa tensile strength", "6815.19"),
    "LAP-14": ("Business laptop, 14 inch, with full-disk encryption", "8471.30"),
    "DESK-LAMP-LED": ("LED desk lamp, dimmable", "9405.21"),
}
# Destinations of the ordinary orders, with the faker locale their customers' names come from.
DESTINATIONS: dict[str, str] = {
    "DE": "de_DE", "FR": "fr_FR", "GB": "en_GB", "IT": "it_IT", "ES": "es_ES", "NL": "nl_NL",
    "PL": "pl_PL", "SE": "sv_SE", "CH": "de_CH", "CZ": "cs_CZ", "TR": "tr_TR", "IL": "he_IL",
    "JP": "ja_JP", "KR": "ko_KR", "CN": "zh_CN", "TW": "zh_TW", "IN": "en_IN", "TH": "th_TH",
    "VN": "vi_VN", "AU": "en_AU", "CA": "en_CA", "MX": "es_MX", "BR": "pt_BR", "AR": "es_AR",
    "AE": "ar_AE", "SA": "ar_SA", "RU": "ru_RU", "UA": "uk_UA",
}  # fmt: skip
DESTINATION_CODES = tuple(sorted(DESTINATIONS))
# Customers in embargoed destinations: the nearest locale faker has.
EMBARGO_LOCALES: dict[str, str] = {"IR": "fa_IR", "CU": "es_ES", "KP": "ko_KR", "SY": "ar_JO"}
END_USES = (
    "Packaging line automation",
    "Predictive maintenance of production machinery",
    "Campus network refresh",
    "Research instrumentation",
    "Quality inspection in the assembly plant",
    "Process control of a water treatment plant",
    "Office equipment for the new site",
    "Machining of pump housings",
    "Building services",
    "Test laboratory for automotive parts",
)
PAYMENT_TERMS = ("NET30", "NET60", "Letter of credit at sight", "NET45")
INCOTERMS = ("DAP", "FCA", "CIP", "EXW", "DDP")


@dataclass(frozen=True)
class Customer:
    name: str
    country: str
    city: str
    address: str


@dataclass(frozen=True)
class ListedParty:
    name: str
    country: str | None
    source: str
    effect: str


@dataclass(frozen=True)
class BenchOrder:
    """One order: its wire bytes and what the bench expects of it."""

    order_id: str
    event_id: str
    payload: bytes
    hit: str  # none | listed_block | listed_licence | listed_review | embargo
    parties: tuple[str, ...]
    skus: tuple[str, ...]

    @property
    def decided_event_id(self) -> str:
        """The id risk gives its decision: uuid5 chain classifier -> screening -> risk."""
        classified = derived_event_id(self.event_id, "classifier")
        return derived_event_id(derived_event_id(classified, "screening"), "risk")


@dataclass
class ReferencePicks:
    """What the orders are drawn from, read once from the reference data and the repository."""

    listed: dict[str, list[ListedParty]]
    embargoed: list[str]
    ccl_eccns: list[tuple[str, str]]
    unclassified: list[tuple[str, str, str]]
    catalog: list[tuple[str, str]]


def load_picks(data_dir: Path) -> ReferencePicks:
    listed: dict[str, list[ListedParty]] = {effect: [] for effect in LIST_GROUPS}
    with (data_dir / CSL_CSV).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            name = row["name"].strip()
            if row["type"] not in ("Entity", "Individual", "") or not name or len(name) > 200:
                continue
            country = next((c.strip() for c in row["addresses"].split(";") if c.strip()), "")
            for effect, (_, markers) in LIST_GROUPS.items():
                if any(marker in row["source"] for marker in markers):
                    listed[effect].append(
                        ListedParty(
                            name, country if country in ISO_COUNTRIES else None, row["source"], effect
                        )
                    )
    embargoed: list[str] = []
    with (data_dir / COUNTRY_GROUPS_CSV).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("E:1") == "X" or row.get("E:2") == "X":
                embargoed.append(row["iso2"])
    ccl: list[tuple[str, str]] = []
    with (data_dir / CCL_INDEX_CSV).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["reason_codes"] and not row["subject_to_itar_pointer"]:
                ccl.append((row["eccn"], row["heading"][:300]))
    with LABELLED_CSV.open(encoding="utf-8", newline="") as f:
        unclassified = [(row["id"], row["description"], row["hs_code"]) for row in csv.DictReader(f)]
    with CATALOG_CSV.open(encoding="utf-8", newline="") as f:
        catalog = [(row["sku"], row["eccn"]) for row in csv.DictReader(f)]
    missing = sorted({sku for sku, _ in catalog} - set(CATALOG_DESCRIPTIONS))
    if missing:
        raise ValueError(f"{CATALOG_CSV}: no bench description for {missing}")
    for effect, parties in listed.items():
        if not parties:
            raise ValueError(f"{data_dir / CSL_CSV}: no {effect} list entries found")
    return ReferencePicks(listed, sorted(embargoed), ccl, unclassified, catalog)


def _customers(rng: random.Random, count: int, locales: dict[str, str], seed: int) -> list[Customer]:
    from faker import Faker  # a bench dependency only (pyproject: dev)

    fakers: dict[str, Any] = {}
    countries = sorted(locales)
    out: list[Customer] = []
    for _ in range(count):
        country = rng.choice(countries)
        locale = locales[country]
        if locale not in fakers:
            fakers[locale] = Faker(locale)
            fakers[locale].seed_instance(seed + len(fakers))
        fake = fakers[locale]
        out.append(
            Customer(
                name=str(fake.company()).replace("\n", " ")[:200],
                country=country,
                city=str(fake.city())[:100],
                address=str(fake.street_address()).replace("\n", ", ")[:200],
            )
        )
    return out


def _weighted(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


@dataclass
class OrderFactory:
    """Draws orders one by one from `picks`, deterministically from `seed`."""

    picks: ReferencePicks
    seed: int = SEED
    customers: int = 5000
    rng: random.Random = field(init=False)
    pool: list[Customer] = field(init=False)
    by_country: dict[str, list[Customer]] = field(init=False)
    embargo_pool: dict[str, list[Customer]] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.pool = _customers(self.rng, self.customers, DESTINATIONS, self.seed)
        self.by_country = {}
        for customer in self.pool:
            self.by_country.setdefault(customer.country, []).append(customer)
        embargo_locales = {c: EMBARGO_LOCALES.get(c, "en_US") for c in self.picks.embargoed}
        self.embargo_pool = {
            country: _customers(
                self.rng, max(10, self.customers // 50), {country: locale}, self.seed + 1000 + i
            )
            for i, (country, locale) in enumerate(sorted(embargo_locales.items()))
        }

    def _line(self, line_no: int) -> dict[str, Any]:
        rng = self.rng
        kind = _weighted(rng, LINE_KINDS)
        line: dict[str, Any] = {"line_no": line_no}
        if kind == "catalog":
            sku, eccn = rng.choice(self.picks.catalog)
            description, hs_code = CATALOG_DESCRIPTIONS[sku]
            line |= {"sku": sku, "description": description}
            if hs_code:
                line["hs_code"] = hs_code
            if rng.random() < 0.5:
                line["eccn"] = eccn
        elif kind == "erp_eccn":
            eccn, heading = rng.choice(self.picks.ccl_eccns)
            line |= {"sku": f"MAT-{eccn}-{rng.randrange(10)}", "description": heading, "eccn": eccn}
        else:
            item_id, description, hs_code = rng.choice(self.picks.unclassified)
            line |= {"sku": f"NEW-{item_id}", "description": description}
            if hs_code:
                line["hs_code"] = hs_code
        line |= {
            "quantity": rng.randint(1, 40),
            "unit_price": f"{rng.randint(20, 250_000)}.{rng.randrange(100):02d}",
            "currency": rng.choice(("USD", "USD", "USD", "EUR")),
        }
        return line

    @staticmethod
    def _party(role: str, who: Customer | ListedParty, fallback_country: str) -> dict[str, Any]:
        if isinstance(who, ListedParty):
            return {"role": role, "name": who.name, "country": who.country or fallback_country}
        return {
            "role": role,
            "name": who.name,
            "address": who.address,
            "city": who.city,
            "country": who.country,
        }

    def order(self, order_id: str, occurred_at: datetime) -> BenchOrder:
        rng = self.rng
        hit = "none"
        listed: ListedParty | None = None
        listed_role = ""
        if rng.random() < HIT_SHARE:
            if rng.random() < LISTED_SHARE_OF_HITS:
                effect = _weighted(rng, tuple((e, w) for e, (w, _) in LIST_GROUPS.items()))
                listed = rng.choice(self.picks.listed[effect])
                listed_role = _weighted(rng, (("ultimate_consignee", 0.4), ("buyer", 0.3), ("end_user", 0.3)))
                hit = f"listed_{effect}"
            else:
                hit = "embargo"
        if hit == "embargo":
            destination = rng.choice(self.picks.embargoed)
            pool = self.embargo_pool[destination]
        else:
            destination = rng.choice(DESTINATION_CODES)
            if listed is not None and listed.country and listed_role == "ultimate_consignee":
                # The consignee is where the goods go (15 CFR 758.1): the listed one's country.
                destination = listed.country
            pool = self.by_country.get(destination) or self.pool
        buyer = rng.choice(pool)
        consignee = buyer if rng.random() < 0.6 else rng.choice(pool)
        third_role = _weighted(
            rng, (("end_user", 0.6), ("intermediate_consignee", 0.25), ("freight_forwarder", 0.15))
        )
        third = rng.choice(pool if third_role == "end_user" else self.pool)
        roles: dict[str, Customer | ListedParty] = {
            "buyer": buyer,
            "ultimate_consignee": consignee,
            third_role: third,
        }
        if listed is not None:
            if listed_role == "end_user" and third_role != "end_user":
                del roles[third_role]
            roles[listed_role] = listed
        parties = [self._party(role, who, destination) for role, who in roles.items()]
        lines = [self._line(n) for n in range(1, rng.randint(1, 5) + 1)]
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        order: dict[str, Any] = {
            "schema": "order.submitted.v1",
            "event_id": event_id,
            "order_id": order_id,
            "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
            "source": "erp-bench",
            "ship_from_country": "US",
            "destination_country": destination,
            "parties": parties,
            "lines": lines,
            "end_use": rng.choice(END_USES),
            "payment_terms": rng.choice(PAYMENT_TERMS),
            "incoterms": rng.choice(INCOTERMS),
        }
        return BenchOrder(
            order_id=order_id,
            event_id=event_id,
            payload=json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
            hit=hit,
            parties=tuple(p["name"] for p in parties),
            skus=tuple(line["sku"] for line in lines),
        )

    def orders(self, prefix: str, count: int) -> Iterator[BenchOrder]:
        start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        for i in range(count):
            yield self.order(f"{prefix}-{i:06d}", start + timedelta(milliseconds=i))


def describe_mix(orders: list[BenchOrder]) -> dict[str, Any]:
    """What a set of orders holds, stated in the results: hit kinds, sizes, repetition."""
    hits = Counter(o.hit for o in orders)
    names = [name for o in orders for name in o.parties]
    skus = [sku for o in orders for sku in o.skus]
    sizes = [len(o.payload) for o in orders]
    return {
        "orders": len(orders),
        "hits": dict(sorted(hits.items())),
        "hit_share": round(1 - hits.get("none", 0) / max(1, len(orders)), 4),
        "parties": len(names),
        "distinct_party_names": len(set(names)),
        "lines": len(skus),
        "lines_per_order": round(len(skus) / max(1, len(orders)), 2),
        "distinct_skus": len(set(skus)),
        "payload_bytes_mean": round(sum(sizes) / max(1, len(sizes))),
        "payload_bytes_max": max(sizes, default=0),
    }
