"""Deduplication: member records → clusters, one per edition, with all holdings.

Blocking on several keys (identifiers, title words, a pinyin key for Chinese
titles, author + year) with refused oversized blocks; pairwise scoring with
explicit features and vetoes (format, year, edition, volume, conflicting
identifiers, pages, series numbers); union-find that never chains across a
veto or puts one member's two records together; stored evidence for
``explain``; staff overrides applied on every build; stable cluster ids and a
merged display record.  ``keys.py``/``cluster.group_records`` are the exact
match keys of the first version, still used to name why entries were joined
in tests and by ``evaluate``'s key-based breakdown.
"""
