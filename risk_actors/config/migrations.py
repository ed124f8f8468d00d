"""Config versions and the migrations between them.

Migrations work on raw data (what YAML gives: mappings, lists, scalars), never on validated
objects: a migration must not need the rule plugins, and must not fail because a 1.0 rule is not
installed. Validation runs afterwards on the result. A step moves and renames; it passes
malformed values through unchanged so the validator can report them with their location. It
never drops a setting silently: what the new version does not model goes under a named place
(``legacy_1_0``) or into the warnings.

Versions:

* ``1.0``: the seed's layout, a directory of three files (rules-spec section 6):
  ``accounts.yaml`` (``topstepx`` credentials + ``accounts`` with ``config_overrides``),
  ``risk_config.yaml`` (``rules``) and ``timers_config.yaml`` (``daily_reset``, ``session_hours``,
  ``holidays``, ``lockout_durations``, ``advanced``). Its raw form here is
  ``{"accounts.yaml": data, "risk_config.yaml": data, "timers_config.yaml": data}``.
* ``2``: one file, ``version: 2`` (see :mod:`risk_actors.config.schema`).

To add version N+1: write ``_from_N(raw, ctx) -> raw`` (copy, never mutate the input), register
it in ``MIGRATIONS``, bump ``CURRENT_VERSION``; old steps stay as they are (their output is a
fixed format). What the 1.0 step still parks in ``legacy_1_0`` (``lockout_durations``,
``advanced.check_interval``, rules that are not built in) is meant to be moved into its real place
by the step that introduces it.

The 1.0 step maps every built-in rule of ``risk_config.yaml`` to a version 2 ``rules`` entry as
written (rules-spec section 6 names the parameters; the rule's ``Params`` validate them at load).
The session settings of ``timers_config.yaml`` go to the rule that reads them, 009
``session_block_outside`` (rules are pure and see only their params): ``session_hours`` ->
``session``, ``holidays.dates`` -> ``holidays`` (the per-year mapping flattened),
``holidays.early_close`` -> ``early_closes``, ``holidays.enabled`` -> ``respect_holidays`` and
``advanced.session_close_grace`` -> ``session_close_grace``.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import attrs

__all__ = [
    "CURRENT_VERSION", "LAYOUT_1_0_FILES", "MIGRATIONS", "Migration", "MigrationContext",
    "MigrationError", "MigrationResult", "RULES_MIGRATED_FROM_1_0", "SUPPORTED_VERSIONS",
    "TOPSTEPX_URLS", "migrate", "version_key",
]

CURRENT_VERSION = "2"
LAYOUT_1_0_FILES = ("accounts.yaml", "risk_config.yaml", "timers_config.yaml")
# 1.0 rules whose settings version 2 understands: the 13 built-ins (rules-spec section 1). Any
# other name in a 1.0 risk_config is parked in legacy_1_0.
RULES_MIGRATED_FROM_1_0 = (
    "max_contracts", "max_contracts_per_instrument", "daily_realized_loss",
    "daily_unrealized_loss", "max_unrealized_profit", "trade_frequency_limit",
    "cooldown_after_loss", "no_stop_loss_grace", "session_block_outside", "auth_loss_guard",
    "symbol_blocks", "trade_management", "daily_realized_profit")
SESSION_RULE = "session_block_outside"
_SESSION_KEYS = ("start", "end", "timezone", "allowed_days")
_GONE = object()  # a 1.0 setting moved entirely: nothing of it is left to park
TOPSTEPX_URLS = {
    "api_url": "https://api.topstepx.com/api",
    "user_hub_url": "https://rtc.topstepx.com/hubs/user",
    "market_hub_url": "https://rtc.topstepx.com/hubs/market",
}
LEGACY_KEY = "legacy_1_0"
_ACCOUNT_ORDER = ("id", "name", "enabled", "description", "overrides")


class MigrationError(ValueError):
    """Input a migration cannot read at all (e.g. a 1.0 file that is not a mapping)."""

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        super().__init__(f"{file}: {message}")


@attrs.define
class MigrationContext:
    """What steps report besides the data: ``warnings`` for the operator, and ``origins``, the
    file each part of the result came from (key-path prefix -> file name), so that errors found
    by validation afterwards can name the file the user has to edit."""

    warnings: list[str] = attrs.field(factory=list)
    origins: dict[tuple, str] = attrs.field(factory=dict)


@attrs.frozen
class Migration:
    """One step: ``from_version`` -> ``to_version``. ``layout`` says whether the old version is a
    single ``file`` or a ``directory`` of files."""

    from_version: str
    to_version: str
    func: Callable[[Any, MigrationContext], Any]
    description: str
    layout: str = "file"


@attrs.frozen
class MigrationResult:
    """The migrated raw config (current version), where it came from, and what to tell the user."""

    raw: dict
    from_version: str
    warnings: tuple[str, ...] = ()
    origins: Mapping[tuple, str] = attrs.field(factory=dict)


def version_key(version: Any) -> str:
    """Normalize a ``version``: ``2``, ``"2"``, ``2.0`` -> ``"2"``; ``1``, ``1.0`` -> ``"1.0"``."""
    if isinstance(version, bool) or version is None:
        return str(version)
    text = str(version).strip()
    return {"1": "1.0", "1.0": "1.0", "2": "2", "2.0": "2"}.get(text, text)


def migrate(raw: Any, from_version: Any) -> MigrationResult:
    """Run the chain of migrations from ``from_version`` to :data:`CURRENT_VERSION`.

    ``raw`` is left untouched. Raises KeyError for a version with no migration (the caller says
    which versions exist) and :class:`MigrationError` for input a step cannot read.
    """
    version = version_key(from_version)
    ctx = MigrationContext()
    out = raw
    while version != CURRENT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise KeyError(version)
        out = step.func(out, ctx)
        version = step.to_version
    if out is raw:
        out = copy.deepcopy(raw)
    return MigrationResult(raw=out, from_version=version_key(from_version),
                           warnings=tuple(ctx.warnings), origins=dict(ctx.origins))


# ---------------------------------------------------------------------------------------------
# 1.0 (three files) -> 2 (one file)
def _is_map(node: Any) -> bool:
    return isinstance(node, Mapping)


def _file_map(raw: Mapping, name: str) -> Mapping:
    data = raw.get(name)
    if data is None:
        return {}
    if not _is_map(data):
        raise MigrationError(name, "must be a mapping at the top level, found "
                                   f"{type(data).__name__}")
    return data


def _hub_urls(api_url: Any, ctx: MigrationContext) -> dict[str, str]:
    # 1.0 knew only the REST URL (TopstepX). ProjectX firms serve hubs at rtc.<firm>; derive
    # them, but only the TopstepX pair is known for sure.
    if not isinstance(api_url, str):
        return {}
    host = (urlsplit(api_url.strip()).hostname or "").lower()
    if host == "api.topstepx.com":
        return {k: TOPSTEPX_URLS[k] for k in ("user_hub_url", "market_hub_url")}
    if host.startswith("api."):
        base = f"https://rtc.{host[4:]}/hubs"
        ctx.warnings.append(
            f"accounts.yaml: broker.user_hub_url and broker.market_hub_url were derived from "
            f"api_url ({base}/user, {base}/market); check them against your firm's documentation")
        return {"user_hub_url": f"{base}/user", "market_hub_url": f"{base}/market"}
    ctx.warnings.append("accounts.yaml: 1.0 had no hub URLs and they cannot be derived from "
                        f"api_url {api_url!r}; set broker.user_hub_url and broker.market_hub_url")
    return {}


def _broker_from_1_0(accounts_file: Mapping, ctx: MigrationContext) -> Any:
    creds = accounts_file.get("topstepx")
    if creds is None:
        ctx.warnings.append("accounts.yaml: no 'topstepx' section; fill in the broker section")
        return {}
    if not _is_map(creds):
        return creds  # passed through: validation reports it at broker
    broker = copy.deepcopy(creds)
    # Other keys (an api secret, a password) have no place in version 2 and may be secrets:
    # do not copy them anywhere, name them (never their values).
    extra = [k for k in creds if k not in ("username", "api_key", "api_url")]
    for key in extra:
        del broker[key]
    if extra:
        ctx.warnings.append(f"accounts.yaml: topstepx keys {', '.join(map(str, extra))} dropped "
                            "(the gateway needs only username and api_key); values not copied")
    if "api_url" not in broker:
        broker["api_url"] = TOPSTEPX_URLS["api_url"]
        ctx.warnings.append("accounts.yaml: topstepx had no api_url; using TopstepX "
                            f"({TOPSTEPX_URLS['api_url']}) as 1.0 did")
    else:
        broker["api_url"] = _with_api_path(broker["api_url"], ctx)
    for key, url in _hub_urls(broker["api_url"], ctx).items():
        broker[key] = url
    return broker


def _with_api_path(url: Any, ctx: MigrationContext) -> Any:
    # 1.0 stored the host (https://api.topstepx.com) and its client added /api; version 2 hands
    # api_url to the SDK as the REST base, which must include /api.
    if not isinstance(url, str) or urlsplit(url.strip()).path not in ("", "/"):
        return url
    fixed = url.strip().rstrip("/") + "/api"
    ctx.warnings.append(f"accounts.yaml: api_url {url!r} became {fixed!r} (version 2 takes the "
                        "REST base including /api)")
    return fixed


def _label(entry: Mapping, index: int) -> str:
    if entry.get("id") is not None:
        return str(entry.get("id"))
    if entry.get("name") is not None:
        return repr(entry.get("name"))
    return f"#{index}"


def _split_rules(rules: Any) -> tuple[Any, dict]:
    """(rules version 2 runs, rules parked for later) of a 1.0 ``rules`` mapping."""
    if not _is_map(rules):
        return rules, {}
    # Copy then delete (rather than build a new mapping) so the kept keys keep their YAML line
    # numbers: errors found after migration still point into risk_config.yaml.
    kept = copy.deepcopy(rules)
    parked: dict = {}
    for name in list(rules):
        if name not in RULES_MIGRATED_FROM_1_0:
            parked[name] = kept.pop(name)
    return kept, parked


def _account_from_1_0(entry: Any, index: int, ctx: MigrationContext) -> tuple[Any, dict]:
    """(version 2 account entry, its parked 1.0 leftovers or {})."""
    if not _is_map(entry):
        return copy.deepcopy(entry), {}
    acc = copy.deepcopy(entry)
    label = _label(entry, index)
    ident = {k: copy.deepcopy(entry[k]) for k in ("id", "name") if k in entry}
    parked: dict = {}
    # Account ids are integers; the upstream examples put the account *name*
    # (PRAC-V2-126244-84184528) in `id` (rules-spec section 6).
    acc_id = acc.get("id")
    if isinstance(acc_id, str):
        if acc_id.strip().isdigit():
            acc["id"] = int(acc_id.strip())
        elif "name" not in acc:
            acc["name"] = acc.pop("id")
            ctx.warnings.append(f"accounts.yaml: account {label}: id {acc_id!r} is an account "
                                "name, moved to name (ids are the gateway's integers)")
    if "config_overrides" in acc:
        overrides = acc.pop("config_overrides")
        if _is_map(overrides):
            new_ov: dict = {}
            rest = {k: copy.deepcopy(v) for k, v in overrides.items() if k != "rules"}
            if "rules" in overrides:
                kept, parked_rules = _split_rules(overrides["rules"])
                if kept or not _is_map(overrides["rules"]):
                    new_ov["rules"] = kept
                if parked_rules:
                    rest["rules"] = parked_rules
            if rest:
                parked["config_overrides"] = rest
                ctx.warnings.append(
                    f"accounts.yaml: account {label}: overrides "
                    f"{', '.join(_describe_keys(rest))} kept under {LEGACY_KEY}.accounts "
                    "(not enforced by this version)")
            if new_ov:
                acc["overrides"] = new_ov
        else:
            acc["overrides"] = overrides  # passed through: validation reports it
    for key in [k for k in acc if k not in _ACCOUNT_ORDER]:
        parked[key] = acc.pop(key)
        ctx.warnings.append(f"accounts.yaml: account {label}: key {key!r} kept under "
                            f"{LEGACY_KEY}.accounts (version 2 has no such setting)")
    # Keys in the documented order (id, name first) so the written file reads naturally.
    for key in _ACCOUNT_ORDER:
        if key in acc:
            acc[key] = acc.pop(key)
    return acc, ({**ident, **parked} if parked else {})


def _describe_keys(mapping: Mapping) -> list[str]:
    out = []
    for key, value in mapping.items():
        if key == "rules" and _is_map(value):
            out += [f"rules.{name}" for name in value]
        else:
            out.append(str(key))
    return out


def _from_1_0(raw: Any, ctx: MigrationContext) -> dict:
    if not _is_map(raw):
        raise MigrationError("1.0 layout",
                             "expected the contents of " + ", ".join(LAYOUT_1_0_FILES))
    accounts_file = _file_map(raw, "accounts.yaml")
    risk_file = _file_map(raw, "risk_config.yaml")
    timers_file = _file_map(raw, "timers_config.yaml")
    legacy: dict[str, dict] = {"accounts": {}, "risk_config": {}, "timers_config": {}}

    out: dict[str, Any] = {"version": int(CURRENT_VERSION)}
    out["broker"] = _broker_from_1_0(accounts_file, ctx)

    # accounts
    accounts_in = accounts_file.get("accounts")
    if accounts_in is None:
        ctx.warnings.append("accounts.yaml: no 'accounts' list; add the accounts to watch")
        out["accounts"] = []
    elif isinstance(accounts_in, list):
        converted, parked_accounts = [], []
        for i, entry in enumerate(accounts_in):
            acc, parked = _account_from_1_0(entry, i, ctx)
            converted.append(acc)
            if parked:
                parked_accounts.append(parked)
        out["accounts"] = converted
        if parked_accounts:
            legacy["accounts"]["accounts"] = parked_accounts
    else:
        out["accounts"] = copy.deepcopy(accounts_in)
    for key in [k for k in accounts_file if k not in ("topstepx", "accounts")]:
        legacy["accounts"][key] = copy.deepcopy(accounts_file[key])
        ctx.warnings.append(f"accounts.yaml: {key!r} kept under {LEGACY_KEY}.accounts "
                            "(version 2 has no such setting)")

    # rules
    if "rules" in risk_file:
        kept, parked_rules = _split_rules(risk_file["rules"])
        out["rules"] = kept
        if _is_map(kept):
            for name, entry in kept.items():
                if _is_map(entry) and "enabled" not in entry:
                    ctx.warnings.append(
                        f"risk_config.yaml: rules.{name} has no 'enabled' key; version 2 runs a "
                        "listed rule unless it says enabled: false")
        if parked_rules:
            legacy["risk_config"]["rules"] = parked_rules
            ctx.warnings.append(
                f"risk_config.yaml: rules {', '.join(parked_rules)} kept under "
                f"{LEGACY_KEY}.risk_config.rules: this version has no such rules, they are NOT "
                "enforced")
    else:
        out["rules"] = {}
        ctx.warnings.append("risk_config.yaml: no 'rules'; no rule is enabled")
    for key in [k for k in risk_file if k != "rules"]:
        legacy["risk_config"][key] = copy.deepcopy(risk_file[key])
        ctx.warnings.append(f"risk_config.yaml: {key!r} kept under {LEGACY_KEY}.risk_config "
                            "(version 2 has no such setting)")

    # timers
    reset = timers_file.get("daily_reset")
    if reset is not None:
        if _is_map(reset):
            new_reset = {k: copy.deepcopy(reset[k]) for k in ("time", "timezone") if k in reset}
            rest = {k: copy.deepcopy(v) for k, v in reset.items()
                    if k not in ("time", "timezone") and not (k == "enabled" and v is True)}
            if rest:
                legacy["timers_config"]["daily_reset"] = rest
                ctx.warnings.append(
                    f"timers_config.yaml: daily_reset {', '.join(map(str, rest))} kept under "
                    f"{LEGACY_KEY}.timers_config (version 2 always resets daily)")
            out["timers"] = {"daily_reset": new_reset}
        else:
            out["timers"] = {"daily_reset": copy.deepcopy(reset)}
    leftovers = _sessions_to_009(out.get("rules"), timers_file, ctx)
    parked_timers = []
    for key in [k for k in timers_file if k != "daily_reset"]:
        rest = leftovers.get(key, _MISSING_KEY)
        if rest is _GONE:
            continue
        legacy["timers_config"][key] = copy.deepcopy(timers_file[key]) \
            if rest is _MISSING_KEY else rest
        parked_timers.append(key)
    if parked_timers:
        ctx.warnings.append(
            f"timers_config.yaml: {', '.join(map(str, parked_timers))} kept under "
            f"{LEGACY_KEY}.timers_config: this version does not enforce them")

    legacy = {k: v for k, v in legacy.items() if v}
    if legacy:
        out[LEGACY_KEY] = legacy

    ctx.origins.update({
        ("broker",): "accounts.yaml", ("accounts",): "accounts.yaml",
        ("rules",): "risk_config.yaml", ("timers",): "timers_config.yaml",
        (LEGACY_KEY, "accounts"): "accounts.yaml", (LEGACY_KEY, "risk_config"): "risk_config.yaml",
        (LEGACY_KEY, "timers_config"): "timers_config.yaml",
    })
    return out


_MISSING_KEY = object()


def _flat_dates(dates: Any) -> Any:
    # 1.0 keys the holiday dates by year ({2025: [...]}); version 2 takes one list.
    if not _is_map(dates):
        return copy.deepcopy(dates)
    out: list = []
    for value in dates.values():
        if isinstance(value, list):
            out += copy.deepcopy(value)
        else:
            out.append(copy.deepcopy(value))
    return out


def _sessions_to_009(rules: Any, timers_file: Mapping,
                     ctx: MigrationContext) -> dict[str, Any]:
    """Move the session settings of timers_config.yaml into the 009 entry of ``rules`` (in
    place). Returns, per timers key it handled, what is left to park (``_GONE`` when nothing)."""
    if not _is_map(rules) or SESSION_RULE not in rules:
        return {}  # no 009 in 1.0: its settings were unused there; park them as they are
    entry = rules[SESSION_RULE]
    if entry is None:
        entry = rules[SESSION_RULE] = {}
    if not _is_map(entry):
        return {}  # passed through for validation to report; settings parked
    # (timers key, 1.0 key or None for the whole section, version 2 param, transform)
    moves = [("session_hours", None, "session", None),
             ("holidays", "enabled", "respect_holidays", None),
             ("holidays", "dates", "holidays", _flat_dates),
             ("holidays", "early_close", "early_closes", None),
             ("advanced", "session_close_grace", "session_close_grace", None)]
    leftovers: dict[str, Any] = {}
    moved: list[str] = []
    for section, key, param, transform in moves:
        node = timers_file.get(section)
        if node is None:
            continue
        rest = leftovers.get(section)
        if rest is None:
            rest = leftovers[section] = copy.deepcopy(node)
        if key is None:  # session_hours: its four keys make the session
            if not _is_map(node):
                value, left = copy.deepcopy(node), _GONE
            else:
                # Copy then delete, so the moved keys keep their lines in timers_config.yaml.
                value = copy.deepcopy(node)
                for k in [k for k in node if k not in _SESSION_KEYS]:
                    del value[k]
                left = {k: copy.deepcopy(v) for k, v in node.items() if k not in _SESSION_KEYS}
                if not value:
                    continue
        elif not _is_map(node) or key not in node:
            continue
        else:
            value = transform(node[key]) if transform else copy.deepcopy(node[key])
            left = None
        if param in entry and key is not None and entry[param] == value:
            del rest[key]  # says the same as the rule's own setting: nothing to keep
            continue
        if param in entry:
            ctx.warnings.append(
                f"timers_config.yaml: {section}{'.' + key if key else ''} kept under "
                f"{LEGACY_KEY}.timers_config: rules.{SESSION_RULE}.{param} is already set in "
                "risk_config.yaml and wins")
            continue
        entry[param] = value
        ctx.origins[("rules", SESSION_RULE, param)] = "timers_config.yaml"
        moved.append(f"{section}{'.' + key if key else ''} -> {param}")
        if key is None:
            leftovers[section] = left if left else _GONE
        else:
            del rest[key]
    for section, rest in list(leftovers.items()):
        if rest is not _GONE and _is_map(rest) and not rest:
            leftovers[section] = _GONE
    if moved:
        ctx.warnings.append(
            f"timers_config.yaml: moved to rules.{SESSION_RULE}: {', '.join(moved)}; holidays "
            "and early closes now also come from the CME_Equity exchange calendar "
            "(holiday_calendar: null to use only your own dates)")
    return leftovers


MIGRATIONS: dict[str, Migration] = {
    "1.0": Migration("1.0", "2", _from_1_0, "three files (accounts, risk_config, timers_config) "
                     "-> one file", layout="directory"),
}
SUPPORTED_VERSIONS = tuple(MIGRATIONS) + (CURRENT_VERSION,)
