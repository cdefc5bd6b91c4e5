"""``unioncat ledger refresh``: compute the contribution ledger (以贡献换服务) now and keep the snapshot
the staff pages show.  The scheduler (``unioncat scheduler``) and ``unioncat run`` do it by themselves
when the snapshot is older than :data:`web.ledger_figures.REFRESH_EVERY`."""
from __future__ import annotations

import time

import click

from web.ledger_figures import refresh

from .context import Context, say


@click.group()
def ledger() -> None:
    """The contribution ledger's snapshot, which the staff pages show."""


@ledger.command("refresh")
@click.pass_obj
def ledger_refresh(obj: Context) -> None:
    """Compute every member's figures now and keep them as the current (and this month's) snapshot."""
    cat = obj.catalogue()
    start = time.perf_counter()
    month, rows = refresh(cat)
    say(f"ledger snapshot of {month}: {len(rows)} members in {time.perf_counter() - start:.1f} s")
