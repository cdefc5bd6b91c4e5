"""Alert mails: a member failing N times in a row, or stale beyond its schedule (rules in
:mod:`harvester.health`).

Run after every harvest (``unioncat harvest`` / ``run`` and the staff pages' jobs).  Each condition
is remembered (:meth:`harvester.ops.OpsStore.sync_alerts`), so a member that keeps failing is mailed
about once, not every run; when it recovers the alert closes, and a new failure streak mails again.
Without ``UNIONCAT_SMTP_HOST`` and ``UNIONCAT_ALERT_TO`` nothing is mailed (the staff page's banner
still shows the alert) and the alert stays unsent, so it goes out once mail is configured.
"""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from email.message import EmailMessage

from harvester.health import alert_conditions, health
from harvester.ops import OpsStore

from .pipeline import Catalogue
from .settings import Settings

log = logging.getLogger(__name__)


def check_alerts(cat: Catalogue, settings: Settings | None = None, now: datetime | None = None) -> list[dict]:
    """Update the remembered alerts and mail the new ones; returns the alerts mailed (or due to be)."""
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
    send(settings, cat.sources.consortium.name, unsent)
    ops.mark_sent([a["key"] for a in unsent])
    return unsent


def send(settings: Settings, consortium: str, alerts: list[dict]) -> None:
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
