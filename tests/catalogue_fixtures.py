"""Builders for records and clusters used by the index and web tests."""
from __future__ import annotations

from dedupe.model import Cluster
from normaliser.model import Classification, Contributor, Holding, ParallelField, Record

LIBRARIES = {
    "pku": ("Peking University Library", "Beijing"),
    "thu": ("Tsinghua University Library", "Beijing"),
    "fdu": ("Fudan University Library", "Shanghai"),
}


def record(title: str, source: str = "pku", local_id: str = "1", **kw) -> Record:
    return Record(source=source, local_id=local_id, title=title, **kw)


def cluster(cid: str, title: str, holdings: list[tuple[str, str]] | None = None, **kw) -> Cluster:
    """A cluster whose members are ``holdings`` [(source, call number)], default one copy at pku."""
    holdings = holdings if holdings is not None else [("pku", f"CALL-{cid}")]
    source = holdings[0][0] if holdings else "pku"
    rec = record(title, source=source, local_id=f"{source}-{cid}",
                 holdings=[Holding(source=s, local_id=f"{s}-{cid}", call_number=c, location="Main stacks",
                                   status="Available") for s, c in holdings], **kw)
    members = list(dict.fromkeys((s, f"{s}-{cid}") for s, _ in holdings))
    return Cluster(id=cid, record=rec, members=members, match_keys=["isbn"] if rec.isbns else [])


def sample_clusters() -> list[Cluster]:
    return [
        cluster("c-zh-history", "中国历史", year=1998, languages=["chi"], format="book",
                isbns=["9787020002207"], subjects=["中国 -- 历史"], publisher="人民文学出版社", place="北京",
                contributors=[Contributor("司马迁", primary=True)],
                holdings=[("pku", "K20/1"), ("thu", "K20/2"), ("fdu", "K20/3")]),
        cluster("c-hlm-s", "红楼梦", year=2005, languages=["chi"], contributors=[Contributor("曹雪芹", primary=True)],
                subjects=["Chinese fiction"], holdings=[("pku", "I242/1")]),
        cluster("c-hlm-t", "紅樓夢", year=1982, languages=["chi"], contributors=[Contributor("曹雪芹", primary=True)],
                holdings=[("fdu", "I242/9")]),
        cluster("c-en-china", "The history of China", subtitle="an introduction", year=2010, languages=["eng"],
                contributors=[Contributor("Smith, John", primary=True), Contributor("Müller, Anna", role="editor")],
                isbns=["9780306406157"], subjects=["China -- History"], publisher="Plenum",
                holdings=[("thu", "DS735 .S6"), ("pku", "DS735 .S6 c.2")]),
        cluster("c-en-map", "Atlas of Asia", year=1975, languages=["eng"], format="map",
                subjects=["Asia -- Maps"], holdings=[("fdu", "G2200")]),
        cluster("c-en-serial", "Journal of Asian Studies", languages=["eng"], format="serial", issns=["0021-9118"],
                holdings=[("pku", "P1"), ("thu", "P1")]),
    ]


__all__ = ["Classification", "Contributor", "Holding", "ParallelField", "Record", "Cluster", "LIBRARIES",
           "record", "cluster", "sample_clusters"]
