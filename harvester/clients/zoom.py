"""A thin ``ctypes`` binding of YAZ's ZOOM C API: Z39.50 and SRU searches from Python 3.

YAZ (Debian ``libyaz5``) is the Z39.50 engine behind Koha, Pazpar2 and Metaproxy; there is no
maintained pure-Python 3 Z39.50 client.  This module loads ``libyaz.so.5`` (the bare ``libyaz.so``
link only exists with ``libyaz-dev``) and wraps the few calls a harvester needs::

    with Connection("z3950://127.0.0.1:9210/Default", syntax="usmarc", timeout=30) as conn:
        rs = conn.search('@attr 1=_ALLRECORDS @attr 2=103 ""')
        for rec in rs.records(0, 100):   # one present request of up to 100 records
            rec.data                       # ISO 2709 bytes (copied; NULs kept)

Rules learnt the hard way: record buffers belong to their result set (we copy them at once with
``string_at(ptr, len)``: records contain NULs, so ``c_char_p`` would truncate them); one connection
per thread (ctypes releases the GIL, so threads really run in parallel); the ``timeout`` option
gives error 10007 and a refused port 10000 at once.  Every failure becomes a :class:`ZoomError`
carrying the diagnostic code, message, additional info (address) and diagnostic set.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import HarvestError

INSTALL_HINT = "install YAZ: apt-get install libyaz5 (Debian/Ubuntu; or run make install)"
SYNTAXES = {"usmarc": "usmarc", "marc21": "usmarc", "unimarc": "unimarc", "xml": "xml", "marcxml": "xml"}

# The ZOOM error codes (yaz/zoom.h) the errors below are told apart by
ZOOM_ERROR_CONNECT = 10000
ZOOM_ERROR_CONNECTION_LOST = 10004
ZOOM_ERROR_TIMEOUT = 10007
ZOOM_ERROR_UNSUPPORTED_QUERY = 10009
ZOOM_ERROR_INVALID_QUERY = 10010
ZOOM_ERROR_CQL_PARSE = 10011
ZOOM_ERROR_CQL_TRANSFORM = 10012

_lib = None
_lib_error: str | None = None
_lib_lock = threading.Lock()


class YazMissing(HarvestError, ImportError):
    """libyaz (the YAZ shared library) is not installed."""


class ZoomError(HarvestError):
    """A ZOOM / Z39.50 / SRU failure: ``code``, ``message``, ``addinfo`` and ``diagset``.

    ``diagset`` is ``ZOOM`` for client-side errors (connect, timeout, bad PQF…), ``Bib-1`` for
    Z39.50 server diagnostics and an ``info:srw/diagnostic/…`` URI for SRU ones.
    """

    def __init__(self, code: int, message: str, addinfo: str = "", diagset: str = "", where: str = ""):
        self.code, self.message, self.addinfo, self.diagset, self.where = code, message, addinfo, diagset, where
        text = f"{diagset or 'ZOOM'} error {code}: {message}"
        if addinfo:
            text += f" ({addinfo})"
        if where:
            text = f"{where}: {text}"
        super().__init__(text)


class ZoomConnectError(ZoomError, ConnectionError):
    """The server could not be reached (10000) or the connection dropped (10004)."""


class ZoomTimeout(ZoomError, TimeoutError):
    """No answer within the connection's ``timeout`` (10007)."""


class ZoomQueryError(ZoomError):
    """The query was rejected, by ZOOM (bad PQF/CQL) or by the server (a Bib-1/SRU diagnostic)."""


def _error(code: int, message: str, addinfo: str, diagset: str, where: str) -> ZoomError:
    if code in (ZOOM_ERROR_CONNECT, ZOOM_ERROR_CONNECTION_LOST):
        cls = ZoomConnectError
    elif code == ZOOM_ERROR_TIMEOUT:
        cls = ZoomTimeout
    elif code in (ZOOM_ERROR_INVALID_QUERY, ZOOM_ERROR_CQL_PARSE, ZOOM_ERROR_CQL_TRANSFORM,
                  ZOOM_ERROR_UNSUPPORTED_QUERY) or (diagset != "ZOOM" and (
                      100 <= code < 1000 and code not in (109, 235))):
        # Bib-1 100-999 and SRU 10-48 are query problems (bad attribute, term, syntax…);
        # 109 "database unavailable" and 235 "database does not exist" are configuration errors.
        cls = ZoomQueryError
    elif diagset.startswith("info:srw/diagnostic") and 10 <= code <= 48:
        cls = ZoomQueryError
    else:
        cls = ZoomError
    return cls(code, message, addinfo, diagset, where)


