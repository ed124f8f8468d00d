"""What both command lines share: config lookup, talking to the daemon, admin proofs, the
status snapshot as plain data, and formatting.

Nothing here starts an actor system: :func:`risk_actors.daemon.ask` probes the admin port first,
and every command that needs the daemon says so when it is down (exit status 3).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import click

from loguru import logger

from risk_actors.daemon import DaemonError, resolve_config

# A command line shows its own errors; library chatter (plugin discovery ...) only when serious.
# `riskd start --foreground` reconfigures loguru for the daemon (risk_actors.logs.setup).
logger.remove()
logger.add(sys.stderr, level="ERROR", format="{level}: {message}")

CONFIG_HELP = ("Config file, or a directory holding riskd.yaml (default: $RISKD_CONFIG or "
               "etc/riskd.yaml).")
PASSWORD_ENV = "RISKD_ADMIN_PASSWORD"
EXIT_USAGE, EXIT_DOWN, EXIT_REFUSED = 2, 3, 4

config_option = click.option("--config", "config_path", metavar="PATH", help=CONFIG_HELP)
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON instead of text.")


def fail(message: str, code: int = 1, prog: str = "riskd") -> NoReturn:
    click.echo(f"{prog}: {message}", err=True)
    sys.exit(code)


@functools.lru_cache(maxsize=1)
def registry():
    from risk_actors.plugins import discover
    return discover()[0]


def load_view(config_path: str | None, prog: str = "riskd"):
    """(path, config) without reading credentials (see admin_ops.load_view)."""
    from risk_actors.admin_ops import load_view as _load
    from risk_actors.config import ConfigError
    try:
        path = resolve_config(config_path)
        return path, _load(str(path), registry())
    except (DaemonError, ConfigError) as exc:
        fail(str(exc), EXIT_USAGE, prog)


def ask(config, msg: Any, timeout: float = 10.0, prog: str = "riskd"):
    from risk_actors.daemon import ask as _ask
    try:
        return _ask(config.daemon.admin_port, msg, timeout=timeout)
    except DaemonError as exc:
        fail(str(exc), EXIT_DOWN, prog)


def daemon_up(config) -> bool:
    from risk_actors.daemon import port_open
    return port_open(config.daemon.admin_port)


def db_path(config) -> Path:
    return Path(config.daemon.state_dir) / "riskd.sqlite"


def open_db(config, prog: str = "riskd"):
    """The daemon's database, read-only (works while the daemon is down)."""
    from risk_actors.db import Database
    path = db_path(config)
    if not path.exists():
        fail(f"no database at {path} yet (riskd has never run with this config)", 1, prog)
    try:
        return Database(path, readonly=True)
    except Exception as exc:  # noqa: BLE001
        fail(f"cannot read {path}: {exc}", 1, prog)


def warn_if_down(config, prog: str = "riskd") -> None:
    if not daemon_up(config):
        click.echo(f"{prog}: note: riskd is NOT running (nothing listens on admin port "
                   f"{config.daemon.admin_port}); showing what the database recorded.", err=True)


# ---------------------------------------------------------------------------------------------
# admin proofs
def admin_password(confirm_prompt: str = "Admin password") -> str:
    """The admin password: ``$RISKD_ADMIN_PASSWORD`` (scripts, tests) or a hidden prompt."""
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if not sys.stdin.isatty():
        fail(f"the admin password is needed: type it at a terminal or set {PASSWORD_ENV}",
             EXIT_USAGE)
    return click.prompt(confirm_prompt, hide_input=True)


