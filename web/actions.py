"""What staff can do from the pages, and the job protocol that runs the long parts.

Harvests and index rebuilds take minutes to hours, so the web app never runs them in a request:
it hands them to a :class:`JobRunner` given to ``create_app`` as the ``JOBS`` config key —
rq workers when Redis is configured (``unioncat.jobs``), a background thread otherwise
(``unioncat.inprocess``).  ``web`` only knows this protocol, never an implementation.

Quick changes (pause, resume, approving a held deletion) are made at once.  Every action is
checked against the actor's role by the caller and written to the audit log here.

"Retry" of a quarantined record means: a record the *normaliser* refused is given a new change
sequence and a build is queued, so it is normalised again with the current code and mapping (it
leaves quarantine when it passes); a record the *harvest* refused (bytes that never became a
record) can only come again from the member, so a full re-harvest of that member is queued.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from harvester import safety
from harvester.ops import OpsStore
from harvester.store import RawStore

from .accounts import Accounts


@runtime_checkable
class JobRunner(Protocol):
    """The one job protocol: ``unioncat.inprocess.InProcessRunner`` and ``unioncat.jobs.RqRunner`` implement it.

    It lives here, not in ``unioncat``, because ``web`` may not import the wiring; the wiring imports it.
    """

    def harvest(self, source_id: str, *, full: bool = False, requested_by: str = "") -> str:
        """Queue a harvest of one member; returns the job id."""

    def build(self, *, reindex: bool = False, requested_by: str = "") -> str:
        """Queue normalise → dedupe → index (``reindex``: the whole index again); returns the job id."""

    def status(self) -> dict:
        """``{"queued": n, "started": n, "failed": [{"id", "description", "error", "ended_at"}], "workers": n}``."""


class ActionError(Exception):
    """An action that cannot be done (the message says why, for the page)."""


class Actions:
    """Staff actions over the stores and a job runner, each one audited."""

    def __init__(self, raw: RawStore, ops: OpsStore, accounts: Accounts, runner: JobRunner | None,
                 known_sources: set[str]):
        self.raw, self.ops, self.accounts, self.runner = raw, ops, accounts, runner
        self.known = known_sources

    def _jobs(self) -> JobRunner:
        if self.runner is None:
            raise ActionError("no job runner is configured for this web app (serve it with `unioncat serve`)")
        return self.runner

    def _source(self, source_id: str) -> str:
        if source_id not in self.known:
            raise ActionError(f"there is no member {source_id!r} in sources.yaml")
        return source_id

    def harvest(self, source_id: str, full: bool, user: str, ip: str | None) -> str:
        self._source(source_id)
        if source_id in self.ops.paused():
            raise ActionError(f"{source_id} is paused: resume it before harvesting it")
        job = self._jobs().harvest(source_id, full=full, requested_by=user)
        self.accounts.audit(user, "full-harvest" if full else "harvest", source_id, f"job {job}", ip)
        return job

    def build(self, reindex: bool, user: str, ip: str | None) -> str:
        job = self._jobs().build(reindex=reindex, requested_by=user)
        self.accounts.audit(user, "rebuild-index" if reindex else "build", None, f"job {job}", ip)
        return job

    def pause(self, source_id: str, paused: bool, user: str, ip: str | None, reason: str = "") -> None:
        self.ops.set_paused(self._source(source_id), paused, by=user, reason=reason)
        self.accounts.audit(user, "pause" if paused else "resume", source_id, reason or None, ip)

    def decide_hold(self, hold_id: int, approve: bool, user: str, ip: str | None) -> str:
        hold = self.ops.get_hold(hold_id)
        if hold is None or hold.status != "pending":
            raise ActionError(f"held deletion {hold_id} is not pending any more")
        if approve:
            deleted = safety.approve(self.raw, self.ops, hold_id, user)
            detail = f"hold {hold_id}: {deleted} record(s) deleted"
            if self.runner is not None:
                detail += f"; build job {self.runner.build(requested_by=user)}"
            self.accounts.audit(user, "approve-deletions", hold.source, detail, ip)
            return detail
        safety.reject(self.raw, self.ops, hold_id, user)
        self.accounts.audit(user, "reject-deletions", hold.source, f"hold {hold_id}: {hold.unseen} kept", ip)
        return f"hold {hold_id} rejected: nothing deleted"

    def retry(self, item_id: int, user: str, ip: str | None) -> str:
        item = self.raw.quarantined_item(item_id)
        if item is None or item["resolved"]:
            raise ActionError(f"quarantined record {item_id} is not in quarantine any more")
        source = item["source"]
        if item["stage"] == "normalise" and item["local_id"]:
            if not self.raw.renormalise(source, item["local_id"]):
                raise ActionError(f"the raw record {item['local_id']!r} of {source} is gone; nothing to retry")
            job = self._jobs().build(requested_by=user)
            detail = f"record {item['local_id']} normalised again by build job {job}"
        else:
            job = self.harvest_job(source, user)
            detail = f"full re-harvest job {job} (the member must send the record again)"
        self.accounts.audit(user, "retry-quarantine", source, detail, ip)
        return detail

    def harvest_job(self, source_id: str, user: str) -> str:
        if source_id in self.ops.paused():
            raise ActionError(f"{source_id} is paused: resume it before harvesting it")
        return self._jobs().harvest(source_id, full=True, requested_by=user)
