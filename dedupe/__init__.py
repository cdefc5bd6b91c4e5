"""Deduplication: member records → clusters, one per edition, with all holdings.

First version: exact, explainable match keys (ISBN-13, ISSN + title, OCLC
number, and a normalised title + first author + year + format key), never
across formats, with stable cluster ids and a merged display record.
"""
