"""Protocol clients with plain arguments (no ``sources.yaml`` model): each knows its protocol only.

``oai`` (OAI-PMH on sickle, with the harvester's retry policy), ``zoom`` (YAZ's ZOOM API for
Z39.50 and SRU), ``dumps`` (ISO 2709 and MARCXML files, damage quarantined) and ``xmlsafe``
(hardened XML parsing for everything a member sends).
"""
