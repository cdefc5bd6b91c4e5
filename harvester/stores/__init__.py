"""The harvester's tables, one module per table group, each table private to its module.

``records`` (raw records), ``deferred`` (deletion notices kept back for the safety stop), ``runs``
(harvest runs and the record-count trend), ``checkpoints`` (where each member's next or
interrupted harvest starts) ``quarantine`` (what a stage refused, and why) and ``locks`` (one harvest of a member at a time).  Writes that must commit together — a page, its quarantined items
and its checkpoint — go through the owning modules' connection-level functions inside one
transaction.  :class:`harvester.store.RawStore` puts them behind one handle for callers that
hold one.
"""
