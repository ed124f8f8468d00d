"""006 TradeFrequencyLimit: a timed cooldown when the trader trades too often.

Three rolling windows over the trades since the daily reset, keyed by each trade's
``creationTimestamp``: the last minute (now - 60 s, now], the last hour (now - 3600 s, now] and
the session (everything since the reset). A window breaches when its count exceeds its limit
(4 trades with ``per_minute: 3``). A breach starts a cooldown: a lock of kind ``cooldown`` that
expires ``now`` + the window's duration (60 s / 30 m / 1 h by default); when several windows
breach at once, the longest cooldown wins. ``per_session_breach: until_reset`` locks until the
next daily reset instead.

``count: fills`` (default) counts every ``GatewayUserTrade`` (entries, exits, each partial fill);
``count: round_trips`` counts only the closing ones (``profitAndLoss`` not null). Voided trades
never count. The rule does not close anything itself unless ``close_positions: true``.

The counts are derived from ``state.trades`` (the reducer keeps the trades since the reset, by
id, deduplicated against REST): the rule keeps no copy and no memory.
"""

from __future__ import annotations

import bisect
import re
from datetime import datetime, timedelta
from typing import Iterable, Literal

import attrs

from rules.base import (Alert, FlattenAccount, Lock, LOCK_COOLDOWN, LOCK_HARD, LOCK_INDEFINITE,
                        Reconciled, Rule, RuleViolation, TradeEvent, Usage)

