"""Sessions, holidays and early closes of the trading calendar (risk_actors.calendar).

Examples pin the rules-spec 009 facts (08:30 CT = 13:30 UTC in summer, 14:30 UTC in winter; the ES
overnight session; holidays and early closes, from the CME calendar and from config); properties
prove that "in session", "session end" and "next session start" always agree with each other.
"""

from __future__ import annotations

import pickle
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from risk_actors.calendar import (Closures, Session, TradingCalendar, exchange_closures,
                                  parse_date, parse_days)

UTC = timezone.utc
CT = ZoneInfo("America/Chicago")
RTH = Session()  # 08:30-15:00 America/Chicago, Monday-Friday
ES = Session("18:00", "17:00", "America/Chicago")  # type: ignore[arg-type]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ct(*args: int) -> datetime:
    return datetime(*args, tzinfo=CT).astimezone(UTC)


def cal(session: Session = RTH, closures: Closures = Closures(), **overrides) -> TradingCalendar:
    return TradingCalendar(session, overrides, closures)


# ---------------------------------------------------------------------------------------------
# day sessions and DST
def test_session_open_is_1330_utc_in_summer_and_1430_utc_in_winter():
    c = cal()
    assert c.next_start(utc(2025, 7, 15, 0, 0)) == utc(2025, 7, 15, 13, 30)
    assert c.next_start(utc(2025, 1, 15, 0, 0)) == utc(2025, 1, 15, 14, 30)
    assert c.in_session(utc(2025, 7, 15, 13, 30)) and not c.in_session(utc(2025, 7, 15, 13, 29))
    assert c.in_session(utc(2025, 1, 15, 14, 30)) and not c.in_session(utc(2025, 1, 15, 14, 29))


def test_session_is_half_open_and_ends_at_1500_local():
    c = cal()
    assert c.in_session(ct(2025, 1, 14, 14, 59, 59))
    assert not c.in_session(ct(2025, 1, 14, 15, 0))
    assert c.session_end(ct(2025, 1, 14, 10, 0)) == ct(2025, 1, 14, 15, 0)
    assert c.session_end(ct(2025, 1, 14, 16, 0)) is None
    assert c.last_end(ct(2025, 1, 14, 15, 0, 30)) == ct(2025, 1, 14, 15, 0)


def test_friday_close_next_start_is_monday_across_the_spring_forward_weekend():
    c = cal()
    assert c.next_start(ct(2026, 3, 6, 15, 0)) == utc(2026, 3, 9, 13, 30)   # CDT from the 8th
    assert c.next_start(ct(2026, 10, 30, 15, 0)) == utc(2026, 11, 2, 14, 30)  # CST from the 1st


def test_start_inside_a_dst_gap_is_shifted_forward_and_never_skipped():
    night = Session("02:30", "04:00", "America/Chicago", days=[6])  # type: ignore[arg-type]
    c = cal(night)
    # Sunday 2026-03-08: 02:00 -> 03:00 CDT; 02:30 does not exist, opens 03:30 CDT
    assert c.next_start(ct(2026, 3, 7, 12, 0)) == utc(2026, 3, 8, 8, 30)
    # Sunday 2026-11-01: 01:00-02:00 happens twice; 02:30 is after the repeat (CST)
    assert c.next_start(ct(2026, 10, 31, 12, 0)) == utc(2026, 11, 1, 8, 30)


# ---------------------------------------------------------------------------------------------
# overnight sessions and overrides
def test_es_overnight_session_from_sunday_1800_to_friday_1700_with_daily_pause():
    c = cal(ES)
    assert c.next_start(ct(2025, 1, 11, 12, 0)) == ct(2025, 1, 12, 18, 0)  # Saturday -> Sunday
    for moment in (ct(2025, 1, 12, 18, 0), ct(2025, 1, 13, 10, 0), ct(2025, 1, 13, 20, 0),
                   ct(2025, 1, 17, 16, 59)):
        assert c.in_session(moment), moment
    for moment in (ct(2025, 1, 11, 12, 0), ct(2025, 1, 12, 17, 59), ct(2025, 1, 13, 17, 30),
                   ct(2025, 1, 17, 17, 0), ct(2025, 1, 17, 20, 0)):
        assert not c.in_session(moment), moment
    assert c.session_end(ct(2025, 1, 13, 20, 0)) == ct(2025, 1, 14, 17, 0)


