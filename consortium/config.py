"""The ``sources.yaml`` model: the consortium, its groups and its member libraries.

The file names the consortium and its services (ILL, sign-on, ask a
librarian), its regions and groups of libraries, and every member library:
how to reach it, what it sends and how to link back into its OPAC.  These
frozen dataclasses are what every other package reads; :mod:`consortium.load`
builds them from the YAML and raises :class:`ConfigError`, which names the
file, the source and the key, because the person reading it is editing a
130-member YAML file by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .opac import opac_id
from .presets import HoldingsMapping
from .signon import SignOn


def _chinese(locale: object) -> bool:
    return str(locale or "").lower().replace("-", "_").split("_")[0] == "zh"


def display_name(obj: "Consortium | Group | Source", locale: object = "en") -> str:
    """``obj``'s name in the UI language ``locale``: its ``name_zh`` for Chinese (``zh``, ``zh_CN``,
    a Babel ``Locale``), else — and where no Chinese name is given — its ``name``."""
    if _chinese(locale) and getattr(obj, "name_zh", None):
        return obj.name_zh
    return obj.name


class ConfigError(ValueError):
    """``sources.yaml`` is wrong; the message says where and what was expected."""

    def __init__(self, file: Path | str, message: str, source: str | None = None, key: str | None = None):
        self.file, self.source, self.key = str(file), source, key
        where = [self.file]
        if source is not None:
            where.append(f"source {source!r}")
        if key is not None:
            where.append(f"key {key!r}")
        super().__init__(f"{': '.join(where)}: {message}")


@dataclass(frozen=True)
class Consortium:
    """The consortium itself and its shared reader services (ILL, ask a librarian, sign-on page)."""

    name: str
    ill_url: str | None = None
    ask_url: str | None = None
    login_url: str | None = None
    ill_params: dict[str, str] = field(default_factory=dict)
    base_url: str | None = None
    #: the Chinese name, shown in the Chinese UI (``name`` where not given)
    name_zh: str | None = None


@dataclass(frozen=True)
class Group:
    """A named group of libraries (e.g. a teaching consortium) for scoped search."""

    id: str
    name: str
    members: tuple[str, ...]
    name_zh: str | None = None


@dataclass(frozen=True)
class Source:
    """One member library and how to harvest it."""

    id: str
    name: str
    region: str
    protocol: str
    format: str = "auto"   # unsaid: the normaliser tells MARC 21 from UNIMARC/CNMARC per record
    url: str | None = None
    path: Path | None = None
    metadata_prefix: str = "marc21"
    set: str | None = None
    ils: str | None = None
    holdings: tuple[HoldingsMapping, ...] = ()
    opac_url: str | None = None
    opac_isbn_url: str | None = None
    opac_ids_stable: bool = True
    ill_url: str | None = None
    #: extra OpenURL parameters for this member's ILL requests (over the consortium's ``ill_params``)
    ill_params: dict[str, str] = field(default_factory=dict)
    #: how this member's readers sign on (OpenID Connect or CAS), or None
    sign_on: SignOn | None = None
    schedule: timedelta | None = None
    schedule_text: str | None = None
    enabled: bool = True
    timeout: float = 60.0
    max_retries: int = 5
    retry_after_max: float = 600.0
    delay: float = 0.0
    encoding: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: the library's Chinese name, shown in the Chinese UI (``name`` where not given)
    name_zh: str | None = None
    #: a holdings feed: the id of the source whose bibliographic records its holdings records (MFHD) belong to
    holdings_for: str | None = None

    def opac_link(self, local_id: str | None = None, isbn: str | None = None,
                  control_number: str | None = None) -> str | None:
        """A deep link into this member's OPAC for one record, or None.

        Where the ILS's record ids are not stable (Huiwen's ``marc_no``), or
        there is no record template, an ISBN search is the link that keeps
        working; otherwise the record page.
        """
        values = {
            "local_id": quote(opac_id(local_id or ""), safe=""),
            "oai_id": quote(local_id or "", safe=""),
            "isbn": quote(isbn or "", safe=""),
            "control_number": quote(control_number or "", safe=""),
        }
        if isbn and self.opac_isbn_url and (not self.opac_ids_stable or not self.opac_url):
            return self.opac_isbn_url.format(**values)
        if self.opac_url and local_id:
            # An unstable id without an ISBN: the record link is the best we have.
            return self.opac_url.format(**values)
        return None


@dataclass(frozen=True)
class SourcesFile:
    """The whole consortium file, validated."""

    path: Path
    consortium: Consortium
    sources: tuple[Source, ...]
    regions: tuple[str, ...]
    groups: tuple[Group, ...] = ()
    #: region (as the sources name it) → its Chinese name, from ``regions: [{name, name_zh}]``
    region_names_zh: dict[str, str] = field(default_factory=dict)

    def region_name(self, region: str, locale: str | None = "en") -> str:
        """A region's name in the UI language ``locale`` (``zh``, ``zh_Hans_CN``…; the region itself otherwise)."""
        if _chinese(locale):
            return self.region_names_zh.get(region) or region
        return region

    def source(self, source_id: str) -> Source:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)

    def by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}
