"""``riskd accounts list|add|remove``: which accounts riskd watches (changes need the admin
password and apply live)."""

from __future__ import annotations

import click

from risk_actors.cli.common import (EXIT_USAGE, admin_call, config_option, daemon_up, echo_json,
                                    fail, json_option, load_view)


@click.group()
def accounts() -> None:
    """List, add and remove watched accounts (changes need the admin password)."""


@accounts.command("list")
@config_option
@json_option
def accounts_list(config_path, as_json) -> None:
    """Configured accounts, and whether the running daemon is watching each."""
    from risk_actors import messages as m
    from risk_actors.cli.common import ask
    _, cfg = load_view(config_path)
    live = {}
    if daemon_up(cfg):
        reply = ask(cfg, m.StatusRequest())
        live = {a.account_id: a for a in reply.accounts} if reply.ok else {}
    rows = [{"id": a.id, "name": a.name, "enabled": a.enabled, "description": a.description,
             "watched": a.id in live, "connected": bool(live.get(a.id) and live[a.id].connected),
             "overrides": sorted((a.overrides.get("rules") or {}))} for a in cfg.accounts]
    if as_json:
        echo_json(rows)
        return
    if not daemon_up(cfg):
        click.echo("riskd is NOT running: nothing is watched", err=True)
    for r in rows:
        watch = ("connected" if r["connected"] else "watched, NOT connected") if r["watched"] \
            else "not watched"
        click.echo(f"{r['id']} {r['name'] or ''} ({'enabled' if r['enabled'] else 'disabled'}, "
                   f"{watch}){' overrides: ' + ', '.join(r['overrides']) if r['overrides'] else ''}")


@accounts.command("add")
@click.argument("account_id", type=click.IntRange(min=1), metavar="ID")
@click.option("--name", help="The account's name as the platform shows it.")
@click.option("--description", default="", help="Free text, for people.")
@config_option
def accounts_add(account_id, name, description, config_path) -> None:
    """Watch gateway account ID from now on, with the global rules. Needs the admin password."""
    from risk_actors.admin_ops import EditError, add_account
    from risk_actors.config import read_document
    _, cfg = load_view(config_path)
    try:
        add_account(read_document(cfg.source), account_id, name, description)
    except EditError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(admin_call(cfg, "accounts_add", {"id": account_id, "name": name,
                                                "description": description}).message)


@accounts.command("remove")
@click.argument("account", metavar="ID|NAME")
@config_option
def accounts_remove(account, config_path) -> None:
    """Stop watching ACCOUNT and remove it from the config. Needs the admin password.

    Its recorded locks stay in the database and come back if it is added again.
    """
    from risk_actors.admin_ops import EditError, remove_account
    from risk_actors.config import read_document
    _, cfg = load_view(config_path)
    try:
        remove_account(read_document(cfg.source), account)
    except EditError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(admin_call(cfg, "accounts_remove", {"account": account}).message)
