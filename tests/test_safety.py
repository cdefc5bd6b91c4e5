"""The safety stop over a real OAI-PMH provider: deletion notices kept back, weighed, held, approved."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from consortium.config import Source
from harvester.harvest import harvest_source
from harvester.ops import OpsStore
from harvester.safety import approve, reject
from marc_fixtures import oai_records
from demo.oai_member import make_app, serve


def _source(url: str, **options) -> Source:
    return Source(id="member", name="Member", region="East", protocol="oai", url=url, timeout=5.0,
                  max_retries=0, options=options)


def _delete(app, numbers: range, day: int) -> None:
    for i in numbers:
        app.records[i] = replace(app.records[i], deleted=True, datestamp=datetime(2024, 3, day))


def test_mass_deletion_notices_are_held_then_approved(store):
    app = make_app(oai_records(40), batch_size=7)
    url, stop = serve(app)
    try:
        assert harvest_source(_source(url), store).counts.added == 40
        _delete(app, range(0, 3), 1)  # a few withdrawals: applied as usual
        report = harvest_source(_source(url), store)
        assert report.status == "ok" and report.counts.deleted == 3 and store.count("member") == 37
        assert store.deferred("member") == []
        _delete(app, range(3, 20), 2)  # 17 of 37 (46 %) "deleted" at once: an ILS migration gone wrong
        report = harvest_source(_source(url), store)
        assert report.status == "held" and "sent 17 deletion notice(s)" in report.error
        assert store.count("member") == 37 and len(store.deferred("member")) == 17
        ops = OpsStore(store.engine)
        hold = ops.holds("member")[0]
        assert hold.unseen == 17 and hold.since is None and "oai:test:4" in hold.sample
        # one of them comes back live before anyone decides: it is no longer to be deleted
        app.records[3] = replace(app.records[3], deleted=False, datestamp=datetime(2024, 3, 3))
        report = harvest_source(_source(url), store)
        assert report.status == "held" and len(store.deferred("member")) == 16
        hold = ops.holds("member")[0]
        assert [h.status for h in ops.holds("member", status=None)] == ["pending", "superseded"]
        assert approve(store, ops, hold.id, "operator-1") == 16
        assert store.count("member") == 21 and store.deferred("member") == []
        assert ops.get_hold(hold.id).status == "approved" and ops.get_hold(hold.id).applied == 16
    finally:
        stop()


def test_rejected_notices_keep_the_records_and_limits_come_from_the_source(store):
    app = make_app(oai_records(30), batch_size=10)
    url, stop = serve(app)
    try:
        harvest_source(_source(url), store)
        _delete(app, range(0, 12), 1)
        # a later change, so the next incremental harvest starts after these notices (OAI `from` is inclusive)
        app.records[29] = replace(app.records[29], datestamp=datetime(2024, 3, 1, 12))
        assert harvest_source(_source(url), store).status == "held"
        ops = OpsStore(store.engine)
        reject(store, ops, ops.holds("member")[0].id, "operator-1")
        assert store.count("member") == 30 and store.deferred("member") == []
        _delete(app, range(12, 24), 2)  # allowed for this member: max_shrink 50 %
        report = harvest_source(_source(url, max_shrink=0.5), store)
        assert report.status == "ok" and report.counts.deleted == 12 and store.count("member") == 18
        _delete(app, range(24, 27), 3)  # an absolute limit holds even a small fraction
        assert harvest_source(_source(url, max_deletions=2), store).status == "held"
    finally:
        stop()