UNTIL_RESET = "until_reset"
_DURATION = re.compile(r"^(\d+)([smh])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> int:
    """``"60s"`` / ``"30m"`` / ``"1h"`` -> seconds (the V34 timers syntax ``^\\d+[smh]$``)."""
    found = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not found or int(found.group(1)) <= 0:
        raise ValueError(f"must be a duration like \"60s\", \"30m\" or \"1h\" (> 0), got {text!r}")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def _positive(_inst, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _at_least(other: str):
    def check(inst, attribute, value) -> None:
        _positive(inst, attribute, value)
        bound = getattr(inst, other)
        if value < bound:
            # Say the value too: it may be the default, which the admin never wrote.
            raise ValueError(f"{attribute.name} must be >= {other} ({bound}); it is {value!r}")
    return check


def _duration(_inst, attribute, value) -> None:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name} {exc}") from None


def _duration_or_reset(inst, attribute, value) -> None:
    if value != UNTIL_RESET:
        try:
            parse_duration(value)
        except ValueError:
            raise ValueError(f"{attribute.name} must be a duration like \"1h\" or "
                             f"\"{UNTIL_RESET}\", got {value!r}") from None


@attrs.frozen
class Limits:
    """Most trades allowed per window; per_minute <= per_hour <= per_session."""

    # attrs runs validators after every field is set, so each can compare with the one before.
    per_minute: int = attrs.field(default=3, validator=_positive)
    per_hour: int = attrs.field(default=10, validator=_at_least("per_minute"))
    per_session: int = attrs.field(default=50, validator=_at_least("per_hour"))


@attrs.frozen
class Cooldowns:
    """How long trading stops after each kind of breach."""

    per_minute_breach: str = attrs.field(default="60s", validator=_duration)
    per_hour_breach: str = attrs.field(default="30m", validator=_duration)
    per_session_breach: str = attrs.field(default="1h", validator=_duration_or_reset)


@attrs.frozen
class Params:
    """Parameters of trade_frequency_limit."""

    limits: Limits = attrs.Factory(Limits)
    cooldowns: Cooldowns = attrs.Factory(Cooldowns)
    count: Literal["fills", "round_trips"] = "fills"
    close_positions: bool = False


# ---------------------------------------------------------------------------------------------
# pure window arithmetic (property-tested)
def in_window(ts: datetime, now: datetime, seconds: float) -> bool:
    """True when ``ts`` lies in the rolling window (now - seconds, now]."""
    return now - timedelta(seconds=seconds) < ts <= now


def counts(record, mode: str) -> bool:
    """Whether a trade counts: never when voided; with round_trips only closing fills."""
    if record.voided:
        return False
    return mode == "fills" or record.pnl is not None


def trade_times(trades: Iterable, mode: str, now: datetime) -> list[datetime]:
    """Sorted times of the counting trades. A trade stamped after ``now`` (the broker's clock
    ahead of ours) counts as ``now``: clock skew must never hide the trade that breaches."""
    return sorted(min(t.created, now) for t in trades if counts(t, mode))


def window_count(times: list[datetime], anchor: datetime, seconds: float | None) -> int:
    """How many of the sorted ``times`` lie in (anchor - seconds, anchor]; None = all up to
    ``anchor`` (the session window: the trades list already starts at the reset)."""
    upto = bisect.bisect_right(times, anchor)
    if seconds is None:
        return upto
    return upto - bisect.bisect_right(times, anchor - timedelta(seconds=seconds))


@attrs.frozen
class Breach:
    """One breached window and the cooldown it calls for."""

    window: str
    count: int
    limit: int
    until: datetime | None
    until_reset: bool


class TradeFrequencyLimit(Rule):
    """Too many trades per minute / hour / session starts a timed cooldown (006)."""

    name = "trade_frequency_limit"
    rule_id = "006"
    version = "1.0"
    description = "Starts a cooldown when trades per minute, hour or session exceed the limits."
    author = "riskd"
    Params = Params
    events = (TradeEvent, Reconciled)

    def _windows(self) -> tuple[tuple[str, float | None, int, str], ...]:
        lim, cd = self.params.limits, self.params.cooldowns
        return (("minute", 60, lim.per_minute, cd.per_minute_breach),
                ("hour", 3600, lim.per_hour, cd.per_hour_breach),
                ("session", None, lim.per_session, cd.per_session_breach))

    def _breaches(self, times: list[datetime], anchor: datetime, start: datetime,
                  next_reset: datetime | None) -> list[Breach]:
        """Windows ending at ``anchor`` that exceed their limit; cooldowns run from ``start``."""
        out = []
        for window, seconds, limit, duration in self._windows():
            n = window_count(times, anchor, seconds)
            if n <= limit:
                continue
            if duration == UNTIL_RESET:
                out.append(Breach(window, n, limit, next_reset, True))
            else:
                out.append(Breach(window, n, limit,
                                  start + timedelta(seconds=parse_duration(duration)), False))
        return out

    def evaluate(self, event, state, now):
        mode = self.params.count
        times = trade_times(state.trades.values(), mode, now)
        if isinstance(event, TradeEvent):
            record = state.trades.get(event.trade_id)
            if record is None or not counts(record, mode):
                return None  # voided, an opening fill under round_trips, or before the reset
            # The trade just happened: the windows end now and the cooldown runs from now.
            breaches = self._breaches(times, now, now, state.next_reset_at)
        else:
            # After a (re)connect the REST trade list may hold trades we never saw live. Replay
            # each as the end of a window: a cooldown it called for that is still running starts
            # now; one that is already over is not restarted by a reconnect.
            breaches = []
            for ts in times:
                breaches += self._breaches(times, ts, ts, state.next_reset_at)
            breaches = [b for b in breaches if b.until is None or b.until > now]
        if not breaches:
            return None
        worst = max(breaches, key=lambda b: (b.until is None, b.until or now))
        own = [lk for lk in state.lockouts if lk.rule == self.name and lk.active(now)]
        if any(lk.expires_at is None or (worst.until is not None and lk.expires_at >= worst.until)
               for lk in own):
            return None  # the running cooldown already lasts at least as long: nothing changes
        windows = ", ".join(f"{b.count} trades this {b.window} (limit {b.limit})"
                            for b in breaches if b.until == worst.until)
        until = ("the daily reset" if worst.until_reset else
                 f"{worst.until:%Y-%m-%d %H:%M:%S} UTC" if worst.until else "further notice")
        return RuleViolation(
            self.name, f"{windows}: cooldown until {until}",
            data={"window": worst.window, "count": worst.count, "limit": worst.limit,
                  "until": worst.until, "until_reset": worst.until_reset})

    def get_enforcement_action(self, violation):
        until, until_reset = violation.data["until"], violation.data["until_reset"]
        if until_reset:
            lock = Lock(LOCK_HARD if until else LOCK_INDEFINITE, violation.reason, until,
                        until_reset=True)
        else:
            lock = Lock(LOCK_COOLDOWN, violation.reason, until)
        actions = (FlattenAccount(),) if self.params.close_positions else ()
        return actions + (lock, Alert(f"Trade frequency limit: {violation.reason}. No new "
                                      f"trades until then.", "warning"))

    def usage(self, state, now):
        times = trade_times(state.trades.values(), self.params.count, now)
        return tuple(Usage(f"trades this {window}", window_count(times, now, seconds), limit,
                           "trades")
                     for window, seconds, limit, _ in self._windows())
