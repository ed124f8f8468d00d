"""``risk-trader``: the trader's read-only view of riskd (no password, changes nothing).

``status`` (P&L vs each limit, positions, locks with countdown, next reset, daemon health),
``watch`` (the same as a live full-screen dashboard), ``history`` (enforcements), ``rules``
(the limits in plain words) and ``stats`` (trading statistics recorded by the analytics component). It only sends ``StatusRequest`` and ``AdminRequest("ping")`` to the
daemon and reads the database read-only; nothing it can send changes anything.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

import click

from risk_actors.cli.common import (EXIT_DOWN, countdown, echo_json, fmt_money, fmt_value,
                                    json_option, load_view, open_db, percent, registry,
                                    status_dict)

PROG = "risk-trader"
config_option = click.option("--config", "config_path", metavar="PATH",
                             help="riskd's config file (default: $RISKD_CONFIG or "
                                  "etc/riskd.yaml).")
account_option = click.option("--account", type=int, metavar="ID", help="Only this account.")


def _down(cfg) -> None:
    click.echo(f"{PROG}: riskd is NOT running (nothing listens on admin port "
               f"{cfg.daemon.admin_port}): your rules are NOT being enforced", err=True)
    sys.exit(EXIT_DOWN)


def snapshot(cfg, account: int | None) -> dict | None:
    """Status as plain data, or None when the daemon is down (never starts one)."""
    from risk_actors import messages as m
    from risk_actors.daemon import DaemonError, ask, port_open
    if not port_open(cfg.daemon.admin_port):
        return None
    try:
        reply = ask(cfg.daemon.admin_port, m.StatusRequest(account), timeout=5)
    except DaemonError:
        return None
    if not reply.ok:
        return {"daemon": {"running": True, "detail": reply.detail}, "accounts": []}
    data = status_dict(reply)
    reset = cfg.timers.daily_reset
    data["daily_reset"] = {"time": reset.time, "timezone": reset.timezone}
    data["session"] = {"configured": False,
                       "text": f"no session window configured: trading allowed around the "
                               f"clock; the day rolls over at {reset.time} {reset.timezone}"}
    return data


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """risk-trader: see what riskd enforces on your accounts (read-only, no password).

    riskd watches your accounts and undoes what breaks your rules; this shows where you stand
    against each limit, your locks and when they end. Nothing here can change or lift a rule.
    """


def _print_status(data: dict) -> None:
    d = data["daemon"]
    click.echo(f"riskd running since {d.get('started_at') or '?'} "
               f"(up {countdown(d.get('uptime_seconds'))})")
    click.echo(data.get("session", {}).get("text", ""))
    for a in data["accounts"]:
        click.echo(f"\naccount {a['account_id']} {a['name']}: "
                   f"{'connected' if a['connected'] else 'NOT CONNECTED to the broker'}"
                   + ("" if a["can_trade"] in (None, True) else ", broker says canTrade=false"))
        click.echo(f"  P&L today: realized {fmt_money(a['realized_pnl'])} (fees "
                   f"{a['fees']:.2f}, net {fmt_money(a['net_realized_pnl'])}), unrealized "
                   f"{fmt_money(a['unrealized_pnl'])}")
        for u in a["limits"]:
            click.echo(f"  {u['rule']}: {u['label']} {fmt_value(u['value'], u['unit'])} of "
                       f"{fmt_value(u['limit'], u['unit'])} ({u['percent_used']:.0f}% used)"
                       + (" [shadow]" if u["mode"] == "shadow" else ""))
        for p in a["positions"]:
            click.echo(f"  position {p['contract_id']}: {'long' if p['size'] > 0 else 'short'} "
                       f"{abs(p['size'])} @ {p['average_price']}")
        if not a["positions"]:
            click.echo("  flat")
        for lk in a["lockouts"]:
            what = f"symbol {lk['symbol']}" if lk["scope"] == "symbol" else "ACCOUNT"
            left = f"{lk['countdown']} left (until {lk['expires_at']})" if lk["expires_at"] \
                else "no expiry"
            click.echo(f"  {what} LOCKED by {lk['rule']}: {lk['reason']} -- {left}")
        click.echo(f"  next daily reset in {a['next_reset_in'] or '?'} ({a['next_reset_at']})")
        for f in a["failures"][-3:]:
            click.echo(f"  ! {f}")


@main.command()
@config_option
@account_option
@json_option
def status(config_path, account, as_json) -> None:
    """Where you stand: P&L vs each limit (% used), positions, locks and time left, next reset,
    whether riskd is watching."""
    _, cfg = load_view(config_path, PROG)
    data = snapshot(cfg, account)
    if data is None:
        _down(cfg)
    if as_json:
        echo_json(data)
    else:
        _print_status(data)


def render(data: dict | None, cfg, now: datetime):
    """The dashboard as a rich renderable (pure: tests render it to text)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
    if data is None:
        return Panel(Text("riskd is NOT running: your rules are NOT being enforced\n"
                          f"(nothing listens on admin port {cfg.daemon.admin_port})",
                          style="bold red"), title=f"riskd  {now:%H:%M:%S}")
    parts = []
    d = data["daemon"]
    parts.append(Text(f"riskd running, up {countdown(d.get('uptime_seconds')) or '?'}   "
                      f"{now.astimezone():%Y-%m-%d %H:%M:%S %Z}", style="green"))
    for a in data["accounts"]:
        head = Text(f"{a['account_id']} {a['name']}  ", style="bold")
        head.append("connected" if a["connected"] else "NOT CONNECTED",
                    style="green" if a["connected"] else "bold red")
        limits = Table(expand=True, title="limits", title_justify="left")
        for col in ("rule", "measure", "now", "limit", "% used"):
            limits.add_column(col)
        for u in a["limits"]:
            pct = percent(u["value"], u["limit"])
            style = "red" if pct >= 100 else "yellow" if pct >= 75 else ""
            limits.add_row(u["rule"], u["label"], fmt_value(u["value"], u["unit"]),
                           fmt_value(u["limit"], u["unit"]), f"{pct:.0f}%", style=style)
        pos = Table(expand=True, title="positions", title_justify="left")
        for col in ("contract", "side", "size", "avg price"):
            pos.add_column(col)
        for p in a["positions"]:
            pos.add_row(p["contract_id"], "long" if p["size"] > 0 else "short",
                        str(abs(p["size"])), str(p["average_price"]))
        lines = [head, Text(f"P&L today: realized {fmt_money(a['realized_pnl'])}  fees "
                            f"{a['fees']:.2f}  net {fmt_money(a['net_realized_pnl'])}  "
                            f"unrealized {fmt_money(a['unrealized_pnl'])}"), limits, pos]
        for lk in a["lockouts"]:
            left = None
            if lk["expires_at"]:
                left = int((datetime.fromisoformat(lk["expires_at"]) - now).total_seconds())
            what = f"symbol {lk['symbol']}" if lk["scope"] == "symbol" else "ACCOUNT"
            lines.append(Text(f"{what} LOCKED by {lk['rule']}: {lk['reason']}  "
                              f"unlocks in {countdown(left) if left is not None else 'never'}",
                              style="bold white on red"))
        if a["next_reset_at"]:
            nxt = int((datetime.fromisoformat(a["next_reset_at"]) - now).total_seconds())
            lines.append(Text(f"next daily reset in {countdown(nxt)} ({a['next_reset_at']})"))
        for f in a["failures"][-2:]:
            lines.append(Text(f"! {f}", style="yellow"))
        parts.append(Panel(Group(*lines)))
    if not data["accounts"]:
        parts.append(Text("no account reported yet"))
    return Panel(Group(*parts), title="riskd  (Ctrl-C to quit)")


