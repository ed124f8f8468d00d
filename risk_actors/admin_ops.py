"""Admin edits of the config file: rules set/enable/disable, accounts add/remove.

Pure functions on the round-trip document (:func:`risk_actors.config.read_document`), so the
comments of the file survive (:func:`risk_actors.config.write_document`). The CLI runs them first
to give the admin a precise error without bothering the daemon; the Supervisor runs them again
on the file it owns, after checking the admin proof, validates the whole result, writes it and
reloads. Every error names what is wrong and what is allowed.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import attrs
import yaml

from risk_actors.config import MODES, ConfigError, parse_config
from risk_actors.config.schema import RULE_COMMON_KEYS

# What a CLI may show and validate without ever reading the broker credentials.
_PLACEHOLDER_BROKER = {"api_url": "http://127.0.0.1:1/api",
                       "user_hub_url": "http://127.0.0.1:1/hubs/user",
                       "market_hub_url": "http://127.0.0.1:1/hubs/market",
                       "username": "redacted", "api_key": "redacted"}


class EditError(Exception):
    """An admin edit that cannot be made; the message says why and what is allowed."""


def parse_value(text: str) -> Any:
    """A command-line VALUE as YAML reads it: ``3`` -> 3, ``-300`` -> -300, ``true`` -> True,
    ``net`` -> "net", ``"17:00"`` -> "17:00". Lists and mappings are refused."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise EditError(f"value {text!r} is not a valid YAML scalar (a number, true/false or "
                        "text)") from None
    if isinstance(value, (dict, list)):
        raise EditError(f"value {text!r} must be one number, true/false or text, not a "
                        f"{'mapping' if isinstance(value, dict) else 'list'}")
    return value


def rule_keys(cls: type) -> list[str]:
    return list(RULE_COMMON_KEYS) + [f.name for f in attrs.fields(cls.Params)]


def _rule_cls(registry: Mapping[str, type], rule: str) -> type:
    cls = registry.get(rule)
    if cls is None:
        raise EditError(f"unknown rule {rule!r}; installed rules: {', '.join(sorted(registry))}")
    return cls


def _account_entry(doc: Any, account: str | int) -> Any:
    accounts = doc.get("accounts") or []
    for entry in accounts:
        if str(entry.get("id")) == str(account) or (entry.get("name") is not None
                                                    and str(entry.get("name")) == str(account)):
            return entry
    known = ", ".join(str(e.get("id") or e.get("name")) for e in accounts) or "none"
    raise EditError(f"no account {account!r} in the config; configured accounts: {known}")


def _rule_node(doc: Any, rule: str, account: str | int | None) -> Any:
    from ruamel.yaml.comments import CommentedMap
    if account is None:
        parent = doc.get("rules")
        if parent is None:
            doc["rules"] = parent = CommentedMap()
    else:
        entry = _account_entry(doc, account)
        if entry.get("overrides") is None:
            entry["overrides"] = CommentedMap()
        if entry["overrides"].get("rules") is None:
            entry["overrides"]["rules"] = CommentedMap()
        parent = entry["overrides"]["rules"]
    if parent.get(rule) is None:
        parent[rule] = CommentedMap()
    return parent[rule]


def set_rule_param(doc: Any, registry: Mapping[str, type], rule: str, key: str, value: Any,
                   account: str | int | None = None) -> str:
    """Set ``rules.RULE.KEY`` (or the account's override); returns a one-line description."""
    cls = _rule_cls(registry, rule)
    allowed = rule_keys(cls)
    if key not in allowed:
        raise EditError(f"unknown setting {key!r} of rule {rule}; allowed: {', '.join(allowed)}")
    if key == "mode" and value not in MODES:
        raise EditError(f"mode must be one of {', '.join(MODES)} (got {value!r})")
    if key == "enabled" and not isinstance(value, bool):
        raise EditError(f"enabled must be true or false (got {value!r})")
    node = _rule_node(doc, rule, account)
    old = node.get(key, "(default)")
    node[key] = value
    where = f"account {account} override" if account is not None else "rules"
    return f"{where}: {rule}.{key} {old!r} -> {value!r}"


def add_account(doc: Any, account_id: int, name: str | None, description: str = "") -> str:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    if not isinstance(account_id, int) or account_id <= 0:
        raise EditError(f"account id must be a positive integer (the gateway's id), "
                        f"got {account_id!r}")
    accounts = doc.get("accounts")
    if accounts is None:
        doc["accounts"] = accounts = CommentedSeq()
    for entry in accounts:
        if entry.get("id") == account_id or (name and entry.get("name") == name):
            raise EditError(f"account {entry.get('id')} {entry.get('name')!r} is already "
                            "configured")
    entry = CommentedMap()
    entry["id"] = account_id
    if name:
        entry["name"] = name
    if description:
        entry["description"] = description
    entry["enabled"] = True
    accounts.append(entry)
    return f"account {account_id} added"


def remove_account(doc: Any, account: str | int) -> int | None:
    """Remove an account entry; returns its gateway id (None when it had none)."""
    entry = _account_entry(doc, account)
    accounts = doc["accounts"]
    if len(accounts) == 1:
        raise EditError("cannot remove the only configured account (riskd needs at least one); "
                        "disable it with enabled: false or stop riskd instead")
    accounts.remove(entry)
    return entry.get("id")


def validate(doc: Any, registry: Mapping[str, type], source: str, *, redact: bool = False,
             only: tuple[str, ...] = ()) -> Any:
    """Validate a whole edited document; ``redact`` validates without the broker credentials
    (for a CLI that may not read them). Raises EditError naming the problems (those under
    ``only`` key-path prefixes first, when given)."""
    if redact:
        doc = copy.deepcopy(doc)
        doc["broker"] = dict(_PLACEHOLDER_BROKER)
    try:
        return parse_config(doc, registry, source)
    except ConfigError as exc:
        problems = [p for p in exc.problems if any(p.path.startswith(o) for o in only)] \
            or list(exc.problems)
        raise EditError("; ".join(f"{p.path}: {p.message}"
                                  + (f" (got {p.value})" if p.value is not None else "")
                                  for p in problems)) from None


def load_view(path: str, registry: Mapping[str, type]) -> Any:
    """The config as a CLI needs it (ports, state dir, rules, accounts) without reading any
    credential: the broker section is replaced before validation, so a trader who may read
    the config but not the key file or riskd's environment still gets a validated view."""
    from risk_actors.config import load_config, read_document
    from pathlib import Path
    if Path(path).is_dir():
        return load_config(path, registry)
    doc = read_document(path)
    if not isinstance(doc, Mapping):
        return load_config(path, registry)  # let the loader explain what is wrong
    doc["broker"] = dict(_PLACEHOLDER_BROKER)
    return parse_config(doc, registry, path)
