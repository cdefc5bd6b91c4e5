"""Real records at scale: the Library of Congress ``BooksAll.2016.part01.utf8``.

The file (250,000 MARC21 records, UTF-8) ships inside the pymarc 5.4.0 sdist
on PyPI.  We never commit it: it is fetched with ``pip download`` on first
use and cached (``UNIONCAT_CACHE``, default ``~/.cache/unioncat``).
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import click

SDIST = "pymarc-5.4.0.tar.gz"
MEMBER = "pymarc-5.4.0/BooksAll.2016.part01.utf8"


def loc_file(cache_dir: Path, log=print) -> Path:
    """Path of the extracted LoC file, downloading and extracting it once."""
    cache_dir = Path(cache_dir)
    target = cache_dir / "BooksAll.2016.part01.utf8"
    if target.exists() and target.stat().st_size > 200_000_000:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    sdist = cache_dir / SDIST
    if not sdist.exists():
        log(f"downloading the pymarc 5.4.0 sdist (76 MB) into {cache_dir} for the LoC sample records")
        # pip draws its own progress bar for the download (on a terminal)
        subprocess.run([sys.executable, "-m", "pip", "download", "--progress-bar", "on", "--no-deps",
                        "--no-binary", ":all:", "pymarc==5.4.0", "-d", str(cache_dir)], check=True)
    _extract(sdist, MEMBER, target)
    return target


def _extract(sdist: Path, member: str, target: Path) -> None:
    """Unpack one member of the sdist with a progress bar by bytes (about 250 MB: it takes a while).

    Written to a ``.part`` file first, so an interrupted extraction is never taken for a whole file.
    """
    partial = target.with_suffix(".part")
    with tarfile.open(sdist, "r:gz") as tar:
        info = next((i for i in tar if i.name == member), None)  # one pass: getmember would read it all first
        src = tar.extractfile(info) if info is not None else None
        if info is None or src is None:
            raise RuntimeError(f"{sdist} has no {member}")
        with src, open(partial, "wb") as out, \
                click.progressbar(length=info.size, label=f"extracting {member}", file=sys.stderr) as bar:
            while chunk := src.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    partial.replace(target)


def iter_chunks(path: Path, limit: int | None = None, skip: int = 0) -> Iterator[bytes]:
    """Raw ISO 2709 records (bytes incl. the 0x1D terminator), streamed."""
    n = 0
    buffer = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                break
            buffer += block
            *records, buffer = buffer.split(b"\x1d")
            for rec in records:
                if not rec.strip():
                    continue
                n += 1
                if n <= skip:
                    continue
                yield rec + b"\x1d"
                if limit is not None and n - skip >= limit:
                    return


def language_code(chunk: bytes) -> bytes:
    """008/35-37 of a raw ISO 2709 record, read from its directory without parsing the record."""
    try:
        base = int(chunk[12:17])
    except ValueError:
        return b""
    directory = chunk[24:base - 1]
    for i in range(0, len(directory), 12):
        if directory[i:i + 3] == b"008":
            length, start = int(directory[i + 3:i + 7]), int(directory[i + 7:i + 12])
            return chunk[base + start:base + start + length][35:38]
    return b""


def iter_language(path: Path, language: bytes, limit: int) -> Iterator[bytes]:
    """The first ``limit`` records in one language (e.g. ``b"chi"``: the file holds about 8,000)."""
    if limit <= 0:
        return
    n = 0
    for chunk in iter_chunks(path):
        if language_code(chunk) == language:
            yield chunk
            n += 1
            if n >= limit:
                return
