"""Staff accounts, roles, the audit log and sign-in rate limiting.

Accounts are local: a name, a role and a scrypt password hash (``werkzeug.security``).  Roles
nest — ``viewer`` sees every staff page, ``operator`` may also act (harvest, pause, rebuild,
approve held deletions, retry quarantine), ``admin`` may also manage accounts.  Accounts are made
with ``unioncat staff add-user NAME --role R``.

The old single ``STAFF_PASSWORD`` still works as a bootstrap: it is the password of a built-in
``admin`` account for as long as no stored account is called ``admin`` (create a real one, then unset
the variable).

Every action and every sign-in — failed ones too — is written to the audit log (who, when, what, on
what, from where).

Failed sign-ins slow the one who fails, not the account's owner: failures are counted per account
*and* address (the client's, after the trusted proxies of :mod:`web.origin`).  The first
``FREE_FAILURES`` cost nothing; after that each further try from that address for that account must
wait ``FIRST_DELAY`` seconds, doubling with every failure up to ``MAX_DELAY``.  The same applies to an
address failing ``FREE_FAILURES_PER_IP`` times across accounts (password spraying).  A success resets
the account's count for that address.  The real user, from any other address, is never delayed.
"""
from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Table, Text, func, select, update
from sqlalchemy.engine import Engine
from werkzeug.security import check_password_hash, generate_password_hash

from storage.db import metadata, utcnow

from .sessions import StaffSessions

ROLES = ("viewer", "operator", "admin")
BOOTSTRAP_USER = "admin"
WINDOW = timedelta(days=1)       # failures older than this are forgotten
FREE_FAILURES = 5                # per account + address before delays start
FREE_FAILURES_PER_IP = 20        # per address, across accounts
FIRST_DELAY = 5                  # seconds after the first failure past the free ones; doubles each time
MAX_DELAY = 15 * 60
MIN_PASSWORD = 10

