"""The trading calendar: daily reset instants across DST, trading-day naming, missed resets."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_actors.calendar import (ResetSchedule, last_reset, next_reset, parse_hhmm, parse_zone,
                                  reset_missed, trading_day)
from risk_actors.config.schema import DailyResetConfig, TimersConfig

UTC = timezone.utc
CT = ZoneInfo("America/Chicago")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ct(*args: int) -> datetime:
    return datetime(*args, tzinfo=CT)


# ---------------------------------------------------------------------------------------------
# next_reset / last_reset: fixed examples
def test_next_reset_in_summer_is_2200_utc():
    assert next_reset(utc(2025, 7, 1, 12, 0)) == utc(2025, 7, 1, 22, 0)


def test_next_reset_in_winter_is_2300_utc():
    assert next_reset(utc(2025, 1, 15, 12, 0)) == utc(2025, 1, 15, 23, 0)


def test_next_reset_after_todays_reset_is_tomorrows():
    assert next_reset(utc(2025, 7, 1, 22, 0, 1)) == utc(2025, 7, 2, 22, 0)


def test_next_reset_exactly_at_a_reset_is_the_following_one():
    assert next_reset(utc(2025, 7, 1, 22, 0)) == utc(2025, 7, 2, 22, 0)


def test_last_reset_exactly_at_a_reset_is_that_reset():
    assert last_reset(utc(2025, 7, 1, 22, 0)) == utc(2025, 7, 1, 22, 0)


def test_last_reset_just_before_a_reset_is_the_previous_day():
    assert last_reset(utc(2025, 7, 1, 21, 59, 59)) == utc(2025, 6, 30, 22, 0)


def test_spring_forward_trading_day_is_23_hours():
    # US DST starts Sunday 2025-03-09 02:00 CT: Saturday's reset is CST, Sunday's CDT.
    saturday = next_reset(utc(2025, 3, 8, 12, 0))
    sunday = next_reset(saturday)
    assert (saturday, sunday) == (utc(2025, 3, 8, 23, 0), utc(2025, 3, 9, 22, 0))
    assert sunday - saturday == timedelta(hours=23)


def test_fall_back_trading_day_is_25_hours():
    # US DST ends Sunday 2025-11-02 02:00 CT.
    saturday = next_reset(utc(2025, 11, 1, 12, 0))
    sunday = next_reset(saturday)
    assert (saturday, sunday) == (utc(2025, 11, 1, 22, 0), utc(2025, 11, 2, 23, 0))
    assert sunday - saturday == timedelta(hours=25)


def test_moment_inside_the_dst_change_night_resets_at_the_new_offset():
    assert next_reset(utc(2025, 3, 9, 8, 30)) == utc(2025, 3, 9, 22, 0)  # 03:30 CDT
    assert next_reset(utc(2025, 11, 2, 6, 30)) == utc(2025, 11, 2, 23, 0)  # 01:30 CDT (1st)
    assert next_reset(utc(2025, 11, 2, 7, 30)) == utc(2025, 11, 2, 23, 0)  # 01:30 CST (2nd)


def test_reset_time_missing_on_spring_forward_day_runs_shifted_by_the_gap():
    # 02:30 does not exist on 2025-03-09 in Chicago: the reset runs at 03:30 CDT, not skipped.
    at = next_reset(utc(2025, 3, 9, 5, 0), at="02:30")
    assert at == utc(2025, 3, 9, 8, 30)
    assert at.astimezone(CT).time() == time(3, 30)


def test_reset_time_repeated_on_fall_back_day_runs_at_its_first_occurrence():
    at = next_reset(utc(2025, 11, 2, 5, 0), at="01:30")
    assert at == utc(2025, 11, 2, 6, 30)  # 01:30 CDT, the first one
    assert next_reset(at, at="01:30") == utc(2025, 11, 3, 7, 30)  # no second reset that night


def test_other_zone_and_time():
    # SR's variant: 17:00 America/New_York, an hour before 17:00 Chicago.
    assert next_reset(utc(2025, 7, 1, 12, 0), tz="America/New_York") == utc(2025, 7, 1, 21, 0)
    assert next_reset(utc(2025, 7, 1, 12, 0), at=time(18, 15), tz=ZoneInfo("Europe/London")) \
        == utc(2025, 7, 1, 17, 15)


def test_non_utc_aware_input_gives_the_same_instant():
    moment = utc(2025, 7, 1, 12, 0)
    assert next_reset(moment.astimezone(CT)) == next_reset(moment)
    assert next_reset(moment).tzinfo == UTC


def test_naive_datetime_is_rejected():
    with pytest.raises(ValueError, match="aware"):
        next_reset(datetime(2025, 7, 1, 12, 0))
    with pytest.raises(ValueError, match="aware"):
        reset_missed(datetime(2025, 7, 1), utc(2025, 7, 2))


# ---------------------------------------------------------------------------------------------
# trading_day
def test_trading_day_before_the_reset_is_today():
    assert trading_day(ct(2025, 7, 7, 16, 59, 59)) == date(2025, 7, 7)


def test_trading_day_from_the_reset_on_is_tomorrow():
    assert trading_day(ct(2025, 7, 7, 17, 0)) == date(2025, 7, 8)
    assert trading_day(ct(2025, 7, 7, 23, 59)) == date(2025, 7, 8)
    assert trading_day(ct(2025, 7, 8, 0, 1)) == date(2025, 7, 8)


def test_sunday_evening_session_is_mondays_trading_day():
    assert trading_day(ct(2025, 7, 6, 18, 0)) == date(2025, 7, 7)


def test_trading_day_with_a_morning_reset_keeps_its_start_date():
    assert trading_day(ct(2025, 7, 7, 0, 0), at="00:00") == date(2025, 7, 7)
    assert trading_day(ct(2025, 7, 7, 23, 59), at="00:00") == date(2025, 7, 7)


def test_day_bounds_are_the_resets_around_the_trading_day():
    sched = ResetSchedule()
    start, end = sched.day_bounds(date(2025, 3, 9))
    assert (start, end) == (utc(2025, 3, 8, 23, 0), utc(2025, 3, 9, 22, 0))
    assert sched.trading_day(start) == date(2025, 3, 9)
    assert sched.trading_day(end - timedelta(microseconds=1)) == date(2025, 3, 9)
    assert sched.trading_day(end) == date(2025, 3, 10)


# ---------------------------------------------------------------------------------------------
# reset_missed
def test_reset_missed_when_none_on_record():
    assert reset_missed(None, utc(2025, 7, 1, 12, 0)) is True


def test_reset_not_missed_within_the_same_trading_day():
    last = utc(2025, 7, 1, 22, 0)
    assert reset_missed(last, utc(2025, 7, 2, 21, 59)) is False


def test_reset_missed_when_down_across_the_reset():
    # riskd stopped at 21:00 UTC on the 1st (before the 22:00 reset), restarted the next morning.
    last = utc(2025, 6, 30, 22, 0)
    assert reset_missed(last, utc(2025, 7, 2, 9, 0)) is True


def test_reset_missed_exactly_at_the_boundary():
    assert reset_missed(utc(2025, 6, 30, 22, 0), utc(2025, 7, 1, 22, 0)) is True


def test_reset_missed_compares_times_not_days():
    # A reset recorded late (riskd ran it at start-up, 23:30 UTC) still counts for that day.
    assert reset_missed(utc(2025, 7, 1, 23, 30), utc(2025, 7, 2, 12, 0)) is False


# ---------------------------------------------------------------------------------------------
# ResetSchedule and parsing
def test_schedule_from_timers_config():
    sched = ResetSchedule.from_config(TimersConfig(DailyResetConfig("16:30", "America/New_York")))
    assert sched.at == time(16, 30)
    assert sched.zone_name == "America/New_York"
    assert sched.describe() == "16:30 America/New_York"
    assert sched.next_reset(utc(2025, 7, 1, 12, 0)) == utc(2025, 7, 1, 20, 30)


def test_schedule_default_is_1700_chicago():
    assert ResetSchedule() == ResetSchedule.parse("17:00", "America/Chicago")


@pytest.mark.parametrize("text, expected", [("17:00", time(17)), ("8:30", time(8, 30)),
                                            ("00:00", time(0)), ("23:59", time(23, 59))])
def test_parse_hhmm_accepts(text, expected):
    assert parse_hhmm(text) == expected


@pytest.mark.parametrize("value, fragment", [
    ("24:00", "hours 00-23"), ("17:60", "minutes 00-59"), ("5pm", "HH:MM"), ("17:00:00", "HH:MM"),
    ("", "HH:MM"), (1020, "quoted"), (None, "quoted"),
])
def test_parse_hhmm_rejects_with_what_is_allowed(value, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_hhmm(value)


def test_parse_zone_suggests_close_names():
    with pytest.raises(ValueError, match="did you mean America/Chicago"):
        parse_zone("America/Chicgo")


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "America", "../etc/passwd", "/etc/localtime"])
def test_parse_zone_rejects_non_iana_names(name):
    with pytest.raises(ValueError, match="IANA"):
        parse_zone(name)


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError):
        ResetSchedule.parse("25:00")
    with pytest.raises(ValueError):
        ResetSchedule.parse("17:00", "Nowhere/Town")


# ---------------------------------------------------------------------------------------------
# properties
ZONES = ["America/Chicago", "America/New_York", "Europe/London", "Australia/Sydney",
         "Australia/Lord_Howe", "Asia/Kolkata", "UTC", "Pacific/Chatham", "America/Santiago",
         "America/Havana", "Asia/Beirut"]
instants = st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2060, 1, 1),
                        timezones=st.just(UTC))
reset_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))


def _is_reset_instant(result: datetime, at: time, zone: ZoneInfo) -> bool:
    day = result.astimezone(zone).date()
    return any(datetime.combine(d, at, tzinfo=zone).astimezone(UTC) == result
               for d in (day, day - timedelta(days=1)))


@given(after=instants, zone=st.sampled_from(ZONES))
def test_property_next_1700_reset_is_after_within_25h_and_at_1700_local(after, zone):
    result = next_reset(after, "17:00", zone)
    assert after < result <= after + timedelta(hours=25)
    local = result.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute, local.second, local.microsecond) == (17, 0, 0, 0)
    assert result.tzinfo == UTC


@given(after=instants, zone=st.sampled_from(ZONES), at=reset_times)
def test_property_any_reset_time_is_next_and_a_real_reset(after, zone, at):
    z = ZoneInfo(zone)
    result = next_reset(after, at, z)
    assert after < result <= after + timedelta(hours=25)
    assert _is_reset_instant(result, at, z)
    # No reset is skipped between `after` and the result.
    assert last_reset(result - timedelta(microseconds=1), at, z) <= after


@given(moment=instants, zone=st.sampled_from(ZONES), at=reset_times)
@settings(max_examples=200)
def test_property_last_and_next_bracket_the_moment_and_agree(moment, zone, at):
    sched = ResetSchedule.parse(at, zone)
    start, end = sched.last_reset(moment), sched.next_reset(moment)
    assert start <= moment < end
    assert sched.next_reset(start) == end
    assert sched.trading_day(start) == sched.trading_day(moment)
    assert sched.trading_day(end) == sched.trading_day(moment) + timedelta(days=1)
    assert sched.day_bounds(sched.trading_day(moment)) == (start, end)
    assert not sched.reset_missed(start, moment)
    assert sched.reset_missed(start - timedelta(microseconds=1), moment)
