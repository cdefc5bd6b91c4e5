"""``unioncat staff …``: the accounts of the web app's staff pages (roles viewer, operator, admin)."""
from __future__ import annotations

import os

import click

from web.accounts import AccountError, Accounts

from .context import Context, say


@click.group()
def staff() -> None:
    """Staff accounts of the web app's staff pages (roles viewer, operator, admin)."""


@staff.command("add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), default="viewer", show_default=True)
@click.option("--replace", is_flag=True, help="Set a new password and role for an existing account.")
@click.pass_obj
def staff_add_user(obj: Context, name: str, role: str, replace: bool) -> None:
    """Create a staff account; the password comes from UNIONCAT_NEW_PASSWORD or a prompt."""
    password = os.environ.get("UNIONCAT_NEW_PASSWORD") or click.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True)
    try:
        user = Accounts(obj.catalogue().engine).add(name, password, role, replace=replace)
    except AccountError as exc:
        raise click.UsageError(str(exc)) from None
    say(f"staff account {user.name} ({user.role}) saved")


@staff.command("list")
@click.pass_obj
def staff_list(obj: Context) -> None:
    """Every staff account with its role."""
    for user in Accounts(obj.catalogue().engine).users():
        click.echo(f"{user['name']:<20} {user['role']:<9} created {user['created_at']:%Y-%m-%d}"
                   + ("  (disabled)" if user["disabled"] else ""))
