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


def audit_records(cfg, account, kind, since, limit, oldest_first: bool = False) -> list[dict]:
    db = open_db(cfg)
    try:
        rows = db.audit_rows(account_id=account, kind=kind, since=since, limit=limit,
                             newest_first=not oldest_first)
    finally:
        db.close()
    return [{"id": r.id, "at": r.at.isoformat(), "kind": r.kind, "account_id": r.account_id,
             "rule": r.rule, "detail": dict(r.detail)} for r in rows]


KINDS = ["verdict", "lock", "unlock", "enforcement", "broker_call", "rule_failure", "quarantine",
         "admin", "daemon", "daily_reset"]
account_option = click.option("--account", type=int, metavar="ID", help="Only this account.")
kind_option = click.option("--kind", type=click.Choice(KINDS), help="Only records of this kind.")
since_option = click.option("--since", metavar="WHEN",
                            help="Only newer records: 30m, 2h, 1d or an ISO time.")


def verify_trail(cfg) -> tuple[int, tuple[int, str] | None]:
    """(number of records, None when the chain holds, else (first bad record id, why))."""
    db = open_db(cfg)
    try:
        bad = db.verify_audit()
        newest = db.audit_rows(limit=1)
    finally:
        db.close()
    # An intact chain numbers its records 1..n, so the newest id is the count.
    return (newest[0].id if newest else 0), bad


def _broken(bad: tuple[int, str]) -> str:
    return (f"audit trail BROKEN: first bad record is #{bad[0]}: {bad[1]}. Records from #{bad[0]} "
            "on cannot be trusted; compare with a backup or an exported copy.")


def write_records(rows: list[dict], fmt: str, fh) -> None:
    """CSV (detail as canonical JSON in one column) or JSON Lines, oldest first."""
    if fmt == "csv":
        w = csv.writer(fh)
        w.writerow(["id", "at", "kind", "account_id", "rule", "detail"])
        for r in rows:
            w.writerow([r["id"], r["at"], r["kind"], r["account_id"], r["rule"],
                        json.dumps(r["detail"], sort_keys=True)])
    else:
        for r in rows:
            fh.write(json.dumps(r, sort_keys=True) + "\n")


@click.group(invoke_without_command=True)
@config_option
@account_option
@kind_option
@since_option
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True,
              help="At most this many records (newest first).")
@click.option("--export", "export", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the records to FILE (.csv or .jsonl) instead of printing them "
                   "(older form of `riskd audit export`).")
@click.option("--verify", is_flag=True,
              help="Check the hash chain of the whole trail first (older form of "
                   "`riskd audit verify`).")
@json_option
@click.pass_context
def audit(ctx, config_path, account, kind, since, limit, export, verify, as_json) -> None:
    """Show the audit trail (verdicts, locks, enforcement, admin actions and refusals).

    Without a subcommand it lists records, newest last. `riskd audit verify` checks the hash
    chain and names the first edited, removed or reordered record; `riskd audit export
    --format csv|json` writes the records out.
    """
    if ctx.invoked_subcommand is not None:
        return
    _, cfg = load_view(config_path)
    warn_if_down(cfg)
    when = parse_since(since)
    if verify:
        count, bad = verify_trail(cfg)
        if bad:
            fail(_broken(bad), 1)
        click.echo(f"audit trail intact: {count} record(s), hash chain verified", err=True)
    rows = audit_records(cfg, account, kind, when, limit)
    if export:
        path = Path(export)
        if path.suffix not in (".csv", ".jsonl"):
            fail(f"--export {export}: the file must end in .csv or .jsonl", EXIT_USAGE)
        with path.open("w", newline="") as fh:
            write_records(list(reversed(rows)), "csv" if path.suffix == ".csv" else "json", fh)
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


def _config_path(ctx: click.Context, config_path: str | None) -> str | None:
    # `riskd audit --config X verify` and `riskd audit verify --config X` both work.
    return config_path or (ctx.parent.params.get("config_path") if ctx.parent else None)


@audit.command("verify")
@config_option
@json_option
@click.pass_context
def audit_verify(ctx, config_path, as_json) -> None:
    """Check the audit trail's hash chain: exit 0 when intact; exit 1 naming the first edited,
    removed or reordered record otherwise."""
    _, cfg = load_view(_config_path(ctx, config_path))
    warn_if_down(cfg)
    count, bad = verify_trail(cfg)
    if as_json:
        echo_json({"intact": bad is None, "records": count,
                   "first_bad_record": bad[0] if bad else None, "reason": bad[1] if bad else None})
        sys.exit(1 if bad else 0)
    if bad:
        fail(_broken(bad), 1)
    click.echo(f"audit trail intact: {count} record(s), hash chain verified")


@audit.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True,
              help="csv: one row per record, detail as JSON text; json: JSON Lines, one record "
                   "per line.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write to FILE instead of standard output.")
@account_option
@kind_option
@since_option
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Only the newest N records (default: all of them).")
@click.pass_context
def audit_export(ctx, config_path, fmt, output, account, kind, since, limit) -> None:
    """Write the audit trail out, oldest first, as CSV or JSON Lines (every field, hashes
    excepted; check the chain with `riskd audit verify`)."""
    _, cfg = load_view(_config_path(ctx, config_path))
    warn_if_down(cfg)
    when = parse_since(since)
    rows = list(reversed(audit_records(cfg, account, kind, when, limit or 2**62)))
    if output:
        with Path(output).open("w", newline="") as fh:
            write_records(rows, fmt, fh)
        click.echo(f"{len(rows)} record(s) written to {output}", err=True)
    else:
        write_records(rows, fmt, sys.stdout)


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
