"""``riskd audit``, ``riskd lockouts`` (view only: there is no unlock) and ``riskd logs``: read
commands over the database and the log file; they work while the daemon is down and say so."""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from risk_actors.cli.common import (EXIT_USAGE, config_option, countdown, echo_json, fail,
                                    json_option, load_view, open_db, warn_if_down)

LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def parse_since(text: str | None) -> datetime | None:
    """``30m``, ``2h``, ``1d`` ago, or an ISO date/time (UTC when no zone)."""
    if not text:
        return None
    found = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if found:
        n, unit = int(found.group(1)), found.group(2)
        return datetime.now(timezone.utc) - timedelta(**{
            {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration (30m, 2h, 1d) nor an ISO "
                                 "date/time (2025-01-31 or 2025-01-31T14:00)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def audit_records(cfg, account, kind, since, limit) -> list[dict]:
    db = open_db(cfg)
    try:
        rows = db.audit_rows(account_id=account, kind=kind, since=since, limit=limit)
    finally:
        db.close()
    return [{"id": r.id, "at": r.at.isoformat(), "kind": r.kind, "account_id": r.account_id,
             "rule": r.rule, "detail": dict(r.detail)} for r in rows]


@click.command()
@config_option
@click.option("--account", type=int, metavar="ID", help="Only this account.")
@click.option("--kind", type=click.Choice(["verdict", "lock", "unlock", "enforcement",
                                           "broker_call", "rule_failure", "quarantine", "admin",
                                           "daemon", "daily_reset"]),
              help="Only records of this kind.")
@click.option("--since", metavar="WHEN", help="Only newer records: 30m, 2h, 1d or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True,
              help="At most this many records (newest first).")
@click.option("--export", "export", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the records to FILE (.csv or .jsonl) instead of printing them.")
@click.option("--verify", is_flag=True, help="Check the hash chain of the whole trail first.")
@json_option
def audit(config_path, account, kind, since, limit, export, verify, as_json) -> None:
    """Show the audit trail (verdicts, locks, enforcement, admin actions and refusals)."""
    _, cfg = load_view(config_path)
    warn_if_down(cfg)
    when = parse_since(since)
    if verify:
        db = open_db(cfg)
        try:
            bad = db.verify_audit()
        finally:
            db.close()
        if bad:
            fail(f"audit trail BROKEN at row {bad[0]}: {bad[1]}", 1)
        click.echo("audit trail intact (hash chain verified)", err=True)
    rows = audit_records(cfg, account, kind, when, limit)
    if export:
        path = Path(export)
        if path.suffix not in (".csv", ".jsonl"):
            fail(f"--export {export}: the file must end in .csv or .jsonl", EXIT_USAGE)
        with path.open("w", newline="") as fh:
            if path.suffix == ".csv":
                w = csv.writer(fh)
                w.writerow(["id", "at", "kind", "account_id", "rule", "detail"])
                for r in rows:
                    w.writerow([r["id"], r["at"], r["kind"], r["account_id"], r["rule"],
                                json.dumps(r["detail"], sort_keys=True)])
            else:
                for r in rows:
                    fh.write(json.dumps(r, sort_keys=True) + "\n")
        click.echo(f"{len(rows)} record(s) written to {path}")
        return
    if as_json:
        echo_json(rows)
        return
    for r in reversed(rows):
        detail = r["detail"]
        text = detail.get("reason") or detail.get("message") or detail.get("text") \
            or json.dumps(detail, sort_keys=True)[:160]
        who = f" {r['account_id']}" if r["account_id"] else ""
        rule = f" {r['rule']}" if r["rule"] else ""
        extra = f" {detail.get('command')} {detail.get('outcome')}:" if r["kind"] == "admin" else ""
        click.echo(f"{r['at'][:19]} {r['kind']:<12}{who}{rule}{extra} {text}")


@click.command()
@config_option
@click.option("--account", type=int, metavar="ID", help="Only this account.")
@json_option
def lockouts(config_path, account, as_json) -> None:
    """Locks in force, with reason and time left. View only: there is no unlock command."""
    _, cfg = load_view(config_path)
    warn_if_down(cfg)
    now = datetime.now(timezone.utc)
    db = open_db(cfg)
    try:
        ids = [account] if account else [a.account_id for a in db.accounts()]
        rows = [{"account_id": a, "rule": lk.rule, "kind": lk.kind, "scope": lk.scope,
                 "symbol": lk.symbol, "reason": lk.reason,
                 "started_at": lk.started_at.isoformat(),
                 "expires_at": lk.expires_at.isoformat() if lk.expires_at else None,
                 "seconds_left": int((lk.expires_at - now).total_seconds())
                 if lk.expires_at else None}
                for a in ids for lk in db.active_lockouts(a, now)]
    finally:
        db.close()
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no lock in force")
    for r in rows:
        what = f"symbol {r['symbol']}" if r["scope"] == "symbol" else "account"
        left = countdown(r["seconds_left"]) + " left" if r["expires_at"] else "no expiry"
        click.echo(f"{r['account_id']} {what} locked by {r['rule']} ({left}, until "
                   f"{r['expires_at'] or '-'}): {r['reason']}")


@click.command()
@config_option
@click.option("-n", "--tail", "tail", type=click.IntRange(1, 100000), default=50,
              show_default=True, help="Show the last N matching lines.")
@click.option("--level", type=click.Choice(LEVELS, case_sensitive=False),
              help="Only lines at this level or above.")
@click.option("--grep", "pattern", metavar="REGEX", help="Only lines matching REGEX.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
def logs(config_path, tail, level, pattern, follow) -> None:
    """Show the daemon's log (<state_dir>/logs/riskd.log), filtered."""
    _, cfg = load_view(config_path)
    path = Path(cfg.daemon.state_dir) / "logs" / "riskd.log"
    if not path.exists():
        fail(f"no log file at {path} (riskd has not run with this config)", 1)
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error as exc:
        fail(f"--grep {pattern!r} is not a valid regular expression: {exc}", EXIT_USAGE)
    floor = LEVELS.index(level.upper()) if level else 0

    def keep(line: str) -> bool:
        parts = line.split(None, 2)
        if floor and (len(parts) < 2 or parts[1] not in LEVELS or LEVELS.index(parts[1]) < floor):
            return False
        return regex is None or bool(regex.search(line))

    with path.open(errors="replace") as fh:
        lines = [ln for ln in fh if keep(ln)]
        for ln in lines[-tail:]:
            sys.stdout.write(ln)
        if not follow:
            return
        try:
            while True:
                ln = fh.readline()
                if not ln:
                    time.sleep(0.3)
                    continue
                if keep(ln):
                    sys.stdout.write(ln)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass
