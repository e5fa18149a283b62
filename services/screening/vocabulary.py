"""The screening matcher's vocabulary: legal forms across languages (and the short ones that are
name parts too), the words of company names that say what a company does (generic) or that it is an
organisation at all, military ranks, and the romanisations of Cyrillic other than BGN/PCGN.

Data only, read by `normalise` (and through it by the rest of the matcher).
"""

from __future__ import annotations

from typing import Final

# Each legal form, as it is written (after transliteration and tokenising), and the canonical
# form it stands for. Multi-word forms are matched as phrases, longest first.
LEGAL_FORMS: Final[dict[str, tuple[str, ...]]] = {
    "llc": (
        "llc", "l l c", "limited liability company", "limited liability co", "ltd liability company",
        "ltd liability co", "ooo", "tov", "too",
        "obshchestvo s ogranichennoy otvetstvennostyu", "obshchestvo s ogranichennoi otvetstvennostyu",
        "obshchestvo s ogranichennoj otvetstvennostju", "obshestvo s ogranichennoy otvetstvennostyu",
        "tovarystvo z obmezhenoyu vidpovidalnistyu", "tovarishchestvo s ogranichennoy otvetstvennostyu",
        "sp z oo", "sp zoo", "spzoo", "sro", "spol sro", "doo", "eood", "ood", "kft", "mchj", "mchj xk",
        "cong ty tnhh", "tnhh", "cong ty trach nhiem huu han",
    ),
    "llp": ("llp", "limited liability partnership", "lp", "limited partnership"),
    "jsc": (
        "jsc", "ojsc", "cjsc", "pjsc", "ao", "oao", "zao", "pao", "nao", "rao", "pat", "prat", "vat", "zat",
        "joint stock company", "joint stock co", "jointstock company", "open joint stock company",
        "closed joint stock company", "public joint stock company", "open joint stock co", "closed joint stock co",
        "public joint stock co", "non public joint stock company",
        "aktsionernoe obshchestvo", "aktsionernoye obshchestvo", "otkrytoe aktsionernoe obshchestvo",
        "otkrytoye aktsionernoye obshchestvo", "zakrytoe aktsionernoe obshchestvo",
        "zakrytoye aktsionernoye obshchestvo", "publichnoe aktsionernoe obshchestvo",
        "publichnoye aktsionernoye obshchestvo", "nepublichnoe aktsionernoe obshchestvo",
        "aktsionerne tovarystvo", "publichne aktsionerne tovarystvo", "pryvatne aktsionerne tovarystvo",
        "as", "a s", "ad", "ead", "zrt", "nyrt", "rt", "ab", "asa", "oy", "oyj", "hf",
        "anonim sirketi", "anonim sirket", "cong ty co phan", "ctcp",
    ),
    "ag": ("ag", "aktiengesellschaft", "kgaa", "se"),
    "gmbh": ("gmbh", "mbh", "gesellschaft mit beschrankter haftung", "ges m b h", "gesmbh", "ug"),
    "kg": ("kg", "ohg", "gbr", "ek", "gmbh co kg", "gmbh and co kg", "gmbh co", "co kg", "kommanditgesellschaft"),
    "ltd": (
        "ltd", "limited", "co ltd", "company ltd", "co limited", "company limited", "corp ltd",
        "ltd co", "plc", "public limited company", "pte ltd", "pte", "pty ltd", "pty", "pvt ltd",
        "pvt", "private limited", "private ltd", "pvt limited", "private limited company",
        "ltd sti", "limited sirketi", "ltd sirketi", "sti", "sdn bhd", "bhd", "berhad", "sendirian berhad",
        "ltda", "lda", "limitada", "yugen kaisha", "yk", "youxian gongsi", "you xian gong si",
        "gufen youxian gongsi", "gu fen you xian gong si", "co", "company", "kompaniya", "~shrka",
        "cong ty",
    ),
    "inc": ("inc", "incorporated", "corp", "corporation", "kk", "kabushiki kaisha", "kabushikigaisha", "gk",
            "godo kaisha", "zhu shi hui she", "jusikhoesa", "jusighoesa", "chusik hoesa", "yuhan hoesa", "yuhanhoesa"),
    "sa": (
        "sa", "s a", "sociedad anonima", "societe anonyme", "sociedade anonima", "societa per azioni",
        "spa", "sal", "sae", "saa", "sac", "sacv", "sa de cv", "s a de c v", "sapi de cv", "sab de cv",
        "s de rl de cv", "s de rl", "de cv", "cv", "ca", "compania anonima", "nv", "naamloze vennootschap",
        "ae", "anonymi etaireia",
    ),
    "sarl": (
        "sarl", "societe a responsabilite limitee", "eurl", "sas", "sasu", "srl", "sl", "slu",
        "sociedad limitada", "societa a responsabilita limitata", "bv", "besloten vennootschap", "bvba",
        "aps", "epe",
    ),
    "fze": (
        "fze", "fzco", "fzc", "fz llc", "fzllc", "fz co", "free zone establishment", "free zone company",
        "dmcc", "fzd",
    ),
    "pt": ("pt", "tbk", "pt tbk"),
    "gp": ("gp", "general partnership", "snc", "sp k", "spk"),
    "ip": ("individual entrepreneur", "chp", "fop", "ip"),
}  # fmt: skip