@main.command()
@config_option
@account_option
@click.option("--interval", type=click.FloatRange(0.2, 1.0), default=1.0, show_default=True,
              help="Seconds between refreshes (at most 1).")
def watch(config_path, account, interval) -> None:
    """Live full-screen dashboard (refreshes every second): P&L vs limits, positions, locks
    with a live countdown, next reset, daemon health. Ctrl-C quits."""
    from rich.console import Console
    from rich.live import Live
    _, cfg = load_view(config_path, PROG)
    console = Console()
    try:
        with Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                data = snapshot(cfg, account)
                live.update(render(data, cfg, datetime.now(timezone.utc)), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        pass


@main.command()
@config_option
@account_option
@click.option("--limit", type=click.IntRange(1, 10000), default=30, show_default=True,
              help="At most this many entries (newest last).")
@json_option
def history(config_path, account, limit, as_json) -> None:
    """What riskd did: rule breaches, locks and enforcement, newest last."""
    from risk_actors.cli.common import warn_if_down
    _, cfg = load_view(config_path, PROG)
    warn_if_down(cfg, PROG)
    db = open_db(cfg, PROG)
    try:
        rows = [r for kind in ("verdict", "lock", "unlock", "enforcement", "daily_reset")
                for r in db.audit_rows(account_id=account, kind=kind, limit=limit)]
    finally:
        db.close()
    rows = sorted(rows, key=lambda r: r.id)[-limit:]
    out = [{"at": r.at.isoformat(), "kind": r.kind, "account_id": r.account_id, "rule": r.rule,
            "what": _what(r)} for r in rows]
    if as_json:
        echo_json(out)
        return
    if not out:
        click.echo("nothing enforced yet")
    for r in out:
        click.echo(f"{r['at'][:19]} {r['account_id'] or ''} {r['kind']:<11} {r['rule'] or '':<22} "
                   f"{r['what']}")


def _what(row) -> str:
    d = row.detail
    if row.kind == "verdict":
        return f"{d.get('reason', '')} ({d.get('mode', 'enforce')})"
    if row.kind == "lock":
        return "; ".join(d.get("locks", [])) or "locked"
    if row.kind == "enforcement":
        return d.get("detail") or d.get("reason") or str(dict(d))[:160]
    return ", ".join(f"{k}={v}" for k, v in d.items())[:160]


@main.command("rules")
@config_option
@account_option
@json_option
def rules_cmd(config_path, account, as_json) -> None:
    """Your limits in plain words (per account, overrides included)."""
    import attrs
    _, cfg = load_view(config_path, PROG)
    reg = registry()
    out = []
    for acc in cfg.accounts:
        if account is not None and acc.id != account:
            continue
        for rc in acc.rules:
            cls = reg.get(rc.name)
            params = attrs.asdict(rc.params) if attrs.has(type(rc.params)) else {}
            out.append({"account_id": acc.id, "rule": rc.name,
                        "id": getattr(cls, "rule_id", ""), "enabled": rc.enabled,
                        "mode": rc.mode, "description": getattr(cls, "description", ""),
                        "settings": params})
    if as_json:
        echo_json(out)
        return
    if not out:
        click.echo("no rule configured for this account")
    for r in out:
        if not r["enabled"]:
            continue
        shadow = " (shadow mode: recorded, not enforced)" if r["mode"] == "shadow" else ""
        settings = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["settings"].items())
        click.echo(f"account {r['account_id']}: {r['rule']} ({r['id']}){shadow}: "
                   f"{r['description']} [{settings}]")