staff_users = Table(
    "staff_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

staff_audit = Table(
    "staff_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("user", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(128)),
    Column("detail", Text),
    Column("ip", String(64)),
)

staff_logins = Table(
    "staff_logins",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("user", String(64), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("ok", Boolean, nullable=False),
)


class AccountError(ValueError):
    """A bad account name, role or password (the message says what is expected)."""


@dataclass(frozen=True)
class StaffUser:
    name: str
    role: str

    def can(self, role: str) -> bool:
        """Has at least ``role`` (roles nest: admin ⊃ operator ⊃ viewer)."""
        return ROLES.index(self.role) >= ROLES.index(role)


class Accounts:
    """The staff tables' only reader and writer (Alembic creates them: see ``unioncat.schema``)."""

    def __init__(self, engine: Engine, bootstrap_password: str | None = None):
        self.engine = engine
        self.bootstrap_password = bootstrap_password or None

    # -- accounts -------------------------------------------------------------
    def add(self, name: str, password: str, role: str, replace: bool = False) -> StaffUser:
        name = name.strip()
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise AccountError(f"expected an account name without spaces, 1-64 characters; got {name!r}")
        if role not in ROLES:
            raise AccountError(f"expected a role of {', '.join(ROLES)}; got {role!r}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password is too short: at least {MIN_PASSWORD} characters")
        values = dict(password_hash=generate_password_hash(password, method="scrypt"), role=role, disabled=False)
        with self.engine.begin() as conn:
            exists = conn.execute(select(staff_users.c.name).where(staff_users.c.name == name)).first()
            if exists and not replace:
                raise AccountError(f"there is already an account {name!r} (use --replace to set a new password "
                                   "and role)")
            if exists:
                conn.execute(update(staff_users).where(staff_users.c.name == name).values(**values))
            else:
                conn.execute(staff_users.insert().values(name=name, created_at=utcnow(), **values))
        if exists:  # a new password (or role) ends every session signed in with the old one
            StaffSessions(self.engine).end_user(name, "password-changed")
        return StaffUser(name, role)

    def users(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(staff_users.c.name, staff_users.c.role,
                                                         staff_users.c.created_at, staff_users.c.disabled)
                                                  .order_by(staff_users.c.name)).mappings()]

    def enabled(self) -> bool:
        """Is there any way to sign in (a stored account or the bootstrap password)?"""
        if self.bootstrap_password:
            return True
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(staff_users)
                                .where(staff_users.c.disabled.is_(False))).scalar_one() > 0

    def authenticate(self, name: str, password: str) -> StaffUser | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(staff_users).where(staff_users.c.name == name)).mappings().first()
        if row is not None:
            if not row["disabled"] and check_password_hash(row["password_hash"], password):
                return StaffUser(row["name"], row["role"])
            return None
        if name == BOOTSTRAP_USER and self.bootstrap_password and hmac.compare_digest(
                password.encode("utf-8"), self.bootstrap_password.encode("utf-8")):
            return StaffUser(BOOTSTRAP_USER, "admin")
        check_password_hash(generate_password_hash("x", method="scrypt"), password)  # same time as a real check
        return None

    def user(self, name: str) -> StaffUser | None:
        """The account behind a session (None once it was disabled or removed)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(staff_users).where(staff_users.c.name == name)).mappings().first()
        if row is not None:
            return None if row["disabled"] else StaffUser(row["name"], row["role"])
        if name == BOOTSTRAP_USER and self.bootstrap_password:
            return StaffUser(BOOTSTRAP_USER, "admin")
        return None

    # -- sign-in throttling ------------------------------------------------------------
    def wait_seconds(self, name: str, ip: str) -> int:
        """Seconds before ``name`` may try again from ``ip`` (0: now) — see the module's docstring."""
        name, ip, now = name[:64], ip[:64], utcnow()  # as attempt() stores them
        since = now - WINDOW
        failed = [staff_logins.c.ok.is_(False), staff_logins.c.at >= since]
        with self.engine.connect() as conn:
            last_ok = conn.execute(select(func.max(staff_logins.c.id)).where(
                staff_logins.c.user == name, staff_logins.c.ip == ip, staff_logins.c.ok.is_(True))).scalar_one()
            pair = conn.execute(select(func.count(), func.max(staff_logins.c.at)).where(
                staff_logins.c.user == name, staff_logins.c.ip == ip, staff_logins.c.id > (last_ok or 0),
                *failed)).one()
            by_ip = conn.execute(select(func.count(), func.max(staff_logins.c.at)).where(
                staff_logins.c.ip == ip, *failed)).one()
        waits = [_delay(pair[0], FREE_FAILURES, pair[1], now), _delay(by_ip[0], FREE_FAILURES_PER_IP, by_ip[1], now)]
        return max(waits)

    def attempt(self, name: str, ip: str, ok: bool) -> None:
        """Count a sign-in (and forget those past the window, so a flood of guesses leaves no pile)."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(staff_logins.delete().where(staff_logins.c.at < now - WINDOW))
            conn.execute(staff_logins.insert().values(at=now, user=name[:64], ip=ip[:64], ok=ok))


    # -- audit log -----------------------------------------------------------------
    def audit(self, user: str, action: str, target: str | None = None, detail: str | None = None,
              ip: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(staff_audit.insert().values(at=utcnow(), user=user[:64], action=action,
                                                     target=target, detail=detail, ip=ip and ip[:64]))

    def audit_log(self, limit: int = 200, target: str | None = None) -> list[dict]:
        query = select(staff_audit).order_by(staff_audit.c.id.desc()).limit(limit)
        if target is not None:
            query = query.where(staff_audit.c.target == target)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def _delay(failures: int, free: int, last, now) -> int:
    """Seconds left of the wait after ``failures`` (the last at ``last``), ``free`` of them costing nothing."""
    if failures < free or last is None:
        return 0
    wait = min(FIRST_DELAY * 2 ** min(failures - free, 20), MAX_DELAY)
    last = last if last.tzinfo else last.replace(tzinfo=now.tzinfo)
    return max(0, math.ceil(wait - (now - last).total_seconds()))
