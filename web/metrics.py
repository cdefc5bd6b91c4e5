"""``/metrics`` in the Prometheus text format (``prometheus_client``, one registry per app).

Harvest figures are read from the database at scrape time (a custom collector), so every web
process reports the same numbers whichever process ran the harvest; search latency is a histogram
observed around the search views of this process.  Unauthenticated, like most exporters: it names
members and counts, never record data — keep it on the internal network.
"""
from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from harvester.health import health

from .usage import UsageCollector

bp = Blueprint("metrics", __name__)
SEARCH_ENDPOINTS = ("search.search", "search.home")


class _HarvestCollector:
    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        svc = self.app.extensions["unioncat"]
        runs = CounterMetricFamily("unioncat_harvest_runs", "Harvest runs by member and outcome",
                                   labels=["source", "status"])
        records = GaugeMetricFamily("unioncat_records", "Live raw records per member", labels=["source"])
        duration = GaugeMetricFamily("unioncat_harvest_last_duration_seconds",
                                     "Duration of the member's newest finished harvest", labels=["source"])
        last_ok = GaugeMetricFamily("unioncat_harvest_last_success_timestamp_seconds",
                                    "Start of the member's newest successful harvest", labels=["source"])
        quarantined = GaugeMetricFamily("unioncat_quarantined", "Unresolved quarantined records per member",
                                        labels=["source"])
        for (source, status), count in svc.raw.runs_by_status().items():
            runs.add_metric([source, status], count)
        for source, count in svc.raw.counts_by_source().items():
            records.add_metric([source], count)
        for source, run in svc.raw.last_runs().items():
            if run["finished_at"] and run["started_at"]:
                duration.add_metric([source], (run["finished_at"] - run["started_at"]).total_seconds())
        by_source = svc.raw.quarantined_by_source()
        for source_id, state in health(svc.engine, svc.sources.sources).items():
            if state.last_ok is not None:
                last_ok.add_metric([source_id], state.last_ok.timestamp())
            quarantined.add_metric([source_id], by_source.get(source_id, 0))
        yield from (runs, records, duration, last_ok, quarantined)
        if svc.jobs is not None:
            status = svc.jobs.status()
            queue = GaugeMetricFamily("unioncat_jobs", "Jobs by state", labels=["state"])
            queue.add_metric(["queued"], status.get("queued", 0))
            queue.add_metric(["started"], status.get("started", 0))
            queue.add_metric(["failed"], len(status.get("failed", [])))
            yield queue
            yield GaugeMetricFamily("unioncat_job_workers", "Workers taking jobs", value=status.get("workers", 0))
        held = GaugeMetricFamily("unioncat_held_deletions", "Full-harvest deletions waiting for approval",
                                 value=svc.ops.count_pending())
        yield held
        problem = svc.ops.mail_problem()
        yield GaugeMetricFamily("unioncat_alert_mail_failing_since_timestamp_seconds",
                                "First failed alert mail of the current delivery problem (0: mail goes out)",
                                value=problem["since"].timestamp() if problem else 0)


def init_app(app: Flask) -> None:
    registry = CollectorRegistry()
    registry.register(_HarvestCollector(app))
    registry.register(UsageCollector(app))
    latency = Histogram("unioncat_search_latency_seconds", "Time to answer a search request",
                        registry=registry, buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
    app.extensions["unioncat_metrics"] = (registry, latency)

    @app.before_request
    def _start_clock():
        if request.endpoint in SEARCH_ENDPOINTS:
            g.search_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("search_started", None)
        if started is not None:
            latency.observe(time.perf_counter() - started)
        return response

    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics():
    registry, _ = current_app.extensions["unioncat_metrics"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