def parse_day(text: str | None, cfg, what: str):
    """A trading day: ``YYYY-MM-DD``, ``today`` or ``yesterday`` (in the reset timezone)."""
    from datetime import date, timedelta
    from risk_actors.calendar import trading_day
    if text is None:
        return None
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        reset = cfg.timers.daily_reset
        today = trading_day(datetime.now(timezone.utc), reset.time, reset.timezone)
        return today if word == "today" else today - timedelta(days=1)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date: write YYYY-MM-DD (e.g. 2026-11-24), "
                                 "today or yesterday", param_hint=what) from None


def stats_data(cfg, account: int | None, first, last) -> dict:
    """The analytics figures as plain data (what ``stats --json`` prints)."""
    from risk_actors.analytics.stats import compute
    from risk_actors.analytics.store import AnalyticsStore
    from risk_actors.cli.common import db_path, fail
    path = db_path(cfg)
    if not path.exists():
        fail(f"no database at {path} yet (riskd has never run with this config)", 1, PROG)
    reset = cfg.timers.daily_reset
    out = {"from": first.isoformat() if first else None, "to": last.isoformat() if last else None,
           "timezone": reset.timezone, "daily_reset": reset.time, "accounts": []}
    store = AnalyticsStore(path, readonly=True)
    try:
        if not store.ready():
            out["note"] = "no analytics recorded yet (the analytics component has not run)"
            return out
        ids = [account] if account is not None else store.accounts()
        for acc in ids:
            triggers = [rule for rule, _mode, _reason in store.triggers(acc, first, last)]
            s = compute(store.fills(acc, first, last), triggers, tz=reset.timezone,
                        reset_time=reset.time, aliases=cfg.daemon.aliases())
            out["accounts"].append({"account_id": acc, **s.to_dict()})
    finally:
        store.close()
    return out