def admin_call(config, command: str, args: dict | None = None, password: str | None = None,
               timeout: float = 20.0):
    """Send a mutating admin request with a proof of the password; exit on refusal."""
    from risk_actors import messages as m
    from risk_actors import security
    args = dict(args or {})
    if not daemon_up(config):
        fail(f"riskd is not running (nothing listens on admin port {config.daemon.admin_port}); "
             "start it with `riskd start` first", EXIT_DOWN)
    challenge = ask(config, m.AdminRequest("challenge"), timeout=10)
    if not challenge.ok:
        fail(challenge.message, EXIT_DOWN)
    data = challenge.data or {}
    if not data.get("params"):
        fail("no admin password is set: run `riskd passwd` as riskd's service user (or root) "
             "first", EXIT_REFUSED)
    password = password if password is not None else admin_password()
    try:
        key = security.key_from_password(password, data)
    except security.SecurityError as exc:
        fail(str(exc), EXIT_REFUSED)
    proof = security.make_proof(key, command, args, data["nonce"])
    reply = ask(config, m.AdminRequest(command, args, proof, data["nonce"]), timeout=timeout)
    if not reply.ok:
        fail(reply.message, EXIT_REFUSED if (reply.data or {}).get("refused") else 1)
    return reply


# ---------------------------------------------------------------------------------------------
# status as plain data
def _seconds_left(expires: str | None, now: datetime) -> int | None:
    if not expires:
        return None
    return max(0, int((datetime.fromisoformat(expires) - now).total_seconds()))


def account_dict(a, now: datetime | None = None) -> dict:
    """One AccountStatus as JSON-able data (what ``--json`` prints)."""
    now = now or datetime.now(timezone.utc)
    started = list(getattr(a, "lock_started", ()) or ())
    locks = []
    for i, (rule, scope, symbol, reason, expires) in enumerate(a.lockouts):
        locks.append({"rule": rule, "scope": scope, "symbol": symbol, "reason": reason,
                      "started_at": started[i] if i < len(started) else None,
                      "expires_at": expires, "seconds_left": _seconds_left(expires, now),
                      "countdown": countdown(_seconds_left(expires, now))})
    usage = [{"rule": r, "mode": mode, "label": label, "value": value, "limit": limit,
              "unit": unit, "percent_used": percent(value, limit)}
             for r, mode, label, value, limit, unit in getattr(a, "usage", ()) or ()]
    nxt = getattr(a, "next_reset_at", None)
    return {
        "account_id": a.account_id, "name": a.name, "connected": a.connected,
        "can_trade": getattr(a, "can_trade", None),
        "positions": [{"contract_id": c, "size": s, "average_price": p}
                      for c, s, p in a.positions],
        "realized_pnl": a.realized_pnl, "fees": a.fees,
        "net_realized_pnl": round(a.realized_pnl - a.fees, 2),
        "unrealized_pnl": getattr(a, "unrealized_pnl", None),
        "lockouts": locks, "locked": bool(locks),
        "limits": usage,
        "next_reset_at": nxt.isoformat() if nxt else None,
        "next_reset_in": countdown(int((nxt - now).total_seconds())) if nxt else None,
        "rules": list(a.rules), "failures": list(a.failures),
        "last_event_at": a.last_event_at.isoformat() if a.last_event_at else None,
        "last_event_age_seconds": event_age(a.last_event_at, now),
    }


def event_age(at: datetime | None, now: datetime) -> float | None:
    """Seconds since the account's last broker event (None: no event yet)."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return round(max(0.0, (now - at).total_seconds()), 1)


def status_dict(reply, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    return {"daemon": {"running": True, "started_at": reply.started_at.isoformat()
                       if reply.started_at else None,
                       "uptime_seconds": int((now - reply.started_at).total_seconds())
                       if reply.started_at else None, "detail": reply.detail},
            "started_at": reply.started_at.isoformat() if reply.started_at else None,
            "accounts": [account_dict(a, now) for a in reply.accounts]}


def percent(value: float, limit: float) -> float:
    if not limit or not value or (value > 0) != (limit > 0):
        return 0.0
    return round(100.0 * value / limit, 1)


def countdown(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def fmt_money(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+,.2f}"


def fmt_value(v: float, unit: str) -> str:
    return fmt_money(v) if unit == "$" else f"{v:g} {unit}".strip()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
