"""Compiled copies of the record-handling modules (Cython), opt-in, used only while they match their source.

Why it exists: a full build spends nearly all its CPU in pure-Python record handling — the MARC mapping,
match features, scoring, merging, index documents — spread thin over hundreds of functions, so no single
rewrite pays (BENCHMARKS.md, issue 14).  Cython compiles those same ``.py`` files as they are: there is
no second implementation to keep in step, and everything still runs as Python where nothing was built.

Why it is opt-in: untyped, it saves the interpreter's dispatch and little else (a guess at why it can cost
more, not measured: Python 3.11's specialising interpreter does attribute and global look-ups in inline
caches Cython's generic calls lack, and Cython's larger machine code leans harder on shared caches).
Measured: on an Intel Xeon VM a quiet 1M build was the same either way (−0.2%); on an AMD EPYC VM, with both
cores busy (the normaliser's workers, or two stages side by side) the compiled modules cost 11–29% *more*
CPU than the same code as Python, and alone about the same (BENCHMARKS.md, "Compiled modules off by default").
Build them (``make compiled``) only where a measurement says they pay.

``make compiled`` runs ``scripts/compile_modules.py``: every module of :data:`PACKAGES` is compiled into
``.build/compiled/`` of its checkout, each source's SHA-256 kept in a manifest, and a ``.pth`` file in the
virtualenv installs :class:`CompiledFinder` in every interpreter (stage processes and their workers too).
The finder loads a compiled module only while its source is byte for byte the one compiled: a module
edited since runs as Python until the next ``make compiled``, never a stale copy.  ``UNIONCAT_PURE=1`` runs
it all as Python (profilers such as py-spy see Python frames only).  Annotations are not used as C types
(``annotation_typing=False``): compiled code keeps Python's semantics exactly.
"""
from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import sysconfig
from pathlib import Path

#: The packages whose modules are compiled: the stages' record handling (harvest is I/O-bound).
PACKAGES = ("storage", "normaliser", "dedupe", "index")
BUILD_DIR = Path(".build") / "compiled"
MANIFEST = "manifest.json"
PTH_NAME = "unioncat-compiled.pth"
PURE_ENV = "UNIONCAT_PURE"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def abi_tag() -> str:
    """What a compiled module is only good for: this interpreter's ABI."""
    return sys.implementation.cache_tag + (sysconfig.get_config_var("EXT_SUFFIX") or "")


def compiled_path(root: Path, name: str) -> Path:
    """Where the build puts module ``name``'s compiled copy for this interpreter."""
    return root / BUILD_DIR / (name.replace(".", "/") + sysconfig.get_config_var("EXT_SUFFIX"))


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled copy of a module of :data:`PACKAGES` when one matches the source found first."""

    def __init__(self, packages: tuple[str, ...] = PACKAGES) -> None:
        self.packages = packages
        self._manifests: dict[Path, dict[str, str]] = {}
        self.loaded: dict[str, str] = {}     # module name → the compiled file it came from
        self.stale: list[str] = []           # modules found changed since their build: run as Python

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname.partition(".")[0] not in self.packages or "." not in fullname:
            return None
        source = importlib.machinery.PathFinder.find_spec(fullname, path)
        if source is None or not source.origin or not source.origin.endswith(".py"):
            return None
        origin = Path(source.origin)
        root = origin.parents[fullname.count(".")]
        entry = self._manifest(root).get(fullname)
        if entry is None:
            return None
        if source_digest(origin) != entry:
            self.stale.append(fullname)
            return None
        compiled = compiled_path(root, fullname)
        if not compiled.is_file():
            return None
        self.loaded[fullname] = str(compiled)
        return importlib.util.spec_from_file_location(fullname, compiled)

    def _manifest(self, root: Path) -> dict[str, str]:
        if root not in self._manifests:
            self._manifests[root] = read_manifest(root)
        return self._manifests[root]


def read_manifest(root: Path) -> dict[str, str]:
    """Module name → the SHA-256 of the source its compiled copy was built from, for this interpreter's ABI."""
    try:
        data = json.loads((root / BUILD_DIR / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("modules", {}) if data.get("tag") == abi_tag() else {}


def install(packages: tuple[str, ...] = PACKAGES) -> CompiledFinder | None:
    """Put a finder first on ``sys.meta_path`` (the ``.pth`` file calls this at start-up); idempotent.

    None under ``UNIONCAT_PURE=1``: everything runs as Python."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None
    for found in sys.meta_path:
        if isinstance(found, CompiledFinder) and found.packages == packages:
            return found
    found = CompiledFinder(packages)
    sys.meta_path.insert(0, found)
    return found


def finder() -> CompiledFinder | None:
    """The installed finder, if any: what runs compiled in this process (benchmarks record it)."""
    return next((f for f in sys.meta_path if isinstance(f, CompiledFinder)), None)


def compiled_modules() -> list[str]:
    """The modules of :data:`PACKAGES` this process runs compiled, sorted."""
    found = finder()
    return sorted(name for name in (found.loaded if found else ()) if name in sys.modules)
