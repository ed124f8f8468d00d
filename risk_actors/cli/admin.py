"""``riskd``: the admin command line.

Daemon lifecycle (start/stop/restart/status), rules, accounts, config, lockouts (view only:
there is no unlock), audit, logs, passwd and the first-run ``init``. Every command that changes
something sends a proof of the admin password (risk_actors.security); read commands take
``--json``. Commands are split over modules of this package; this one holds the group.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click

from risk_actors.cli.common import (CONFIG_HELP, EXIT_DOWN, admin_call, echo_json, fail,
                                    fmt_value, load_view, percent, status_dict)
from risk_actors.cli.common import countdown, event_age
from risk_actors.daemon import DaemonError, resolve_config

_fail = fail


def _config(path: str | None):
    from risk_actors.config import ConfigError
    from risk_actors.daemon import load
    try:
        resolved = resolve_config(path)
        return resolved, load(resolved)
    except (DaemonError, ConfigError) as exc:
        _fail(str(exc), 2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """riskd: enforces your futures risk rules on your prop-firm accounts, in real time.

    It watches every configured account through the ProjectX Gateway, and when a rule is broken
    it closes positions, cancels orders and locks the account (no manual unlock). Start it with
    `riskd start`, check it with `riskd status`.
    """


@main.command()
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
@click.option("--foreground", is_flag=True, help="Run in this terminal (logs to stderr); Ctrl-C stops.")
@click.option("--sim", "sim_url", metavar="URL",
              help="Use the gateway simulator at URL (e.g. http://127.0.0.1:8931) instead of the "
                   "config's broker URLs.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Log level on the terminal (the log file always keeps DEBUG).")
def start(config_path, foreground, sim_url, log_level) -> None:
    """Start the daemon (in the background unless --foreground)."""
    from risk_actors.daemon import run_foreground, start_background
    path, _ = _config(config_path)
    try:
        if foreground:
            sys.exit(run_foreground(path, sim_url, log_level.upper()))
        click.echo(start_background(path, sim_url))
    except DaemonError as exc:
        _fail(str(exc))


@main.command()
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
def stop(config_path) -> None:
    """Stop the daemon (and clean up processes a crashed one left behind)."""
    from risk_actors.daemon import stop as do_stop
    path, _ = _config(config_path)
    try:
        click.echo(do_stop(path))
    except DaemonError as exc:
        _fail(str(exc))


@main.command()
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
@click.option("--sim", "sim_url", metavar="URL", help="As for `riskd start`.")
def restart(config_path, sim_url) -> None:
    """Stop the daemon (if running) and start it again in the background.

    Locks survive: they are in the database and come back at start-up. Under systemd use
    `systemctl restart riskd` instead (as root).
    """
    from risk_actors.daemon import start_background, stop as do_stop
    path, _ = _config(config_path)
    try:
        click.echo(do_stop(path))
    except DaemonError as exc:
        click.echo(f"riskd: {exc}", err=True)
    try:
        click.echo(start_background(path, sim_url))
    except DaemonError as exc:
        _fail(str(exc))


def _fmt_lock(lock) -> str:
    rule, scope, symbol, reason, expires = lock[:5]
    what = f"symbol {symbol}" if scope == "symbol" else "account"
    if expires:
        exp = datetime.fromisoformat(expires)
        left = exp - datetime.now(timezone.utc)
        secs = max(0, int(left.total_seconds()))
        until = f"until {exp.astimezone():%Y-%m-%d %H:%M:%S %Z} ({secs // 3600}h{secs % 3600 // 60:02d}m{secs % 60:02d}s left)"
    else:
        until = "no expiry"
    return f"{what} LOCKED by {rule} {until}: {reason}"


@main.command()
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path, as_json) -> None:
    """Show each account: connection, positions, daily P&L, locks and rules loaded."""
    from risk_actors import messages as m
    from risk_actors.daemon import ask
    _, config = load_view(config_path)
    try:
        reply = ask(config.daemon.admin_port, m.StatusRequest(), timeout=10)
    except DaemonError as exc:
        _fail(str(exc), 3)
    if not reply.ok:
        _fail(reply.detail, 3)
    if as_json:
        echo_json(status_dict(reply))
        return
    click.echo(f"riskd up since {reply.started_at:%Y-%m-%d %H:%M:%S %Z}; {reply.detail}")
    if not reply.accounts:
        click.echo("  no account reported yet")
    for a in reply.accounts:
        age = event_age(a.last_event_at, datetime.now(timezone.utc))
        click.echo(f"\naccount {a.account_id} {a.name!r}: "
                   f"{'connected' if a.connected else 'NOT CONNECTED'}; last broker event "
                   + ("never" if age is None else f"{countdown(int(age))} ago"))
        click.echo(f"  daily realized P&L {a.realized_pnl:+.2f} (fees {a.fees:.2f}, "
                   f"net {a.realized_pnl - a.fees:+.2f})")
        if a.positions:
            for c, s, p in a.positions:
                click.echo(f"  position {c}: {'long' if s > 0 else 'short'} {abs(s)} @ {p}")
        else:
            click.echo("  flat")
        for lock in a.lockouts:
            click.echo(f"  {_fmt_lock(lock)}")
        for r, mode, label, value, limit, unit in a.usage:
            click.echo(f"  {r} [{mode}]: {label} {fmt_value(value, unit)} of "
                       f"{fmt_value(limit, unit)} ({percent(value, limit):.0f}% used)")
        click.echo(f"  rules: {', '.join(a.rules) or 'none'}")
        for f in a.failures[-3:]:
            click.echo(f"  ! {f}")


@main.group()
def config() -> None:
    """Check and reload the configuration."""


@config.command("validate")
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
def config_validate(config_path) -> None:
    """Validate the config file; print every problem with its file, key and value."""
    path, cfg = _config(config_path)
    click.echo(f"{path}: valid (version {cfg.version}"
               + (f", migrated from {cfg.migrated_from}" if cfg.migrated_from else "") + ")")
    for w in cfg.warnings:
        click.echo(f"  warning: {w}")


@config.command("reload")
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
def config_reload(config_path) -> None:
    """Ask the running daemon to reload its config file (needs the admin password).

    An invalid file is refused and the running config kept; new limits apply from the next
    event. The password comes from a hidden prompt or $RISKD_ADMIN_PASSWORD.
    """
    _, cfg = load_view(config_path)
    click.echo(admin_call(cfg, "reload").message)


@config.command("diff")
@click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def config_diff(config_path, as_json) -> None:
    """Show what a reload would change: the running daemon's rules versus the file's."""
    from risk_actors import messages as m
    from risk_actors.cli.common import ask
    from risk_actors.supervisor import config_summary
    _, cfg = load_view(config_path)
    reply = ask(cfg, m.AdminRequest("config_summary"))
    if not reply.ok:
        _fail(reply.message, EXIT_DOWN)
    running, on_disk = reply.data, config_summary(cfg)
    changes = []
    for acc in sorted(set(running) | set(on_disk)):
        a, b = running.get(acc), on_disk.get(acc)
        if a is None or b is None:
            changes.append({"account": acc, "path": "", "running": a and "watched",
                            "file": b and "configured"})
            continue
        for rule in sorted(set(a["rules"]) | set(b["rules"])):
            ra, rb = a["rules"].get(rule, {}), b["rules"].get(rule, {})
            for key in sorted(set(ra) | set(rb)):
                if ra.get(key) != rb.get(key):
                    changes.append({"account": acc, "path": f"{rule}.{key}",
                                    "running": ra.get(key), "file": rb.get(key)})
    if as_json:
        echo_json(changes)
        return
    if not changes:
        click.echo("no difference: the running config matches the file")
    for c in changes:
        click.echo(f"account {c['account']}: {c['path'] or '(account)'}: running "
                   f"{c['running']!r} -> file {c['file']!r}")


def _register() -> None:
    from risk_actors.cli import accounts_cmd, audit_cmd, init_cmd, rules_cmd
    main.add_command(rules_cmd.rules)
    main.add_command(accounts_cmd.accounts)
    main.add_command(audit_cmd.audit)
    main.add_command(audit_cmd.lockouts)
    main.add_command(audit_cmd.logs)
    main.add_command(init_cmd.init)
    main.add_command(init_cmd.passwd)


_register()


if __name__ == "__main__":
    main()
