"""Deduplication: member records → clusters, one per edition, with all holdings.

Blocking on several keys (identifiers, title words, a pinyin key for Chinese
titles, author + year) with refused oversized blocks; pairwise scoring with
explicit features and vetoes (format, year, edition, volume, conflicting
identifiers, pages, series numbers); union-find that never chains across a
veto or puts one member's two records together; stored evidence for
``explain``; staff overrides applied on every build; stable cluster ids and a
merged display record.

``features`` → ``blocking`` → ``score`` → ``cluster`` (constrained
union-find) → ``ids`` (stable ids, redirects) → ``merge``; ``build`` runs
them incrementally, ``evidence``/``explain`` keep and show why, ``evaluate``
measures them against a gold standard.
"""
