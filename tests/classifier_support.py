"""Shared by the classifier's tests: the real CCL, EU Annex I and suggestion index, loaded once per
session; plain order inputs; and a small Part 774 in the eCFR's XML for the updater."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from services.classifier.ccl import load_ccl
from services.classifier.domain import Ccl
from services.classifier.eu_annex import EuAnnex, load_eu_annex
from services.classifier.reference import ReferenceData
from services.classifier.suggest import SuggestionIndex
from shared.settings import REPO_ROOT, Settings

SEED_CSV = REPO_ROOT / "samples" / "catalog.csv"
SUBMITTED_EVENT_ID = "5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11"


@functools.cache
def ccl() -> Ccl:
    # The reference copy only (no eCFR cache): the tests' expectations are about that file.
    return load_ccl(Settings().require_data_dir())


@functools.cache
def eu_annex() -> EuAnnex:
    return load_eu_annex(Settings().require_data_dir())


@functools.cache
def reference() -> ReferenceData:
    return ReferenceData.build(ccl(), eu_annex())


def suggestions() -> SuggestionIndex:
    return reference().suggestions


def order_line(line_no: int, sku: str, description: str, eccn: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {
        "line_no": line_no,
        "sku": sku,
        "description": description,
        "quantity": 1,
        "unit_price": "100.00",
        "currency": "USD",
    }
    if eccn is not None:
        line["eccn"] = eccn
    return line


def submitted_order(*lines: dict[str, Any], destination: str = "DE") -> dict[str, Any]:
    return {
        "schema": "order.submitted.v1",
        "event_id": SUBMITTED_EVENT_ID,
        "order_id": "SO-TEST-0001",
        "occurred_at": "2026-11-30T12:00:00Z",
        "source": "erp-test",
        "ship_from_country": "US",
        "destination_country": destination,
        "parties": [{"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": destination}],
        "lines": list(lines),
    }


# A small Part 774 in the eCFR versioner's XML, shaped like `full/{date}/title-15.xml?part=774`
# (the element structure of controls/us/us_ecfr_title15_part744.xml and of the CCL supplement:
# DIV5 part > DIV8 sections and DIV9 supplements; FP-2/B headings, FP-1 section and field lines,
# the License Requirements TABLE in gpotbl DIV wrappers, P item paragraphs, NOTEs, HD1/HD2 titles).
# Entry texts are abridged from the CCL; each entry carries one of the shapes the parser must read.
ECFR_DATE = "2026-09-24"
ECFR_PART774_XML = """<?xml version="1.0"?>
<DIV5 N="774" TYPE="PART" VOLUME="2" hierarchy_metadata="{&quot;path&quot;:&quot;/on/_SUBSTITUTE_DATE_/title-15/part-774&quot;,&quot;citation&quot;:&quot;15 CFR Part 774&quot;}">
<HEAD>PART 774&#x2014;THE COMMERCE CONTROL LIST
</HEAD>
<AUTH>
<HED>Authority:</HED><PSPACE>50 U.S.C. 4801-4852; 50 U.S.C. 4601 <I>et seq.;</I> 50 U.S.C. 1701 <I>et seq.</I>
</PSPACE></AUTH>
<DIV8 N="774.1" TYPE="SECTION" hierarchy_metadata="{&quot;path&quot;:&quot;/on/_SUBSTITUTE_DATE_/title-15/section-774.1&quot;,&quot;citation&quot;:&quot;15 CFR 774.1&quot;}">
<HEAD>&#xA7; 774.1 Introduction.</HEAD>
<P>In this part, references to the EAR are references to 15 CFR chapter VII, subchapter C. The Bureau of Industry and Security maintains the Commerce Control List (CCL) within the Export Administration Regulations (EAR), which includes items subject to the export licensing authority of BIS.</P>
</DIV8>
<DIV9 N="Supplement No. 1 to Part 774" TYPE="APPENDIX" hierarchy_metadata="{&quot;path&quot;:&quot;/on/_SUBSTITUTE_DATE_/title-15/part-774/appendix-Supplement No. 1 to Part 774&quot;,&quot;citation&quot;:&quot;Supplement No. 1 to Part 774, Title 15&quot;}">
<HEAD>Supplement No. 1 to Part 774&#x2014;The Commerce Control List
</HEAD>
<HD1>Category 0&#x2014;Nuclear Materials, Facilities, and Equipment [and Miscellaneous Items]</HD1>
<HD1>A. &#x201C;End Items,&#x201D; &#x201C;Equipment,&#x201D; &#x201C;Accessories,&#x201D; &#x201C;Attachments,&#x201D; &#x201C;Parts,&#x201D; &#x201C;Components,&#x201D; and &#x201C;Systems&#x201D;</HD1>
<FP-2><B>0A501 Firearms (except 0A502 shotguns, 0A506 semi-automatic rifles, 0A507 semi-automatic pistols, and 0A508 semi-automatic shotguns) and related commodities as follows (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, RS, FC, UN, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" cellpadding="1" cellspacing="1" class="gpo_table" frame="void" width="100%">
<THEAD>
<TR>
<TH class="center border-top-single border-bottom-single border-right-single">Control(s)</TH>
<TH class="center border-top-single border-bottom-single">Country chart (see Supp. No. 1 to part 738)</TH>
</TR>
</THEAD>
<TBODY>
<TR><TD class="left border-right-single">NS applies to entire entry except 0A501.y</TD><TD class="left">NS Column 1.</TD></TR>
<TR><TD class="left border-right-single">RS applies to entire entry except 0A501.y</TD><TD class="left">RS Column 1.</TD></TR>
<TR><TD class="left border-right-single">FC applies to entire entry except 0A501.y</TD><TD class="left">FC Column 1.</TD></TR>
<TR><TD class="left border-right-single">UN applies to entire entry</TD><TD class="left">See &#xA7; 746.1 of the EAR for UN controls.</TD></TR>
<TR><TD class="left border-right-single">AT applies to entire entry</TD><TD class="left">AT Column 1.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List Based License Exceptions (See Part 740 for a description of all license exceptions)</E></FP-1>
<FP-1><I>LVS:</I> $500 for 0A501.c, .d, and .x.</FP-1>
<FP-1><I>GBS:</I> N/A</FP-1>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> (1) See USML Category I for firearms that are fully automatic. (2) See ECCN 0A507 for semi-automatic pistols.</FP-1>
<FP-1><I>Related Definitions:</I> N/A</FP-1>
<FP><I>Items:</I> a. Non-automatic and semi-automatic firearms equal to .50 caliber (12.7 mm) or less.</FP>
<P>b. Non-automatic and non-semi-automatic rifles, carbines, revolvers or pistols with a caliber greater than .50 inches (12.7 mm) but less than or equal to .72 inches (18.0 mm).</P>
<P>c. Detachable magazines with a capacity of 17 to 50 rounds.</P>
<P>d. Receivers (frames) and complete breech mechanisms.</P>
<P>e. through w. [Reserved]</P>
<P>x. &#x201C;Parts&#x201D; and &#x201C;components&#x201D; that are &#x201C;specially designed&#x201D; for a commodity subject to control in this ECCN.</P>
<NOTE>
<HED>Note 1 to paragraph x:</HED>
<P>a. Magazines with a capacity of 16 rounds or less are controlled in 0A501.x.</P>
</NOTE>
<P>y. Specific &#x201C;parts,&#x201D; &#x201C;components,&#x201D; &#x201C;accessories,&#x201D; and &#x201C;attachments&#x201D; &#x201C;specially designed&#x201D; for a commodity subject to control in this ECCN, as follows:</P>
<P>y.1. Stocks or grips, that do not contain any fire control &#x201C;parts&#x201D; or &#x201C;components&#x201D;;</P>
<P>y.2. Scope mounts or accessory rails;</P>
<FP-2><B>0A982 Law enforcement restraint devices, including leg irons, shackles, and handcuffs; straight jackets; stun cuffs; shock belts; shock sleeves; multipoint restraint devices such as restraint chairs; and &#x201C;specially designed&#x201D; &#x201C;components&#x201D; and &#x201C;accessories,&#x201D; n.e.s.</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> CC</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY><TR><TD>CC applies to entire entry</TD><TD>CC Column 1.</TD></TR></TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List Based License Exceptions (See Part 740 for a description of all license exceptions)</E></FP-1>
<FP-1><I>LVS:</I> N/A</FP-1>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> N/A</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>The list of items controlled is contained in the ECCN heading.</P>
<HD1>Category 1&#x2014;Special Materials and Related Equipment, Chemicals, &#x201C;Microorganisms,&#x201D; and &#x201C;Toxins&#x201D;</HD1>
<HD1>C. &#x201C;Materials&#x201D;</HD1>
<FP-2><B>1C350 Chemicals that may be used as precursors for toxic chemical agents (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> CB, CW, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY>
<TR><TD>CB applies to entire entry</TD><TD>CB Column 2.</TD></TR>
<TR><TD>CW applies to 1C350.b and .c. The Commerce Country Chart is not designed to determine licensing requirements for items controlled for CW reasons.</TD><TD/></TR>
<TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List Based License Exceptions (See Part 740 for a description of all license exceptions)</E></FP-1>
<FP-1><I>LVS:</I> N/A</FP-1>
<FP-1><I>CIV:</I> N/A</FP-1>
<P>1. SAMPLE SHIPMENTS: Subject to the following requirements and restrictions, a license is not required for sample shipments when the cumulative total of these shipments does not exceed the following:</P>
<P>a. Chemicals Not Eligible: CWC Schedule 2 chemicals.</P>
<P>b. Countries Not Eligible: Countries in Country Group E:1.</P>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> See USML Category XIV for toxic chemicals.</FP-1>
<FP-1><I>Related Definitions:</I> N/A</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. [Reserved]</P>
<P>b. Australia Group-controlled precursor chemicals also identified as Schedule 2 chemicals under the CWC, as follows, and mixtures in which at least one of the following chemicals constitutes 30 percent or more of the weight of the mixture:</P>
<P>b.1. (C.A.S. #7784-34-1) Arsenic trichloride;</P>
<P>c. Australia Group-controlled precursor chemicals also identified as Schedule 3 chemicals under the CWC, as follows, and mixtures in which at least one of the following chemicals constitutes 30 percent or more of the weight of the mixture:</P>
<P>c.10. (C.A.S. #102-71-6) Triethanolamine;</P>
<P>d. Other Australia Group-controlled precursor chemicals not also identified as Schedule 1, 2, or 3 chemicals under the CWC, as follows, and mixtures in which at least one of the following chemicals constitutes 30 percent or more of the weight of the mixture:</P>
<P>d.15. (C.A.S. #7664-39-3) Hydrogen fluoride;</P>
<P>d.45. (C.A.S. #143-33-9) Sodium cyanide;</P>
<HD1>Category 3&#x2014;Electronics</HD1>
<HD1>A. &#x201C;End Items,&#x201D; &#x201C;Equipment,&#x201D; &#x201C;Accessories,&#x201D; &#x201C;Attachments,&#x201D; &#x201C;Parts,&#x201D; &#x201C;Components,&#x201D; and &#x201C;Systems&#x201D;</HD1>
<FP-2><B>3A001 Electronic items as follows (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, RS, MT, NP, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY>
<TR><TD>NS applies to entire entry</TD><TD>NS Column 2.</TD></TR>
<TR><TD>MT applies to 3A001.a.1.a when usable in &#x201C;missiles&#x201D;; and to 3A001.a.5.a when &#x201C;designed or modified&#x201D; for military use</TD><TD>MT Column 1.</TD></TR>
<TR><TD>NP applies to pulse discharge capacitors in 3A001.e.2 and superconducting solenoidal electromagnets in 3A001.e.3 that meet or exceed the technical parameters in 3A201.a and 3A201.b, respectively</TD><TD>NP Column 1.</TD></TR>
<TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List Based License Exceptions (See Part 740 for a description of all license exceptions)</E></FP-1>
<FP-1><I>LVS:</I> N/A for MT, NP</FP-1>
<FP-1><I>GBS:</I> Yes for 3A001.a.1.b, a.2 to a.14</FP-1>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> (1) See Category XV of the USML for certain &#x201C;space-qualified&#x201D; electronics. (2) See also 3A101, 3A201, 3A611, 3A901, 3A991, and 9A515.</FP-1>
<FP-1><I>Related Definitions:</I> N/A</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. General purpose integrated circuits, as follows:</P>
<P>a.1. Integrated circuits designed or rated as radiation hardened to withstand any of the following:</P>
<P>a.1.a. A total dose of 5 &#xD7; 10<SU>3</SU> Gy (Si), or higher;</P>
<P>a.5. Analog-to-Digital Converter (ADC) and Digital-to-Analog Converter (DAC) integrated circuits, as follows:</P>
<P>a.5.a. ADCs having any of the following:</P>
<P>a.5.a.4. A resolution of 14 bit or more, but less than 16 bit, with a &#x201C;sample rate&#x201D; greater than 250 MSPS; or</P>
<P><I>Technical Notes:</I> For the purposes of 3A001.a.5.b, &#x2018;adjusted update rate&#x2019; for DACs is:</P>
<P>a. For conventional (non-interpolating) DACs, the &#x2018;adjusted update rate&#x2019; is the rate at which the digital signal is converted to an analog signal.</P>
<P>b. For interpolating DACs (oversampling DACs), the &#x2018;adjusted update rate&#x2019; is defined as the DAC update rate divided by the smallest interpolating factor.</P>
<P>a.7. &#x2018;Field programmable logic devices&#x2019; having any of the following:</P>
<P>a.7.a. A maximum number of single-ended digital input/outputs of greater than 700; or</P>
<P>a.7.b. An &#x2018;aggregate one-way peak serial transceiver data rate&#x2019; of 500 Gb/s or greater;</P>
<P>b. Microwave or millimeter wave items, as follows:</P>
<P>b.2. &#x201C;Monolithic Microwave Integrated Circuit&#x201D; (&#x201C;MMIC&#x201D;) amplifiers that are any of the following:</P>
<FP-2><B>3A090 Integrated circuits as follows (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> RS, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY>
<TR><TD>RS applies to entire entry</TD><TD>To or within destinations specified in Country Groups D:1, D:4, and D:5. See &#xA7; 742.6(a)(6)(iii).</TD></TR>
<TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<HD1>List Based License Exceptions (See Part 740 for a Description of All License Exceptions)</HD1>
<FP-1><I>LVS:</I> N/A</FP-1>
<HD1>List of Items Controlled</HD1>
<FP-1><I>Related Controls:</I> See ECCNs 3D001, 3E001, 4A090, 5A002.z, 5A992.z.</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. Integrated circuits having one or more digital processing units having either of the following:</P>
<P>a.1. A &#x2018;total processing performance&#x2019; of 4800 or more; or</P>
<HD1>Category 5&#x2014;Telecommunications and &#x201C;Information Security&#x201D;</HD1>
<HD1>Part 2&#x2014;&#x201C;Information Security&#x201D;</HD1>
<HD1>A. &#x201C;End Items,&#x201D; &#x201C;Equipment,&#x201D; &#x201C;Accessories,&#x201D; &#x201C;Attachments,&#x201D; &#x201C;Parts,&#x201D; &#x201C;Components,&#x201D; and &#x201C;Systems&#x201D;</HD1>
<FP-2><B>5A002 &#x201C;Information security&#x201D; systems, equipment and &#x201C;components,&#x201D; as follows (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, AT, EI</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY>
<TR><TD>NS applies to entire entry</TD><TD>NS Column 1.</TD></TR>
<TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR>
<TR><TD>EI applies to entire entry</TD><TD>Refer to &#xA7; 742.15 of the EAR.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List Based License Exceptions (See Part 740 for a description of all license exceptions)</E></FP-1>
<FP-1><I>LVS:</I> N/A for systems and equipment.</FP-1>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> See 5A992.c for mass market encryption commodities.</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. Designed or modified to use &#x2018;cryptography for data confidentiality&#x2019; having a &#x2018;described security algorithm&#x2019;, where that cryptographic capability is usable, has been activated, or can be activated by means of &#x201C;cryptographic activation&#x201D; not employing a secure mechanism, as follows:</P>
<P>a.1. Items having &#x201C;information security&#x201D; as a primary function;</P>
<P>a.2. Digital communication or networking systems, equipment or components, not specified in paragraph 5A002.a.1;</P>
<NOTE>
<HED>Note:</HED>
<P>5A002.a does not control any of the following items, or specially designed &#x201C;information security&#x201D; components therefor:</P>
<P>a. Smart cards and smart card &#x2018;readers/writers&#x2019; as follows:</P>
<P>b. Cryptographic equipment specially designed and limited for banking use or &#x2018;money transactions&#x2019;;</P>
<P>c. Portable or mobile radiotelephones for civil use;</P>
</NOTE>
<P>b. Being a &#x2018;cryptographic activation token&#x2019;;</P>
<FP-2><B>5A992 Equipment not controlled by 5A002 (see List of Items Controlled)</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY><TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR></TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> N/A</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. [Reserved]</P>
<P>b. [Reserved]</P>
<P>c. Commodities classified as mass market encryption commodities in accordance with &#xA7; 740.17(b) of the EAR.</P>
<HD1>Category 6&#x2014;Sensors and &#x201C;Lasers&#x201D;</HD1>
<HD1>A. &#x201C;End Items,&#x201D; &#x201C;Equipment,&#x201D; &#x201C;Accessories,&#x201D; &#x201C;Attachments,&#x201D; &#x201C;Parts,&#x201D; &#x201C;Components,&#x201D; and &#x201C;Systems&#x201D;</HD1>
<FP-2><B>6A003 Cameras, systems or equipment, and &#x201C;components&#x201D; therefor, as follows (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, NP, RS, UN, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY>
<TR><TD>NS applies to entire entry</TD><TD>NS Column 2.</TD></TR>
<TR><TD>RS applies to 6A003.b.3, b.4.a, b.4.c, and c.2</TD><TD>RS Column 1.</TD></TR>
<TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> See also 6A203, 6A993.</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. Instrumentation cameras and &#x201C;specially designed&#x201D; &#x201C;components&#x201D; therefor, as follows:</P>
<P>b. Imaging cameras as follows:</P>
<P>b.4. Imaging cameras incorporating &#x201C;focal plane arrays&#x201D; having any of the following:</P>
<P>b.4.b. Incorporating &#x201C;focal plane arrays&#x201D; specified by 6A002.a.3.f;</P>
<NOTE>
<HED>Note 3 to 6A003.b.4.b:</HED>
<P>6A003.b.4.b does not control imaging cameras having a maximum frame rate equal to or less than 9 Hz.</P>
</NOTE>
<HD1>E. &#x201C;Technology&#x201D;</HD1>
<FP-2><B>6E003 Other &#x201C;technology&#x201D; as follows (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY><TR><TD>NS applies to entire entry</TD><TD>NS Column 1.</TD></TR><TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR></TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> N/A</FP-1>
<FP-1><I>Items:</I></FP-1>
<HD2>Acoustics</HD2>
<P>a. [Reserved]</P>
<HD2>Optics</HD2>
<P>d. &#x201C;Technology&#x201D; for optical surface coating of &#x201C;laser&#x201D; mirrors as follows:</P>
<HD1>Category 8&#x2014;Marine</HD1>
<HD1>D. &#x201C;Software&#x201D;</HD1>
<FP-1><B>8D001 &#x201C;Software&#x201D; &#x201C;specially designed&#x201D; or modified for the &#x201C;development,&#x201D; &#x201C;production&#x201D; or &#x201C;use&#x201D; of equipment or materials, controlled by 8A001 to 8A004</B>.</FP-1>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country Chart (See Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY><TR><TD>NS applies to entire entry</TD><TD>NS Column 1.</TD></TR><TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR></TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> N/A</FP-1>
<FP><I>Items:</I> The list of items controlled is contained in the ECCN heading.</FP>
<HD1>Category 9&#x2014;Aerospace and Propulsion</HD1>
<HD1>A. &#x201C;End Items,&#x201D; &#x201C;Equipment,&#x201D; &#x201C;Accessories,&#x201D; &#x201C;Attachments,&#x201D; &#x201C;Parts,&#x201D; &#x201C;Components,&#x201D; and &#x201C;Systems&#x201D;</HD1>
<FP-2><B>9A007 Solid rocket propulsion systems. (These items are &#x201C;subject to the ITAR.&#x201D; See 22 CFR parts 120 through 130.)</B></FP-2>
<FP-2><B>9A515 &#x201C;Spacecraft&#x201D; and related commodities, as follows (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, RS, MT, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY>
<TR><TD>NS applies to 9A515.a.1, .a.2, .a.3, .a.4, .b, .d, .e, .g, and .x</TD><TD>NS Column 1.</TD></TR>
<TR><TD>RS applies to 9A515.a.1, .a.2, .a.3, .a.4, .b, .d, .e, .g, and .x</TD><TD>RS Column 1.</TD></TR>
<TR><TD>MT applies to microcircuits in 9A515.d and 9A515.e.2 when &#x201C;parts&#x201D; or &#x201C;components&#x201D; of missiles</TD><TD>MT Column 1.</TD></TR>
<TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> See USML Category XV.</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. &#x201C;Spacecraft,&#x201D; including satellites, and space vehicles, whether designated developmental, experimental, research or scientific, not enumerated in USML Category XV.</P>
<P>a.1. [Reserved]</P>
<P>y. Items that would otherwise be within the scope of ECCN 9A515.x but that have been identified in an interagency-cleared commodity classification (CCATS) as warranting control in 9A515.y.</P>
<P>y.1. Discrete electronic &#x201C;components&#x201D; not specified in 9A515.e;</P>
<FP-2><B>9A610 Military aircraft and related commodities, other than those enumerated in 9A991.a (see List of Items Controlled).</B></FP-2>
<FP-1><E T="04">License Requirements</E></FP-1>
<FP-1><I>Reason for Control:</I> NS, RS, MT, UN, AT</FP-1>
<DIV width="100%"><DIV class="gpotbl_div">
<TABLE border="1" class="gpo_table" frame="void" width="100%">
<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>
<TBODY>
<TR><TD>NS applies to entire entry except: 9A610.b; and 9A610.y</TD><TD>NS Column 1.</TD></TR>
<TR><TD>RS applies to entire entry except 9A610.y</TD><TD>RS Column 1.</TD></TR>
<TR><TD>AT applies to entire entry</TD><TD>AT Column 1.</TD></TR>
</TBODY>
</TABLE>
</DIV></DIV>
<FP-1><E T="04">List of Items Controlled</E></FP-1>
<FP-1><I>Related Controls:</I> See USML Category VIII for military aircraft.</FP-1>
<FP-1><I>Items:</I></FP-1>
<P>a. Military aircraft that are demilitarized and not specified in USML Category VIII.</P>
<P>x. &#x201C;Parts,&#x201D; &#x201C;components,&#x201D; &#x201C;accessories,&#x201D; and &#x201C;attachments&#x201D; that are &#x201C;specially designed&#x201D; for a commodity enumerated in 9A610 or a defense article enumerated in USML Category VIII.</P>
<P>y. Specific &#x201C;parts,&#x201D; &#x201C;components,&#x201D; &#x201C;accessories,&#x201D; and &#x201C;attachments&#x201D; &#x201C;specially designed&#x201D; for a commodity subject to control in this ECCN or for a defense article in USML Category VIII, as follows:</P>
<P>y.1. Aircraft tires;</P>
</DIV9>
<DIV9 N="Supplement No. 2 to Part 774" TYPE="APPENDIX" hierarchy_metadata="{&quot;path&quot;:&quot;/on/_SUBSTITUTE_DATE_/title-15/part-774/appendix-Supplement No. 2 to Part 774&quot;,&quot;citation&quot;:&quot;Supplement No. 2 to Part 774, Title 15&quot;}">
<HEAD>Supplement No. 2 to Part 774&#x2014;General Technology and Software Notes
</HEAD>
<P>1. General Technology Note. The export of &#x201C;technology&#x201D; that is &#x201C;required&#x201D; for the &#x201C;development,&#x201D; &#x201C;production,&#x201D; or &#x201C;use&#x201D; of items on the Commerce Control List is controlled according to the provisions in each Category.</P>
<FP-2><B>0A999 Not an entry: text after Supplement No. 1 must not be read as the CCL.</B></FP-2>
</DIV9>
</DIV5>
"""
ECFR_ENTRIES = ("0A501", "0A982", "1C350", "3A001", "3A090", "5A002", "5A992", "6A003", "6E003", "8D001", "9A007", "9A515", "9A610")  # fmt: skip


class EcfrServer:
    """A local stand-in for the eCFR versioner API on 127.0.0.1 (the real host is not reachable
    here): the three endpoints an updater calls, serving `xml` (ECFR_PART774_XML by default; risk's
    tests serve Part 746) as of `date`. `status` overrides the HTTP status of every answer, to play
    an outage; `xml` may be replaced to serve something else. With `parts` ({"15/738": xml, "22/121":
    xml, ...}) it serves several parts of titles 15 and 22, each as of `date` (make run's fetch)."""

    def __init__(
        self,
        xml: bytes | None = None,
        date: str = ECFR_DATE,
        part: str = "774",
        parts: Mapping[str, bytes] | None = None,
    ) -> None:
        self.status = 200
        self.xml = xml if xml is not None else ECFR_PART774_XML.encode()
        self.parts = dict(parts) if parts is not None else {f"15/{part}": self.xml}
        self._single = parts is None
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = owner.answer(self.path, date)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def answer(self, raw_path: str, date: str) -> bytes | None:
        url = urlsplit(raw_path)
        path, part = url.path, dict(parse_qsl(url.query)).get("part", "")
        prefix = "/api/versioner/v1/"
        titles = sorted({int(key.split("/")[0]) for key in self.parts})
        if path == f"{prefix}titles.json":
            return json.dumps({"titles": [{"number": t, "up_to_date_as_of": date} for t in titles]}).encode()
        for title in titles:
            if path == f"{prefix}versions/title-{title}.json":
                return json.dumps({"content_versions": [{"date": date, "part": part}]}).encode()
            if path == f"{prefix}full/{date}/title-{title}.xml":
                # The single-part form answers any part with `xml` (which a test may replace).
                if self._single:
                    return self.xml
                return self.parts.get(f"{title}/{part}")
        return None

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/versioner/v1"

    def __enter__(self) -> EcfrServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
