"""``riskd rules list|show|enable|disable|set``: see and change the rules (changes need the admin
password; they are validated, written back to the config file with its comments, and applied
live from the next event)."""

from __future__ import annotations

import click

from risk_actors.cli.common import (EXIT_USAGE, admin_call, config_option, echo_json, fail,
                                    json_option, load_view, registry)


def _params(rc) -> dict:
    import attrs
    return attrs.asdict(rc.params) if attrs.has(type(rc.params)) else {}


def _rule_rows(cfg, account: str | None) -> list[dict]:
    reg = registry()
    if account is None:
        configured = {r.name: r for r in cfg.rules}
    else:
        acc = _find_account(cfg, account)
        configured = {r.name: r for r in acc.rules}
    rows = []
    for name, cls in sorted(reg.items()):
        rc = configured.get(name)
        rows.append({"rule": name, "id": cls.rule_id, "description": cls.description,
                     "configured": rc is not None,
                     "enabled": bool(rc and rc.enabled), "mode": rc.mode if rc else None,
                     "params": _params(rc) if rc else {}})
    return rows


def _find_account(cfg, account: str):
    for acc in cfg.accounts:
        if str(acc.id) == str(account) or acc.name == account:
            return acc
    known = ", ".join(acc.label for acc in cfg.accounts) or "none"
    fail(f"no account {account!r} in {cfg.source}; configured accounts: {known}", EXIT_USAGE)


account_option = click.option("--account", metavar="ID|NAME",
                              help="Per-account override instead of the global rules.")


@click.group()
def rules() -> None:
    """List, show and change rules (changes need the admin password)."""


@rules.command("list")
@config_option
@account_option
@json_option
def rules_list(config_path, account, as_json) -> None:
    """Every installed rule: enabled or not, mode, and its settings."""
    _, cfg = load_view(config_path)
    rows = _rule_rows(cfg, account)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        state = ("enabled" if r["enabled"] else "disabled") if r["configured"] else "not configured"
        mode = f" [{r['mode']}]" if r["mode"] else ""
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        click.echo(f"{r['id'] or '---'} {r['rule']:<30} {state}{mode}  {params}")


@rules.command("show")
@click.argument("rule")
@config_option
@account_option
@json_option
def rules_show(rule, config_path, account, as_json) -> None:
    """One rule: what it does, its settings and their allowed values."""
    import attrs
    _, cfg = load_view(config_path)
    reg = registry()
    if rule not in reg:
        fail(f"unknown rule {rule!r}; installed rules: {', '.join(sorted(reg))}", EXIT_USAGE)
    cls = reg[rule]
    row = next(r for r in _rule_rows(cfg, account) if r["rule"] == rule)
    fields = [{"key": f.name, "type": getattr(f.type, "__name__", str(f.type)),
               "default": f.default if f.default is not attrs.NOTHING else None}
              for f in attrs.fields(cls.Params)]
    row["settings"] = [{"key": "enabled", "type": "bool", "default": True},
                       {"key": "mode", "type": "enforce | shadow", "default": "enforce"}] + fields
    if as_json:
        echo_json(row)
        return
    click.echo(f"{rule} ({cls.rule_id or 'third-party'}, version {cls.version}): {cls.description}")
    click.echo(("enabled" if row["enabled"] else "disabled") if row["configured"]
               else "not configured")
    for f in row["settings"]:
        current = row["params"].get(f["key"], row.get(f["key"]))
        click.echo(f"  {f['key']:<22} {f['type']!s:<28} default {f['default']!r:<12} "
                   f"current {current!r}")


def _set(cfg, rule: str, key: str, value, account: str | None) -> None:
    """Validate locally (precise errors, no daemon needed), then ask the daemon to apply."""
    from risk_actors.admin_ops import EditError, set_rule_param, validate
    from risk_actors.config import read_document
    try:
        doc = read_document(cfg.source)
        set_rule_param(doc, registry(), rule, key, value, account)
        validate(doc, registry(), str(cfg.source), redact=True,
                 only=("rules", "accounts"))
    except EditError as exc:
        fail(str(exc), EXIT_USAGE)
    reply = admin_call(cfg, "rules_set", {"rule": rule, "key": key, "value": value,
                                          "account": account})
    click.echo(reply.message)


@rules.command("set")
@click.argument("rule")
@click.argument("key")
@click.argument("value")
@config_option
@account_option
def rules_set(rule, key, value, config_path, account) -> None:
    """Set RULE's KEY to VALUE (e.g. `riskd rules set max_contracts limit 3`).

    VALUE is read as YAML: 3, -300, true, net. The change is validated against the rule's
    parameters, written to the config file (comments kept) and applied from the next event.
    Needs the admin password (prompt, or $RISKD_ADMIN_PASSWORD).
    """
    from risk_actors.admin_ops import EditError, parse_value
    _, cfg = load_view(config_path)
    try:
        parsed = parse_value(value)
    except EditError as exc:
        fail(str(exc), EXIT_USAGE)
    _set(cfg, rule, key, parsed, account)


@rules.command("enable")
@click.argument("rule")
@config_option
@account_option
def rules_enable(rule, config_path, account) -> None:
    """Enable RULE (with its configured or default settings). Needs the admin password."""
    _, cfg = load_view(config_path)
    _set(cfg, rule, "enabled", True, account)


@rules.command("disable")
@click.argument("rule")
@config_option
@account_option
def rules_disable(rule, config_path, account) -> None:
    """Disable RULE; its locks already in force stay until they expire. Needs the admin
    password."""
    _, cfg = load_view(config_path)
    _set(cfg, rule, "enabled", False, account)
