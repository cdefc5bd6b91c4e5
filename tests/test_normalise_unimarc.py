"""UNIMARC and CNMARC: records built in code (real CNMARC is scarce), encodings, the demo crosswalk,
Chinese folding and the property tests."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymarc import Field, Indicators, Subfield

from dedupe.features import blocking_keys, record_features
from consortium.presets import HOLDINGS_PRESETS
from harvester.raw import RawRecord
from marc_fixtures import make_record
from normaliser import normalise
from normaliser.errors import RecordError
from normaliser.identifiers import isbn13
from normaliser.model import Record
from normaliser.text import match_key, pinyin
from demo.cnmarc import to_cnmarc

FT, RT, SF = b"\x1e", b"\x1d", b"\x1f"


def iso(fields: list[tuple[str, bytes]], leader: str = "00000nam0 2200000   450 ") -> bytes:
    """An ISO 2709 record from already-encoded field bodies (any character set)."""
    directory, data = b"", b""
    for tag, body in fields:
        body += FT
        directory += f"{tag}{len(body):04d}{len(data):05d}".encode()
        data += body
    directory += FT
    base = 24 + len(directory)
    return f"{base + len(data) + 1:05d}{leader[5:12]}{base:05d}{leader[17:]}".encode() + directory + data + RT


def df(ind: str, *pairs: str, encoding: str = "gbk") -> bytes:
    out = ind.encode()
    for code, value in zip(pairs[::2], pairs[1::2]):
        out += SF + code.encode() + value.encode(encoding)
    return out


F100_GB = "20240101d2005    km y0chiy0120    ea"


def cnmarc_fields(encoding: str = "gbk", f100: str = F100_GB) -> list[tuple[str, bytes]]:
    e = encoding
    return [
        ("001", b"012005000123"),
        ("010", df("  ", "a", "7-02-000220-X", "b", "精装", "d", "CNY59.70", encoding=e)),
        ("091", df("  ", "a", "10019·2281", encoding=e)),
        ("099", df("  ", "a", "CAL 012005123456", encoding=e)),
        ("100", df("  ", "a", f100, encoding=e)),
        ("101", df("0 ", "a", "chi", encoding=e)),
        ("102", df("  ", "a", "CN", "b", "110000", encoding=e)),
        ("105", df("  ", "a", "y   z   000yy", encoding=e)),
        ("106", df("  ", "a", "r", encoding=e)),
        ("200", df("1 ", "a", "红楼梦", "A", "hong lou meng", "e", "脂评本", "f", "曹雪芹著", "g", "无名氏续",
                   "h", "上册", encoding=e)),
        ("205", df("  ", "a", "第3版", encoding=e)),
        ("210", df("  ", "a", "北京", "c", "人民文学出版社", "d", "2005", encoding=e)),
        ("215", df("  ", "a", "2册(1606页)", "c", "图", "d", "21cm", encoding=e)),
        ("225", df("2 ", "a", "中国古典文学读本丛书", "v", "12", encoding=e)),
        ("300", df("  ", "a", "据程甲本排印", encoding=e)),
        ("330", df("  ", "a", "长篇小说。", encoding=e)),
        ("510", df("1 ", "a", "A dream of red mansions", "z", "eng", encoding=e)),
        ("517", df("1 ", "a", "石头记", "A", "shi tou ji", encoding=e)),
        ("606", df("0 ", "a", "章回小说", "y", "中国", "z", "清代", encoding=e)),
        ("690", df("  ", "a", "I242.47", "v", "5", encoding=e)),
        ("692", df("  ", "a", "42.5", encoding=e)),
        ("701", df(" 0", "a", "曹雪芹", "A", "cao xue qin", "f", "约1715-约1763", "4", "著", encoding=e)),
        ("702", df(" 0", "a", "高鹗", "4", "续", encoding=e)),
        ("801", df(" 0", "a", "CN", "b", "NJU", "c", "20050301", encoding=e)),
        ("905", df("  ", "a", "NJU", "b", "A0012345", "c", "社科库", "d", "I242.47", "e", "112", "v", "上册",
                   encoding=e)),
        ("905", df("  ", "a", "NJU", "b", "A0012346", "c", "社科库", "s", "I242.47/112:2", "v", "下册", encoding=e)),
    ]


def raw(payload: bytes, fmt: str = "cnmarc", syntax: str = "iso2709") -> RawRecord:
    return RawRecord(source="nju", local_id="012005000123", payload=payload, syntax=syntax, format=fmt)


CN_HOLDINGS = [HOLDINGS_PRESETS["cnmarc905"], HOLDINGS_PRESETS["cnmarc906"]]


@pytest.fixture(scope="module")
def red_chamber() -> Record:
    return normalise(raw(iso(cnmarc_fields())), CN_HOLDINGS)


def test_cnmarc_in_gbk_all_fields(red_chamber):
    r = red_chamber
    assert r.record_format == "cnmarc" and r.format == "book" and r.warnings == []
    assert r.control_number == "012005000123"
    assert r.isbns == ["9787020002207"] and r.price == "CNY59.70" and r.isbn_qualifiers == ["精装"]
    assert "csbn:10019·2281" in r.other_ids and "calis:CAL 012005123456" in r.other_ids
    assert (r.title, r.subtitle, r.part, r.responsibility) == ("红楼梦", "脂评本", "上册", "曹雪芹著 ; 无名氏续")
    assert r.title_pinyin == "hong lou meng"
    assert r.other_titles == ["A dream of red mansions", "石头记"]
    assert (r.edition, r.place, r.publisher, r.year) == ("第3版", "北京", "人民文学出版社", 2005)
    assert r.extent == "2册(1606页)" and r.series == ["中国古典文学读本丛书 ; 12"]
    assert r.languages == ["chi"] and r.countries == ["CN"] and r.cataloguing_source == "CN NJU"
    assert r.subjects == ["章回小说 -- 中国 -- 清代"]
    assert [(c.scheme, c.value) for c in r.classifications] == [("clc", "I242.47"), ("cas", "42.5")]
    assert [(c.name, c.role, c.primary) for c in r.contributors] == [
        ("曹雪芹 约1715-约1763", "著", True), ("高鹗", "续", False)]
    assert r.notes == ["据程甲本排印"] and r.summary == "长篇小说。"
    assert [(h.library, h.barcode, h.location, h.call_number, h.volume) for h in r.holdings] == [
        ("NJU", "A0012345", "社科库", "I242.47/112", "上册"), ("NJU", "A0012346", "社科库", "I242.47/112:2", "下册")]


@pytest.mark.parametrize("fmt", ["auto", "unimarc", "cnmarc"])
def test_gbk_cnmarc_is_read_whatever_unimarc_format_is_declared(fmt, red_chamber):
    rec = normalise(raw(iso(cnmarc_fields()), fmt), CN_HOLDINGS)
    assert rec.to_dict() == red_chamber.to_dict()


def test_utf8_cnmarc_and_gb18030_and_undeclared_charset():
    utf8 = normalise(raw(iso(cnmarc_fields("utf-8", F100_GB.replace("0120", "50  "))), "auto"))
    assert utf8.title == "红楼梦" and utf8.warnings == []
    # GBK bytes but 100 $a says ISO 646 only: read as GB18030 with a warning (the bytes win)
    mislabelled = normalise(raw(iso(cnmarc_fields(f100=F100_GB.replace("0120", "01  "))), "auto"))
    assert mislabelled.title == "红楼梦"
    assert any("read as GB18030" in w for w in mislabelled.warnings)
    # GB18030 four-byte characters (rare Han outside GBK) decode too
    rare = normalise(raw(iso([("100", df("  ", "a", F100_GB)), ("200", df("1 ", "a", "红楼梦", encoding="gb18030"))])))
    assert rare.title == "红楼梦"


def test_gbk_cnmarc_of_japanese_and_russian_books_keeps_their_letters():
    """A Chinese library's Japanese book: GBK carries kana (GB2312 rows 4 and 5) beside Han.  Read as anything
    but GB18030 the field was garbage and the record quarantined ("character set unknown")."""
    payload = iso([("100", df("  ", "a", F100_GB.replace("2005", "1999"))),
                   ("200", df("1 ", "a", "藏學研究文獻書目", "f", "索文清編")),
                   ("210", df("  ", "a", "東京", "c", "東京外国語大学アジアアフリカ言語文化研究所", "d", "1999"))])
    rec = normalise(raw(payload, "unimarc"))
    assert (rec.title, rec.place, rec.publisher, rec.year) == (
        "藏學研究文獻書目", "東京", "東京外国語大学アジアアフリカ言語文化研究所", 1999)
    assert rec.warnings == []
    # a Russian book in the same library's CNMARC: GB2312's Cyrillic, no Han at all in the record
    russian = normalise(raw(iso([("100", df("  ", "a", F100_GB)),
                                 ("200", df("1 ", "a", "Распад", "f", "Михаил Буянов")),
                                 ("210", df("  ", "a", "Москва", "d", "2003"))]), "unimarc"))
    assert (russian.title, russian.place, russian.warnings) == ("Распад", "Москва", [])
    # letters alone are not taken for Chinese where nothing says GB
    from normaliser.charset import gb_decode
    assert gb_decode("アジアアフリカ".encode("gbk")) is None and gb_decode("Распад".encode("gbk")) is None
    assert gb_decode("Распад".encode("gbk"), declared=True) == "Распад"


def test_undecodable_unimarc_is_quarantined_with_the_reason():
    junk = bytes(range(0x80, 0xFF)) * 2
    payload = iso([("100", df("  ", "a", F100_GB.replace("0120", "01  "))), ("200", b"1 " + SF + b"a" + junk)])
    with pytest.raises(RecordError, match="character set unknown.*100 \\$a/26-29 '01'"):
        normalise(raw(payload, "unimarc"))


def test_iso5426_unimarc():
    f100 = "20020123d1999    k  y0frey0103    ba"
    payload = iso([("100", df("  ", "a", f100)), ("200", b"1 " + SF + b"aL'\xc2ecole fran\xd0caise")])
    assert normalise(raw(payload, "unimarc")).title == "L'école française"


def test_unimarc_non_bibliographic_and_title_less():
    # an authority record (leader/06 x) is read since authorities are a source kind (normaliser/authority.py);
    # one without a 2XX heading still names no one and is rejected
    no_heading = [(tag, data) for tag, data in cnmarc_fields() if not tag.startswith("2")]
    with pytest.raises(RecordError, match="UNIMARC authority record"):
        normalise(raw(iso(no_heading, leader="00000cx  a2200000   450 "), "unimarc"))
    with pytest.raises(RecordError, match="no title: 200"):
        normalise(raw(iso([("100", df("  ", "a", F100_GB)), ("210", df("  ", "a", "北京"))]), "unimarc"))


def test_a_200_without_its_a_keeps_the_record_under_its_part_or_its_pinyin():
    # a section described alone (200 $A pinyin + $i, no $a) and a record that kept only the pinyin: both
    # are books a library holds, read with a warning rather than quarantined for "no title"
    f100 = ("100", df("  ", "a", F100_GB))
    part = normalise(raw(iso([f100, ("200", df("1 ", "A", "ji ben zi liao", "i", "基本资料", "f", "冯正民"))]),
                         "cnmarc"))
    assert (part.title, part.part, part.title_pinyin) == ("基本资料", "", "ji ben zi liao")
    assert part.responsibility == "冯正民"
    assert any("$h/$i" in w for w in part.warnings)
    pinyin_only = normalise(raw(iso([f100, ("200", df("1 ", "A", "hong lou meng"))]), "cnmarc"))
    assert pinyin_only.title == "hong lou meng" and any("pinyin" in w for w in pinyin_only.warnings)
    with pytest.raises(RecordError, match="no title: 200"):
        normalise(raw(iso([f100, ("200", df("1 ", "f", "曹雪芹著"))]), "cnmarc"))


def test_unimarc_embedded_series_and_corporate_names():
    payload = iso([("100", df("  ", "a", F100_GB)), ("200", df("1 ", "a", "Titre")),
                   ("410", df(" 0", "1", "2001 ", "a", "Collection X", "v", "3", encoding="utf-8")),
                   ("710", df("02", "a", "Université", "b", "Faculté", encoding="utf-8")),
                   ("711", df("12", "a", "Congrès", encoding="utf-8"))])
    rec = normalise(raw(payload, "unimarc"))
    assert rec.series == ["Collection X ; 3"]
    assert [(c.name, c.kind, c.primary) for c in rec.contributors] == [
        ("Université Faculté", "organisation", True), ("Congrès", "meeting", False)]


def test_gbk_marc21_with_blank_leader_09():
    payload = iso([("001", b"gb-1"), ("008", b"200101s1996    cc            000 0 chi d"),
                   ("100", df("1 ", "a", "谭其骧")), ("245", df("10", "a", "中国历史地图集")),
                   ("260", df("  ", "a", "北京", "b", "中国地图出版社", "c", "1996"))],
                  leader="00000nam  2200000   4500")
    out = normalise(RawRecord(source="x", local_id="gb-1", payload=payload, format="marc21"))
    assert (out.title, out.main_author, out.publisher, out.year) == ("中国历史地图集", "谭其骧", "中国地图出版社", 1996)
    assert out.warnings == ["fields 100, 245, 260 read as GB18030 although leader/09 says MARC-8"]


# --- the demo crosswalk: a CNMARC and a MARC 21 record of the same book cluster together ---------

BOOKS = [
    ("Dream of the red chamber", "Cao, Xueqin", "7-02-000220-X", "1982"),
    ("中国历史地图集", "谭其骧", "9787503118555", "1996"),
    ("The art of computer programming", "Knuth, Donald E.", "0-201-89683-4", "1997"),
]


@pytest.mark.parametrize("title, author, isbn, year", BOOKS)
@pytest.mark.parametrize("fmt", ["cnmarc", "auto"])
def test_to_cnmarc_round_trip_gives_the_same_keys(title, author, isbn, year, fmt):
    marc = make_record("m-1", title=title, author=author, isbn=isbn, year=year,
                       extra=[Field(tag="084", indicators=Indicators(" ", " "),
                                    subfields=[Subfield("a", "K928.6"), Subfield("2", "clc")])])
    marc.leader = "00000nam a2200000 a 4500"
    original = normalise(RawRecord(source="lib-a", local_id="m-1", payload=marc.as_marc(), format="marc21"))
    payload = to_cnmarc(marc, "CN000123", library="NJU")
    assert payload[9:10] == b" " and b"0120" in payload
    cn = normalise(RawRecord(source="lib-cn", local_id="CN000123", payload=payload, format=fmt), CN_HOLDINGS)
    assert cn.record_format == "cnmarc" and cn.warnings == []
    assert cn.isbns == original.isbns == [isbn13(isbn)]
    assert blocking_keys(record_features(cn)) == blocking_keys(record_features(original))
    assert [c.value for c in cn.classifications if c.scheme == "clc"] == ["K928.6"]
    assert cn.holdings[0].library == "NJU" and cn.holdings[0].call_number == "K928.6/123"
    assert cn.holdings[0].barcode


def test_to_cnmarc_without_clc_omits_690_and_uses_lcc_for_the_call_number():
    marc = make_record("m-2", title="A book", isbn="0-306-40615-2",
                       extra=[Field(tag="050", indicators=Indicators(" ", "0"),
                                    subfields=[Subfield("a", "QA76"), Subfield("b", ".K58")])])
    payload = to_cnmarc(marc, "CN2")
    assert b"690" not in payload[24:payload.index(FT)]
    cn = normalise(RawRecord(source="c", local_id="CN2", payload=payload, format="auto"), CN_HOLDINGS)
    assert cn.classifications == [] and cn.holdings[0].call_number == "QA76 .K58"


# --- Chinese text keys and properties ------------------------------------------------------------

PAIRS = [("国", "國"), ("书", "書"), ("图", "圖"), ("馆", "館"), ("历", "歷"), ("学", "學"), ("红", "紅"),
         ("楼", "樓"), ("梦", "夢"), ("东", "東"), ("华", "華"), ("论", "論"), ("语", "語"), ("时", "時"),
         ("长", "長"), ("门", "門"), ("电", "電"), ("开", "開"), ("关", "關"), ("鱼", "魚"), ("鸟", "鳥"),
         ("马", "馬"), ("车", "車"), ("风", "風"), ("云", "雲"), ("龙", "龍"), ("经", "經"), ("济", "濟")]
_ASCII_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ", min_size=0, max_size=8)


def test_match_key_folds_traditional_and_full_width():
    assert match_key("紅樓夢") == match_key("红楼梦") == "红楼梦"
    assert match_key("ＩＳＯ　９００１：２０１５") == match_key("iso 9001:2015")
    assert match_key("《红楼梦》，上册。") == match_key("红楼梦 上册")


def test_pinyin_is_for_search_never_for_keys():
    assert pinyin("紅樓夢") == "hong lou meng"
    assert match_key("刘备") != match_key("柳备")       # homophones keep apart
    assert "liu" not in match_key("刘备")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(PAIRS) - 1), _ASCII_WORD), min_size=1, max_size=6))
def test_simplified_and_traditional_titles_give_the_same_key(parts):
    simplified = "".join(PAIRS[i][0] + w for i, w in parts)
    traditional = "".join(PAIRS[i][1] + w for i, w in parts)
    a = Record(source="s", local_id="1", title=simplified, year=2000, languages=["chi"])
    b = Record(source="t", local_id="1", title=traditional, year=2000, languages=["chi"])
    assert match_key(simplified) == match_key(traditional)
    assert record_features(a)["t"] == record_features(b)["t"]  # the matcher's title


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9 - 1))
def test_isbn10_and_isbn13_give_the_same_key(n):
    body = f"{n:09d}"
    check = sum((10 - i) * int(d) for i, d in enumerate(body)) % 11
    isbn10 = body + ("X" if (11 - check) % 11 == 10 else str((11 - check) % 11))
    isbn13_ = isbn13(isbn10)
    assert isbn13_ is not None and isbn13(isbn13_) == isbn13_
    keys = []
    for number in (isbn10, isbn13_, f"{isbn10[:1]}-{isbn10[1:5]}-{isbn10[5:9]}-{isbn10[9]}"):
        rec = normalise(RawRecord(source="s", local_id="1", format="marc21",
                                  payload=make_record("1", isbn=number).as_marc()))
        keys.append([k for k in blocking_keys(record_features(rec)) if k.startswith("isbn:")])
    assert keys[0] == keys[1] == keys[2] == [f"isbn:{isbn13_}"]


_TEXT = st.text(alphabet=st.sampled_from(list("abc XYZ,./:;[]éü") + [p for pair in PAIRS for p in pair]
                                         + list("，。《》（）ＡＢ１２")), max_size=20)


@settings(max_examples=150, deadline=None)
@given(title=_TEXT.filter(lambda t: t.strip(" ,./:;[]，。《》（）")), subtitle=_TEXT, author=_TEXT)
def test_normalising_twice_changes_nothing(title, subtitle, author):
    fields = [("100", df("  ", "a", F100_GB.replace("0120", "50  "), encoding="utf-8")),
              ("200", df("1 ", "a", title, "e", subtitle, "f", author, encoding="utf-8")),
              ("701", df(" 0", "a", author or "x", encoding="utf-8"))]
    try:
        first = normalise(raw(iso(fields), "unimarc"))
    except RecordError:
        return      # e.g. a title that is only punctuation
    again = normalise(raw(iso(fields), "unimarc"))
    assert first.to_dict() == again.to_dict()
    # and the normalised values are fixed points of the display clean-up
    from normaliser.text import clean
    assert clean(first.title) == first.title and clean(first.subtitle) == first.subtitle
    assert Record.from_dict(first.to_dict()) == first
