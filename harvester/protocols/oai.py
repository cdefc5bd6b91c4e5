"""Harvesting an OAI-PMH member: ``OaiHarvest``.

Every page is committed together with the resumption token of the next page, so a killed harvest
resumes at the next page with no record lost or stored twice.  An incremental harvest asks
``from`` the high water of the last successful run; deletion notices are kept back until the run
ends, for the safety stop to weigh.
"""
from __future__ import annotations

import logging

import requests

from consortium.config import Source
from consortium.options import RESPONSE_LIMITS
from ..clients.oai import BadResumptionToken, ListSpec, OAIClient, ResumptionTokenLoop, format_datestamp, later
from ..retry import RetryPolicy
from ..run import Run

log = logging.getLogger(__name__)


def client_for(source: Source, session: requests.Session | None = None) -> OAIClient:
    """An OAI-PMH client set up from the member's keys (URL, prefix, set, timeout, politeness, retries,
    the whole-response ``deadline`` and the page size cap ``max_page_mb``)."""
    spec = ListSpec(source.id, source.metadata_prefix, source.set, source.format)
    limits = {key: float(source.options.get(key, default)) for key, default in RESPONSE_LIMITS.items()}
    return OAIClient(source.url or "", spec, timeout=source.timeout, delay=source.delay,
                     retry=RetryPolicy(source.max_retries, max_wait=source.retry_after_max), session=session,
                     deadline=limits["deadline"], max_bytes=int(limits["max_page_mb"] * 2**20))


class OaiHarvest:
    """ListRecords from the high water (or everything), resuming an interrupted run at its token."""

    def __init__(self, source: Source, session: requests.Session | None = None):
        self.source, self.session = source, session

    def harvest(self, run: Run) -> str | None:
        client = client_for(self.source, self.session)
        try:
            return self._harvest(run, client)
        finally:
            if self.session is None:
                client.close()

    def _harvest(self, run: Run, client: OAIClient) -> str | None:
        source, cp = self.source, run.checkpoint
        if cp.in_progress and (not run.full_requested or cp.resume_full):
            from_, token, high = cp.resume_from, cp.resume_token, cp.resume_high_water
            log.info("%s: resuming the interrupted run at %s", source.id,
                     f"token {token!r}" if token else f"from {from_ or 'the beginning'}")
            run.begin(cp.resume_full, from_, since=cp.resume_started, resumed=True)
        else:
            start = None if run.full_requested else (cp.high_water or source.options.get("from"))
            token, high = None, None
            info = client.identify()
            from_ = format_datestamp(str(start), info.granularity) if start else None
            run.begin(start is None, from_)
            log.info("%s: %s harvest of %s (granularity %s)%s", source.id, "full" if run.full else "incremental",
                     info.repository_name or source.url, info.granularity, f" from {from_}" if from_ else "")
            run.store.save_checkpoint(run.position(resume_from=from_))
        high = self._pages(run, client, from_, token, high)
        return later(cp.high_water, high)

    def _pages(self, run: Run, client: OAIClient, from_: str | None, token: str | None,
               high: str | None) -> str | None:
        """Fetch and commit every page; returns the highest datestamp seen.

        An expired or unknown resumption token (FOLIO forgets them after 24 h) — the one a
        resumed run starts with, or one handed out during this run — and a token the member hands
        back a second time restart the list once from the run's own ``from``: pages already stored
        come again and count as unchanged.  A second such failure in one run fails it.
        """
        restarted = False
        while True:
            sent = token  # the token of the request being answered (None: the list's first page)
            try:
                for page in client.list_records(from_=from_, token=token):
                    sent = page.token
                    high = later(high, page.high_water)
                    counts = run.commit(page.records, page.quarantined, defer_deletions=True,
                                        resume=dict(resume_token=page.token, resume_from=from_,
                                                    resume_high_water=high))
                    log.debug("%s: page %d: %s", run.source.id, page.number, counts.as_dict())
                return high
            except (BadResumptionToken, ResumptionTokenLoop) as exc:
                if restarted or sent is None:
                    raise
                log.warning("%s: %s; restarting from %s", run.source.id, exc, from_ or "the beginning")
                restarted, token = True, None