def test_continuous_es_session_has_no_daily_pause_and_ends_friday():
    c = cal(Session("18:00", "17:00", "America/Chicago", continuous=True))  # type: ignore[arg-type]
    assert c.in_session(ct(2025, 1, 13, 17, 30))
    assert c.session_end(ct(2025, 1, 13, 17, 30)) == ct(2025, 1, 17, 17, 0)
    assert c.next_start(ct(2025, 1, 13, 17, 30)) == ct(2025, 1, 19, 18, 0)


def test_continuous_session_is_broken_by_a_holiday_and_by_an_early_close():
    closures = Closures.from_dates(["2025-12-25"], [("2025-12-24", "12:00")])
    c = cal(Session("18:00", "17:00", "America/Chicago", continuous=True),  # type: ignore[arg-type]
            closures)
    assert c.session_end(ct(2025, 12, 22, 10, 0)) == ct(2025, 12, 24, 12, 0)
    assert not c.in_session(ct(2025, 12, 24, 13, 0))
    assert c.next_start(ct(2025, 12, 24, 12, 0)) == ct(2025, 12, 25, 18, 0)  # Friday's session


def test_overrides_apply_by_root_case_insensitively_and_others_use_the_default():
    c = cal(ES=ES)
    assert c.session_for("es") is ES and c.session_for("MNQ") is RTH and c.session_for(None) is RTH
    assert c.in_session(ct(2025, 1, 13, 20, 0), "ES")
    assert not c.in_session(ct(2025, 1, 13, 20, 0), "MNQ")


def test_twenty_four_hour_session_when_start_equals_end_is_joined_across_days():
    c = cal(Session("17:00", "17:00", "America/Chicago"))  # type: ignore[arg-type]
    assert c.in_session(ct(2025, 1, 14, 3, 0))
    assert c.session_end(ct(2025, 1, 14, 3, 0)) == ct(2025, 1, 17, 17, 0)


def test_no_allowed_days_means_never_in_session():
    c = cal(Session(days=[]))  # type: ignore[arg-type]
    assert not c.in_session(ct(2025, 1, 14, 10, 0))
    assert c.next_start(ct(2025, 1, 14, 10, 0)) is None
    assert c.next_end(ct(2025, 1, 14, 10, 0)) is None


# ---------------------------------------------------------------------------------------------
# holidays and early closes
def test_config_holiday_on_monday_moves_next_start_to_tuesday():
    c = cal(closures=Closures.from_dates(["2025-01-20"]))
    assert c.next_start(ct(2025, 1, 17, 15, 0)) == ct(2025, 1, 21, 8, 30)
    assert c.trading_day_closed(date(2025, 1, 20))
    assert c.holidays_between(date(2025, 1, 14), date(2025, 1, 21)) == [date(2025, 1, 20)]


def test_config_early_close_ends_that_session_at_1300():
    c = cal(closures=Closures.from_dates(early=[("2025-11-26", "13:00")]))
    assert c.session_end(ct(2025, 11, 26, 10, 0)) == ct(2025, 11, 26, 13, 0)
    assert not c.in_session(ct(2025, 11, 26, 13, 0))


def test_early_close_before_the_open_removes_that_session():
    c = cal(closures=Closures.from_dates(early=[("2025-04-18", "08:15")]))
    assert c.next_start(ct(2025, 4, 17, 16, 0)) == ct(2025, 4, 21, 8, 30)


def test_merged_closures_keep_the_stricter_of_both():
    a = Closures.from_dates(["2025-07-04"], [("2025-11-28", "12:15")])
    b = Closures.from_dates([], [("2025-11-28", "12:00"), ("2025-07-04", "12:00")])
    merged = a.merged(b)
    assert merged.closed == {date(2025, 7, 4)}
    assert merged.early[date(2025, 11, 28)] == ct(2025, 11, 28, 12, 0)
    assert cal(closures=merged).next_start(ct(2025, 7, 3, 16, 0)) == ct(2025, 7, 7, 8, 30)


