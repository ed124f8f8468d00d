"""009 SessionBlockOutside: no position and no working order outside the trading session.

Each instrument trades in its session (the default ``session``, or its entry in
``per_instrument_sessions``); holidays and early closes come from a maintained exchange
calendar (``holiday_calendar``, CME Globex equity futures by default) merged with the config's own
``holidays`` and ``early_closes``. Outside its session, or on a holiday:

* a position -> close all, cancel all, hard lock of the account until that instrument's next
  session start (the latest of them when several breach at once);
* a working order (and no position) -> cancel that order; no lock.

At a session's close the trader has ``session_close_grace`` seconds to get flat: the rule wakes at
the close (it notes the sizes then open), and again at close + grace, when anything still open in
that session is closed and the account locked until the next session start. During the grace,
positions may only shrink: a new or larger one breaches at once; working orders are left alone
(an exit order is allowed) until the grace ends.

The calendar is computed once when the config is loaded (``Params.calendar``), so ``evaluate``
stays pure: no clock, no file, no network.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import attrs

from risk_actors.calendar import (DEFAULT_EXCHANGE_CALENDAR, DEFAULT_TIMEZONE, Closures, Session,
                                  TradingCalendar, exchange_closures, parse_date, parse_days,
                                  parse_hhmm, parse_zone)
from rules.base import (Alert, CancelOrder, ContractsKnown, FlattenAccount, Lock, LOCK_HARD,
                        LOCK_INDEFINITE, OrderEvent, PositionEvent, Reconciled, Rule, RuleUpdate,
                        RuleViolation, Tick)

DEFAULT_KEY = "*"  # memory key of the default session (per-instrument ones use their root)
MAX_GRACE_SECONDS = 3600
RECHECK_SECONDS = 5  # while locked with a position left, look again this often


# ---------------------------------------------------------------------------------------------
# params
def _check(parse):
    def validator(_inst, attribute, value) -> None:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"{attribute.name} {exc}") from None
    return validator


def _days(value: Any) -> tuple[int, ...]:
    try:
        return tuple(sorted(parse_days(value)))
    except ValueError as exc:
        raise ValueError(f"allowed_days {exc}") from None


@attrs.frozen
class SessionParams:
    """One session as configured: ``start``/``end`` "HH:MM" in ``timezone``, on ``allowed_days``
    (0 = Monday; the day a session *ends*), ``continuous`` to join consecutive days."""

    start: time = attrs.field(default=time(8, 30), converter=parse_hhmm)
    end: time = attrs.field(default=time(15, 0), converter=parse_hhmm)
    timezone: ZoneInfo = attrs.field(default=ZoneInfo(DEFAULT_TIMEZONE), converter=parse_zone)
    allowed_days: tuple[int, ...] = attrs.field(default=(0, 1, 2, 3, 4), converter=_days)
    continuous: bool = False

    def build(self) -> Session:
        return Session(self.start, self.end, self.timezone,
                       self.allowed_days, self.continuous)  # type: ignore[arg-type]


@attrs.frozen
class EarlyClose:
    """``{date: "2025-11-26", close_time: "13:00"}``: that trading day ends at ``close_time``
    (wall clock of the default session's zone, or ``timezone``)."""

    date: Any = attrs.field(validator=_check(parse_date))
    close_time: time = attrs.field(converter=parse_hhmm)
    timezone: ZoneInfo | None = None


def _dates(value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError('holidays must be a list of dates "YYYY-MM-DD"')
    out = []
    for item in value:
        try:
            out.append(parse_date(item).isoformat())
        except ValueError as exc:
            raise ValueError(f"holidays {exc}") from None
    return tuple(out)


def _roots(value: Mapping[str, SessionParams]) -> dict[str, SessionParams]:
    return {str(k).strip().upper(): v for k, v in value.items()}


def _grace(_inst, attribute, value) -> None:
    if not 0 <= value <= MAX_GRACE_SECONDS:
        raise ValueError(f"{attribute.name} must be between 0 and {MAX_GRACE_SECONDS} seconds, "
                         f"got {value!r}")


@attrs.frozen(slots=False)
class Params:
    """Parameters of session_block_outside (see docs/rules/session_block_outside.md).

    ``calendar`` (not a config key) is the :class:`TradingCalendar` derived from them when the
    config is loaded, holidays included, as plain data: it travels with the params (pickled to
    the rule's process), so evaluating never imports the calendar package nor reads a file.
    """

    session: SessionParams = attrs.field(factory=SessionParams)
    per_instrument_sessions: dict[str, SessionParams] = attrs.field(factory=dict,
                                                                   converter=_roots)
    respect_holidays: bool = True
    holiday_calendar: str | None = DEFAULT_EXCHANGE_CALENDAR
    holidays: Any = attrs.field(default=(), converter=_dates)
    early_closes: list[EarlyClose] = attrs.field(factory=list)
    session_close_grace: int = attrs.field(default=60, validator=_grace)

    @property
    def calendar(self) -> TradingCalendar:
        return self.__dict__["_calendar"]

    def __attrs_post_init__(self) -> None:
        closures = Closures()
        if self.respect_holidays:
            if self.holiday_calendar is not None:
                try:
                    closures = exchange_closures(self.holiday_calendar)
                except ValueError as exc:
                    raise ValueError(f"holiday_calendar {exc}") from None
            own = Closures.from_dates(
                self.holidays, (), self.session.timezone)
            for ec in self.early_closes:
                own = own.merged(Closures.from_dates(
                    (), [(ec.date, ec.close_time)], ec.timezone or self.session.timezone))
            closures = closures.merged(own)
        calendar = TradingCalendar(
            self.session.build(),
            {root: sp.build() for root, sp in self.per_instrument_sessions.items()},
            closures)
        object.__setattr__(self, "_calendar", calendar)


# ---------------------------------------------------------------------------------------------
# the rule
def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _local(moment: datetime | None, session: Session) -> str:
    if moment is None:
        return "no session is configured"
    return moment.astimezone(session.zone).strftime("%a %Y-%m-%d %H:%M %Z")


class SessionBlockOutside(Rule):
    """Blocks positions and orders outside the trading session and on holidays (009)."""

    name = "session_block_outside"
    rule_id = "009"
    version = "1.0"
    description = ("Closes everything and locks the account until the next session start when a "
                   "position is open outside the session or on a holiday; cancels orders outside.")
    author = "riskd"
    Params = Params
    events = (PositionEvent, OrderEvent, Reconciled, ContractsKnown, Tick)

    # ---- helpers -------------------------------------------------------------------------------
    def _key(self, state, contract_id: str) -> str | None:
        """The session key of a contract: its root when overridden, else the default; None when
        the root is not known yet (no contract metadata) and overrides make it matter."""
        overrides = self.params.calendar.overrides
        root = state.root(contract_id)
        if root is None:
            return None if overrides else DEFAULT_KEY
        return root.upper() if root.upper() in overrides else DEFAULT_KEY

    def _status(self, key: str, now: datetime) -> tuple[str, datetime | None]:
        """("open", close) | ("grace", close) | ("closed", None) of one session at ``now``."""
        cal = self.params.calendar
        root = None if key == DEFAULT_KEY else key
        if cal.in_session(now, root):
            return "open", cal.session_end(now, root)
        grace = timedelta(seconds=self.params.session_close_grace)
        if grace:
            last = cal.last_end(now, root, within=grace)
            if last is not None and now < last + grace:
                return "grace", last
        return "closed", None

    def _wake(self, now: datetime) -> datetime | None:
        """The next instant something changes: a close (note the sizes), a grace end."""
        cal = self.params.calendar
        grace = timedelta(seconds=self.params.session_close_grace)
        times = []
        for key in (DEFAULT_KEY, *cal.overrides):
            status, close = self._status(key, now)
            if status == "grace":
                times.append(close + grace)
            else:
                nxt = cal.next_end(now, None if key == DEFAULT_KEY else key)
                if nxt is not None:
                    times.append(nxt)
        return min(times) if times else None

    # ---- evaluate ------------------------------------------------------------------------------
    def evaluate(self, event, state, now):
        cal = self.params.calendar
        wake = self._wake(now)
        own = [lk for lk in state.lockouts
               if lk.rule == self.name and lk.scope == "account" and lk.active(now)]
        if own:
            # Locked until the session start: the core's lockout guard closes what opens or grows
            # and cancels orders. A position still open (a close the broker refused, one held
            # across a reconnect) is this rule's to close: again on every timer and reconnect,
            # and a timer every RECHECK_SECONDS while one is left.
            if not state.positions:
                return RuleUpdate(wake_at=wake)
            soon = now + timedelta(seconds=RECHECK_SECONDS)
            wake = min(wake, soon) if wake else soon
            if not isinstance(event, (Tick, Reconciled)):
                return RuleUpdate(wake_at=wake)
            until = None if any(lk.expires_at is None for lk in own) \
                else max(lk.expires_at for lk in own)
            return RuleViolation(
                self.name, f"{len(state.positions)} position(s) still open while locked outside "
                           "the trading session", data={"kind": "reflatten", "until": until},
                wake_at=wake)

        old = dict(state.rule_memory.get(self.name) or {})
        graces: dict[str, Any] = {}
        statuses: dict[str, tuple[str, datetime | None]] = {}

        def status(key: str) -> tuple[str, datetime | None]:
            if key not in statuses:
                statuses[key] = self._status(key, now)
                kind, close = statuses[key]
                if kind == "grace":
                    prev = (old.get("grace") or {}).get(key)
                    if prev and prev.get("close") == _iso(close):
                        graces[key] = {"close": prev["close"], "sizes": dict(prev["sizes"])}
                    else:  # first look inside this grace: note what is open now
                        graces[key] = {"close": _iso(close), "sizes": {
                            cid: pos.size for cid, pos in state.positions.items()
                            if self._key(state, cid) == key}}
            return statuses[key]

        # Sessions in their grace keep their notes even when no position is looked at below.
        keys = (DEFAULT_KEY, *cal.overrides)
        for key in keys:
            status(key)
        # A contract whose root is not known yet could be any instrument: outside only when
        # every session is closed; otherwise wait for its metadata (ContractsKnown re-checks).
        unknown_closed = all(statuses[k][0] == "closed" for k in keys)

        breached: dict[str, str] = {}  # contract -> session key
        for cid, pos in state.positions.items():
            if pos.size <= 0:
                continue
            key = self._key(state, cid)
            if key is None:
                if unknown_closed:
                    breached[cid] = key
                continue
            kind, _close = status(key)
            if kind == "open":
                continue
            if kind == "grace":
                sizes = graces[key]["sizes"]
                if pos.size <= sizes.get(cid, 0):
                    sizes[cid] = pos.size  # only shrinking is allowed from here on
                    continue
            breached[cid] = key

        orders: list[int] = []
        if not breached:
            if isinstance(event, OrderEvent):
                candidates = [state.orders[event.order_id]] if event.order_id in state.orders \
                    else []
            elif isinstance(event, (Tick, Reconciled, ContractsKnown)):
                candidates = list(state.orders.values())
            else:
                candidates = []
            for order in candidates:
                key = self._key(state, order.contract_id)
                if unknown_closed if key is None else status(key)[0] == "closed":
                    orders.append(order.order_id)

        memory = {"grace": graces} if graces else {}
        changed = memory != old
        if breached:
            return self._breach(state, now, breached, memory if changed else None, wake)
        if orders:
            return RuleViolation(
                self.name,
                f"working order{'s' if len(orders) > 1 else ''} "
                f"{', '.join(map(str, orders))} outside the trading session",
                data={"kind": "cancel", "orders": orders},
                memory=memory if changed else None, wake_at=wake)
        if changed or wake is not None:
            return RuleUpdate(memory=memory if changed else None, wake_at=wake)
        return None

    def _breach(self, state, now: datetime, breached: Mapping[str, str],
                memory: Mapping[str, Any] | None, wake: datetime | None) -> RuleViolation:
        cal = self.params.calendar
        starts = {}
        for key in set(breached.values()):
            for k in ((DEFAULT_KEY, *cal.overrides) if key is None else (key,)):
                starts[k] = cal.next_start(now, None if k == DEFAULT_KEY else k)
        until = None if any(s is None for s in starts.values()) else max(starts.values())
        cid, key = next(iter(breached.items()))
        session = cal.session_for(None if key in (None, DEFAULT_KEY) else key)
        what = ", ".join(sorted({state.root(c) or c for c in breached}))
        today = session.local_date(now)
        where = (f"on a holiday ({today.isoformat()})" if cal.trading_day_closed(today)
                 else f"outside the trading session ({session.describe()})")
        reason = (f"{what} position open {where} at {_local(now, session)}; locked until "
                  f"{_local(until, session) if until else 'further notice: no session ahead'}")
        return RuleViolation(self.name, reason, contract_id=cid,
                             data={"kind": "flatten", "until": until,
                                   "contracts": sorted(breached)},
                             memory=memory, wake_at=wake)

    def get_enforcement_action(self, violation):
        if violation.data.get("kind") == "reflatten":
            return (FlattenAccount(),
                    Alert(f"Closing again: {violation.reason}.", "warning"))
        if violation.data.get("kind") == "cancel":
            return (tuple(CancelOrder(oid) for oid in violation.data["orders"])
                    + (Alert(f"Order cancelled: {violation.reason}.", "warning"),))
        until = violation.data["until"]
        return (FlattenAccount(),
                Lock(LOCK_HARD if until else LOCK_INDEFINITE, violation.reason, until),
                Alert(f"Trading outside the session: {violation.reason}. All positions closed "
                      f"and orders cancelled.", "critical"))


__all__ = ["EarlyClose", "Params", "SessionBlockOutside", "SessionParams"]
