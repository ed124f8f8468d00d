"""The validated configuration: frozen attrs classes, built only by :mod:`risk_actors.config.load`.

The file (``etc/riskd.yaml``, ``version: 2``) has the sections ``broker``, ``accounts``,
``rules``, ``timers`` and ``daemon``, plus ``legacy_1_0``, where a migration parks the 1.0
settings this version does not use yet. Every section rejects unknown keys, so a typo fails at load
time and not silently at run time. The classes hold checked values only; they do not validate
themselves, because the loader has to collect every problem of a file at once, each with the file,
key path and line (see :class:`Problem`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs

from risk_actors.broker.settings import BrokerSettings
from risk_actors.calendar import DEFAULT_RESET_TIME, DEFAULT_TIMEZONE
from risk_actors.symbols import DEFAULT_ALIASES

__all__ = [
    "AccountConfig", "BrokerSection", "Config", "ConfigError", "DailyResetConfig", "DaemonConfig",
    "MODES", "Problem", "RuleConfig", "TimersConfig",
]

MODES = ("enforce", "shadow")
# Keys every rule entry accepts besides its plugin's Params (plugins must not reuse these names).
RULE_COMMON_KEYS = ("enabled", "mode", "placement")


def _redact(_value: object) -> str:
    return "***"


# ---------------------------------------------------------------------------------------------
# errors
@attrs.frozen
class Problem:
    """One thing wrong with a config: where (file, key path, line) and why.

    ``value`` is the offending value already rendered for humans (``repr``, shortened), or None
    when the key is missing or the value is secret. ``line`` is 1-based.
    """

    file: str
    path: str
    message: str
    line: int | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.path}:" if self.path else ""
        got = f" (got {self.value})" if self.value is not None else ""
        return f"{where}:{key} {self.message}{got}"


class ConfigError(Exception):
    """A config could not be loaded; ``problems`` lists every problem found, not just the first."""

    def __init__(self, source: str, problems: tuple[Problem, ...] | list[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        n = len(self.problems)
        lines = [f"invalid configuration {source} ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# sections
@attrs.frozen
class BrokerSection:
    """The ``broker`` section: one gateway login. ``api_key`` is the resolved key (from the
    environment, the file, or ``api_key_file``) and never appears in a repr or an error."""

    api_url: str
    user_hub_url: str
    market_hub_url: str
    username: str
    api_key: str = attrs.field(repr=_redact)
    api_key_file: Path | None = None
    requests_per_minute: int = 190
    timeout_seconds: float = 10.0

    def settings(self) -> BrokerSettings:
        """The :class:`BrokerSettings` the broker adapter logs in with."""
        return BrokerSettings(api_url=self.api_url, user_hub_url=self.user_hub_url,
                              market_hub_url=self.market_hub_url, username=self.username,
                              api_key=self.api_key, requests_per_minute=self.requests_per_minute,
                              timeout_seconds=self.timeout_seconds)


@attrs.frozen
class RuleConfig:
    """One rule as an account runs it: the plugin ``name``, on/off, ``mode`` (enforce | shadow) and
    ``params``, an instance of the plugin's ``Params`` class."""

    name: str
    enabled: bool
    mode: str
    params: Any
    placement: str | None = None  # actor | inline; None = daemon.rule_placement decides


@attrs.frozen
class AccountConfig:
    """One watched account, by gateway ``id`` and/or ``name`` (the id wins when both are given).

    ``overrides`` is the raw override mapping as written (``{"rules": {...}}``); ``rules`` are the
    effective rules of this account (global rules with the overrides merged in, validated),
    disabled ones included: use :meth:`Config.rules_for`.
    """

    id: int | None
    name: str | None
    enabled: bool = True
    description: str = ""
    overrides: Mapping[str, Any] = attrs.field(factory=dict)
    rules: tuple[RuleConfig, ...] = ()

    @property
    def label(self) -> str:
        """``536 'PRAC-V2-1'`` / ``536`` / ``'PRAC-V2-1'``: how errors and logs name it."""
        parts = [str(self.id)] if self.id is not None else []
        if self.name:
            parts.append(repr(self.name))
        return " ".join(parts)

    def matches(self, account_id: int | None, name: str | None = None) -> bool:
        """True when this entry designates the gateway account ``account_id`` / ``name``."""
        if self.id is not None:
            return account_id == self.id
        return name is not None and name == self.name


@attrs.frozen
class DailyResetConfig:
    """``timers.daily_reset``: wall-clock ``time`` ("HH:MM") in the IANA ``timezone``."""

    time: str = DEFAULT_RESET_TIME
    timezone: str = DEFAULT_TIMEZONE


@attrs.frozen
class TimersConfig:
    """The ``timers`` section. Sessions and holidays will join ``daily_reset`` here."""

    daily_reset: DailyResetConfig = attrs.field(factory=DailyResetConfig)