GENERIC_WORDS: Final = frozenset(
    """trading trade traders group international intl holding holdings industrial industries industry
    enterprise enterprises services service technology technologies tech systems system solutions global
    general investment investments development management engineering import export imports exports
    commercial commerce manufacturing logistics shipping products supply supplies equipment electronics
    electronic consulting consultants partners associates center centre factory plant institute research
    sciences science united national trust fund foundation organization organisation association agency
    office department branch network energy resources corporate business world worldwide overseas
    marketing distribution construction transport projects project materials mechanical machinery
    machine machines chemical chemicals marine maritime aviation aerospace mining metals metal steel
    capital finance financial exchange security defense defence military nuclear special society
    concern central foreign unitary federal state public private joint stock scientific production
    industrial manufacturing import exports electric electrical power motors motor automotive auto
    pharmaceutical pharma medical health food foods agro agricultural textile textiles fashion media
    communications telecom software computer computers digital data information design creative
    consultancy advisory partners properties property real estate realty building buildings
    construction contracting contractors engineers oil gas petroleum petrochemical fuel fuels shipping
    ships ship vessels line lines airlines air cargo freight express tours travel tourism hotel hotels
    bank banking insurance assets asset ventures venture capital co operative cooperative union
    alliance council committee bureau agency authority ministry university college school academy
    institute laboratory laboratories lab labs studio studios store stores shop market markets mart
    export importers distributors supplier suppliers wholesale retail commodities goods products""".split()
)
"""Words of company names everywhere: they say what a company does, not which one it is."""
ORGANISATION_WORDS: Final = frozenset(
    """group holding holdings trading industries industry systems solutions services technologies
    enterprises bank banking insurance logistics shipping manufacturing engineering consulting partners
    associates investments properties ventures foundation institute university factory laboratories
    airlines petroleum electronics chemicals pharmaceuticals resources construction products foods
    communications software corporate commercial""".split()
)
"""Words only an organisation's name holds: with a legal form, evidence that a party is not a person,
a vessel or an aircraft."""

# Forms that are also ordinary short words or name parts ("AS", "AB", "SE", "CO", "CA", "PT", "AO",
# "EG", "IP", "AD"): a form only where companies write it, first or last, or beside another form.
AMBIGUOUS_FORMS: Final = frozenset(
    "as ab ad ae ag ao ca co cv eg ek gk gp hf ip kg kk lp nv oy pt rt se sl sa sal sac sae ug yk "
    "pat vat zat too tov fop chp pte pty pvt".split()
)

# Military ranks and professional titles written before a name ("Lt. Col.", "Brig. Gen.", "Eng.",
# "Capt."): titles only where a name begins, since "Major" and "Col" are surnames elsewhere.
RANKS: Final = frozenset(
    "lt ltc col colonel capt captain brig brigadier gen general maj major sgt cmdr commander adm "
    "admiral lieutenant engr eng".split()
)

# Russian, Ukrainian and Belarusian names in the romanisations other than the lists' BGN/PCGN, read
# back into it: German (Duden: "w" в, "sch" ш, "tsch" ч, "ch" х, "j" й, "z" ц, and "s" з between
# vowels), GOST 7.79 system B ("x" х, "cz" ц, "shh" щ, "j" й), French ("ou" у, "ch" ш, "tch" ч,
# "dj" дж) and ICAO 9303 ("ia" я, "iu" ю, "ie" е). Each system's letters are read all at once.
SLAVIC_SYSTEMS: Final = (
    {"schtsch": "shch", "tsch": "ch", "sch": "sh", "ch": "kh", "w": "v", "ja": "ya", "ju": "yu", "je": "ye",
     "jo": "yo", "j": "y", "z": "ts"},
    {"shh": "shch", "cz": "ts", "x": "kh", "ja": "ya", "ju": "yu", "je": "ye", "j": "y"},
    {"chtch": "shch", "tch": "ch", "ch": "sh", "ou": "u", "dj": "dzh", "j": "zh"},
    {"ia": "ya", "iu": "yu", "ie": "ye"},
)  # fmt: skip
