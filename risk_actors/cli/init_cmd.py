"""``riskd init`` (first-run wizard) and ``riskd passwd`` (set or change the admin password)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from risk_actors.cli.common import (EXIT_REFUSED, EXIT_USAGE, admin_call,
                                    config_option, daemon_up, fail, load_view)

NEW_PASSWORD_ENV = "RISKD_NEW_ADMIN_PASSWORD"


def _new_password() -> str:
    from risk_actors.security import check_strength
    env = os.environ.get(NEW_PASSWORD_ENV)
    if env is None and not sys.stdin.isatty():
        fail(f"type the new admin password at a terminal or set {NEW_PASSWORD_ENV}", EXIT_USAGE)
    password = env if env is not None else click.prompt(
        "New admin password", hide_input=True, confirmation_prompt=True)
    problem = check_strength(password)
    if problem:
        fail(f"the admin password {problem}", EXIT_USAGE)
    return password


def _write_local(state_dir: Path, encoded: str) -> Path:
    from risk_actors.security import write_password_hash
    try:
        return write_password_hash(state_dir, encoded)
    except PermissionError:
        fail(f"cannot write {state_dir}: run this as riskd's service user or root "
             "(sudo -u riskd riskd passwd)", EXIT_REFUSED)


@click.command()
@config_option
def passwd(config_path) -> None:
    """Set the admin password (first time: as riskd's user), or change it (needs the old one).

    The password is stored only as an argon2id hash in <state_dir>/admin.argon2 (mode 0600).
    Non-interactive use: $RISKD_ADMIN_PASSWORD (old) and $RISKD_NEW_ADMIN_PASSWORD (new).
    """
    from risk_actors import security
    _, cfg = load_view(config_path)
    state_dir = Path(cfg.daemon.state_dir)
    try:
        current = security.read_password_hash(state_dir)
    except PermissionError:
        current = "unreadable"
    if current is None:
        encoded = security.hash_password(_new_password())
        click.echo(f"admin password set ({_write_local(state_dir, encoded)})")
        return
    if daemon_up(cfg):
        from risk_actors.cli.common import admin_password
        old = admin_password("Current admin password")
        encoded = security.hash_password(_new_password())
        click.echo(admin_call(cfg, "passwd", {"hash": encoded}, password=old).message)
        return
    if current == "unreadable":
        fail("riskd is not running and its password file is not readable by you: start riskd, "
             "or run this as riskd's service user", EXIT_REFUSED)
    from risk_actors.cli.common import admin_password
    if not security.verify_password(current, admin_password("Current admin password")):
        fail("wrong admin password; nothing changed", EXIT_REFUSED)
    encoded = security.hash_password(_new_password())
    click.echo(f"admin password changed ({_write_local(state_dir, encoded)})")


@click.command()
@click.option("--config", "config_path", metavar="PATH", default="etc/riskd.yaml",
              show_default=True, help="Where to write the new config file.")
@click.option("--username", prompt="Gateway user name", help="ProjectX Gateway login name.")
@click.option("--api-key", prompt="Gateway API key", hide_input=True,
              help="Gateway API key; stored in a 0600 file beside the config, never printed.")
@click.option("--account", "account_ids", multiple=True, type=click.IntRange(min=1),
              metavar="ID", help="Gateway account id to watch (repeat for several).")
@click.option("--api-url", default="https://api.topstepx.com/api", show_default=True,
              help="Gateway REST base URL (the hubs are derived from it for TopstepX).")
@click.option("--state-dir", default="../var", show_default=True,
              help="Database, logs and pidfile, relative to the config's folder.")
@click.option("--admin-port", type=click.IntRange(1024, 65535), default=19500, show_default=True,
              help="riskd's loopback admin port.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
def init(config_path, username, api_key, account_ids, api_url, state_dir, admin_port,
         force) -> None:
    """First-run wizard: gateway credentials, accounts, admin password; writes the config.

    The rules start at the shipped defaults (001 max 5 contracts, 003 daily loss -500); change
    them afterwards with `riskd rules set`.
    """
    from risk_actors import security
    from risk_actors.config import dump_yaml
    path = Path(config_path).expanduser().resolve()
    if path.exists() and not force:
        fail(f"{path} exists; use --force to overwrite it or --config for another file",
             EXIT_USAGE)
    if not account_ids:
        raw = click.prompt("Gateway account ids to watch (comma separated)")
        try:
            account_ids = tuple(int(x) for x in raw.replace(" ", "").split(",") if x)
        except ValueError:
            fail(f"account ids must be integers separated by commas (got {raw!r})", EXIT_USAGE)
        if not account_ids or min(account_ids) < 1:
            fail("give at least one positive account id", EXIT_USAGE)
    if "topstepx" in api_url:
        hubs = "https://rtc.topstepx.com/hubs"
    else:
        hubs = api_url.rstrip("/").removesuffix("/api") + "/hubs"
    key_file = path.parent / "secrets" / "api_key"
    doc = {
        "version": 2,
        "broker": {"api_url": api_url, "user_hub_url": f"{hubs}/user",
                   "market_hub_url": f"{hubs}/market", "username": username,
                   "api_key_file": "secrets/api_key"},
        "accounts": [{"id": i, "enabled": True} for i in account_ids],
        "rules": {"max_contracts": {"enabled": True, "mode": "enforce", "limit": 5},
                  "daily_realized_loss": {"enabled": True, "mode": "enforce", "limit": -500}},
        "timers": {"daily_reset": {"time": "17:00", "timezone": "America/Chicago"}},
        "daemon": {"admin_port": admin_port, "state_dir": state_dir, "rule_timeout_ms": 100},
    }
    password = _new_password()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(key_file.parent, 0o700)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(api_key.strip() + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# riskd configuration written by `riskd init`. See the shipped etc/riskd.yaml for "
            "what every key means.\n# Edit rules with `riskd rules set`; the API key is in "
            "secrets/api_key (mode 0600).\n" + dump_yaml(doc))
    path.write_text(text)
    os.chmod(path, 0o640)
    state = (path.parent / state_dir).resolve()
    _write_local(state, security.hash_password(password))
    click.echo(f"config written to {path}\nAPI key stored in {key_file} (mode 0600)\n"
               f"admin password set ({state / security.PASSWORD_FILE})\n"
               f"next: riskd config validate --config {path} && riskd start --config {path}")
