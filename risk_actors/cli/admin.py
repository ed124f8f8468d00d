"""``riskd``: the admin command line (daemon lifecycle, status, config reload)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from risk_actors.daemon import DaemonError, resolve_config

CONFIG_HELP = "Config file, or a directory holding riskd.yaml (default: $RISKD_CONFIG or etc/riskd.yaml)."


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"riskd: {message}", err=True)
    sys.exit(code)


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


def _fmt_lock(lock) -> str:
    rule, scope, symbol, reason, expires = lock
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
    _, config = _config(config_path)
    try:
        reply = ask(config.daemon.admin_port, m.StatusRequest(), timeout=10)
    except DaemonError as exc:
        _fail(str(exc), 3)
    if not reply.ok:
        _fail(reply.detail, 3)
    if as_json:
        click.echo(json.dumps({
            "started_at": reply.started_at.isoformat() if reply.started_at else None,
            "accounts": [{
                "account_id": a.account_id, "name": a.name, "connected": a.connected,
                "positions": [{"contract_id": c, "size": s, "average_price": p}
                              for c, s, p in a.positions],
                "realized_pnl": a.realized_pnl, "fees": a.fees,
                "net_realized_pnl": round(a.realized_pnl - a.fees, 2),
                "lockouts": [{"rule": r, "scope": sc, "symbol": sy, "reason": re_, "expires_at": ex}
                             for r, sc, sy, re_, ex in a.lockouts],
                "rules": list(a.rules), "failures": list(a.failures),
                "last_event_at": a.last_event_at.isoformat() if a.last_event_at else None,
            } for a in reply.accounts]}, indent=2))
        return
    click.echo(f"riskd up since {reply.started_at:%Y-%m-%d %H:%M:%S %Z}; {reply.detail}")
    if not reply.accounts:
        click.echo("  no account reported yet")
    for a in reply.accounts:
        click.echo(f"\naccount {a.account_id} {a.name!r}: "
                   f"{'connected' if a.connected else 'NOT CONNECTED'}")
        click.echo(f"  daily realized P&L {a.realized_pnl:+.2f} (fees {a.fees:.2f}, "
                   f"net {a.realized_pnl - a.fees:+.2f})")
        if a.positions:
            for c, s, p in a.positions:
                click.echo(f"  position {c}: {'long' if s > 0 else 'short'} {abs(s)} @ {p}")
        else:
            click.echo("  flat")
        for lock in a.lockouts:
            click.echo(f"  {_fmt_lock(lock)}")
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
    """Ask the running daemon to reload its config; an invalid one is refused and the old kept."""
    from risk_actors import messages as m
    from risk_actors.daemon import ask
    _, cfg = _config(config_path)
    try:
        reply = ask(cfg.daemon.admin_port, m.AdminRequest("reload"), timeout=15)
    except DaemonError as exc:
        _fail(str(exc), 3)
    click.echo(reply.message)
    if not reply.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
