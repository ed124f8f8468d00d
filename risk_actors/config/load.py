"""Load, validate, reload and write riskd's config.

``load_config(path, registry)`` reads a version 2 file, or a 1.0 directory (migrated in memory; the
returned Config says so in ``migrated_from`` and ``warnings``), and returns a frozen
:class:`~risk_actors.config.schema.Config` or raises one :class:`ConfigError` listing every
problem, each naming file, key path, line, the bad value and what is allowed.

YAML is read with ruamel.yaml round-trip: it keeps line numbers for errors and comments for
:func:`write_document`, so a CLI can change a value and write the file back as the admin wrote it.

Rule parameters are structured into the plugin's ``Params`` with :func:`make_converter`, a cattrs
converter that rejects unknown keys and does not coerce types (YAML ``"false"`` is not a bool,
``5.5`` is not an int), because a config that means something other than what it says must fail.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import stat
import tempfile
from datetime import date, time
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import attrs
import cattrs
from cattrs.errors import (AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError,
                           IterableValidationError, IterableValidationNote)
from loguru import logger
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from risk_actors.calendar import parse_hhmm, parse_zone
from risk_actors.config import migrations
from risk_actors.netshim import is_loopback_host
from risk_actors.config.migrations import (CURRENT_VERSION, LAYOUT_1_0_FILES, LEGACY_KEY,
                                           MigrationError, MigrationResult, version_key)
from risk_actors.config.schema import (MODES, RULE_COMMON_KEYS, AccountConfig, BrokerSection,
                                       Config, ConfigError, DaemonConfig, DailyResetConfig, Problem,
                                       RuleConfig, TimersConfig)
from risk_actors.config.schema import ChannelConfig, NotificationsConfig, WatchdogConfig
from risk_actors.config.schema import ComponentConfig

__all__ = [
    "dump_yaml", "load_config", "make_converter", "parse_config", "read_1_0_dir", "read_document",
    "reload", "write_document", "write_migrated",
]

Registry = Mapping[str, type]
KeyPath = tuple  # a key path: str keys and int list indexes

TOP_KEYS = ("version", "broker", "accounts", "rules", "timers", "daemon", "notifications", "watchdog", "components", LEGACY_KEY)
BROKER_KEYS = ("api_url", "user_hub_url", "market_hub_url", "username", "api_key", "api_key_file",
               "requests_per_minute", "timeout_seconds")
ACCOUNT_KEYS = ("id", "name", "enabled", "description", "overrides")
DAEMON_KEYS = ("admin_port", "state_dir", "rule_timeout_ms", "symbol_aliases", "rule_placement",
               "quote_interval_ms", "enforcer_placement", "broker_placement", "market_data")
PLACEMENTS = ("auto", "actor", "inline")
MARKET_DATA = ("shared", "per_account")
# Values under these keys are never shown in an error, whatever they are.
SECRET_KEYS = frozenset({"api_key", "api_secret", "password", "secret", "token", "access_token"})
GATEWAY_MAX_RPM = 200  # ProjectX allows 200 requests / 60 s per login (gateway-api.md)
SIMULATOR_MAX_RPM = 1_000_000  # a loopback simulator has no such limit

_MISSING = object()
_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------------------
# the strict cattrs converter for rule Params
def _strict(kind: type, check, message: str):
    def hook(value: Any, _type: Any) -> Any:
        if not check(value):
            raise TypeError(message)
        return kind(value)  # plain Python types: ruamel's subclasses must not reach the actors
    return hook


def make_converter() -> cattrs.Converter:
    """The converter for rule ``Params``: unknown keys are errors, and scalars are not coerced.

    Also structures ``datetime.time`` from ``"HH:MM"`` and ``ZoneInfo`` from an IANA name, so a
    plugin can declare those types. Plugin tests (``RuleTester``) should use this converter too.
    """
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    not_bool = lambda v: not isinstance(v, bool)  # noqa: E731  (bool is an int subclass)
    conv.register_structure_hook(
        int, _strict(int, lambda v: isinstance(v, int) and not_bool(v), "must be an integer"))
    conv.register_structure_hook(
        float, _strict(float, lambda v: isinstance(v, (int, float)) and not_bool(v),
                       "must be a number"))
    conv.register_structure_hook(
        bool, _strict(bool, lambda v: isinstance(v, bool), "must be true or false"))
    conv.register_structure_hook(
        str, _strict(str, lambda v: isinstance(v, str), "must be a string (quote it)"))
    conv.register_structure_hook(time, lambda v, _t: parse_hhmm(v))
    conv.register_structure_hook(ZoneInfo, lambda v, _t: parse_zone(v))
    return conv


_CONVERTER = make_converter()


# ---------------------------------------------------------------------------------------------
# problems: where and how to say it
def _fmt_path(path: Iterable) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _plain(node: Any) -> Any:
    """ruamel nodes -> plain dict/list/str/int/float (drops comments and line info)."""
    if isinstance(node, Mapping):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _show(value: Any) -> str:
    text = repr(_plain(value))
    return text if len(text) <= 80 else text[:77] + "..."


class _Problems:
    """Collects problems of one config, resolving file and line for each key path."""

    def __init__(self, doc: Any, source: Path, origins: Mapping[tuple, str] | None = None) -> None:
        self.doc = doc
        self.source = source
        self.origins = dict(origins or {})
        self.items: list[Problem] = []

    def file_for(self, path: KeyPath) -> str:
        best, name = -1, None
        for prefix, file in self.origins.items():
            if tuple(path[:len(prefix)]) == tuple(prefix) and len(prefix) > best:
                best, name = len(prefix), file
        return str(self.source / name) if name else str(self.source)

    def line_for(self, path: KeyPath) -> int | None:
        # The line of the deepest key of `path` that exists in the document (1-based). A missing
        # key is reported at its parent mapping. Nodes a migration created or renamed have no
        # line of their own: keep descending, nodes below them may have one.
        node, line = self.doc, None
        for part in path:
            lc = getattr(node, "lc", None)
            if isinstance(node, Mapping) and part in node:
                line = _lc_line(lc, "key", part) or line
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                line = _lc_line(lc, "item", part) or line
            else:
                if line is None and lc is not None and lc.line is not None:
                    line = lc.line + 1
                break
            node = node[part]
        return line

    def add(self, path: KeyPath, message: str, value: Any = _MISSING) -> None:
        secret = any(isinstance(p, str) and p.lower() in SECRET_KEYS for p in path)
        shown = None if value is _MISSING or secret else _show(value)
        self.items.append(Problem(file=self.file_for(path), path=_fmt_path(path), message=message,
                                  line=self.line_for(path), value=shown))

    def __bool__(self) -> bool:
        return bool(self.items)


def _lc_line(lc: Any, kind: str, part: Any) -> int | None:
    if lc is None:
        return None
    try:
        return getattr(lc, kind)(part)[0] + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def _hint(word: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------
# environment expansion
def _expand(node: Any, path: KeyPath, env: Mapping[str, str], probs: _Problems) -> Any:
    """A plain copy of ``node`` with ``${VAR}`` expanded in every string (``$${`` = literal)."""
    if isinstance(node, Mapping):
        return {k: _expand(v, path + (k,), env, probs) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, path + (i,), env, probs) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return _plain(node)

    def sub(m: re.Match) -> str:
        escaped, name = m.group(1), m.group(2)
        if escaped:
            return "${" + name + "}"
        if not _ENV_NAME.match(name):
            probs.add(path, f"bad environment reference ${{{name}}}: write ${{NAME}} with letters, "
                            "digits and _ (or $${ for a literal ${)")
            return m.group(0)
        if name not in env:
            probs.add(path, f"environment variable {name} is not set")
            return m.group(0)
        return env[name]

    return _ENV_REF.sub(sub, str(node))


# ---------------------------------------------------------------------------------------------
# section checkers (each adds problems and returns a value, or None when unusable)
def _mapping(probs: _Problems, node: Any, path: KeyPath, allowed: Iterable[str],
             required: Iterable[str] = (),
             what: str = "a mapping (key: value lines)") -> dict | None:
    if not isinstance(node, Mapping):
        probs.add(path, f"must be {what}", node)
        return None
    allowed = tuple(allowed)
    for key in node:
        if key not in allowed:
            probs.add(path + (key,), f"unknown key {key!r}{_hint(key, allowed)}; allowed: "
                                     f"{', '.join(allowed)}")
    for key in required:
        if key not in node:
            probs.add(path + (key,), "required key missing")
    return node  # type: ignore[return-value]


def _get(probs: _Problems, node: Mapping, key: str, path: KeyPath, check, default: Any = _MISSING,
         shown=lambda v: v):
    """``node[key]`` checked by ``check(value) -> error message | None``; default when absent.
    ``shown`` turns a bad value into what the error may display."""
    if key not in node:
        return None if default is _MISSING else default
    value = node[key]
    error = check(value)
    if error:
        probs.add(path + (key,), error, shown(value))
        return None
    return value


def _url_shown(value: Any) -> Any:
    # A URL may carry a token (?access_token=) or a password (user:pass@): never echo those parts.
    if not isinstance(value, str):
        return value
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"***@{host}" if "@" in parts.netloc else parts.netloc
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else value
    return shown + ("?***" if parts.query or parts.fragment else "")


def _is_int(lo: int | None = None, hi: int | None = None):
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return "must be an integer"
        if lo is not None and hi is not None and not lo <= v <= hi:
            return f"must be between {lo} and {hi}"
        if lo is not None and v < lo:
            return f"must be >= {lo}"
        return None
    return check


def _is_number_positive(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "must be a number"
    return None if v > 0 else "must be > 0"


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _is_text(v: Any) -> str | None:
    if not isinstance(v, str):
        return "must be a string"
    return None if v.strip() else "must not be empty"


_loopback = is_loopback_host


def _is_url(schemes: tuple[str, ...], need_path: bool = False):
    def check(v: Any) -> str | None:
        if not isinstance(v, str) or not v.strip():
            return f"must be a URL ({' or '.join(s + '://' for s in schemes)}...)"
        parts = urlsplit(v.strip())
        if parts.scheme not in schemes or not parts.hostname:
            return f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
        if parts.query or parts.fragment:
            # A hub URL with ?access_token= would put a token into the config and the logs.
            return "must not contain a query string or fragment"
        if need_path and parts.path in ("", "/"):
            # The SDK appends /Auth/loginKey etc. to api_url: a bare host fails only at connect.
            return (f"must include the REST base path, e.g. {parts.scheme}://{parts.netloc}/api "
                    "(TopstepX: https://api.topstepx.com/api)")
        if parts.scheme in ("http", "ws") and not _loopback(parts.hostname):
            return ("plain http would send the API key unencrypted: use https, or a loopback "
                    "address (127.0.0.1, localhost) for the simulator")
        return None
    return check


def _broker(probs: _Problems, node: Any, raw_node: Any, base_dir: Path,
            warnings: list[str]) -> BrokerSection | None:
    path = ("broker",)
    if _mapping(probs, node, path, BROKER_KEYS,
                ("api_url", "user_hub_url", "market_hub_url", "username")) is None:
        return None
    hub = _is_url(("https", "http", "wss", "ws"))
    api_url = _get(probs, node, "api_url", path, _is_url(("https", "http"), need_path=True),
                   shown=_url_shown)
    user_hub = _get(probs, node, "user_hub_url", path, hub, shown=_url_shown)
    market_hub = _get(probs, node, "market_hub_url", path, hub, shown=_url_shown)
    username = _get(probs, node, "username", path, _is_text)
    # The 200 / 60 s cap is the real gateway's; a loopback simulator may allow more (benchmarks).
    local = isinstance(node.get("api_url"), str) and _loopback(urlsplit(node["api_url"]).hostname or "")
    rpm = _get(probs, node, "requests_per_minute", path,
               _is_int(1, SIMULATOR_MAX_RPM if local else GATEWAY_MAX_RPM), 190)
    timeout = _get(probs, node, "timeout_seconds", path, _is_number_positive, 10.0)

    api_key, key_file = None, None
    if "api_key" in node and "api_key_file" in node:
        probs.add(path + ("api_key_file",), "give either api_key or api_key_file, not both")
    elif "api_key" in node:
        value = node["api_key"]
        if not isinstance(value, str) or not value.strip():
            probs.add(path + ("api_key",), "must be a non-empty string (the value is not shown)")
        else:
            api_key = value.strip()
            _warn_plain_key(raw_node, api_url, probs.source, warnings)
    elif "api_key_file" in node:
        key_file, api_key = _read_key_file(probs, node["api_key_file"], base_dir)
    else:
        probs.add(path + ("api_key",), "required: api_key (e.g. ${PROJECT_X_API_KEY}) or "
                                       "api_key_file")
    if None in (api_url, user_hub, market_hub, username, rpm, timeout, api_key):
        return None
    return BrokerSection(api_url=api_url.strip(), user_hub_url=user_hub.strip(),
                         market_hub_url=market_hub.strip(), username=username.strip(),
                         api_key=api_key, api_key_file=key_file, requests_per_minute=int(rpm),
                         timeout_seconds=float(timeout))


def _warn_plain_key(raw_node: Any, api_url: str | None, source: Path, warnings: list[str]) -> None:
    # A key written into a file others can read is a leak waiting to happen; not an error,
    # since the simulator's demo key is harmless, so only for a non-loopback gateway.
    raw_key = raw_node.get("api_key") if isinstance(raw_node, Mapping) else None
    if not isinstance(raw_key, str) or "${" in raw_key or not api_url:
        return
    if _loopback(urlsplit(api_url).hostname or ""):
        return
    try:
        mode = source.stat().st_mode
    except OSError:
        return
    if mode & 0o044:
        warnings.append(f"{source}: broker.api_key is written in the file and the file is "
                        f"readable by others (mode {stat.S_IMODE(mode):04o}); use "
                        "${PROJECT_X_API_KEY} or api_key_file, or chmod 600")


def _read_key_file(probs: _Problems, value: Any, base_dir: Path) -> tuple[Path | None, str | None]:
    path = ("broker", "api_key_file")
    if not isinstance(value, str) or not value.strip():
        probs.add(path, "must be a file path", value)
        return None, None
    file = (base_dir / Path(value.strip()).expanduser()).resolve()
    try:
        st = file.stat()
    except FileNotFoundError:
        probs.add(path, f"file {file} does not exist", value)
        return None, None
    except OSError as exc:
        probs.add(path, f"cannot read {file}: {exc.strerror}", value)
        return None, None
    if not stat.S_ISREG(st.st_mode):
        probs.add(path, f"{file} is not a regular file", value)
        return None, None
    if st.st_mode & 0o077:
        probs.add(path, f"{file} is accessible by group or others (mode "
                        f"{stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {file}", value)
        return None, None
    try:
        key = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc.__class__.__name__
        probs.add(path, f"cannot read {file}: {reason}", value)
        return None, None
    if not key:
        probs.add(path, f"{file} is empty", value)
        return None, None
    return file, key


# ---------------------------------------------------------------------------------------------
# rules
def _field_names(cls: type) -> list[str]:
    if attrs.has(cls):
        return [f.name for f in attrs.fields(cls)]
    import dataclasses
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return []


def _dig(raw: Any, sub: KeyPath) -> Any:
    node = raw
    for part in sub:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node


def _cattrs_problems(exc: BaseException, raw: Any, sub: KeyPath = (),
                     fields: Iterable[str] = ()) -> Iterable[tuple[KeyPath, str, Any]]:
    """Flatten a cattrs error tree into (sub path, message, bad value) triples.

    ``fields`` are the attribute names of the class being structured at ``sub``: a validator's
    message that starts with one of them is reported at that attribute.
    """
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = _field_names(exc.cl) if exc.cl else []
        if sub == ():
            allowed = list(RULE_COMMON_KEYS) + allowed
        for key in sorted(exc.extra_fields, key=str):
            yield (sub + (key,),
                   f"unknown key {key!r}{_hint(key, allowed)}; allowed: {', '.join(allowed)}",
                   _MISSING)
        return
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        inner_fields = _field_names(exc.cl) if isinstance(exc, ClassValidationError) else []
        for inner in exc.exceptions:
            notes = getattr(inner, "__notes__", [])
            step = None
            for note in notes:
                if isinstance(note, AttributeValidationNote):
                    step = note.name
                elif isinstance(note, IterableValidationNote):
                    step = note.index
            if step is None:  # raised by the constructor (an attrs validator): same class
                yield from _cattrs_problems(inner, raw, sub, inner_fields)
            else:
                yield from _cattrs_problems(inner, raw, sub + (step,))
        return
    if isinstance(exc, KeyError) and exc.args and sub and sub[-1] == exc.args[0]:
        yield sub, "required key missing", _MISSING
        return
    message = str(exc) if str(exc) else exc.__class__.__name__
    # cattrs: "x not in literal typing.Literal['net', 'gross']"
    m = re.search(r"not in literal typing\.Literal\[(.*)\]$", message)
    if m:
        message = "must be one of " + ", ".join(
            s.strip().strip("'\"") for s in m.group(1).split(","))
    # Validators run by the constructor carry no note: find the attribute in the message
    # ("'limit' must be < 0: 5" from attrs, "limit must be < 0 (a loss), got 5.0" hand-written).
    m = re.match(r"^'?(\w+)'? (.*)$", message)
    if m and m.group(1) in fields:
        sub = sub + (m.group(1),)
        message = m.group(2)
        # Drop the validator's echo of the value (the converted one, 5.0 for 5): the problem
        # shows the value as written.
        message = re.sub(r"^(must be [<>=!]{1,2} [^:]+): .*$", r"\1", message)
        message = re.sub(r"(\s*\(got [^()]*\)|,? got .*)$", "", message)
    yield sub, message, _dig(raw, sub)


def _deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key (recursively); anything else in ``override`` replaces."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = _deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def _rule(probs: _Problems, name: Any, entry: Any, path: KeyPath, registry: Registry,
          who: str = "") -> RuleConfig | None:
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        installed = ", ".join(sorted(registry)) or "none"
        probs.add(path, f"{who}unknown rule {name!r}{_hint(name, registry)}; "
                        f"installed: {installed}")
        return None
    if entry is None:
        entry = {}  # `max_contracts:` with nothing after it: enabled, default params
    if not isinstance(entry, Mapping):
        probs.add(path, f"{who}must be a mapping of the rule's settings", entry)
        return None
    ok = True
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        probs.add(path + ("enabled",), f"{who}must be true or false", enabled)
        ok = False
    mode = entry.get("mode", "enforce")
    if mode not in MODES:
        probs.add(path + ("mode",), f"{who}must be one of {', '.join(MODES)}", mode)
        ok = False
    placement = entry.get("placement")
    if placement is not None and placement not in PLACEMENTS[1:]:
        probs.add(path + ("placement",), f"{who}must be one of {', '.join(PLACEMENTS[1:])} "
                                         "(leave it out to follow daemon.rule_placement)",
                  placement)
        ok = False
    raw_params = {k: v for k, v in entry.items() if k not in RULE_COMMON_KEYS}
    try:
        params = _CONVERTER.structure(raw_params, cls.Params)
    except Exception as exc:  # noqa: BLE001  (plugin validators may raise anything)
        for sub, message, value in _cattrs_problems(exc, raw_params):
            probs.add(path + sub, who + message, value)
        return None
    return RuleConfig(name=name, enabled=enabled, mode=mode, params=params,
                      placement=placement) if ok else None


def _rules(probs: _Problems, node: Any,
           registry: Registry) -> tuple[dict, tuple[RuleConfig, ...], set]:
    """(raw rule entries, validated global rules, names of rules that failed)."""
    if node is None:
        return {}, (), set()
    if not isinstance(node, Mapping):
        probs.add(("rules",), "must be a mapping of rule name -> settings", node)
        return {}, (), set()
    out, bad = [], set()
    for name, entry in node.items():
        rc = _rule(probs, name, entry, ("rules", name), registry)
        if rc is None:
            bad.add(name)
        else:
            out.append(rc)
    return dict(node), tuple(out), bad


# ---------------------------------------------------------------------------------------------
# accounts
def _accounts(probs: _Problems, node: Any, registry: Registry, global_raw: Mapping,
              global_rules: tuple[RuleConfig, ...], bad: set) -> tuple[AccountConfig, ...] | None:
    path = ("accounts",)
    if not isinstance(node, list):
        probs.add(path, "must be a list of accounts (- id: 536 / name: ...)", node)
        return None
    if not node:
        probs.add(path, "must list at least one account to watch")
        return None
    out, seen_ids, seen_names, ok = [], {}, {}, True
    for i, entry in enumerate(node):
        p = path + (i,)
        if _mapping(probs, entry, p, ACCOUNT_KEYS) is None:
            ok = False
            continue
        acc_id = _get(probs, entry, "id", p, _is_int(1))
        name = _get(probs, entry, "name", p, _is_text)
        enabled = _get(probs, entry, "enabled", p, _is_bool, True)
        description = _get(probs, entry, "description", p,
                           lambda v: None if isinstance(v, str) else "must be a string", "")
        if "id" not in entry and "name" not in entry:
            probs.add(p, "needs an id (the gateway's account number) or a name")
            ok = False
            continue
        if ("id" in entry and acc_id is None) or ("name" in entry and name is None) \
                or enabled is None or description is None:
            ok = False
            continue
        for key, value, seen in (("id", acc_id, seen_ids), ("name", name, seen_names)):
            if value is not None:
                if value in seen:
                    probs.add(p + (key,), f"duplicate account {key}; also accounts[{seen[value]}]",
                              value)
                    ok = False
                seen[value] = i
        acc = AccountConfig(id=acc_id, name=name.strip() if name else None, enabled=enabled,
                            description=description)
        rules = _account_rules(probs, entry.get("overrides"), p, acc.label, registry,
                               global_raw, global_rules, bad)
        if rules is None:
            ok = False
            continue
        out.append(attrs.evolve(acc, overrides=_plain(entry.get("overrides") or {}), rules=rules))
    return tuple(out) if ok else None


def _account_rules(probs: _Problems, overrides: Any, path: KeyPath, label: str, registry: Registry,
                   global_raw: Mapping, global_rules: tuple[RuleConfig, ...],
                   bad: set) -> tuple[RuleConfig, ...] | None:
    if overrides is None:
        return global_rules
    p = path + ("overrides",)
    if _mapping(probs, overrides, p, ("rules",)) is None:
        return None
    ov_rules = overrides.get("rules") or {}
    if not isinstance(ov_rules, Mapping):
        probs.add(p + ("rules",), "must be a mapping of rule name -> settings to change", ov_rules)
        return None
    by_name = {r.name: r for r in global_rules}
    out: list[RuleConfig] = []
    ok = True
    # Global order first, then rules only this account adds, in the order written.
    names = list(global_raw) + [n for n in ov_rules if n not in global_raw]
    for name in names:
        if name not in ov_rules:
            if name in by_name:
                out.append(by_name[name])
            continue
        if name in bad and name in registry:
            continue  # the global entry is invalid: already reported at rules.<name>
        override = ov_rules[name]
        if override is not None and not isinstance(override, Mapping):
            probs.add(p + ("rules", name), f"account {label}: must be a mapping of settings to "
                                           "change", override)
            ok = False
            continue
        merged = _deep_merge(global_raw.get(name) or {}, override or {})
        rc = _rule(probs, name, merged, p + ("rules", name), registry, who=f"account {label}: ")
        if rc is None:
            ok = False
        else:
            out.append(rc)
    return tuple(out) if ok else None


# ---------------------------------------------------------------------------------------------
# timers, daemon
def _timers(probs: _Problems, node: Any) -> TimersConfig | None:
    if node is None:
        return TimersConfig()
    if _mapping(probs, node, ("timers",), ("daily_reset",)) is None:
        return None
    reset = node.get("daily_reset")
    if reset is None:
        return TimersConfig()
    path = ("timers", "daily_reset")
    if _mapping(probs, reset, path, ("time", "timezone")) is None:
        return None
    default = DailyResetConfig()
    at, zone = default.time, default.timezone
    ok = True
    if "time" in reset:
        try:
            at = f"{parse_hhmm(reset['time']):%H:%M}"
        except ValueError as exc:
            probs.add(path + ("time",), str(exc), reset["time"])
            ok = False
    if "timezone" in reset:
        try:
            zone = getattr(parse_zone(reset["timezone"]), "key", None) or str(reset["timezone"])
        except ValueError as exc:
            probs.add(path + ("timezone",), str(exc), reset["timezone"])
            ok = False
    return TimersConfig(daily_reset=DailyResetConfig(time=at, timezone=zone)) if ok else None


_ROOT = re.compile(r"^[A-Z0-9]{1,12}$")


def _daemon(probs: _Problems, node: Any, base_dir: Path) -> DaemonConfig | None:
    if node is None:
        return DaemonConfig(state_dir=(base_dir / "var").resolve())
    path = ("daemon",)
    if _mapping(probs, node, path, DAEMON_KEYS) is None:
        return None
    default = DaemonConfig()
    # Unprivileged ports only: riskd runs as its own non-root user.
    port = _get(probs, node, "admin_port", path, _is_int(1024, 65535), default.admin_port)
    timeout = _get(probs, node, "rule_timeout_ms", path, _is_int(1, 60_000),
                   default.rule_timeout_ms)
    state_dir = _get(probs, node, "state_dir", path, _is_text, "var")
    placement = _get(probs, node, "rule_placement", path,
                     lambda v: None if v in PLACEMENTS else
                     f"must be one of {', '.join(PLACEMENTS)}", default.rule_placement)
    quote_ms = _get(probs, node, "quote_interval_ms", path, _is_int(0, 1000),
                    default.quote_interval_ms)
    enforcer = _get(probs, node, "enforcer_placement", path,
                    lambda v: None if v in PLACEMENTS[1:] else
                    f"must be one of {', '.join(PLACEMENTS[1:])}", default.enforcer_placement)
    if state_dir is not None:
        resolved = (base_dir / Path(state_dir.strip()).expanduser()).resolve()
        if resolved.exists() and not resolved.is_dir():
            probs.add(path + ("state_dir",), f"{resolved} exists and is not a directory", state_dir)
            state_dir = None
        else:
            state_dir = resolved
    aliases = node.get("symbol_aliases", {})
    clean: dict[str, str] | None = {}
    if aliases is None:
        aliases = {}
    if not isinstance(aliases, Mapping):
        probs.add(path + ("symbol_aliases",), "must be a mapping of exchange root -> symbol "
                                              "(EP: ES)", aliases)
        clean = None
    else:
        for key, value in aliases.items():
            for part, what in ((key, "key"), (value, "value")):
                if not isinstance(part, str) or not _ROOT.match(part.strip().upper()):
                    probs.add(path + ("symbol_aliases", key),
                              f"alias {what} must be a symbol root (letters/digits, e.g. EP: ES)",
                              part)
                    clean = None
            if clean is not None:
                clean[key.strip().upper()] = value.strip().upper()
    broker = _get(probs, node, "broker_placement", path,
                  lambda v: None if v in PLACEMENTS[1:] else
                  f"must be one of {', '.join(PLACEMENTS[1:])}", default.broker_placement)
    market = _get(probs, node, "market_data", path,
                  lambda v: None if v in MARKET_DATA else
                  f"must be one of {', '.join(MARKET_DATA)}", default.market_data)
    if None in (port, timeout, state_dir, clean, placement, quote_ms, enforcer, broker, market):
        return None
    return DaemonConfig(admin_port=port, state_dir=state_dir, rule_timeout_ms=timeout,
                        symbol_aliases=clean, rule_placement=placement,
                        quote_interval_ms=quote_ms, enforcer_placement=enforcer,
                        broker_placement=broker, market_data=market)


def _legacy_summary(legacy: Mapping) -> list[str]:
    names = []
    for stem, section in legacy.items():
        if not isinstance(section, Mapping):
            names.append(str(stem))
            continue
        for key, value in section.items():
            if key == "rules" and isinstance(value, Mapping):
                names += [f"{stem}.rules.{name}" for name in value]
            else:
                names.append(f"{stem}.{key}")
    return names


# ---------------------------------------------------------------------------------------------
# notifications, watchdog
NOTIFICATION_KEYS = ("warning_fractions", "disconnect_alert_seconds", "dedup_seconds", "channels",
                     "webhooks")
CHANNEL_KEYS = ("name", "type", "min_severity", "kinds", "max_per_minute", "retries")
WEBHOOK_KEYS = ("name", "url", "secret", "events", "timeout_seconds", "retries", "min_severity",
                "max_per_minute")
WATCHDOG_KEYS = ("systemd", "heartbeat_url", "heartbeat_seconds")
_URL_PARAMS = ("url", "urls")  # channel params that are secret URLs: show the scheme at most


def _is_number_nonneg(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "must be a number"
    return None if v >= 0 else "must be >= 0"


def _fractions(probs: _Problems, node: Mapping, path: KeyPath) -> tuple[float, ...] | None:
    if "warning_fractions" not in node:
        return NotificationsConfig().warning_fractions
    value, p = node["warning_fractions"], path + ("warning_fractions",)
    if value is None:
        return ()
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                          for v in value):
        probs.add(p, "must be a list of numbers between 0 and 1 (e.g. [0.75, 0.9])", value)
        return None
    if any(not 0 < v < 1 for v in value) or len(set(value)) != len(value):
        probs.add(p, "each fraction must be > 0 and < 1, without repeats", value)
        return None
    return tuple(sorted(float(v) for v in value))


def _channel(probs: _Problems, entry: Mapping, path: KeyPath, cls: type, name: Any,
             raw_params: Mapping, shared: Mapping) -> ChannelConfig | None:
    from risk_actors.messages import ALERT_KINDS, SEVERITIES
    ok = True
    if not isinstance(name, str) or not name.strip():
        probs.add(path + ("name",), "must be a non-empty string", name)
        ok = False
    severity = _get(probs, shared, "min_severity", path,
                    lambda v: None if v in SEVERITIES else
                    f"must be one of {', '.join(SEVERITIES)}", "info")
    kinds = shared.get("kinds")
    if kinds is not None:
        if not isinstance(kinds, list) or not kinds or any(k not in ALERT_KINDS for k in kinds):
            bad = [k for k in kinds if k not in ALERT_KINDS] if isinstance(kinds, list) else []
            probs.add(path + ("kinds",), "must be a non-empty list of alert kinds: "
                      + ", ".join(ALERT_KINDS), bad or kinds)
            ok = False
        else:
            kinds = tuple(dict.fromkeys(kinds))
    per_minute = _get(probs, shared, "max_per_minute", path, _is_int(0, 10_000), 20)
    retries = _get(probs, shared, "retries", path, _is_int(0, 20), 3)
    params = {k: ([v] if k in ("urls", "events") and isinstance(v, str) else v)
              for k, v in raw_params.items()}
    try:
        structured = _CONVERTER.structure(params, cls.Params)
    except Exception as exc:  # noqa: BLE001  (plugin validators may raise anything)
        for sub, message, value in _cattrs_problems(exc, params,
                                                    fields=_field_names(cls.Params)):
            if sub and sub[0] in _URL_PARAMS and value is not _MISSING:
                from risk_actors.notify.channels import host_of, scheme_of
                value = host_of(value) if sub[0] == "url" else (
                    [scheme_of(u) for u in value] if isinstance(value, list) else scheme_of(value))
            probs.add(path + sub, message, value)
        return None
    if not ok or None in (severity, per_minute, retries):
        return None
    return ChannelConfig(name=name.strip(), type=cls.name, params=structured,
                         min_severity=severity, kinds=kinds, max_per_minute=per_minute,
                         retries=retries)


def _notifications(probs: _Problems, node: Any) -> NotificationsConfig | None:
    if node is None:
        return NotificationsConfig()
    path = ("notifications",)
    if _mapping(probs, node, path, NOTIFICATION_KEYS) is None:
        return None
    default = NotificationsConfig()
    fractions = _fractions(probs, node, path)
    disconnect = _get(probs, node, "disconnect_alert_seconds", path, _is_number_positive,
                      default.disconnect_alert_seconds)
    dedup = _get(probs, node, "dedup_seconds", path, _is_number_nonneg, default.dedup_seconds)
    channels: list[ChannelConfig] = []
    ok = True
    lists = {}
    for key in ("channels", "webhooks"):
        value = node.get(key) or []
        if not isinstance(value, list):
            probs.add(path + (key,), "must be a list of entries (- name: ...)", value)
            ok = False
            value = []
        lists[key] = value
    plugins: Mapping[str, type] = {}
    if lists["channels"] or lists["webhooks"]:
        from risk_actors.notify.plugins import discover_channels
        plugins, _ = discover_channels()
    for i, entry in enumerate(lists["channels"]):
        p = path + ("channels", i)
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        cls = plugins.get(kind) if isinstance(kind, str) else None
        if not isinstance(entry, Mapping):
            probs.add(p, "must be a mapping (name, type, ...)", entry)
        elif "type" not in entry:
            probs.add(p + ("type",), "required key missing; installed channel types: "
                      + ", ".join(plugins))
        elif cls is None:
            probs.add(p + ("type",), f"unknown channel type{_hint(kind, plugins)}; installed: "
                      + ", ".join(plugins), kind)
        elif _mapping(probs, entry, p, CHANNEL_KEYS + tuple(_field_names(cls.Params))) \
                is not None:
            fields = _field_names(cls.Params)
            raw = {k: v for k, v in entry.items() if k in fields}  # unknown ones: reported
            made = _channel(probs, entry, p, cls, entry.get("name", f"{kind}-{i + 1}"), raw,
                            entry)
            if made is not None:
                channels.append(made)
                continue
        ok = False
    for i, entry in enumerate(lists["webhooks"]):
        p = path + ("webhooks", i)
        if _mapping(probs, entry, p, WEBHOOK_KEYS, ("url", "secret")) is None \
                or "url" not in entry or "secret" not in entry:
            ok = False
            continue
        raw = {k: v for k, v in entry.items() if k in ("url", "secret", "events",
                                                       "timeout_seconds")}
        made = _channel(probs, entry, p, plugins["webhook"], entry.get("name", f"webhook-{i + 1}"),
                        raw, entry)
        if made is None:
            ok = False
        else:
            channels.append(made)
    seen: dict[str, int] = {}
    for c in channels:
        seen[c.name] = seen.get(c.name, 0) + 1
    for dup in (n for n, count in seen.items() if count > 1):
        probs.add(path, f"channel name {dup!r} is used {seen[dup]} times (names must be unique)")
        ok = False
    if not ok or None in (fractions, disconnect, dedup):
        return None
    return NotificationsConfig(warning_fractions=fractions,
                               disconnect_alert_seconds=float(disconnect),
                               dedup_seconds=float(dedup), channels=tuple(channels))


def _watchdog(probs: _Problems, node: Any) -> WatchdogConfig | None:
    if node is None:
        return WatchdogConfig()
    path = ("watchdog",)
    if _mapping(probs, node, path, WATCHDOG_KEYS) is None:
        return None
    default = WatchdogConfig()
    systemd = _get(probs, node, "systemd", path, _is_bool, default.systemd)

    def url_check(v: Any) -> str | None:
        if v is None:
            return None
        parts = urlsplit(v.strip()) if isinstance(v, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            return "must be an http(s):// URL or null"
        return None
    url = _get(probs, node, "heartbeat_url", path, url_check, None, shown=_url_shown)
    seconds = _get(probs, node, "heartbeat_seconds", path, _is_number_positive,
                   default.heartbeat_seconds)
    bad_url = node.get("heartbeat_url") is not None and url is None
    if None in (systemd, seconds) or bad_url:
        return None
    if seconds < 5:
        probs.add(path + ("heartbeat_seconds",), "must be >= 5", seconds)
        return None
    return WatchdogConfig(systemd=systemd, heartbeat_url=url.strip() if url else None,
                          heartbeat_seconds=float(seconds))


# ---------------------------------------------------------------------------------------------
# components
def _components(probs: _Problems, node: Any) -> tuple[ComponentConfig, ...] | None:
    """``components:``: one entry per installed component (``riskd.components``); a component
    not listed runs only if it is on by default (analytics). Unknown names and keys are errors."""
    from risk_actors.components import COMMON_KEYS, discover
    installed, _ = discover()
    path = ("components",)
    if node is None:
        node = {}
    if not isinstance(node, Mapping):
        probs.add(path, "must be a mapping of component name -> settings", node)
        return None
    ok = True
    for name in node:
        if name not in installed:
            probs.add(path + (name,), f"unknown component {name!r}{_hint(name, installed)}; "
                      f"installed: {', '.join(installed) or 'none'}")
            ok = False
    out = []
    for name, cls in installed.items():
        if name not in node:
            if cls.default_enabled:
                out.append(ComponentConfig(name, True, True, cls.Params()))
            continue
        p = path + (name,)
        entry = node[name] if node[name] is not None else {}
        fields = _field_names(cls.Params)
        if _mapping(probs, entry, p, COMMON_KEYS + tuple(fields)) is None:
            ok = False
            continue
        enabled = _get(probs, entry, "enabled", p, _is_bool, True)
        report = _get(probs, entry, "daily_report", p, _is_bool, True)
        raw = {k: v for k, v in entry.items() if k not in COMMON_KEYS}
        try:
            params = _CONVERTER.structure(raw, cls.Params)
        except Exception as exc:  # noqa: BLE001  (plugin validators may raise anything)
            for sub, message, value in _cattrs_problems(exc, raw, fields=fields):
                probs.add(p + sub, message, value)
            ok = False
            continue
        if None in (enabled, report):
            ok = False
            continue
        out.append(ComponentConfig(name, enabled, report, params))
    return tuple(out) if ok else None


# ---------------------------------------------------------------------------------------------
# whole config
def parse_config(doc: Any, registry: Registry, source: str | os.PathLike, *,
                 base_dir: str | os.PathLike | None = None,
                 origins: Mapping[tuple, str] | None = None, migrated_from: str | None = None,
                 warnings: Iterable[str] = (), env: Mapping[str, str] | None = None) -> Config:
    """Validate a version 2 document (as read by :func:`read_document`, or plain data).

    ``source`` names the file in errors; relative paths resolve against ``base_dir`` (default:
    the source's directory). ``origins`` maps key-path prefixes to file names inside ``source``
    (a migrated 1.0 directory). ``env`` replaces ``os.environ`` for ``${VAR}`` (tests).
    Raises :class:`ConfigError` with every problem found.
    """
    source = Path(source)
    base = Path(base_dir) if base_dir is not None else source.parent
    probs = _Problems(doc, source, origins)
    warn = list(warnings)
    if doc is None:
        probs.add((), f"is empty: expected a mapping starting with version: {CURRENT_VERSION}")
        raise ConfigError(str(source), probs.items)
    if not isinstance(doc, Mapping):
        probs.add((), "must be a mapping (version, broker, accounts, rules, ...) at the top level",
                  doc)
        raise ConfigError(str(source), probs.items)
    if "version" in doc and version_key(doc["version"]) != CURRENT_VERSION:
        # Stop here: judging another version's keys by this version's schema is only noise.
        probs.add(("version",), _version_message(doc["version"]), doc["version"])
        raise ConfigError(str(source), probs.items)
    _mapping(probs, doc, (), TOP_KEYS, ("version", "broker", "accounts"))
    # legacy_1_0 is kept verbatim and not used: a ${VAR} parked there must not have to be set.
    data = {k: (_plain(v) if k == LEGACY_KEY else _expand(v, (k,), env if env is not None
                                                          else os.environ, probs))
            for k, v in doc.items()}

    broker = _broker(probs, data["broker"], doc.get("broker"), base, warn) if "broker" in data \
        else None
    global_raw, rules, bad = _rules(probs, data.get("rules"), registry)
    accounts = _accounts(probs, data["accounts"], registry, global_raw, rules, bad) \
        if "accounts" in data else None
    timers = _timers(probs, data.get("timers"))
    daemon = _daemon(probs, data.get("daemon"), base)
    notifications = _notifications(probs, data.get("notifications"))
    watchdog = _watchdog(probs, data.get("watchdog"))
    components = _components(probs, data.get("components"))
    legacy = data.get(LEGACY_KEY) or {}
    if not isinstance(legacy, Mapping):
        probs.add((LEGACY_KEY,), "must be a mapping (written by the 1.0 migration)", legacy)
    elif legacy and migrated_from is None:
        # (A migration in memory has already said this, item by item.)
        warn.append(f"{source}: {LEGACY_KEY} holds 1.0 settings this version does NOT enforce: "
                    f"{', '.join(_legacy_summary(legacy))}")
    if probs:
        raise ConfigError(str(source), probs.items)
    assert broker and accounts is not None and timers and daemon  # guaranteed when no problems
    assert notifications is not None and watchdog is not None
    return Config(version=int(CURRENT_VERSION), source=source, broker=broker, accounts=accounts,
                  rules=rules, timers=timers, daemon=daemon, legacy_1_0=legacy,
                  notifications=notifications, watchdog=watchdog, components=components or (),
                  migrated_from=migrated_from, warnings=tuple(warn))


def _version_message(version: Any) -> str:
    key = version_key(version)
    step = migrations.MIGRATIONS.get(key)
    if step is not None and step.layout == "directory":
        return (f"version {key} is the directory layout ({', '.join(LAYOUT_1_0_FILES)}): point "
                "riskd at that directory to migrate it")
    return (f"unsupported version {key}; this riskd reads version {CURRENT_VERSION} and migrates "
            f"{', '.join(v for v in migrations.SUPPORTED_VERSIONS if v != CURRENT_VERSION)}")


# ---------------------------------------------------------------------------------------------
# reading and writing files
def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long lines (URLs, messages) when writing back
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _yaml_problem(file: Path, exc: YAMLError) -> Problem:
    # Never use str(exc): ruamel quotes the offending source line, which may be the api_key line,
    # and a duplicate-key error quotes the value.
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, DuplicateKeyError):
        m = re.search(r'found duplicate key "([^"]*)"', str(getattr(exc, "problem", "")))
        message = f"duplicate key {m.group(1)!r}" if m else "duplicate key"
    elif isinstance(exc, MarkedYAMLError):
        message = "YAML syntax error: " + "; ".join(
            s for s in (getattr(exc, "context", None), getattr(exc, "problem", None)) if s)
    else:
        message = f"YAML error ({exc.__class__.__name__})"
    return Problem(file=str(file), path="", message=message, line=line)


def read_document(path: str | os.PathLike) -> Any:
    """Read one YAML file round-trip (ruamel ``CommentedMap``: line numbers and comments kept).

    Raises :class:`ConfigError` for a missing/unreadable file or a YAML syntax error.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), [Problem(str(file), "", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError(str(file), [Problem(str(file), "", "is a directory, not a file")]) \
            from None
    except PermissionError:
        raise ConfigError(str(file), [Problem(str(file), "", "permission denied")]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(file), [Problem(str(file), "", "is not UTF-8 text")]) from None
    except OSError as exc:
        raise ConfigError(str(file), [Problem(str(file), "", f"cannot read: {exc.strerror}")]) \
            from None
    try:
        return _yaml().load(text)
    except YAMLError as exc:
        raise ConfigError(str(file), [_yaml_problem(file, exc)]) from None


def read_1_0_dir(path: str | os.PathLike) -> tuple[dict[str, Any], list[str]]:
    """Read a 1.0 config directory: ({file name: document}, warnings). ConfigError when unusable."""
    folder = Path(path)
    present = [name for name in LAYOUT_1_0_FILES if (folder / name).is_file()]
    if not present:
        raise ConfigError(str(folder), [Problem(
            str(folder), "", "is a directory but not a 1.0 config (none of "
            f"{', '.join(LAYOUT_1_0_FILES)}); give the version {CURRENT_VERSION} file instead")])
    problems, raw, warnings = [], {}, []
    for name in LAYOUT_1_0_FILES:
        file = folder / name
        if not file.is_file():
            if name == "timers_config.yaml":
                warnings.append(f"{file}: missing; the daily reset defaults to 17:00 "
                                "America/Chicago")
            else:
                problems.append(Problem(str(file), "", "missing (a 1.0 config has "
                                        f"{', '.join(LAYOUT_1_0_FILES)})"))
            continue
        try:
            raw[name] = read_document(file)
        except ConfigError as exc:
            problems += exc.problems
    # Files of other 1.0 variants (V34's api_credentials.yaml, SR's holidays.yaml) are not read.
    for other in sorted(folder.glob("*.y*ml")):
        if other.name not in LAYOUT_1_0_FILES:
            warnings.append(f"{other}: not part of the 1.0 layout read by the migration; ignored")
    if problems:
        raise ConfigError(str(folder), problems)
    return raw, warnings


def _migrate_dir(folder: Path) -> MigrationResult:
    raw, read_warnings = read_1_0_dir(folder)
    try:
        result = migrations.migrate(raw, "1.0")
    except MigrationError as exc:
        problem = Problem(str(folder / exc.file), "", str(exc).split(": ", 1)[-1])
        raise ConfigError(str(folder), [problem]) from None
    return attrs.evolve(result, warnings=tuple(read_warnings) + result.warnings)


def load_config(path: str | os.PathLike, registry: Registry, *,
                env: Mapping[str, str] | None = None) -> Config:
    """Load and validate a version 2 file, or a 1.0 directory (migrated in memory).

    ``registry`` maps rule name -> plugin class (its ``Params`` validate the rule's settings).
    A migrated config has ``migrated_from == "1.0"`` and the migration's ``warnings``; write it
    out with :func:`write_migrated`. Raises :class:`ConfigError` listing every problem.
    """
    source = Path(path)
    if source.is_dir():
        result = _migrate_dir(source)
        logger.warning("config {} is the 1.0 layout; migrated to version {} in memory "
                       "(write it out with `write_migrated`)", source, CURRENT_VERSION)
        origins = dict(result.origins)
        config = parse_config(result.raw, registry, source, base_dir=source, origins=origins,
                              migrated_from=result.from_version, warnings=result.warnings, env=env)
    else:
        doc = read_document(source)
        key = version_key(doc.get("version")) if isinstance(doc, Mapping) else None
        step = migrations.MIGRATIONS.get(key) if key else None
        if step is not None and step.layout == "file":
            # A single-file older version (none yet): migrate in memory, like the directory.
            result = migrations.migrate(doc, key)
            config = parse_config(result.raw, registry, source, migrated_from=key,
                                  warnings=result.warnings, env=env)
        else:
            config = parse_config(doc, registry, source, env=env)
    for warning in config.warnings:
        logger.warning("config: {}", warning)
    return config


def reload(old_config: Config, path: str | os.PathLike | None, registry: Registry, *,
           env: Mapping[str, str] | None = None) -> tuple[Config, tuple[Problem, ...]]:
    """Load the config again for a live reload.

    Returns ``(new_config, ())`` when it is valid, else ``(old_config, problems)``: the running
    config stays in force and the caller reports the problems. ``path`` None reloads
    ``old_config.source``. A valid new config carries warnings for changes that take effect only
    after a restart (admin port, state directory, broker login).
    """
    try:
        new = load_config(path if path is not None else old_config.source, registry, env=env)
    except ConfigError as exc:
        logger.error("config reload rejected, keeping the running config:\n{}", exc)
        return old_config, exc.problems
    notes = []
    if new.daemon.admin_port != old_config.daemon.admin_port:
        notes.append(f"daemon.admin_port changed ({old_config.daemon.admin_port} -> "
                     f"{new.daemon.admin_port}): takes effect after a restart")
    if new.daemon.state_dir != old_config.daemon.state_dir:
        notes.append(f"daemon.state_dir changed ({old_config.daemon.state_dir} -> "
                     f"{new.daemon.state_dir}): takes effect after a restart")
    if new.broker != old_config.broker:
        notes.append("broker settings changed: the gateway connections must log in again to use "
                     "them")
    for note in notes:
        logger.warning("config reload: {}", note)
    return (attrs.evolve(new, warnings=new.warnings + tuple(notes)) if notes else new), ()


def _atomic_write(path: Path, text: str, mode: int) -> None:
    # Write beside the target and rename: a crash never leaves a half-written config.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_document(doc: Any, path: str | os.PathLike) -> None:
    """Write a document read by :func:`read_document` back (comments kept), atomically, keeping
    the file's permissions (0600 for a new file: it may hold credentials)."""
    target = Path(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600
    _atomic_write(target, dump_yaml(doc), mode)


def dump_yaml(doc: Any) -> str:
    """YAML text of a document or plain data, in the style riskd writes."""
    import io
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


_SECTION_COMMENTS = {
    "broker": "Gateway login (the 1.0 topstepx section).",
    "accounts": "Accounts riskd watches; overrides are merged onto the global rules.",
    "rules": "Rules this version runs (a listed rule runs unless enabled: false).",
    "timers": "When the trading day rolls over.",
    LEGACY_KEY: ("1.0 settings this version does NOT use yet (sessions, holidays, lockout "
                 "durations, rules not built in yet).\nThey are kept so a later version can "
                 "migrate them; they are not enforced."),
}


def _commented(node: Any) -> Any:
    # Plain data -> ruamel nodes, quoting what a YAML 1.1 reader would misread ("17:00" = 1020).
    if isinstance(node, Mapping):
        out = CommentedMap()
        for key, value in node.items():
            out[key] = _commented(value)
        return out
    if isinstance(node, list):
        return CommentedSeq(_commented(v) for v in node)
    if isinstance(node, str) and re.match(r"^\d{1,2}:\d{2}(:\d{2})?$", node):
        return DoubleQuotedScalarString(node)
    return node


def _migrated_text(result: MigrationResult, source: Path) -> str:
    doc = _commented(_plain(result.raw))
    header = [f"riskd configuration, version {CURRENT_VERSION}.",
              f"Migrated from the {result.from_version} layout in {source} "
              f"({', '.join(LAYOUT_1_0_FILES)}) on {date.today().isoformat()}.",
              "Comments of the old files are not carried over. Migration notes:"]
    header += [f"  - {w}" for w in result.warnings] or ["  (none)"]
    doc.yaml_set_start_comment("\n".join(header))
    for key, text in _SECTION_COMMENTS.items():
        if key in doc and key != next(iter(doc)):
            doc.yaml_set_comment_before_after_key(key, before="\n" + text)
    return dump_yaml(doc)


def write_migrated(source_dir: str | os.PathLike, dest: str | os.PathLike, *,
                   overwrite: bool = False, registry: Registry | None = None,
                   env: Mapping[str, str] | None = None) -> MigrationResult:
    """Migrate the 1.0 directory ``source_dir`` and write the version 2 file ``dest`` (mode 0600:
    it may hold the API key). With ``registry``, validate first and write nothing if invalid.

    Refuses to replace an existing ``dest`` unless ``overwrite``. Relative paths in the result
    (``daemon.state_dir``) resolve against ``dest``'s directory.
    """
    folder, target = Path(source_dir), Path(dest)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    result = _migrate_dir(folder)
    if registry is not None:
        parse_config(result.raw, registry, folder, base_dir=target.parent, origins=result.origins,
                     migrated_from=result.from_version, env=env)
    _atomic_write(target, _migrated_text(result, folder), 0o600)
    return result
