"""Holdings mappings and ILS presets, built from ``shared/ILS-NOTES.md``.

A *holdings mapping* says which MARC tag carries a member's holdings (one
field per copy or per holding) and which subfields hold the library, shelving
location, call number, barcode and status.  An *ILS preset* bundles what a
given ILS usually exposes (OAI path, metadata prefix, holdings tag, OPAC deep
link) so a member entry in ``sources.yaml`` can say ``ils: koha`` and override
only what its site does differently.  Facts marked ⚠️ in ILS-NOTES are
single-site observations: verify them on the live member.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HoldingsMapping:
    """Where one kind of holdings field keeps each datum.

    Each datum names one or more subfield codes; several codes are joined with
    a space in the order given (e.g. a call number split into class and item
    parts).  ``status_map`` translates coded statuses to words.
    """

    tag: str
    library: tuple[str, ...] = ()
    location: tuple[str, ...] = ()
    call_number: tuple[str, ...] = ()
    barcode: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    note: tuple[str, ...] = ()
    volume: tuple[str, ...] = ()
    status_map: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    #: Call-number parts joined with "/" when ``call_number`` gives nothing
    #: (CNMARC 905 $d class + $e book number → "F124/26").
    call_number_parts: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        out: dict = {"tag": self.tag}
        for name in ("library", "location", "call_number", "barcode", "status", "note", "volume"):
            value = getattr(self, name)
            if value:
                out[name] = "".join(value)
        if self.status_map:
            out["status_map"] = dict(self.status_map)
        return out


def mapping(tag: str, **codes: str | dict) -> HoldingsMapping:
    """Build a mapping from strings of subfield codes: ``mapping("952", barcode="p")``."""
    status_map = codes.pop("status_map", {}) or {}
    return HoldingsMapping(tag=tag, status_map=dict(status_map),
                           **{k: tuple(str(v)) for k, v in codes.items()})


#: Named holdings mappings.  Sources for each are in ILS-NOTES.md (section in brackets).
HOLDINGS_PRESETS: dict[str, HoldingsMapping] = {
    # MARC 21 Format for Holdings 852 as embedded in bibliographic exports:
    # $b sublocation/collection, $c shelving location, $h/$i class and item
    # parts of the call number ($j shelving control number), $p piece
    # designation (barcode), $z public note.
    "marc852": mapping("852", library="b", location="c", call_number="hij", barcode="p", note="z"),
    # Evergreen OAI 852: a location, b owning library, c call number, g barcode, n status [§12].
    "evergreen852": mapping("852", library="b", location="a", call_number="c", barcode="g", status="n"),
    # Koha MARC21 items [§7]: a home library, c shelving location, o full call
    # number, p barcode, h enumeration, z public note; 7 not-for-loan, 1 lost, 0 withdrawn.
    "koha952": mapping("952", library="a", location="c", call_number="o", barcode="p", status="7",
                       note="z", volume="h", status_map={"0": "available", "1": "not for loan"}),
    # FOLIO mod-oai-pmh marc21_withholdings 952 [§9]: c library, d location,
    # f/e/g call number prefix, number, suffix; m barcode; j volume.
    "folio952": mapping("952", library="c", location="d", call_number="feg", barcode="m", volume="j"),
    # Alma physical availability AVA [§8]: b library code, c location name,
    # d call number, e availability.
    "alma_ava": mapping("AVA", library="b", location="c", call_number="d", status="e"),
    # SirsiDynix Symphony/Unicorn item fields [§11] — the "generic" 949/999
    # seen in real exports (corpus: Evergreen jazz_1k 949, UVA 999): a call
    # number, i barcode, l home location, m library, k current location.
    "sirsi999": mapping("999", library="m", location="l", call_number="a", barcode="i", status="k", note="o"),
    "generic949": mapping("949", library="m", location="l", call_number="a", barcode="i", status="k", volume="v"),
    # Sierra default export 945 [§10]: a call number, i barcode, l location, s status.
    "sierra945": mapping("945", location="l", call_number="a", barcode="i", status="s", volume="c"),
    # Koha UNIMARC items [§0, §7]: b home branch, e location, f barcode, k call number.
    "koha995": mapping("995", library="b", location="e", call_number="k", barcode="f"),
    # MARC 856 as an electronic holding: the link text and public notes (the URL itself goes to Record.urls).
    "marc856": mapping("856", location="3", note="zy"),
    # Alma publishing with physical inventory (corpus marc21/lobid-alma, one consortium ⚠️):
    # HOL = holdings record, H52 = its 852 (b library, c location, h/i call number);
    # ITM = one item (b barcode, n call number, u library, x location, s base status 1 = in place).
    "alma_h52": mapping("H52", library="b", location="c", call_number="hij"),
    "alma_itm": mapping("ITM", library="u", location="x", call_number="n", barcode="b", status="s",
                        status_map={"1": "available", "0": "not on shelf"}),
    # Alma HOL: holdings-record metadata (a created by, c original id) — notes only.
    "alma_hol": mapping("HOL", note="c"),
    # Another unioncat's merged records (its OAI-PMH ``merged`` set, exports): one 852 per holding,
    # a the member library id, b its branch, c location, h call number, p barcode, 3 volume, z note/status.
    "unioncat852": mapping("852", library="a", location="c", call_number="h", barcode="p", volume="3", note="z"),
}
# CNMARC 905 [§0]: a library, b accession number, c shelving area, s full call number
# (else d class / e book number), v volumes.
HOLDINGS_PRESETS["cnmarc905"] = HoldingsMapping(
    tag="905", library=("a",), location=("c",), call_number=("s",), barcode=("b",), volume=("v",),
    call_number_parts=("d", "e"))
# CNMARC 906 [§0 ⚠️]: one per copy; b per-copy number (accession/barcode), d/e call-number parts.
HOLDINGS_PRESETS["cnmarc906"] = HoldingsMapping(tag="906", barcode=("b",), call_number_parts=("d", "e"))
HOLDINGS_PRESETS["generic999"] = HOLDINGS_PRESETS["sirsi999"]


@dataclass(frozen=True)
class IlsPreset:
    """What an ILS typically offers; every value can be overridden per source."""

    name: str
    protocol: str
    metadata_prefix: str | None = None
    format: str = "auto"
    holdings: tuple[str, ...] = ()
    oai_path: str | None = None
    opac_url: str | None = None          # may contain {base}
    opac_isbn_url: str | None = None     # may contain {base}
    opac_ids_stable: bool = True
    port: int | None = None
    database: str | None = None
    charset: str | None = None
    note: str = ""


ILS_PRESETS: dict[str, IlsPreset] = {
    "koha": IlsPreset(
        "koha", "oai", metadata_prefix="marcxml", holdings=("koha952",), oai_path="/cgi-bin/koha/oai.pl",
        opac_url="{base}/cgi-bin/koha/opac-detail.pl?biblionumber={local_id}",
        opac_isbn_url="{base}/cgi-bin/koha/opac-search.pl?idx=nb&q={isbn}",
        note="Items are embedded only when the OAI config sets include_items: 1 (§7).",
    ),
    "aleph": IlsPreset(
        "aleph", "oai", metadata_prefix="marc21", oai_path="/OAI",
        opac_url="{base}/F/?func=direct&doc_number={local_id}",
        opac_isbn_url="{base}/F/?func=find-b&find_code=ISB&request={isbn}",
        port=9991,
        note="OAI publishing is a licensed module; harvest per set; add &local_base=BASE to the OPAC URL (§4).",
    ),
    "alma": IlsPreset(
        "alma", "oai", metadata_prefix="marc21", holdings=("alma_ava",),
        note="Endpoint https://{domain}/view/oai/{INST}/request; deleted records are transient, "
             "so schedule a periodic full harvest (§8).",
    ),
    "folio": IlsPreset(
        "folio", "oai", metadata_prefix="marc21_withholdings", holdings=("folio952",),
        note="mod-oai-pmh; resumption tokens expire after 24 h; no OPAC of its own (§9).",
    ),
    "evergreen": IlsPreset(
        "evergreen", "oai", metadata_prefix="marcxml", holdings=("evergreen852",),
        oai_path="/opac/extras/oai/biblio", opac_url="{base}/eg/opac/record/{local_id}",
        note="Item changes do not move the datestamp without optional triggers (§12).",
    ),
    "sierra": IlsPreset(
        "sierra", "z3950", holdings=("sierra945",), port=210, database="INNOPAC",
        opac_url="{base}/record={local_id}",
    ),
    "symphony": IlsPreset(
        "symphony", "z3950", holdings=("sirsi999",), port=2200, database="unicorn",
    ),
    "huiwen": IlsPreset(
        "huiwen", "z3950", format="cnmarc", holdings=("cnmarc905", "cnmarc906"), port=210, database="libsys2000",
        charset="gb2312",
        opac_url="{base}/opac/item.php?marc_no={local_id}",
        opac_isbn_url="{base}/opac/openlink.php?strSearchType=isbn&strText={isbn}",
        opac_ids_stable=False,
        note="No OAI-PMH; Z39.50 in UNIMARC/GB2312; marc_no is not stable, so links go "
             "through an ISBN search (§1).",
    ),
    "vufind": IlsPreset(
        "vufind", "oai", metadata_prefix="marc21", oai_path="/OAI/Server",
        opac_url="{base}/Record/{local_id}",
        note="Holdings usually come live from the ILS, not in OAI records (§13).",
    ),
}
