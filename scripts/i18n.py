#!/usr/bin/env python3
"""The UI's translations: extract the English strings, update the catalogues, compile them.

    python scripts/i18n.py update    # re-extract web/ into messages.pot and merge it into every .po
    python scripts/i18n.py compile   # .po → .mo (the .mo files are committed, so installs need no step)
    python scripts/i18n.py check     # exit 1 if a string is untranslated or a .mo is older than its .po

Translators edit ``web/translations/<lang>/LC_MESSAGES/messages.po``; ``tests/test_i18n.py`` fails when
a string in the templates or code has no Chinese translation, or when the committed .mo is stale.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

WEB = Path(__file__).resolve().parent.parent / "web"
TRANSLATIONS = WEB / "translations"
POT = TRANSLATIONS / "messages.pot"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def extract() -> Catalog:
    """Every translatable string in web/ (Python ``_``/``_l``/``gettext``/``ngettext``, templates' ``_()``)."""
    catalog = Catalog(project="unioncat", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(WEB), METHODS, keywords=KEYWORDS, options_map={"**/templates/**.html": {}}):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    # dedupe's explanations (``N_``-marked in dedupe/explain.py), shown translated on the staff record page
    for filename, lineno, message, comments, context in extract_from_dir(
            str(WEB.parent / "dedupe"), [("explain.py", "python")], keywords={"N_": None}):
        catalog.add(message, None, [(f"dedupe/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def po_files() -> list[Path]:
    return sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))


def read(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh)


def update() -> None:
    template = extract()
    with POT.open("wb") as fh:
        write_po(fh, template, width=120, omit_header=False)
    for path in po_files():
        catalog = read(path)
        catalog.update(template, no_fuzzy_matching=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=120, ignore_obsolete=True)
        print(f"updated {path.relative_to(WEB.parent)}")


def compiled(path: Path) -> bytes:
    out = io.BytesIO()
    write_mo(out, read(path), use_fuzzy=False)
    return out.getvalue()


def compile_all() -> None:
    for path in po_files():
        path.with_suffix(".mo").write_bytes(compiled(path))
        print(f"compiled {path.with_suffix('.mo').relative_to(WEB.parent)}")


def problems() -> list[str]:
    """Untranslated strings and stale .mo files, one line each."""
    found = []
    wanted = [m for m in extract() if m.id]
    for path in po_files():
        catalog = read(path)
        for message in wanted:
            entry = catalog.get(message.id, message.context)
            strings = entry.string if entry is not None else None
            empty = not strings or (isinstance(strings, tuple) and not all(strings))
            if entry is None or empty or entry.fuzzy:
                key = message.id if isinstance(message.id, str) else message.id[0]
                found.append(f"{path.parent.parent.name}: no translation for {key!r}")
        mo = path.with_suffix(".mo")
        if not mo.exists():
            found.append(f"{mo}: missing; run scripts/i18n.py compile")
            continue
        with mo.open("rb") as fh:
            have = {_key(m.id): _key(m.string) for m in read_mo(fh) if m.id}
        want = {_key(m.id): _key(m.string) for m in catalog if m.id and not m.fuzzy and m.string}
        if have != want:
            found.append(f"{mo}: older than its .po; run scripts/i18n.py compile")
    return found


def _key(value):
    return value if isinstance(value, str) else tuple(value)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        issues = problems()
        print("\n".join(issues) or "translations complete and compiled")
        sys.exit(1 if issues else 0)
    else:
        sys.exit(__doc__)
