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

Sessions (trading hours) live here too: :class:`Session` (weekly hours in a zone, overnight
sessions allowed), :class:`Closures` (holidays and early closes: a maintained exchange calendar,
:func:`exchange_closures`, merged with a config's own dates) and :class:`TradingCalendar`, which
answers "is this instant in session, for this instrument?", "when does the session end?" and
"when does the next one start?". Like the reset, every answer is a pure function of the moment.
The reset does not depend on sessions: the trading day still rolls over every local day.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import attrs

__all__ = [
    "Closures", "DEFAULT_EXCHANGE_CALENDAR", "DEFAULT_RESET_TIME", "DEFAULT_TIMEZONE",
    "ResetSchedule", "Session", "TradingCalendar", "exchange_closures", "last_reset",
    "next_reset", "parse_date", "parse_days", "parse_hhmm", "parse_zone", "reset_missed",
    "trading_day",
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


# ---------------------------------------------------------------------------------------------
# sessions, holidays, early closes
DEFAULT_EXCHANGE_CALENDAR = "CME_Equity"
WEEKDAYS = (0, 1, 2, 3, 4)  # Monday..Friday, Python's numbering (Monday = 0)
HORIZON_DAYS = 400  # how far ahead to look for a session before answering "none"
_UTC = timezone.utc
_DAY = timedelta(days=1)


def parse_days(days: Iterable[int]) -> frozenset[int]:
    """Weekday numbers (0 = Monday .. 6 = Sunday) -> frozenset; ValueError otherwise."""
    if isinstance(days, (str, bytes)) or not isinstance(days, Iterable):
        raise ValueError("must be a list of weekday numbers 0-6 (0 = Monday), e.g. [0, 1, 2, 3, 4]")
    out = set()
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise ValueError(f"must be weekday numbers 0-6 (0 = Monday), got {day!r}")
        out.add(int(day))
    return frozenset(out)


def parse_date(value: str | date) -> date:
    """``"2025-12-25"`` (or a YAML date) -> date; ValueError saying what is allowed."""
    if isinstance(value, datetime):
        raise ValueError(f"must be a date YYYY-MM-DD without a time, got {value.isoformat()!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f'must be a date "YYYY-MM-DD", got {value!r}')


@attrs.frozen
class Session:
    """Weekly trading hours: ``start``-``end`` wall clock in ``zone`` on the trading days ``days``.

    A trading day is named by the date on which its session *ends* (the futures convention), so
    one rule covers day and overnight sessions: with ``end`` at or before ``start`` the session
    opens the evening before. ``18:00-17:00`` on Monday-Friday is Sunday 18:00 -> Monday 17:00,
    ..., Thursday 18:00 -> Friday 17:00, with a daily pause 17:00-18:00; ``continuous`` joins
    the sessions of consecutive calendar days into one (Sunday 18:00 -> Friday 17:00 without the
    pause). A holiday or an early close applies to the trading day of that date.
    """

    start: time = attrs.field(default=time(8, 30), converter=parse_hhmm)
    end: time = attrs.field(default=time(15, 0), converter=parse_hhmm)
    zone: tzinfo = attrs.field(default=ZoneInfo(DEFAULT_TIMEZONE), converter=parse_zone)
    days: frozenset[int] = attrs.field(default=frozenset(WEEKDAYS), converter=parse_days)
    continuous: bool = False

    @property
    def overnight(self) -> bool:
        """True when a session opens the calendar day before its trading day."""
        return self.end <= self.start

    @property
    def zone_name(self) -> str:
        return getattr(self.zone, "key", str(self.zone))

    def describe(self) -> str:
        """``"08:30-15:00 America/Chicago Mon-Fri"`` (for logs, reasons and the CLIs)."""
        names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        days = sorted(self.days)
        if not days:
            text = "no days"
        elif len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
            text = f"{names[days[0]]}-{names[days[-1]]}"
        else:
            text = ",".join(names[d] for d in days)
        extra = ", continuous" if self.continuous else ""
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone_name} {text}{extra}"

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """``(open, close)`` (UTC) of trading day ``day``, ignoring ``days`` and holidays."""
        opens_on = day - _DAY if self.overnight else day
        # fold=0 as for the reset: a time in a DST gap is shifted forward, a repeated time is
        # its first occurrence.
        return (datetime.combine(opens_on, self.start, tzinfo=self.zone).astimezone(_UTC),
                datetime.combine(day, self.end, tzinfo=self.zone).astimezone(_UTC))

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


@attrs.frozen
class Closures:
    """Trading days without a session (``closed``) and early closes (trading day -> the instant,
    UTC, at which that day's sessions end at the latest)."""

    closed: frozenset[date] = frozenset()
    early: Mapping[date, datetime] = attrs.field(factory=dict)

    def merged(self, other: Closures) -> Closures:
        """Both sets of dates; the stricter one wins (a closure beats an early close, the earlier
        of two early closes counts)."""
        early = dict(self.early)
        for day, at in other.early.items():
            early[day] = min(at, early[day]) if day in early else at
        return Closures(self.closed | other.closed, early)

    @classmethod
    def from_dates(cls, closed: Iterable[str | date] = (),
                   early: Iterable[tuple[str | date, str | time]] = (),
                   zone: str | tzinfo = DEFAULT_TIMEZONE) -> Closures:
        """From config dates; early close wall times are read in ``zone``."""
        tz = parse_zone(zone)
        out: dict[date, datetime] = {}
        for day, at in early:
            d = parse_date(day)
            instant = datetime.combine(d, parse_hhmm(at), tzinfo=tz).astimezone(_UTC)
            out[d] = min(instant, out[d]) if d in out else instant
        return cls(frozenset(parse_date(d) for d in closed), out)


def _exchange_years(today: date | None = None) -> tuple[int, int]:
    year = (today or date.today()).year
    return min(2020, year - 1), max(2035, year + 5)


def exchange_closures(name: str = DEFAULT_EXCHANGE_CALENDAR,
                      years: tuple[int, int] | None = None) -> Closures:
    """Holidays and early closes of an exchange calendar of ``pandas_market_calendars``.

    ``name`` is one of its calendars (``CME_Equity``: CME Globex equity index futures, ES/NQ/RTY
    and the micros). Computed once per process for ``years`` (default 2020 .. five years ahead)
    and returned as plain data, so rules never import pandas nor read files when they evaluate.
    Raises ValueError for an unknown calendar or when the package is missing.
    """
    first, last = years or _exchange_years()
    return _exchange_closures(name, first, last)


@functools.lru_cache(maxsize=16)
def _exchange_closures(name: str, first: int, last: int) -> Closures:
    try:
        import pandas_market_calendars as mcal
    except ImportError:  # pragma: no cover  (an install_requires of riskd)
        raise ValueError("needs the package pandas_market_calendars (pip install "
                         "pandas_market_calendars), or set it to null to use only your own "
                         "dates") from None
    try:
        cal = mcal.get_calendar(name)
    except Exception:  # noqa: BLE001  (the package raises RuntimeError/KeyError by version)
        import difflib
        close = difflib.get_close_matches(name, mcal.get_calendar_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown exchange calendar {name!r}{hint} (e.g. "
                         f"{DEFAULT_EXCHANGE_CALENDAR})") from None
    schedule = cal.schedule(f"{first}-01-01", f"{last}-12-31")
    trading = {ts.date() for ts in schedule.index}
    closed = set()
    day, end = date(first, 1, 1), date(last, 12, 31)
    while day <= end:
        if day.weekday() < 5 and day not in trading:
            closed.add(day)
        day += _DAY
    early: dict[date, datetime] = {}
    for ts, close in cal.early_closes(schedule)["market_close"].items():
        early[ts.date()] = close.to_pydatetime().astimezone(_UTC)
    return Closures(frozenset(closed), early)


@attrs.frozen
class TradingCalendar:
    """Sessions with their holidays: the default ``session`` and per-instrument ``overrides``
    (symbol root -> Session; roots upper case), all sharing ``closures``.

    Every method takes the moment as an argument and returns aware UTC datetimes (or None when no
    session comes within :data:`HORIZON_DAYS`). Sessions are half-open: in session from ``open``
    (inclusive) to ``close`` (exclusive).
    """

    session: Session = attrs.field(factory=Session)
    overrides: Mapping[str, Session] = attrs.field(factory=dict)
    closures: Closures = attrs.field(factory=Closures)

    def session_for(self, root: str | None = None) -> Session:
        """The session of instrument ``root`` (its override, else the default)."""
        if root is not None:
            return self.overrides.get(root.upper(), self.session)
        return self.session

    def trading_day_closed(self, day: date) -> bool:
        return day in self.closures.closed

    def day_window(self, session: Session, day: date) -> tuple[datetime, datetime] | None:
        """``(open, close)`` of trading day ``day`` after holidays and early closes, or None."""
        if day.weekday() not in session.days or day in self.closures.closed:
            return None
        opens, closes = session.bounds(day)
        early = self.closures.early.get(day)
        if early is not None:
            closes = min(closes, early)
        return (opens, closes) if closes > opens else None

    def _windows(self, session: Session, first: date,
                 days: int = HORIZON_DAYS) -> Iterator[tuple[datetime, datetime, bool]]:
        """Sessions as merged intervals ``(open, close, complete)`` from trading day ``first`` on.

        Intervals that overlap or touch are one session; with ``continuous`` so are those of
        consecutive calendar days (unless the first closed early). ``complete`` is False for the
        last interval when it may go on past the horizon. The first interval's open may be later
        than the real one (trading days before ``first`` are not looked at): callers start two
        days before the moment they ask about, which makes that harmless.
        """
        cur: list | None = None  # [open, close, last trading day, closed early]
        for i in range(days):
            day = first + timedelta(days=i)
            window = self.day_window(session, day)
            if window is None:
                continue
            opens, closes = window
            early = day in self.closures.early and closes == self.closures.early[day]
            if cur is not None and (opens <= cur[1] or (
                    session.continuous and day - cur[2] == _DAY and not cur[3])):
                cur = [cur[0], max(cur[1], closes), day, early]
                continue
            if cur is not None:
                yield cur[0], cur[1], True
            cur = [opens, closes, day, early]
        if cur is not None:
            # It could go on with the next trading day, which was not looked at.
            yield cur[0], cur[1], False

    def in_session(self, moment: datetime, root: str | None = None) -> bool:
        """True when ``moment`` lies inside a session of instrument ``root``."""
        moment = _aware(moment, "moment")
        session = self.session_for(root)
        for opens, closes, _ in self._windows(session, session.local_date(moment) - 2 * _DAY, 5):
            if opens <= moment < closes:
                return True
            if opens > moment:
                break
        return False

    def session_end(self, moment: datetime, root: str | None = None) -> datetime | None:
        """When the session containing ``moment`` closes; None when not in session, or when it
        does not close within the horizon (a 24/7 continuous session)."""
        moment = _aware(moment, "moment")
        session = self.session_for(root)
        for opens, closes, complete in self._windows(session,
                                                     session.local_date(moment) - 2 * _DAY):
            if opens > moment:
                return None
            if moment < closes:
                return closes if complete else None
        return None

    def next_start(self, after: datetime, root: str | None = None) -> datetime | None:
        """The first session open strictly after ``after`` (None: none within the horizon)."""
        after = _aware(after, "after")
        session = self.session_for(root)
        for opens, _closes, _ in self._windows(session, session.local_date(after) - 2 * _DAY):
            if opens > after:
                return opens
        return None

    def next_end(self, after: datetime, root: str | None = None) -> datetime | None:
        """The close of the session containing ``after``, else of the next session."""
        after = _aware(after, "after")
        session = self.session_for(root)
        for _opens, closes, complete in self._windows(session,
                                                      session.local_date(after) - 2 * _DAY):
            if closes > after:
                return closes if complete else None
        return None

    def last_end(self, moment: datetime, root: str | None = None,
                 within: timedelta = timedelta(days=2)) -> datetime | None:
        """The latest session close at or before ``moment``, if it is at most ``within`` ago."""
        moment = _aware(moment, "moment")
        session = self.session_for(root)
        first = session.local_date(moment - within) - 2 * _DAY
        span = (session.local_date(moment) - first).days + 3
        best = None
        for _opens, closes, _ in self._windows(session, first, span):
            if closes <= moment and moment - closes <= within:
                best = closes
        return best

    def holidays_between(self, first: date, last: date) -> list[date]:
        """Closed trading days in ``[first, last]`` (for the trader CLI's next-7-days list)."""
        return sorted(d for d in self.closures.closed if first <= d <= last)
