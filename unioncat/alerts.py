"""Alert mails: a member failing N times in a row, or stale beyond its schedule (rules in
:mod:`harvester.health`) — and :func:`harvest_and_alert`, the one "harvest, then alert".

Alerts are checked after every harvest (``unioncat harvest`` / ``run``, the staff pages' jobs and the
rq workers, all through :func:`harvest_and_alert`).  Each condition is remembered
(:meth:`harvester.ops.OpsStore.sync_alerts`), so a member that keeps failing is mailed about once, not
every run; when it recovers the alert closes, and a new failure streak mails again.  Without
``UNIONCAT_SMTP_HOST`` and ``UNIONCAT_ALERT_TO`` nothing is mailed (the staff page's banner still shows
the alert) and the alert stays unsent, so it goes out once mail is configured.  A mail server that is
down is an alert-delivery problem, never a failed harvest: the alert stays unsent and goes out later, and
the problem is remembered (:meth:`harvester.ops.OpsStore.mail_failed`) for the staff page's banner until a
mail goes out.
"""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from consortium.config import Source
from harvester.harvest import HarvestReport
from harvester.health import alert_conditions, health
from harvester.ops import OpsStore

from .catalogue import Catalogue
from .pipeline import Progress, harvest, quiet
from .settings import Settings

log = logging.getLogger(__name__)


def check_alerts(cat: Catalogue, settings: Settings | None = None, now: datetime | None = None) -> list[dict]:
    """Update the remembered alerts and mail the new ones; returns the alerts mailed (or due to be).

    Raises ``OSError`` (``smtplib``'s errors are ``OSError``\\ s) when the mail server cannot be reached;
    the alerts then stay unsent and the failure is remembered for the staff page.
    """
    settings = settings or cat.settings
    ops = OpsStore(cat.engine)
    states = health(cat.engine, cat.sources.sources, now)
    current = alert_conditions(cat.sources.sources, states, set(ops.paused()), settings.alert_failures)
    ops.sync_alerts(current)
    unsent = ops.unsent_alerts()
    if not unsent:
        return []
    if not (settings.smtp_host and settings.alert_to):
        log.warning("%d alert(s) not mailed: set UNIONCAT_SMTP_HOST and UNIONCAT_ALERT_TO", len(unsent))
        return unsent
    try:
        send(settings, cat.sources.consortium.name, unsent)
    except OSError as exc:
        ops.mail_failed(f"{settings.smtp_host}:{settings.smtp_port}: {exc}")
        raise
    ops.mark_sent([a["key"] for a in unsent])
    ops.mail_delivered()
    return unsent


def send(settings: Settings, consortium: str, alerts: list[dict]) -> None:
    """Mail ``alerts`` in one message to ``settings.alert_to``."""
    message = EmailMessage()
    kinds = sorted({a["kind"] for a in alerts})
    message["Subject"] = f"[unioncat] {len(alerts)} harvest alert(s): {', '.join(kinds)}"
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(a.strip() for a in settings.alert_to.split(",") if a.strip())
    lines = [f"{consortium} union catalogue: harvest alerts", ""]
    lines += [f"* {a['message']}" for a in alerts]
    lines += ["", "See the staff page /staff/ for run history, errors and quarantined records.",
              "You will not be mailed again about these until they clear and come back."]
    message.set_content("\n".join(lines))
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)
    log.info("mailed %d alert(s) to %s", len(alerts), message["To"])


@dataclass
class HarvestOutcome:
    """What a harvest brought, and what became of the alerts checked after it."""

    reports: list[HarvestReport]
    alerts: list[dict] = field(default_factory=list)  # the alerts mailed (or due to be, without mail settings)
    alert_problem: str | None = None  # why the alerts could not be delivered; the harvest itself is unaffected

    @property
    def failed(self) -> list[HarvestReport]:
        """Reports of sources that did not end ``ok`` (``failed``, or ``held`` by the safety stop)."""
        return [r for r in self.reports if r.status != "ok"]


def harvest_and_alert(cat: Catalogue, sources: list[Source], full: bool = False,
                      progress: Progress = quiet) -> HarvestOutcome:
    """Harvest ``sources``, then check and mail the alerts.

    Used by the CLI, the in-process runner and the rq harvest job alike.  A mail
    server that cannot be reached is logged (as an error) and reported in
    ``alert_problem``; it never turns a harvest that worked into a failed one.
    """
    outcome = HarvestOutcome(harvest(cat, sources, full=full, progress=progress))
    try:
        outcome.alerts = check_alerts(cat)
    except OSError as exc:
        outcome.alert_problem = f"could not mail the harvest alerts: {exc}"
        log.error("%s", outcome.alert_problem)
    for alert in outcome.alerts:
        log.info("ALERT %s", alert["message"])
    return outcome
