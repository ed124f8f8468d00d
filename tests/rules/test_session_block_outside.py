"""009 SessionBlockOutside against rules-spec section 2 (a-i), 4 and 8.

Session 08:30-15:00 America/Chicago Monday-Friday, the config's holidays of rules-spec section 6
(2025-01-01, 2025-01-20, 2025-07-04, 2025-12-25; early close 2025-11-26 13:00) merged with the CME
equity futures calendar, grace 60 s. Assertions are on what the broker is asked to do and on the
account's locks.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from risk_actors import messages as m
from risk_actors.config import ConfigError, make_converter, parse_config
from risk_actors.pipeline import lockout_guard
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.session_block_outside import Params, SessionBlockOutside

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
SPEC_HOLIDAYS = {"holidays": ["2025-01-01", "2025-01-20", "2025-07-04", "2025-12-25"],
                 "early_closes": [{"date": "2025-11-26", "close_time": "13:00"}]}
ES_OVERNIGHT = {"per_instrument_sessions": {"ES": {"start": "18:00", "end": "17:00",
                                                   "timezone": "America/Chicago"}}}
TUESDAY = (2025, 1, 14)


def make_tester(start: datetime, **params) -> RuleTester:
    return RuleTester(SessionBlockOutside, {**SPEC_HOLIDAYS, **params}, start=start)


def assert_flattened_and_locked(r, until: datetime | None) -> None:
    assert r.broker_actions == (m.FlattenAccount(),)  # close all + cancel all
    assert len(r.locks) == 1
    lock = r.locks[0]
    assert (lock.scope, lock.until_reset) == ("account", False)
    assert lock.kind == (m.LOCK_HARD if until else m.LOCK_INDEFINITE)
    assert lock.expires_at == until
    assert r.state.account_locked(r.now)
    assert r.lock_expiry == until


def assert_nothing(r) -> None:
    assert r.violation is None
    assert r.broker_actions == () and r.locks == ()
    assert not r.state.account_locked(r.now)


# ---- (a) (b) ------------------------------------------------------------------------------------
def test_position_at_tuesday_1000_ct_when_in_session_then_no_action():
    # Arrange
    t = make_tester(ct(*TUESDAY, 10, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_nothing(r)
    assert r.verdict.wake_at == ct(*TUESDAY, 15, 0)  # woken at the close


def test_position_at_tuesday_1630_ct_when_outside_session_then_flatten_and_lock_until_wed_0830():
    # Arrange
    t = make_tester(ct(*TUESDAY, 16, 30))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 15, 8, 30))
    assert "outside the trading session" in r.violation.reason
    assert any(a.severity == "critical" for _, a in r.plan.alerts)


def test_position_at_0829_59_when_session_opens_at_0830_then_breach_and_0830_is_in_session():
    # Arrange
    early = make_tester(ct(*TUESDAY, 8, 29, 59))
    on_time = make_tester(ct(*TUESDAY, 8, 30))
    # Act
    r_early, r_on_time = early.position("MNQ", 1), on_time.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r_early, until=ct(*TUESDAY, 8, 30))
    assert_nothing(r_on_time)


# ---- (c) ----------------------------------------------------------------------------------------
def test_position_open_at_close_when_grace_ends_then_flatten_and_lock_until_next_session():
    # Arrange: long 2 MNQ from 14:50
    t = make_tester(ct(*TUESDAY, 14, 50))
    t.position("MNQ", 2)
    # Act
    at_close = t.at(ct(*TUESDAY, 15, 0))
    in_grace = t.at(ct(*TUESDAY, 15, 0, 59))
    grace_end = t.at(ct(*TUESDAY, 15, 1))
    # Assert
    assert at_close.broker_actions == () and at_close.locks == ()
    assert at_close.verdict.wake_at == ct(*TUESDAY, 15, 1)  # close + 60 s
    assert in_grace.broker_actions == ()
    assert_flattened_and_locked(grace_end, until=ct(2025, 1, 15, 8, 30))


def test_position_closed_during_grace_when_grace_ends_then_nothing():
    # Arrange
    t = make_tester(ct(*TUESDAY, 14, 50))
    t.position("MNQ", 2)
    t.at(ct(*TUESDAY, 15, 0))
    # Act
    smaller = t.position("MNQ", 1)
    flat = t.position("MNQ", 0)
    r = t.at(ct(*TUESDAY, 15, 1))
    # Assert
    assert smaller.broker_actions == () and flat.broker_actions == ()
    assert_nothing(r)
    assert r.state.rule_memory.get("session_block_outside") is None  # notes dropped after grace


def test_position_increased_during_grace_when_evaluated_then_breach_at_once():
    # Arrange
    t = make_tester(ct(*TUESDAY, 14, 50))
    t.position("MNQ", 1)
    t.at(ct(*TUESDAY, 15, 0))
    # Act
    r = t.position("MNQ", 2)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 15, 8, 30))


def test_new_position_during_grace_when_flat_at_close_then_breach_at_once():
    # Arrange
    t = make_tester(ct(*TUESDAY, 14, 50))
    t.at(ct(*TUESDAY, 15, 0))
    # Act
    r = t.position("ES", 1)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 15, 8, 30))


def test_grace_zero_when_position_open_at_close_then_flatten_at_close():
    # Arrange
    t = make_tester(ct(*TUESDAY, 14, 50), session_close_grace=0)
    t.position("MNQ", 1)
    # Act
    r = t.at(ct(*TUESDAY, 15, 0))
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 15, 8, 30))


# ---- (d) ----------------------------------------------------------------------------------------
def test_position_open_at_friday_close_when_grace_ends_then_locked_until_monday_0830():
    # Arrange
    t = make_tester(ct(2025, 1, 10, 14, 0))
    t.position("MNQ", 1)
    t.at(ct(2025, 1, 10, 15, 0))
    # Act
    r = t.at(ct(2025, 1, 10, 15, 1))
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 13, 8, 30))


def test_friday_close_before_monday_holiday_2025_01_20_then_locked_until_tuesday_0830():
    # Arrange
    t = make_tester(ct(2025, 1, 17, 16, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 21, 8, 30))


def test_position_on_saturday_when_weekend_then_locked_until_monday_0830():
    # Arrange
    t = make_tester(ct(2025, 1, 11, 11, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 13, 8, 30))


# ---- (e) ----------------------------------------------------------------------------------------
def test_position_on_christmas_2025_at_1000_then_flatten_and_lock_until_friday_0830():
    # Arrange
    t = make_tester(ct(2025, 12, 25, 10, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 12, 26, 8, 30))
    assert "holiday (2025-12-25)" in r.violation.reason


def test_christmas_when_only_the_exchange_calendar_is_used_then_still_a_holiday():
    # Arrange: no dates of our own; CME_Equity knows Christmas
    t = RuleTester(SessionBlockOutside, {}, start=ct(2025, 12, 25, 10, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 12, 26, 8, 30))


def test_christmas_when_respect_holidays_false_then_an_ordinary_thursday():
    # Arrange
    t = make_tester(ct(2025, 12, 25, 10, 0), respect_holidays=False)
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_nothing(r)


def test_christmas_when_holiday_calendar_null_and_own_dates_then_own_dates_count():
    # Arrange: 2026-01-19 (MLK) is an early close in CME_Equity; not a holiday of ours here
    t_own = make_tester(ct(2025, 12, 25, 10, 0), holiday_calendar=None)
    t_mlk = make_tester(ct(2026, 1, 19, 13, 0), holiday_calendar=None)
    # Act
    r_own, r_mlk = t_own.position("MNQ", 1), t_mlk.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r_own, until=ct(2025, 12, 26, 8, 30))
    assert_nothing(r_mlk)


def test_exchange_early_close_when_mlk_2026_then_session_ends_1200_ct():
    # Arrange: CME equity futures halt at 12:00 CT on Martin Luther King Day
    t = RuleTester(SessionBlockOutside, {}, start=ct(2026, 1, 19, 11, 0))
    t.position("MNQ", 1)
    t.at(ct(2026, 1, 19, 12, 0))
    # Act
    r = t.at(ct(2026, 1, 19, 12, 1))
    # Assert
    assert_flattened_and_locked(r, until=ct(2026, 1, 20, 8, 30))


# ---- (f) ----------------------------------------------------------------------------------------
def test_early_close_2025_11_26_when_position_open_at_1300_then_flatten_after_grace():
    # Arrange
    t = make_tester(ct(2025, 11, 26, 12, 0))
    before = t.position("MNQ", 1)
    # Act
    at_1259 = t.at(ct(2025, 11, 26, 12, 59))
    at_1301 = t.at(ct(2025, 11, 26, 13, 1))
    # Assert: Thanksgiving (27th) opens at 08:30 (CME closes it early at 12:00)
    assert before.verdict.wake_at == ct(2025, 11, 26, 13, 0)
    assert at_1259.broker_actions == ()
    assert_flattened_and_locked(at_1301, until=ct(2025, 11, 27, 8, 30))


# ---- (g) ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("when", [ct(2025, 1, 13, 10, 0), ct(2025, 1, 13, 20, 0),
                                  ct(2025, 1, 12, 18, 0), ct(2025, 1, 17, 16, 59)],
                         ids=["monday-1000", "monday-2000", "sunday-1800", "friday-1659"])
def test_es_position_when_es_override_sun_1800_to_fri_1700_and_inside_then_no_action(when):
    # Arrange
    t = make_tester(when, **ES_OVERNIGHT)
    # Act
    r = t.position("ES", 1)
    # Assert
    assert_nothing(r)


def test_es_position_on_saturday_when_es_override_then_locked_until_sunday_1800():
    # Arrange
    t = make_tester(ct(2025, 1, 11, 12, 0), **ES_OVERNIGHT)
    # Act
    r = t.position("ES", 1)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 12, 18, 0))


def test_mnq_position_at_monday_2000_when_only_es_overridden_then_locked_until_0830():
    # Arrange: ES is open, MNQ follows the default 08:30-15:00
    t = make_tester(ct(2025, 1, 13, 20, 0), **ES_OVERNIGHT)
    t.position("ES", 1)
    # Act
    r = t.position("MNQ", 1)
    # Assert: close all (ES too) and lock until MNQ's next session
    assert_flattened_and_locked(r, until=ct(2025, 1, 14, 8, 30))


def test_es_position_at_default_close_when_es_overridden_then_kept():
    # Arrange
    t = make_tester(ct(*TUESDAY, 14, 0), **ES_OVERNIGHT)
    t.position("ES", 1)
    t.at(ct(*TUESDAY, 15, 0))
    # Act
    r = t.at(ct(*TUESDAY, 15, 1))
    # Assert
    assert_nothing(r)
    assert r.verdict.wake_at == ct(*TUESDAY, 17, 0)  # ES closes at 17:00


def test_es_during_daily_pause_when_not_continuous_then_breach_and_when_continuous_then_kept():
    # Arrange: Monday 17:30, between the 17:00 close and the 18:00 open
    daily = make_tester(ct(2025, 1, 13, 17, 30), **ES_OVERNIGHT)
    cont = make_tester(ct(2025, 1, 13, 17, 30), per_instrument_sessions={
        "ES": {"start": "18:00", "end": "17:00", "continuous": True}})
    # Act
    r_daily, r_cont = daily.position("ES", 1), cont.position("ES", 1)
    # Assert
    assert_flattened_and_locked(r_daily, until=ct(2025, 1, 13, 18, 0))
    assert_nothing(r_cont)


def test_unknown_root_when_es_open_and_default_closed_then_wait_for_metadata_and_judge_by_it():
    # Arrange: Monday 20:00, no contract metadata yet (the position could be ES or not)
    t = RuleTester(SessionBlockOutside, {**SPEC_HOLIDAYS, **ES_OVERNIGHT},
                   start=ct(2025, 1, 13, 20, 0), contracts={})
    es_pos, mnq_pos = t.position(ES, 1), t.position(MNQ, 1)
    # Act
    known = t.send(m.ContractsKnown(1, (CONTRACTS["ES"], CONTRACTS["MNQ"])))
    # Assert: never breach on missing data; once known, MNQ is outside its session
    assert es_pos.broker_actions == () and mnq_pos.broker_actions == ()
    assert_flattened_and_locked(known, until=ct(2025, 1, 14, 8, 30))
    assert known.violation.data["contracts"] == [MNQ]


def test_unknown_root_when_every_session_is_closed_then_breach_at_once():
    # Arrange: Saturday, ES override closed too
    t = RuleTester(SessionBlockOutside, {**SPEC_HOLIDAYS, **ES_OVERNIGHT},
                   start=ct(2025, 1, 11, 12, 0), contracts={})
    # Act
    r = t.position(ES, 1)
    # Assert: locked until the later of the next starts (Monday 08:30, not Sunday 18:00)
    assert_flattened_and_locked(r, until=ct(2025, 1, 13, 8, 30))


# ---- (h) ----------------------------------------------------------------------------------------
def test_working_order_outside_session_when_no_position_then_cancel_that_order_only():
    # Arrange
    t = make_tester(ct(*TUESDAY, 16, 30))
    # Act
    r = t.order("MNQ", order_id=77, type=m.ORDER_LIMIT, side=m.SIDE_BUY, limit_price=20900.0)
    # Assert
    assert r.broker_actions == (m.CancelOrder(77),)
    assert r.locks == ()
    assert not r.state.account_locked(r.now)


def test_working_order_inside_session_then_no_action():
    # Arrange
    t = make_tester(ct(*TUESDAY, 10, 0))
    # Act
    r = t.order("MNQ", order_id=77, type=m.ORDER_LIMIT, side=m.SIDE_BUY, limit_price=20900.0)
    # Assert
    assert_nothing(r)


def test_working_order_left_at_close_when_grace_ends_then_cancelled_without_lock():
    # Arrange: a resting buy limit at 14:00, still working after the close
    t = make_tester(ct(*TUESDAY, 14, 0))
    t.order("MNQ", order_id=78, type=m.ORDER_LIMIT, side=m.SIDE_BUY, limit_price=20900.0)
    in_grace = t.at(ct(*TUESDAY, 15, 0, 30))
    # Act
    r = t.at(ct(*TUESDAY, 15, 1))
    # Assert
    assert in_grace.broker_actions == ()
    assert r.broker_actions == (m.CancelOrder(78),)
    assert r.locks == ()


# ---- (i) DST ------------------------------------------------------------------------------------
def test_breach_on_summer_saturday_then_lock_expires_at_1330_utc():
    # Arrange
    t = make_tester(ct(2025, 7, 12, 10, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=datetime(2025, 7, 14, 13, 30, tzinfo=timezone.utc))


def test_breach_on_winter_saturday_then_lock_expires_at_1430_utc():
    # Arrange
    t = make_tester(ct(2025, 1, 11, 10, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=datetime(2025, 1, 13, 14, 30, tzinfo=timezone.utc))


def test_breach_friday_before_dst_starts_then_lock_expires_monday_0830_cdt():
    # Arrange: clocks go forward Sunday 2026-03-08
    t = make_tester(ct(2026, 3, 6, 16, 0))
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=datetime(2026, 3, 9, 13, 30, tzinfo=timezone.utc))


# ---- locks, restarts, config ---------------------------------------------------------------------
def test_fill_while_locked_when_guarded_then_closed_by_core_and_rule_adds_nothing():
    # Arrange
    t = make_tester(ct(*TUESDAY, 16, 30))
    t.position("MNQ", 1)
    t.position("MNQ", 0)  # the enforcer closed it
    before = t.state
    event = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, None, t.now)
    # Act
    r = t.send(event)
    # Assert
    assert lockout_guard(event, before, r.state, r.now) == (m.ClosePosition(MNQ),
                                                            m.CancelOrders(MNQ))
    assert r.broker_actions == () and r.locks == ()
    assert r.lock_expiry == ct(2025, 1, 15, 8, 30)


def test_position_left_open_while_locked_when_timer_fires_then_flattened_again():
    # Arrange: the flatten at 16:30 did not go through (the broker refused the close)
    t = make_tester(ct(*TUESDAY, 16, 30))
    first = t.position("MNQ", 1)
    reduced = t.position("MNQ", 1)  # any update while locked: only a quick re-check is planned
    # Act
    r = t.advance(5)
    # Assert
    assert first.broker_actions == (m.FlattenAccount(),)
    assert reduced.broker_actions == ()
    assert reduced.verdict.wake_at == ct(*TUESDAY, 16, 30, 5)
    assert r.broker_actions == (m.FlattenAccount(),)
    assert r.locks == ()  # the lock stays as it was
    assert r.lock_expiry == ct(2025, 1, 15, 8, 30)


def test_lock_when_next_session_starts_then_expired_and_trading_allowed():
    # Arrange
    t = make_tester(ct(*TUESDAY, 16, 30))
    t.position("MNQ", 1)
    t.position("MNQ", 0)
    # Act
    r = t.at(ct(2025, 1, 15, 8, 30))
    opened = t.position("MNQ", 1)
    # Assert
    assert not r.state.account_locked(r.now)
    assert_nothing(opened)


def test_restart_outside_session_with_position_when_reconciled_then_flatten_and_lock():
    # Arrange
    t = make_tester(ct(*TUESDAY, 18, 0))
    snapshot = m.Reconciled(1, m.AccountEvent(1, "TEST", 50_000.0, True),
                            positions=(m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0),),
                            orders=(), trades=())
    # Act
    r = t.send(snapshot)
    # Assert
    assert_flattened_and_locked(r, until=ct(2025, 1, 15, 8, 30))


def test_no_allowed_days_when_position_then_flatten_and_lock_without_expiry():
    # Arrange: a session on no day (the e2e scenario's setting)
    t = make_tester(ct(*TUESDAY, 10, 0), session={"allowed_days": []})
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert_flattened_and_locked(r, until=None)
    assert "no session ahead" in r.violation.reason


def test_tick_without_positions_or_orders_then_only_a_wake_up():
    # Arrange
    t = make_tester(ct(*TUESDAY, 16, 30))
    # Act
    r = t.tick()
    # Assert
    assert_nothing(r)
    assert r.verdict.wake_at == ct(2025, 1, 15, 15, 0)


def test_shadow_mode_when_breach_then_recorded_and_nothing_enforced():
    # Arrange
    t = RuleTester(SessionBlockOutside, SPEC_HOLIDAYS, start=ct(*TUESDAY, 16, 30), mode="shadow")
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert r.violation is not None
    assert r.broker_actions == () and r.locks == ()


def test_params_when_loaded_from_config_then_calendar_built_and_errors_name_field_and_value():
    # Arrange
    conv = make_converter()
    raw = {"version": 2, "broker": {"api_url": "http://127.0.0.1:1/api",
                                    "user_hub_url": "http://127.0.0.1:1/hubs/user",
                                    "market_hub_url": "http://127.0.0.1:1/hubs/market",
                                    "username": "u", "api_key": "k"},
           "accounts": [{"id": 1}],
           "rules": {"session_block_outside": {
               "session": {"start": "25:00", "timezone": "America/Chicgo"},
               "per_instrument_sessions": {"ES": {"allowed_days": [0, 9]}},
               "early_closes": [{"date": "2025-11-26", "close_time": 1300}]}}}
    registry = {"session_block_outside": SessionBlockOutside}
    # Act
    params = conv.structure({"per_instrument_sessions": {"es": {"start": "18:00",
                                                                "end": "17:00"}}}, Params)
    with pytest.raises(ConfigError) as info:
        parse_config(raw, registry, "riskd.yaml")
    # Assert
    assert params.calendar.session_for("ES").overnight
    assert params.calendar.session_for("MNQ") == params.calendar.session
    problems = {(p.path, p.value): p.message for p in info.value.problems}
    assert set(problems) == {
        ("rules.session_block_outside.session.start", "'25:00'"),
        ("rules.session_block_outside.session.timezone", "'America/Chicgo'"),
        ("rules.session_block_outside.per_instrument_sessions.ES.allowed_days", "[0, 9]"),
        ("rules.session_block_outside.early_closes[0].close_time", "1300")}
    assert "did you mean America/Chicago" in problems[
        ("rules.session_block_outside.session.timezone", "'America/Chicgo'")]


@pytest.mark.parametrize("params, path, value", [
    ({"holidays": ["2025-02-30"]}, "holidays", "['2025-02-30']"),
    ({"session_close_grace": -5}, "session_close_grace", "-5"),
    ({"holiday_calendar": "CME_Equty"}, "holiday_calendar", "'CME_Equty'"),
    ({"calendar": "CME_Equity"}, "calendar", None),
], ids=["bad-date", "negative-grace", "unknown-calendar", "unknown-key"])
def test_invalid_param_when_loaded_then_error_names_field_and_value(params, path, value):
    # Arrange
    raw = {"version": 2, "broker": {"api_url": "http://127.0.0.1:1/api",
                                    "user_hub_url": "http://127.0.0.1:1/hubs/user",
                                    "market_hub_url": "http://127.0.0.1:1/hubs/market",
                                    "username": "u", "api_key": "k"},
           "accounts": [{"id": 1}], "rules": {"session_block_outside": params}}
    # Act
    with pytest.raises(ConfigError) as info:
        parse_config(raw, {"session_block_outside": SessionBlockOutside}, "riskd.yaml")
    # Assert
    (problem,) = info.value.problems
    assert (problem.path, problem.value) == (f"rules.session_block_outside.{path}", value)
