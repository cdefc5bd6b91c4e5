"""Harvest one member into the raw store: ``harvest_source``, the one entry point for every protocol.

A harvest of 130 members must survive any one of them misbehaving, and a
harvest of one large member must survive the harvester being killed.  So:

* every source-level failure (a :class:`~harvester.errors.HarvestError`) ends the run with status
  ``failed`` and a message naming the source and URL — :func:`harvest_source` never raises for
  them (only KeyboardInterrupt/SystemExit propagate); any other exception is a bug: the run fails
  the same way, and the traceback is logged;
* the protocol's strategy (:mod:`harvester.protocols`) commits every page with its checkpoint
  through the shared :class:`~harvester.run.Run`, so a killed harvest resumes at the next page;
* one harvest of a member at a time, in every mode: the run holds the member's lock in the database
  (:mod:`harvester.stores.locks`); a second harvest reports ``skipped`` ("already being harvested")
  and touches nothing — never resumes from the first's checkpoint.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import requests

from consortium.config import Source
from .errors import HarvestError
from .protocols.files import FileHarvest
from .protocols.oai import OaiHarvest
from .protocols.z3950 import ZoomHarvest
from .run import HarvestReport, ProgressFn, Run, Strategy
from .store import RawStore
from .stores.locks import new_owner

log = logging.getLogger(__name__)


def strategy(source: Source, session: requests.Session | None = None,
             env: Mapping[str, str] | None = None) -> Strategy:
    """The protocol strategy for ``source`` (``sources.yaml`` validation admits only these protocols)."""
    if source.protocol == "oai":
        return OaiHarvest(source, session)
    if source.protocol == "file":
        return FileHarvest(source)
    if source.protocol in ("z3950", "sru"):
        return ZoomHarvest(source, env)
    raise HarvestError(f"protocol {source.protocol!r} is not one of oai, file, z3950, sru")


def harvest_source(source: Source, store: RawStore, full: bool = False, progress: ProgressFn | None = None,
                   session: requests.Session | None = None, env: Mapping[str, str] | None = None) -> HarvestReport:
    """Harvest ``source`` into ``store`` and report how it went (never raises for source failures).

    ``env`` holds the secrets that ``password_env`` keys name (the command line passes the process environment:
    library packages never read the environment themselves).
    """
    owner = new_owner()
    holder = store.acquire_lock(source.id, owner)
    run = Run(source, store, full, progress)  # read the checkpoint under the lock
    if holder is not None:
        return run.skipped(holder.describe())
    run.lock_owner = owner
    try:
        return run.end(strategy(source, session, env).harvest(run))
    except (KeyboardInterrupt, SystemExit) as exc:
        run.interrupted(exc)
        raise
    except Exception as exc:  # noqa: BLE001 - one member's failure must not stop the others
        if not isinstance(exc, HarvestError):
            log.exception("%s: unexpected error", source.id)  # a bug: keep the traceback
        return run.failed(exc)
    finally:
        store.release_lock(source.id, owner)