def test_cme_equity_calendar_knows_2025_closures_and_early_closes():
    closures = exchange_closures("CME_Equity")
    assert {date(2025, 1, 1), date(2025, 1, 9), date(2025, 12, 25)} <= closures.closed
    assert date(2025, 1, 20) not in closures.closed  # MLK: an early close at 12:00 CT
    assert closures.early[date(2025, 1, 20)] == ct(2025, 1, 20, 12, 0)
    assert closures.early[date(2025, 11, 27)] == ct(2025, 11, 27, 12, 0)
    assert closures.early[date(2025, 12, 24)] == ct(2025, 12, 24, 12, 0)
    assert not any(d.weekday() >= 5 for d in closures.closed)
    assert exchange_closures("CME_Equity") is closures  # computed once per process


def test_calendar_built_from_package_data_pickles_as_plain_data():
    c = cal(closures=exchange_closures(), ES=ES)
    assert pickle.loads(pickle.dumps(c)) == c


def test_unknown_exchange_calendar_is_a_value_error_naming_close_matches():
    with pytest.raises(ValueError, match="did you mean .*CME_Equity"):
        exchange_closures("CME_Equty")


@pytest.mark.parametrize("bad", ["2025-13-01", "25-12-2025", 20251225, None,
                                 datetime(2025, 12, 25, 10, 0)])
def test_parse_date_rejects_what_is_not_a_calendar_date(bad):
    with pytest.raises(ValueError):
        parse_date(bad)


@pytest.mark.parametrize("bad", [[7], [-1], ["Mon"], [True], "01234", 5])
def test_parse_days_rejects_what_is_not_a_weekday_number(bad):
    with pytest.raises(ValueError):
        parse_days(bad)


def test_naive_moment_is_refused():
    with pytest.raises(ValueError, match="aware"):
        cal().in_session(datetime(2025, 1, 14, 10, 0))


def test_describe_names_hours_zone_and_days():
    assert RTH.describe() == "08:30-15:00 America/Chicago Mon-Fri"
    assert Session(days=[0, 2]).describe().endswith("Mon,Wed")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# properties
ZONES = ["America/Chicago", "America/New_York", "UTC", "Europe/London", "Australia/Sydney",
         "Asia/Kolkata"]
minutes = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
sessions = st.builds(Session, start=minutes, end=minutes, zone=st.sampled_from(ZONES),
                     days=st.sets(st.integers(0, 6), min_size=1), continuous=st.booleans())
days_2025 = st.dates(date(2024, 12, 1), date(2026, 2, 1))
closures_st = st.builds(
    lambda closed, early: Closures.from_dates(closed, early),
    st.lists(days_2025, max_size=6),
    st.lists(st.tuples(days_2025, minutes.map(lambda t: f"{t:%H:%M}")), max_size=4))
# moments: anywhere in 2025, and near the US/EU/AU DST changes
transitions = [utc(2025, 3, 9, 8), utc(2025, 11, 2, 7), utc(2025, 3, 30, 1), utc(2025, 10, 26, 1),
               utc(2025, 4, 5, 16), utc(2025, 10, 4, 16)]
moments = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2025, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC)),
    st.tuples(st.sampled_from(transitions), st.integers(-3 * 86400, 3 * 86400)).map(
        lambda p: p[0] + timedelta(seconds=p[1])))


@settings(max_examples=300, deadline=None)
@given(session=sessions, closures=closures_st, moment=moments)
def test_property_next_start_is_in_the_future_and_inside_a_session(session, closures, moment):
    c = cal(session, closures)
    start = c.next_start(moment)
    assume(start is not None)
    assert start > moment
    assert c.in_session(start)
    assert not c.in_session(start - timedelta(microseconds=1))  # a real opening


@settings(max_examples=300, deadline=None)
@given(session=sessions, closures=closures_st, moment=moments, frac=st.floats(0, 1))
def test_property_in_session_agrees_with_session_end_and_next_start(session, closures, moment,
                                                                     frac):
    c = cal(session, closures)
    start = c.next_start(moment)
    if c.in_session(moment):
        end = c.session_end(moment)
        if end is not None:
            assert end > moment
            assert not c.in_session(end)
            inside = moment + (end - moment) * frac
            assert inside == end or c.in_session(inside)  # (frac near 1 may round to end)
            assert start is None or start > end
            assert c.next_end(moment) == end
    else:
        assert c.session_end(moment) is None
        if start is not None:
            between = moment + (start - moment) * frac
            assert between == start or not c.in_session(between)
            end = c.next_end(moment)
            assert end is None or end > start
            last = c.last_end(moment)
            assert last is None or (last <= moment and not c.in_session(last))
