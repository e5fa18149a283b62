"""How order-line descriptions and the control lists' texts are read into comparable terms.

Product descriptions and the CCL speak different languages: a distributor writes "FPGA", "Wi-Fi 6
router", "fibre", "µm"; the CCL writes "field programmable logic devices", "mass market encryption
commodities", "fiber", "µm" (and the EU text "μm", with a Greek mu). The suggester reads both through
the same normalisation (spelling, units, symbols, a light stemmer) and expands a description with
the CCL's own words for what it names: abbreviations, product words, and the HS heading's subject.

The expansions are domain knowledge, not a classification: "smartphone" adds the words of 5A992.c
(mass market encryption commodities, 15 CFR 740.17(b)(1)), because consumer devices with standard
cryptography are classified there as a rule; the ranking still compares texts, and the line stays
unclassified until a person confirms an ECCN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from unidecode import unidecode

# Words that carry no meaning for matching, including the CCL's boilerplate ("as follows (see List
# of Items Controlled)", "specially designed", "n.e.s.") and the packaging and size words of order
# lines ("size M", "220 kg drum"), which the lists use only as parameters.
STOPWORDS = frozenset(
    """a an and are as at be been being both but by can could do does each either for from has have
    having in into is it its may more most must no nor not of on or other others such than that the
    their them then there therefor therefore thereof these they this those through to under up upon
    use used using very was were what when where which while who with within without would any all
    following follows see list item items controlled specially designed entry entries eccn eccns nes
    n e s ii iii iv equal less greater exceeding exceed better including include includes also per
    one two three four five six seven eight ten etc eg ie www com inch mm cm kg lb oz pcs pc box
    pack set new model type series version gen rev size sizes color black white weight drum bag
    bottle container packaging""".split()
)

# British and American spellings, and forms the CCL does not use.
_SPELLING = {
    "fibre": "fiber",
    "fibres": "fibers",
    "centre": "center",
    "centres": "centers",
    "metre": "meter",
    "metres": "meters",
    "litre": "liter",
    "litres": "liters",
    "aluminium": "aluminum",
    "armour": "armor",
    "armoured": "armored",
    "analogue": "analog",
    "tyre": "tire",
    "tyres": "tires",
    "sulphur": "sulfur",
    "vapour": "vapor",
    "colour": "color",
    "licence": "license",
    "licences": "licenses",
    "defence": "defense",
    "catalogue": "catalog",
    "programme": "program",
    "analyser": "analyzer",
    "analysers": "analyzers",
    "modelling": "modeling",
    "optimised": "optimized",
    "synthesiser": "synthesizer",
    "stabilised": "stabilized",
    "grey": "gray",
    "micron": "um",
    "microns": "um",
    "micrometre": "um",
    "micrometres": "um",
    "micrometer": "um",
    "micrometers": "um",
    "nanometre": "nm",
    "nanometres": "nm",
    "nanometer": "nm",
    "gsa": "gsps",
    "msa": "msps",
}

# Abbreviations and product words -> the CCL's words for them. Keys are lower-case words or
# phrases of the normalised text (hyphens read as spaces).
_EXPANSIONS: Mapping[str, str] = {
    # electronics
    "fpga": "field programmable logic devices",
    "i o": "input outputs",
    "cpld": "field programmable logic devices",
    "asic": "custom integrated circuits",
    "adc": "analog to digital converters",
    "dac": "digital to analog converters",
    "gpu": "integrated circuits digital processing units total processing performance",
    "graphics card": "integrated circuits digital processing units total processing performance",
    "ai accelerator": "integrated circuits digital processing units total processing performance",
    "cpu": "microprocessor microcircuits",
    "processor": "microprocessor microcircuits",
    "mcu": "microcontroller microcircuits",
    "microcontroller": "microcontroller microcircuits",
    "mmic": "monolithic microwave integrated circuit amplifiers",
    "gan": "gallium nitride",
    "gaas": "gallium arsenide",
    "sic": "silicon carbide",
    "silicon carbide": "silicon carbide substrates",
    "semi insulating": "high resistivity",
    "lna": "low noise amplifiers",
    "rf": "radio frequency",
    "igbt": "power semiconductor switches",
    "oscilloscope": "oscilloscopes electronic test equipment",
    "oscilloscopes": "oscilloscopes electronic test equipment",
    "signal analyzer": "signal analyzers electronic test equipment",
    "spectrum analyzer": "signal analyzers electronic test equipment",
    "signal generator": "signal generators electronic test equipment",
    "network analyzer": "network analyzers electronic test equipment",
    "lithography": "lithography equipment semiconductor wafers",
    "scanner lithography": "lithography equipment",
    "immersion": "lithography",
    "wafer": "wafers substrates",
    "substrate": "substrates wafers",
    # computers, telecommunications, information security
    "ssd": "solid state storage",
    "nvme": "storage",
    "hdd": "storage",
    "flash drive": "storage",
    "usb drive": "storage",
    "laptop": "computers mass market encryption commodities",
    "notebook computer": "computers mass market encryption commodities",
    "desktop computer": "computers mass market encryption commodities",
    "tablet": "computers mass market encryption commodities",
    "server": "computers digital computers mass market encryption commodities",
    "single board computer": "computers mass market encryption commodities",
    "workstation": "computers digital computers",
    "smartphone": "mass market encryption commodities portable mobile radiotelephones",
    "mobile phone": "mass market encryption commodities portable mobile radiotelephones",
    "cell phone": "mass market encryption commodities portable mobile radiotelephones",
    "router": "routers networking mass market encryption commodities",
    "network switch": "switches networking mass market encryption commodities",
    "access point": "wireless networking mass market encryption commodities",
    "modem": "telecommunications networking",
    "wifi": "wireless local area network encryption",
    "wi fi": "wireless local area network encryption",
    "wlan": "wireless local area network encryption",
    "wpa2": "encryption",
    "wpa3": "encryption",
    "bluetooth": "wireless personal area network",
    "lte": "cellular radio communication",
    "5g": "cellular radio communication",
    "tls": "cryptography encryption",
    "ssl": "cryptography encryption",
    "ipsec": "cryptography encryption information security",
    "vpn": "cryptography encryption information security",
    "aes": "cryptography encryption symmetric algorithm",
    "aes 256": "cryptography encryption symmetric algorithm",
    "rsa": "cryptography asymmetric algorithm",
    "tpm": "cryptography",
    "fips": "cryptography information security",
    "tcg opal": "encryption",
    "self encrypting": "encryption",
    "self encryption": "encryption",
    # Most commodities that encrypt are mass market (5A992.c, 740.17(b)(1)); the rest are 5A002:
    # a classifier must see both.
    "encryption": "information security mass market encryption commodities",
    "encrypted": "encryption cryptography information security mass market encryption commodities",
    "hardware encrypted": "encryption cryptography information security mass market encryption commodities",
    "security key": "cryptography authentication mass market encryption commodities",
    "hsm": "information security primary function cryptography",
    "hardware security module": "information security primary function cryptography",
    "encryptor": "information security primary function cryptography networking",
    "firewall": "information security networking",
    "operating system": "software mass market encryption software",
    "web browser": "software mass market encryption software",
    "browser": "software mass market encryption software",
    "pdf": "software mass market encryption software",
    "office suite": "software mass market encryption software",
    "app": "software",
    "subscription": "software",
    # sensors, lasers, navigation
    "thermal camera": "imaging cameras focal plane arrays infrared",
    "thermal imaging": "imaging cameras focal plane arrays infrared",
    "thermal imager": "imaging cameras focal plane arrays infrared",
    "infrared camera": "imaging cameras focal plane arrays infrared",
    "camera core": "imaging cameras focal plane arrays",
    "microbolometer": "uncooled focal plane arrays infrared",
    "lwir": "longwave infrared",
    "mwir": "midwave infrared",
    "swir": "shortwave infrared",
    "insb": "indium antimonide focal plane arrays",
    "fpa": "focal plane arrays",
    "night vision": "image intensifier tubes",
    "lidar": "laser radar light detection and ranging",
    "fiber laser": "lasers continuous wave output power",
    "fibre laser": "lasers continuous wave output power",
    "cw": "continuous wave",
    "gnss": "global navigation satellite systems receiving equipment",
    "gps": "global navigation satellite systems receiving equipment",
    "glonass": "global navigation satellite systems",
    "galileo": "global navigation satellite systems",
    "beidou": "global navigation satellite systems",
    "navigator": "navigation",
    "imu": "inertial measurement equipment",
    "inertial measurement unit": "inertial measurement equipment navigation",
    "ahrs": "attitude heading reference systems",
    "gyro": "gyros",
    "gyroscope": "gyros",
    "mems": "micro electro mechanical",
    # materials, chemicals, production equipment
    "carbon fiber": "carbon fibrous filamentary materials",
    "carbon fibers": "carbon fibrous filamentary materials",
    "aramid": "aramid fibrous filamentary materials",
    "prepreg": "prepregs fibrous filamentary materials",
    "tow": "fibrous filamentary materials",
    "hydrofluoric acid": "hydrogen fluoride",
    "round bar": "cylindrical solid forms",
    "bar stock": "cylindrical solid forms",
    "ptfe": "fluoropolymers",
    "pfa": "fluoropolymers",
    "fep": "fluoropolymers",
    "pvdf": "fluoropolymers",
    "teflon": "fluoropolymers",
    "lined": "lining",
    "glass lined": "glass lining reaction vessels",
    "reactor": "reaction vessels reactors",
    "magnetic drive": "seal less pumps",
    "sealless": "seal less pumps",
    "seal less": "seal less pumps",
    "manometer": "pressure transducers",
    "pressure gauge": "pressure transducers",
    "cmm": "coordinate measuring machines",
    "coordinate measuring": "coordinate measuring machines dimensional inspection",
    "cnc": "numerically controlled numerical control machine tools",
    "machining center": "machine tools milling numerically controlled",
    "vertical machining": "machine tools milling numerically controlled",
    "milling machine": "machine tools milling numerically controlled",
    "lathe": "machine tools turning numerically controlled",
    "turning center": "machine tools turning numerically controlled",
    "edm": "electrical discharge machines",
    "filament winding": "filament winding machines composite",
    # weapons, law enforcement, military
    "pistol": "firearms pistols",
    "handgun": "firearms pistols",
    "revolver": "firearms",
    "rifle": "firearms rifles",
    "carbine": "firearms rifles",
    "shotgun": "firearms shotguns",
    "semi automatic": "semi automatic",
    "bolt action": "non automatic firearms",
    "pump action": "non automatic firearms",
    "lever action": "non automatic firearms",
    "riflescope": "optical sighting devices firearms",
    "rifle scope": "optical sighting devices firearms",
    "cartridges": "ammunition",
    "cartridge": "ammunition",
    "ammo": "ammunition",
    "fmj": "ammunition",
    "shotshell": "ammunition shotgun shells",
    "handcuffs": "restraint devices handcuffs",
    "riot": "police",
    "taser": "discharge type arms stun guns electric shock",
    "stun gun": "discharge type arms stun guns electric shock",
    "conducted energy": "discharge type arms electric shock",
    "pepper spray": "liquid pepper chemical agents",
    "oleoresin capsicum": "liquid pepper chemical agents",
    "body armor": "body armor",
    "bulletproof": "body armor",
    "ballistic vest": "body armor",
    "nij": "body armor",
    "battle tank": "military ground vehicles",
    "armored vehicle": "military ground vehicles",
    "track shoe": "ground vehicles parts components",
    "fighter": "military aircraft",
    "military jet engine": "military gas turbine engines",
    # aerospace and marine
    "airliner": "civil aircraft",
    "airplane": "aircraft",
    "helicopter": "aircraft",
    "turbofan": "aero gas turbine engines",
    "turbojet": "aero gas turbine engines",
    "turboprop": "aero gas turbine engines",
    "turboshaft": "aero gas turbine engines",
    "jet engine": "aero gas turbine engines",
    "landing gear": "aircraft parts components",
    "satellite": "spacecraft satellites",
    "cubesat": "spacecraft satellites",
    "smallsat": "spacecraft satellites",
    "drone": "unmanned aerial vehicles uav",
    "quadcopter": "unmanned aerial vehicles uav",
    "uav": "unmanned aerial vehicles",
    "uas": "unmanned aerial vehicles",
    "auv": "unmanned untethered submersible vehicles",
    "autonomous underwater": "unmanned untethered submersible vehicles",
    "rov": "unmanned tethered submersible vehicles",
    "remotely operated vehicle": "unmanned tethered submersible vehicles",
    "underwater vehicle": "submersible vehicles",
}

# HS heading (first 4 digits) or chapter (first 2) -> (the subject in the CCL's words, CCL category
# and product-group prefixes whose entries describe such goods). The Harmonized System names goods
# by what they are, as the CCL does; there is no official HS <-> ECCN correlation.
HS_HINTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "28": ("chemicals", ("1C",)),
    "29": ("chemicals", ("1C",)),
    "3818": ("substrates wafers", ("3C",)),
    "6815": ("carbon fibers", ("1C",)),
    "7604": ("aluminum alloys", ("1C",)),
    "7608": ("aluminum alloys tubes", ("1C",)),
    "8411": ("gas turbine engines", ("9A",)),
    "8413": ("pumps", ("2B",)),
    "8419": ("reaction vessels heat exchangers", ("2B",)),
    "8456": ("machine tools", ("2B",)),
    "8457": ("machine tools machining centers", ("2B",)),
    "8458": ("machine tools turning", ("2B",)),
    "8459": ("machine tools milling", ("2B",)),
    "8460": ("machine tools grinding", ("2B",)),
    "8471": ("computers", ("4A", "5A")),
    "8473": ("computers electronic assemblies", ("4A", "3A", "5A")),
    "8481": ("valves", ("2B",)),
    "8486": ("semiconductor manufacturing equipment wafers", ("3B",)),
    "8517": ("telecommunications networking", ("5A",)),
    "8525": ("cameras", ("6A",)),
    "8526": ("radar navigation", ("7A", "6A")),
    "8541": ("semiconductor devices", ("3A",)),
    "8542": ("integrated circuits", ("3A",)),
    "8710": ("military ground vehicles", ("0A",)),
    "8802": ("aircraft spacecraft", ("9A",)),
    "8806": ("unmanned aerial vehicles", ("9A",)),
    "8807": ("aircraft parts components", ("9A",)),
    "89": ("vessels", ("8A",)),
    "9013": ("lasers optical", ("6A", "0A")),
    "9014": ("navigation", ("7A",)),
    "9026": ("pressure", ("2B",)),
    "9030": ("electronic test equipment", ("3A",)),
    "9031": ("measuring inspection", ("2B",)),
    "93": ("firearms ammunition", ("0A",)),
}

# What says the line is software or technology (ECCN product groups D and E), not a commodity.
SOFTWARE_WORDS = frozenset(
    "software firmware app application browser subscription saas program operating".split()
)
TECHNOLOGY_WORDS = frozenset("technology know how drawings blueprints technical data".split())
CIVIL_WORDS = frozenset(
    "civil civilian commercial consumer passenger hobby household domestic retail".split()
)

_MICRO = re.compile("[\u00b5\u03bc]")  # micro sign and Greek mu: both "u" (µm, μm -> um)
_SPLIT_DIGITS = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")
_WORD = re.compile(r"[a-z0-9]+")
_HYPHEN_OR_SLASH = re.compile(r"[-/_]")
_BOILERPLATE = re.compile(r"\bas follows\b|\(see list of items controlled\)", re.I)
_KEEP_DIGIT_TOKENS = frozenset({"5g"})


def normalise(text: str) -> str:
    """Lower-case ASCII words separated by single spaces, spellings unified."""
    plain = unidecode(_MICRO.sub("u", _BOILERPLATE.sub(" ", text))).lower()
    plain = _HYPHEN_OR_SLASH.sub(" ", plain)
    words = _WORD.findall(plain)
    return " ".join(_SPELLING.get(word, word) for word in words)


def stem(word: str) -> str:
    # Just enough to meet "cameras"/"camera", "imaging"/"image", "switches"/"switch"; the same
    # function reads both sides, so an odd stem still matches its own kind.
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        word = word[:-2]
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def terms_of_normalised(text: str) -> list[str]:
    found: list[str] = []
    for token in text.split():
        parts = [token] if token in _KEEP_DIGIT_TOKENS else _SPLIT_DIGITS.sub(" ", token).split()
        for part in parts:
            if len(part) < 2 or part.isdigit() or part in STOPWORDS:
                continue
            found.append(stem(part))
    return found


def terms(text: str) -> list[str]:
    """The terms of a control-list text or a description, in order, repeats kept."""
    return terms_of_normalised(normalise(text))


_PHRASES = sorted(_EXPANSIONS, key=lambda key: -len(key))
_PHRASE_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(key) for key in _PHRASES) + r")\b")
# The terms of the constant texts, read once.
_EXPANSION_TERMS = {key: terms_of_normalised(words) for key, words in _EXPANSIONS.items()}
_HS_TERMS = {key: terms(subject) for key, (subject, _) in HS_HINTS.items()}


def expansions(text: str) -> list[str]:
    """The CCL words for the abbreviations and product words a description uses."""
    plain = normalise(text)
    found: list[str] = []
    for match in _PHRASE_PATTERN.finditer(plain):
        found.extend(_EXPANSION_TERMS[match.group(0)])
    return found


def hs_hint(hs_code: str | None) -> tuple[list[str], tuple[str, ...]]:
    """(terms, favoured CCL category+group prefixes) for an HS code such as "8542.39" or "854239"."""
    if not hs_code:
        return [], ()
    digits = re.sub(r"\D", "", hs_code)
    for key in (digits[:4], digits[:2]):
        if key in HS_HINTS:
            return list(_HS_TERMS[key]), HS_HINTS[key][1]  # a copy: the caller owns its list
    return [], ()


def is_civil(text: str) -> bool:
    return not CIVIL_WORDS.isdisjoint(normalise(text).split())


def product_group_hint(text: str) -> str | None:
    """ "D" when the description is of software, "E" of technology, None for commodities."""
    words = set(normalise(text).split())
    if words & SOFTWARE_WORDS:
        return "D"
    if words & TECHNOLOGY_WORDS:
        return "E"
    return None