def _print_stats(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console(highlight=False)
    span = f"{data['from'] or 'start'} .. {data['to'] or 'now'}"
    console.print(f"trading days {span} (hours in {data['timezone']}, day rolls over at "
                  f"{data['daily_reset']})")
    if data.get("note"):
        console.print(data["note"])
    if not data["accounts"]:
        console.print("no trades recorded for this selection")

    def num(v, pct=False):
        if v is None:
            return "n/a"
        return f"{v:.1f}%" if pct else f"{v:+,.2f}"

    for a in data["accounts"]:
        pf = a["profit_factor"]
        pf_text = f"{pf:.2f}" if pf is not None else ("inf" if a["wins"] else "n/a")
        summary = Table(title=f"account {a['account_id']}", title_justify="left",
                        show_header=False)
        summary.add_column("figure")
        summary.add_column("value", justify="right")
        for label, value in (
                ("trades (closing fills)", str(a["trades"])),
                ("wins / losses / scratches", f"{a['wins']} / {a['losses']} / {a['scratches']}"),
                ("win rate", num(a["win_rate"], pct=True)),
                ("average win", num(a["average_win"])),
                ("average loss", num(a["average_loss"])),
                ("profit factor", pf_text),
                ("largest win", num(a["largest_win"])),
                ("largest loss", num(a["largest_loss"])),
                ("gross P&L", num(a["gross_pnl"])),
                ("fees", f"{a['fees']:,.2f}"),
                ("net P&L", num(a["net_pnl"]))):
            summary.add_row(label, value)
        console.print(summary)
        for title, key, head in (("by trading day", "by_day", "day"),
                                 ("by hour", "by_hour", "hour"),
                                 ("by instrument", "by_instrument", "instrument")):
            rows = a[key]
            if not rows:
                continue
            table = Table(title=title, title_justify="left")
            for col in (head, "trades", "wins", "losses", "gross", "fees", "net"):
                table.add_column(col, justify="left" if col == head else "right")
            for name, b in rows.items():
                table.add_row(name, str(b["trades"]), str(b["wins"]), str(b["losses"]),
                              num(b["gross_pnl"]), f"{b['fees']:,.2f}", num(b["net_pnl"]))
            console.print(table)
        if a["rule_triggers"]:
            console.print("rules triggered: " + ", ".join(
                f"{rule} x{n}" for rule, n in a["rule_triggers"].items()))


@main.command()
@config_option
@click.option("--account", type=int, metavar="ID",
              help="Only this account (default: every account with recorded trades).")
@click.option("--from", "first", metavar="DATE",
              help="First trading day included: YYYY-MM-DD, today or yesterday "
                   "(default: the first recorded).")
@click.option("--to", "last", metavar="DATE",
              help="Last trading day included: YYYY-MM-DD, today or yesterday "
                   "(default: the latest recorded).")
@json_option
def stats(config_path, account, first, last, as_json) -> None:
    """Your trading statistics: trades, win rate, average win/loss, profit factor, largest
    win/loss, fees, net P&L, rule triggers, P&L by day, hour and instrument. Works while riskd
    is down (reads what it recorded). Definitions: docs/analytics.md."""
    from risk_actors.cli.common import warn_if_down
    _, cfg = load_view(config_path, PROG)
    start, end = parse_day(first, cfg, "--from"), parse_day(last, cfg, "--to")
    if start and end and start > end:
        raise click.BadParameter(f"{first} is after --to {last}", param_hint="--from")
    warn_if_down(cfg, PROG)
    data = stats_data(cfg, account, start, end)
    if as_json:
        echo_json(data)
    else:
        _print_stats(data)


if __name__ == "__main__":
    main()
