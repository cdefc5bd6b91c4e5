"""The demo consortium: seven members built from real LoC records, an OAI-PMH member on the ``oaipmh``
server, a CNMARC (GBK) member, a Z39.50 member on Zebra.  Not part of the product: ``unioncat`` never
imports it; the ``unioncat demo`` command comes from here through the ``unioncat.commands`` entry point.
"""
from pathlib import Path

ZEBRA_CONF = Path(__file__).resolve().parent / "zebra_conf"
"""Zebra configuration for a member's Z39.50/SRU server (MARC 21, UTF-8 or GBK records)."""
