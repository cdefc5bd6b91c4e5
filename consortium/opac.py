"""OPAC link templates: how the catalogue links back into a member's own OPAC.

A member's ``opac_url`` / ``opac_isbn_url`` are URL templates checked once
when ``sources.yaml`` is loaded, so a bad placeholder fails at start-up with
the source and key named rather than as a broken link on a record page.
"""
from __future__ import annotations

import re
from typing import Any, Callable

#: The placeholders a template may use (``{base}`` is filled in at load time).
PLACEHOLDERS = {"local_id": "1", "oai_id": "1", "isbn": "1", "control_number": "1"}


def opac_id(local_id: str) -> str:
    """The member's own record id inside a harvested identifier.

    OAI identifiers wrap it (``oai:koha.example.org:123`` → ``123``,
    ``oai:host:tenant/uuid`` → ``uuid``); file records use their 001 as is.
    """
    if local_id.startswith("oai:"):
        return re.split(r"[:/]", local_id)[-1]
    return local_id


def check_template(value: Any, base: str | None, key: str, err: Callable[[str, str], Exception]) -> str | None:
    """The template with ``{base}`` filled in, or ``err(key, why)`` raised; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise err(key, "expected a URL template string")
    if "{base}" in value:
        if not base:
            raise err(key, "the template uses {base}; set base_url on this source")
        value = value.replace("{base}", base)
    try:
        value.format(**PLACEHOLDERS)
    except (KeyError, IndexError, ValueError) as exc:
        raise err(key, f"bad placeholder {exc}; templates may use {{local_id}}, {{oai_id}}, {{isbn}}, "
                       "{control_number} and {base}") from None
    if not value.startswith(("http://", "https://")):
        raise err(key, f"expected an http(s) URL template; got {value!r}")
    return value
