"""Harvesting member catalogues into the raw store.

``harvest.harvest_source`` is the one entry point: it picks the protocol's strategy
(``protocols/``: OAI-PMH, files, Z39.50/SRU — one shape), which drives a client (``clients/``)
and hands pages to the one ``run.Run`` every protocol shares (counts, checkpoints, deletions, the
safety stop in ``safety``).  Failures derive from ``errors.HarvestError``; retries follow
``retry.RetryPolicy``.  Tables live in ``stores/`` (raw records, runs, checkpoints, quarantine) and
``ops`` (pauses, probes, held deletions, alerts), each private to its module.  Imports only
``storage`` and ``consortium``; everything downstream reads what it wrote.
"""
