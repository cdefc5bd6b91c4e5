"""``HarvestError``: the one base of every failure that stops one member's harvest.

The member's server answered badly, the network failed after the retries, a dump is unreadable, the
XML is hostile, YAZ is missing: each client raises a subclass (OAI-PMH's per error code, ZOOM's with
its diagnostic set, ...), and :func:`harvester.harvest.harvest_source` reports any of them as a
failed run without a traceback — anything else is a bug and is logged with one.
"""
from __future__ import annotations


class HarvestError(Exception):
    """Anything that stops a harvest of one source (after retries); the message names where and why."""