@attrs.frozen
class DaemonConfig:
    """The ``daemon`` section. ``state_dir`` is absolute (resolved against the config's folder)."""

    admin_port: int = 19500
    state_dir: Path = Path("var")
    rule_timeout_ms: int = 100
    symbol_aliases: Mapping[str, str] = attrs.field(factory=dict)
    # Where rules run (docs/performance.md has the figures behind the default): "actor" = one
    # process per rule (isolated: a hang or crash is contained); "inline" = inside the account's
    # process (no fan-out round trip); "auto" = inline for the rules shipped with riskd (pure,
    # tested) and actors for third-party plugins.
    rule_placement: str = "auto"
    # Most one quote per contract per this many ms reaches the account (latest wins); 0 = all.
    quote_interval_ms: int = 20
    # "inline": each account's enforcer runs in the account's process (one hop less per
    # enforcement); "actor": its own process, restarted on its own if it dies.
    enforcer_placement: str = "inline"
    # "inline": the broker session (SDK thread) runs in the account's process too, so an
    # enforcement crosses no process at all. Used only for an account whose rules and enforcer
    # all run inline (a process with the SDK's thread must not fork children); an account with
    # a third-party rule in its own actor gets "actor" (logged).
    broker_placement: str = "inline"
    # "shared": one market data connection for the daemon parses each quote once and hands
    # every account the quotes it needs; "per_account": each account's broker link subscribes
    # its own (one market hub per account, every quote parsed once per account).
    market_data: str = "shared"

    def aliases(self) -> dict[str, str]:
        """The alias table to use: :data:`risk_actors.symbols.DEFAULT_ALIASES` plus the configured
        ones (which win)."""
        return {**DEFAULT_ALIASES, **self.symbol_aliases}


@attrs.frozen
class ChannelConfig:
    """One notification channel: ``name`` (for logs), ``type`` (a ``riskd.notifiers`` plugin),
    filters (``min_severity``, ``kinds``: None = all), ``max_per_minute`` (0 = unlimited),
    delivery ``retries``, and ``params``: the plugin's validated ``Params`` (may hold secrets,
    so never shown)."""

    name: str
    type: str
    params: Any = attrs.field(repr=_redact)
    min_severity: str = "info"
    kinds: tuple[str, ...] | None = None
    max_per_minute: int = 20
    retries: int = 3


@attrs.frozen
class NotificationsConfig:
    """The ``notifications`` section; ``webhooks`` entries are in ``channels`` as ``type:
    webhook`` channels named ``webhook-1``, ``webhook-2``, ..."""

    warning_fractions: tuple[float, ...] = (0.75, 0.9)
    disconnect_alert_seconds: float = 30.0
    dedup_seconds: float = 60.0
    channels: tuple[ChannelConfig, ...] = ()


@attrs.frozen
class WatchdogConfig:
    """The ``watchdog`` section: systemd notifications and an optional heartbeat URL (a secret:
    push URLs embed their token)."""

    systemd: bool = True
    heartbeat_url: str | None = attrs.field(default=None, repr=_redact)
    heartbeat_seconds: float = 60.0


@attrs.frozen
class ComponentConfig:
    """One component under ``components:``: the plugin ``name`` (a ``riskd.components`` entry
    point), on/off, whether its ``daily_report`` goes to the notification channels, and
    ``params``, an instance of the plugin's ``Params``."""

    name: str
    enabled: bool = True
    daily_report: bool = True
    params: Any = None


@attrs.frozen
class Config:
    """A whole validated configuration.

    ``source`` is the file (or the 1.0 directory) it came from; ``migrated_from`` names the older
    version it was migrated from in memory (None for a current file); ``warnings`` are things the
    operator should hear about but that do not stop riskd (dropped or parked 1.0 settings, a
    readable key file, changes that need a restart). ``legacy_1_0`` holds the 1.0 settings riskd
    does not use yet, unvalidated, so that a later version can migrate them.
    """

    version: int
    source: Path
    broker: BrokerSection
    accounts: tuple[AccountConfig, ...]
    rules: tuple[RuleConfig, ...]
    timers: TimersConfig = attrs.field(factory=TimersConfig)
    daemon: DaemonConfig = attrs.field(factory=DaemonConfig)
    notifications: NotificationsConfig = attrs.field(factory=NotificationsConfig)
    watchdog: WatchdogConfig = attrs.field(factory=WatchdogConfig)
    # Every installed component the config enables (explicitly, or by default: analytics).
    components: tuple[ComponentConfig, ...] = ()
    legacy_1_0: Mapping[str, Any] = attrs.field(factory=dict)
    migrated_from: str | None = None
    warnings: tuple[str, ...] = attrs.field(default=(), eq=False)

    def account(self, account_id: int | None, name: str | None = None) -> AccountConfig | None:
        """The entry for a gateway account (by id, or by name for entries without an id)."""
        for acc in self.accounts:
            if acc.matches(account_id, name):
                return acc
        return None

    def rules_for(self, account_id: int | None, name: str | None = None, *,
                  include_disabled: bool = False) -> tuple[RuleConfig, ...]:
        """The rules account ``account_id`` runs, its overrides applied; enabled ones only unless
        ``include_disabled``.

        Pass the account's ``name`` too: entries may designate an account by name only. An account
        that is not configured raises KeyError rather than silently getting the global rules (use
        ``config.rules`` for those), since it would lose any stricter override.
        """
        acc = self.account(account_id, name)
        if acc is None:
            who = f"{account_id}" + (f" ({name!r})" if name else "")
            raise KeyError(f"account {who} is not in the config {self.source}")
        return tuple(r for r in acc.rules if include_disabled or r.enabled)

    def rule(self, name: str) -> RuleConfig | None:
        """The global (not overridden) config of rule ``name``."""
        return next((r for r in self.rules if r.name == name), None)
