"""Normalising raw records into the one ``Record`` model.

Readers for MARC21 (ISO 2709 incl. MARC-8, and MARCXML) turn a
``harvester.raw.RawRecord`` into a :class:`normaliser.model.Record`; a record
that cannot be read raises :class:`normaliser.errors.RecordError` with a reason
so the pipeline can quarantine it and go on.
"""
