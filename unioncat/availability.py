"""``unioncat sources check``: probe every member and keep the results for the availability page.

Each member is probed at its harvest endpoint (:func:`harvester.probe.probe_source`: OAI-PMH
Identify, Z39.50 init + search, SRU explain, dump files present) and, when it has an OPAC template
and at least one harvested record, at the OPAC deep link of that sample record.  The probes run side
by side (a dead member costs its timeout, not everyone's); the results are stored as one check
(:meth:`harvester.ops.OpsStore.record_probes`) so the staff page shows the newest table and its history.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from consortium.config import Source
from harvester.ops import OpsStore
from harvester.probe import ProbeResult, probe_opac, probe_source

from .catalogue import Catalogue

WORKERS = 8


def sample_link(cat: Catalogue, source: Source) -> str | None:
    """The OPAC deep link of one live harvested record of ``source`` (None: no template or no record)."""
    if not (source.opac_url or source.opac_isbn_url):
        return None
    ids = cat.raw.local_ids(source.id)
    return source.opac_link(local_id=ids[0]) if ids else None


def check(cat: Catalogue, sources: Iterable[Source], timeout: float = 10,
          env: Mapping[str, str] | None = None) -> tuple[int, list[tuple[ProbeResult, ProbeResult | None]]]:
    """Probe ``sources``; store and return (check id, [(endpoint result, OPAC result or None)])."""
    env = os.environ if env is None else env
    sources = list(sources)

    def one(source: Source) -> tuple[ProbeResult, ProbeResult | None]:
        result = probe_source(source, timeout=timeout, env=env)
        link = sample_link(cat, source)
        return result, probe_opac(source, link, timeout=timeout) if link else None

    with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(sources)))) as pool:
        results = list(pool.map(one, sources))
    check_id = OpsStore(cat.engine).record_probes(
        [(r, s.region, s.protocol, opac) for s, (r, opac) in zip(sources, results)])
    return check_id, results