def load() -> ctypes.CDLL:
    """The YAZ library, loaded once; :class:`YazMissing` (with what to install) if it is absent."""
    global _lib, _lib_error
    with _lib_lock:
        if _lib is not None:
            return _lib
        if _lib_error is not None:
            raise YazMissing(_lib_error)
        names = ["libyaz.so.5"]
        found = ctypes.util.find_library("yaz")
        if found and found not in names:
            names.append(found)
        errors = []
        for name in names:
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError as exc:
                errors.append(str(exc))
        else:
            _lib_error = f"the YAZ library (libyaz.so.5) is not installed; {INSTALL_HINT} ({'; '.join(errors)})"
            raise YazMissing(_lib_error)
        _declare(lib)
        _lib = lib
        return lib


def available() -> bool:
    try:
        load()
    except YazMissing:
        return False
    return True


def _declare(lib: ctypes.CDLL) -> None:
    vp, cp, sz, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int
    cpp = ctypes.POINTER(ctypes.c_char_p)
    sig = {
        "ZOOM_options_create": (vp, []),
        "ZOOM_options_set": (None, [vp, cp, cp]),
        "ZOOM_options_destroy": (None, [vp]),
        "ZOOM_connection_create": (vp, [vp]),
        "ZOOM_connection_connect": (None, [vp, cp, i]),
        "ZOOM_connection_destroy": (None, [vp]),
        "ZOOM_connection_option_set": (None, [vp, cp, cp]),
        "ZOOM_connection_option_get": (cp, [vp, cp]),
        "ZOOM_connection_error_x": (i, [vp, cpp, cpp, cpp]),
        "ZOOM_connection_search": (vp, [vp, vp]),
        "ZOOM_query_create": (vp, []),
        "ZOOM_query_destroy": (None, [vp]),
        "ZOOM_query_prefix": (i, [vp, cp]),
        "ZOOM_query_cql": (i, [vp, cp]),
        "ZOOM_resultset_destroy": (None, [vp]),
        "ZOOM_resultset_size": (sz, [vp]),
        "ZOOM_resultset_option_set": (None, [vp, cp, cp]),
        "ZOOM_resultset_records": (None, [vp, ctypes.POINTER(vp), sz, sz]),
        # The record buffer: c_void_p, never c_char_p (records contain NULs; c_char_p stops at the first).
        "ZOOM_record_get": (vp, [vp, cp, ctypes.POINTER(i)]),
        "ZOOM_record_error": (i, [vp, cpp, cpp, cpp]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes


def _b(value) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _s(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def zurl(url: str) -> tuple[str, str | None, str]:
    """``(zurl for ZOOM, database or None, protocol)`` from a source url.

    ``z3950://host:port/db`` and ``tcp:host:port/db`` are Z39.50; ``http(s)://host:port/path`` is SRU.
    """
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return url, None, "sru"
    if parts.scheme == "z3950":
        db = parts.path.lstrip("/") or None
        return f"tcp:{parts.hostname}:{parts.port or 210}", db, "z3950"
    if parts.scheme == "tcp":
        rest = url[4:]
        host, _, db = rest.partition("/")
        return f"tcp:{host}", db or None, "z3950"
    return url, None, "z3950"


@dataclass
class Record:
    """One retrieved record: ``data`` (bytes, copied out of YAZ) and its 1-based ``position``."""

    position: int
    data: bytes
    syntax: str


class _Closing:
    """``with`` support and a best-effort ``close`` on garbage collection: ZOOM objects hold C memory."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


class ResultSet(_Closing):
    """A search's result set; records are fetched with batched present requests."""

    def __init__(self, conn: "Connection", handle: int, query: str):
        self._conn, self._rs, self.query = conn, handle, query

    @property
    def size(self) -> int:
        return int(self._conn._lib.ZOOM_resultset_size(self._rs))

    def __len__(self) -> int:
        return self.size

    def records(self, start: int, count: int) -> list[Record | ZoomError]:
        """Records ``start`` (0-based) to ``start + count - 1`` in one present request.

        A record the server could not deliver (a surrogate diagnostic) comes back as a
        :class:`ZoomError` in its place; a failed present raises.
        """
        lib = self._conn._lib
        count = max(0, min(count, self.size - start))
        if count == 0:
            return []
        buf = (ctypes.c_void_p * count)()
        lib.ZOOM_resultset_records(self._rs, buf, start, count)
        self._conn._check()
        out: list[Record | ZoomError] = []
        fmt = self._conn._get_format
        length = ctypes.c_int(0)
        for n in range(count):
            rec = buf[n]
            if not rec:
                out.append(ZoomError(0, "record not returned by the server", f"position {start + n + 1}",
                                     "ZOOM", self._conn.url))
                continue
            msg, add, dset = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p()
            code = lib.ZOOM_record_error(rec, ctypes.byref(msg), ctypes.byref(add), ctypes.byref(dset))
            if code:
                out.append(_error(code, _s(msg.value), _s(add.value), _s(dset.value), self._conn.url))
                continue
            ptr = lib.ZOOM_record_get(rec, fmt, ctypes.byref(length))
            if not ptr:
                out.append(ZoomError(0, "the record could not be rendered (wrong syntax or charset?)",
                                     f"position {start + n + 1}", "ZOOM", self._conn.url))
                continue
            data = ctypes.string_at(ptr, length.value)
            if self._conn._converts and self._conn.syntax == "usmarc" and len(data) > 24 and data[9:10] == b" ":
                data = data[:9] + b"a" + data[10:]  # now UTF-8: say so in MARC 21's leader/09
            out.append(Record(start + n + 1, data, self._conn.syntax))
        return out

    def __iter__(self) -> Iterator[Record | ZoomError]:
        step = self._conn.batch_size
        for start in range(0, self.size, step):
            yield from self.records(start, step)

    def close(self) -> None:
        if self._rs:
            self._conn._lib.ZOOM_resultset_destroy(self._rs)
            self._rs = None



class Connection(_Closing):
    """One Z39.50 or SRU connection (not shareable between threads: use one per thread).

    ``url``: ``z3950://host:port/Database`` (or ``tcp:host:port/Database``), or an ``http(s)`` SRU
    base URL (``sru`` chooses ``get``/``post``/``soap``, ``sru_version`` 1.1/1.2/2.0).  ``syntax`` is
    the preferredRecordSyntax (usmarc, unimarc, xml); ``charset`` (e.g. ``gb2312``, ``gbk``) the
    records' character set, converted to UTF-8 on retrieval; ``query_charset`` the one query terms
    are sent in (ZOOM's ``rpnCharset``: terms given here in Python are converted to it).
    """

    def __init__(self, url: str, *, database: str | None = None, syntax: str = "usmarc",
                 element_set: str | None = None, charset: str | None = None, query_charset: str | None = None,
                 user: str | None = None, password: str | None = None, timeout: float = 30.0,
                 batch_size: int = 100, sru: str | None = None, sru_version: str | None = None,
                 record_schema: str | None = None, options: dict[str, str] | None = None, connect: bool = True):
        self._lib = load()
        self.url = url
        target, url_db, protocol = zurl(url)
        self.protocol = "sru" if sru or protocol == "sru" else "z3950"
        self.database = database or url_db
        self.syntax = SYNTAXES.get(syntax.lower(), syntax) if syntax else "usmarc"
        self.charset = charset
        self.batch_size = max(1, int(batch_size))
        self._target = target
        opts = {
            "timeout": str(max(1, int(round(timeout)))),
            "preferredRecordSyntax": self.syntax,
            "elementSetName": element_set,
            "databaseName": self.database,
            "user": user,
            "password": password,
            "rpnCharset": query_charset,
            "lang": None,
        }
        if self.protocol == "sru":
            opts["sru"] = sru or "get"
            opts["sru_version"] = sru_version or "1.2"
            opts["schema"] = record_schema
            opts["elementSetName"] = element_set or record_schema
        opts.update(options or {})
        self._options = {_b(k): _b(v) for k, v in opts.items() if v is not None}
        self._conn = self._create()
        self._get_format = self._record_format()
        self._converts = self._get_format.startswith(b"raw; charset")
        self._query_charset = query_charset
        if connect:
            self.connect()

    def _record_format(self) -> bytes:
        if self.syntax == "xml" or self.protocol == "sru":
            return b"xml"
        if self.charset and self.charset.lower().replace("-", "") not in ("utf8",):
            # ZOOM converts ISO 2709 records on retrieval (and sets leader 9 to 'a').
            return _b(f"raw; charset={self.charset},utf-8")
        return b"raw"

    def _create(self) -> int:
        conn = self._lib.ZOOM_connection_create(None)
        for key, value in self._options.items():
            self._lib.ZOOM_connection_option_set(conn, key, value)
        return conn

    def reconnect(self) -> None:
        """Drop the connection and connect again with the same options (after a timeout or a drop)."""
        self.close()
        self._conn = self._create()
        self.connect()

    def connect(self) -> None:
        """Connect (and Init, for Z39.50); raises on refusal, timeout or a rejected Init."""
        self._lib.ZOOM_connection_connect(self._conn, _b(self._target), 0)
        self._check()

    def option(self, name: str, value: str | None = None) -> str | None:
        if value is not None:
            self._lib.ZOOM_connection_option_set(self._conn, _b(name), _b(value))
        return _s(self._lib.ZOOM_connection_option_get(self._conn, _b(name))) or None

    def search(self, query: str, cql: bool = False, piggyback: int = 0) -> ResultSet:
        """Run a PQF (or, with ``cql=True``, CQL) query.

        ``piggyback`` > 0 asks for that many records with the search response (ZOOM's ``count``,
        set before the search).
        """
        lib = self._lib
        q = lib.ZOOM_query_create()
        try:
            rc = (lib.ZOOM_query_cql if cql else lib.ZOOM_query_prefix)(q, _b(query))
            if rc != 0:
                raise ZoomQueryError(ZOOM_ERROR_INVALID_QUERY, f"not a valid {'CQL' if cql else 'PQF'} query",
                                     query, "ZOOM", self.url)
            if self._query_charset:
                # YAZ fails to convert an empty term ("Invalid query"), and ASCII needs no conversion
                # in any charset a member uses: convert only queries that need it.
                lib.ZOOM_connection_option_set(self._conn, b"rpnCharset",
                                               None if query.isascii() else _b(self._query_charset))
            lib.ZOOM_connection_option_set(self._conn, b"count", _b(piggyback or 0))
            lib.ZOOM_connection_option_set(self._conn, b"presentChunk", _b(self.batch_size))
            rs = lib.ZOOM_connection_search(self._conn, q)
        finally:
            lib.ZOOM_query_destroy(q)
        try:
            self._check(query)
        except ZoomError:
            lib.ZOOM_resultset_destroy(rs)
            raise
        return ResultSet(self, rs, query)

    def _check(self, query: str | None = None) -> None:
        msg, add, dset = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p()
        code = self._lib.ZOOM_connection_error_x(self._conn, ctypes.byref(msg), ctypes.byref(add),
                                                  ctypes.byref(dset))
        if code:
            addinfo = _s(add.value)
            exc = _error(code, _s(msg.value), addinfo, _s(dset.value), self.url)
            if query is not None and isinstance(exc, ZoomQueryError) and query not in str(exc):
                exc.args = (f"{exc.args[0]} in query {query!r}",)
            raise exc

    def close(self) -> None:
        if self._conn:
            self._lib.ZOOM_connection_destroy(self._conn)
            self._conn = None

