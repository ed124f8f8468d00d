"""The trading calendar: when the trading day rolls over (the daily reset) and which day a moment
belongs to.

Every function is pure: the moment comes in as an argument (an aware datetime, normally
``clock.now()``), nothing reads the system clock. Results are aware UTC datetimes, so they compare
and serialize the same way as every other time in riskd.

The reset is a local wall-clock time in an IANA zone (default 17:00 America/Chicago, the CME
futures day). Local times are turned into instants with :mod:`zoneinfo`, so the reset follows
daylight saving: 17:00 CT is 22:00 UTC in summer and 23:00 UTC in winter, and the trading days
around a change are 23 or 25 hours long. Two wall-clock oddities are settled here:

* a reset time that does not exist on a spring-forward day (02:30 when clocks jump 02:00 -> 03:00)
  happens at the same offset from the jump as if the clock had not moved (03:30 local): a
  reset is never skipped;
* a reset time that occurs twice on a fall-back day (01:30) happens at its first occurrence.

Sessions (trading hours) and holidays belong here too; a later issue adds them to
:class:`ResetSchedule` (``trading_day`` will then skip non-trading dates) without changing these
signatures.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import attrs

__all__ = [
    "DEFAULT_RESET_TIME", "DEFAULT_TIMEZONE", "ResetSchedule", "last_reset", "next_reset",
    "parse_hhmm", "parse_zone", "reset_missed", "trading_day",
]

DEFAULT_RESET_TIME = "17:00"
DEFAULT_TIMEZONE = "America/Chicago"

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_hhmm(text: str | time) -> time:
    """``"17:00"`` -> ``time(17, 0)``; raises ValueError saying what is allowed.

    A :class:`datetime.time` passes through (seconds and tzinfo must be unset: the reset is a
    wall-clock minute in the schedule's zone).
    """
    if isinstance(text, time):
        if text.second or text.microsecond or text.tzinfo is not None:
            raise ValueError("must be a wall-clock minute without seconds or time zone")
        return text
    if not isinstance(text, str):
        # YAML 1.1 readers turn an unquoted 17:00 into the integer 1020 (base 60): say how to fix.
        raise ValueError('must be a quoted "HH:MM" string (24-hour clock), e.g. "17:00"')
    m = _HHMM.match(text.strip())
    if not m:
        raise ValueError('must be "HH:MM" (24-hour clock), e.g. "17:00"')
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 23 or minute > 59:
        raise ValueError('must be "HH:MM" with hours 00-23 and minutes 00-59')
    return time(hour, minute)


def parse_zone(name: str | tzinfo) -> tzinfo:
    """An IANA zone name (``America/Chicago``) -> ZoneInfo; ValueError naming close matches."""
    if isinstance(name, tzinfo):
        return name
    if not isinstance(name, str) or not name.strip():
        raise ValueError("must be an IANA time zone name, e.g. America/Chicago")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ZoneInfo raises ValueError for path-like keys and OSError for a directory ("America").
        import difflib
        close = difflib.get_close_matches(name.strip(), sorted(available_timezones()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ", e.g. America/Chicago"
        raise ValueError(f"unknown IANA time zone{hint}") from None


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (use clock.now())")
    return moment


def _reset_on(day: date, at: time, zone: tzinfo) -> datetime:
    # fold=0 gives the first occurrence of an ambiguous time and, for a time inside a DST gap,
    # the instant computed with the pre-transition offset (= shifted forward by the gap).
    return datetime.combine(day, at, tzinfo=zone).astimezone(timezone.utc)


@attrs.frozen
class ResetSchedule:
    """When the trading day rolls over: a wall-clock time in an IANA zone.

    Built from config with :meth:`from_config` (``TimersConfig``) or :meth:`parse`. The trading
    day runs from one reset (inclusive) to the next (exclusive).
    """

    at: time = attrs.field(default=time(17, 0), converter=parse_hhmm)
    zone: tzinfo = attrs.field(default=ZoneInfo(DEFAULT_TIMEZONE), converter=parse_zone)

    @classmethod
    def parse(cls, at: str | time = DEFAULT_RESET_TIME,
              tz: str | tzinfo = DEFAULT_TIMEZONE) -> ResetSchedule:
        """From ``"HH:MM"`` and a zone name; ValueError when either is invalid."""
        return cls(at=at, zone=tz)  # type: ignore[arg-type]  (converters parse the strings)

    @classmethod
    def from_config(cls, timers) -> ResetSchedule:
        """From a :class:`risk_actors.config.TimersConfig` (its ``daily_reset`` section)."""
        return cls.parse(timers.daily_reset.time, timers.daily_reset.timezone)

    @property
    def zone_name(self) -> str:
        return getattr(self.zone, "key", str(self.zone))

    def describe(self) -> str:
        """``"17:00 America/Chicago"`` (for logs and the CLIs)."""
        return f"{self.at:%H:%M} {self.zone_name}"

    def reset_on(self, day: date) -> datetime:
        """The reset instant (UTC) on local calendar date ``day``."""
        return _reset_on(day, self.at, self.zone)

    def next_reset(self, after: datetime) -> datetime:
        """The first reset strictly after ``after`` (aware UTC)."""
        after = _aware(after, "after")
        day = after.astimezone(self.zone).date()
        # Resets are increasing in the local date, so the first candidate past `after` is the
        # answer; starting a day early covers instants whose local date is ahead of the reset's.
        for delta in (-1, 0, 1, 2):
            candidate = self.reset_on(day + timedelta(days=delta))
            if candidate > after:
                return candidate
        raise AssertionError("unreachable: a reset happens every local day")  # pragma: no cover

    def last_reset(self, at_or_before: datetime) -> datetime:
        """The latest reset at or before ``at_or_before`` (aware UTC): the current day's start."""
        return self._last(_aware(at_or_before, "at_or_before"))[1]

    def _last(self, moment: datetime) -> tuple[date, datetime]:
        # Returns the local date whose reset it is too: trading_day needs that date, and reading
        # it back from the instant would be wrong when a DST gap moved the reset's clock reading.
        day = moment.astimezone(self.zone).date()
        for delta in (1, 0, -1, -2):
            candidate = self.reset_on(day + timedelta(days=delta))
            if candidate <= moment:
                return day + timedelta(days=delta), candidate
        raise AssertionError("unreachable: a reset happens every local day")  # pragma: no cover

    def trading_day(self, now: datetime) -> date:
        """The date of the trading day ``now`` belongs to.

        A trading day is named by the calendar date on which most of it lies, as the futures
        industry counts: with a 17:00 reset the session that opens Monday 17:00 CT is Tuesday's.
        With a reset before noon (e.g. 00:00) the day keeps the date it starts on.
        """
        start_day, _ = self._last(_aware(now, "now"))
        return start_day + timedelta(days=1) if self.at >= time(12, 0) else start_day

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """``(start, end)`` instants (UTC) of trading day ``day`` (start inclusive, end not)."""
        first = day - timedelta(days=1) if self.at >= time(12, 0) else day
        return self.reset_on(first), self.reset_on(first + timedelta(days=1))

    def reset_missed(self, last_reset_at: datetime | None, now: datetime) -> bool:
        """True when a reset boundary lies in ``(last_reset_at, now]``: run the reset now.

        Compared against the time of the last reset, not a per-day flag, so a reset missed
        while riskd was down (or a clock that jumped) still runs once at start-up. ``None`` (no
        reset on record, a fresh state) counts as missed: running it establishes the day.
        """
        now = _aware(now, "now")
        if last_reset_at is None:
            return True
        return self.last_reset(now) > _aware(last_reset_at, "last_reset_at")


_DEFAULT = ResetSchedule()


def _schedule(at: str | time, tz: str | tzinfo) -> ResetSchedule:
    if at == DEFAULT_RESET_TIME and tz == DEFAULT_TIMEZONE:
        return _DEFAULT
    return ResetSchedule.parse(at, tz)


def next_reset(after: datetime, at: str | time = DEFAULT_RESET_TIME,
               tz: str | tzinfo = DEFAULT_TIMEZONE) -> datetime:
    """The first reset strictly after ``after`` (aware UTC). See :class:`ResetSchedule`."""
    return _schedule(at, tz).next_reset(after)


def last_reset(at_or_before: datetime, at: str | time = DEFAULT_RESET_TIME,
               tz: str | tzinfo = DEFAULT_TIMEZONE) -> datetime:
    """The latest reset at or before ``at_or_before`` (aware UTC)."""
    return _schedule(at, tz).last_reset(at_or_before)


def trading_day(now: datetime, at: str | time = DEFAULT_RESET_TIME,
                tz: str | tzinfo = DEFAULT_TIMEZONE) -> date:
    """The date of the trading day ``now`` belongs to (17:00 CT Monday -> Tuesday)."""
    return _schedule(at, tz).trading_day(now)


def reset_missed(last_reset_at: datetime | None, now: datetime, at: str | time = DEFAULT_RESET_TIME,
                 tz: str | tzinfo = DEFAULT_TIMEZONE) -> bool:
    """True when a reset fell in ``(last_reset_at, now]`` (or none is on record)."""
    return _schedule(at, tz).reset_missed(last_reset_at, now)
