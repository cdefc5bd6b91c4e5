"""Harvesting member catalogues into the raw store.

This package owns ``sources.yaml`` (loading, validation, ILS presets), the
protocol clients (OAI-PMH, files; Z39.50/SRU later), the ``RawRecord`` type and
the raw store with its checkpoints, harvest runs and quarantine.  It imports no
other unioncat package: everything downstream reads what it wrote.
"""
