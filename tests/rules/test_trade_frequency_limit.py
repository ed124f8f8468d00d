"""006 TradeFrequencyLimit against rules-spec sections 2 (a-f), 4 and 8 (count, close_positions).

Limits 3 / minute, 10 / hour, 50 / session; cooldowns 60 s / 30 m / 1 h; window (now - 60 s, now]
keyed by each trade's creationTimestamp. Assertions are on the locks the rule starts and on what
the broker is asked to do (nothing, unless ``close_positions``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.config import make_converter
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.trade_frequency_limit import (Params, TradeFrequencyLimit, in_window, parse_duration,
                                         trade_times, window_count)

MNQ = CONTRACTS["MNQ"].contract_id
T0 = ct(2026, 11, 24, 10, 0)  # Tuesday 10:00 CT; the next reset is 17:00 CT


def make_tester(start: datetime = T0, **params) -> RuleTester:
    return RuleTester(TradeFrequencyLimit, params, start=start)


def trades_at(t: RuleTester, *seconds: float, pnl: float | None = None, start: datetime = T0):
    """One fill at each offset (seconds after ``start``), the clock moved to each first."""
    out = []
    for s in seconds:
        t.clock.set(start + timedelta(seconds=s))
        out.append(t.trade(pnl))
    return out


def messages(exc: BaseException) -> list[str]:
    """Every leaf message of a (nested) cattrs validation error."""
    if hasattr(exc, "exceptions"):
        return [msg for inner in exc.exceptions for msg in messages(inner)]
    return [str(exc)]


def assert_cooldown(r, until: datetime) -> None:
    assert r.broker_actions == ()  # a cooldown, no close (rules-spec section 8)
    assert len(r.locks) == 1
    lock = r.locks[0]
    assert (lock.kind, lock.scope, lock.until_reset) == (m.LOCK_COOLDOWN, "account", False)
    assert lock.expires_at == until
    assert r.state.account_locked(r.now)
    assert r.lock_expiry == until


# ---- (a) -----------------------------------------------------------------------------------------
def test_trades_at_0_10_20_then_30_when_3_per_minute_then_cooldown_until_90_and_no_close():
    # Arrange
    t = make_tester()
    first = trades_at(t, 0, 10, 20)
    # Act
    r = trades_at(t, 30)[0]
    # Assert
    assert all(x.violation is None and x.locks == () for x in first)
    assert r.violation.data["window"] == "minute" and r.violation.data["count"] == 4
    assert_cooldown(r, T0 + timedelta(seconds=90))
    assert any(a.severity == "warning" for _, a in r.plan.alerts)


def test_fourth_trade_when_first_is_exactly_60_s_old_then_outside_window_and_no_action():
    # Arrange: the window is (now - 60 s, now]; a trade at now - 60 s has left it
    t = make_tester()
    trades_at(t, 0, 10, 20)
    # Act
    r = trades_at(t, 60)[0]
    # Assert
    assert r.violation is None and r.locks == ()


def test_fourth_trade_when_first_is_59_999_s_old_then_inside_window_and_breach():
    # Arrange
    t = make_tester()
    trades_at(t, 0, 10, 20)
    # Act
    r = trades_at(t, 59.999)[0]
    # Assert
    assert_cooldown(r, T0 + timedelta(seconds=119.999))


# ---- (b) -----------------------------------------------------------------------------------------
def test_trades_at_0_10_20_70_when_3_per_minute_then_window_holds_20_and_70_and_no_action():
    # Arrange
    t = make_tester()
    # Act
    results = trades_at(t, 0, 10, 20, 70)
    # Assert
    assert all(r.violation is None and r.locks == () for r in results)
    assert window_count(trade_times(results[-1].state.trades.values(), "fills", t.now),
                        t.now, 60) == 2


# ---- (c) -----------------------------------------------------------------------------------------
def test_eleventh_trade_at_47_min_when_10_per_hour_then_30_min_cooldown():
    # Arrange: 10 trades 5 minutes apart (0 .. 45 min): never 4 in a minute, 10 in the hour
    t = make_tester()
    first = trades_at(t, *(i * 300 for i in range(10)))
    # Act
    r = trades_at(t, 47 * 60)[0]
    # Assert
    assert all(x.violation is None for x in first)
    assert r.violation.data["window"] == "hour" and r.violation.data["count"] == 11
    assert_cooldown(r, T0 + timedelta(minutes=47 + 30))


# ---- (d) -----------------------------------------------------------------------------------------
def test_fifty_first_trade_since_reset_when_50_per_session_then_1_hour_cooldown():
    # Arrange: from 18:00 CT (after the 17:00 reset), one trade every 7 minutes: at most 9 an hour
    start = ct(2026, 11, 24, 18, 0)
    t = make_tester(start=start)
    first = trades_at(t, *(i * 420 for i in range(50)), start=start)
    # Act
    r = trades_at(t, 50 * 420, start=start)[0]
    # Assert
    assert all(x.violation is None for x in first)
    assert r.violation.data["window"] == "session" and r.violation.data["count"] == 51
    assert_cooldown(r, r.now + timedelta(hours=1))


def test_session_breach_when_per_session_breach_until_reset_then_hard_lock_until_reset():
    # Arrange: small limits; the reset is 17:00 CT today
    t = make_tester(limits={"per_minute": 2, "per_hour": 3, "per_session": 3},
                    cooldowns={"per_session_breach": "until_reset"})
    trades_at(t, 0, 1200, 2400)
    # Act
    r = trades_at(t, 3600)[0]  # the 4th of the session; the first left the hour window
    reset = t.at(ct(2026, 11, 24, 17, 0))
    # Assert
    lock = r.locks[0]
    assert (lock.kind, lock.until_reset) == (m.LOCK_HARD, True)
    assert r.lock_expiry == ct(2026, 11, 24, 17, 0)
    assert not reset.state.account_locked(reset.now)


# ---- (e) -----------------------------------------------------------------------------------------
def test_minute_and_hour_both_breached_when_fourth_trade_in_a_minute_then_longest_cooldown():
    # Arrange: 3 a minute and 3 an hour: the 4th trade within a minute breaches both
    t = make_tester(limits={"per_minute": 3, "per_hour": 3, "per_session": 50})
    trades_at(t, 0, 10, 20)
    # Act
    r = trades_at(t, 30)[0]
    # Assert: 30 minutes, not 60 seconds
    assert r.violation.data["window"] == "hour"
    assert "4 trades this hour (limit 3)" in r.violation.reason
    assert_cooldown(r, T0 + timedelta(seconds=30, minutes=30))


def test_all_three_breached_when_session_until_reset_then_lock_until_reset_wins():
    # Arrange
    t = make_tester(limits={"per_minute": 1, "per_hour": 1, "per_session": 1},
                    cooldowns={"per_session_breach": "until_reset"})
    trades_at(t, 0)
    # Act
    r = trades_at(t, 5)[0]
    # Assert
    assert r.violation.data["window"] == "session"
    assert r.lock_expiry == ct(2026, 11, 24, 17, 0)


def test_voided_trade_when_fourth_in_a_minute_then_not_counted():
    # Arrange
    t = make_tester()
    trades_at(t, 0, 10, 20)
    t.clock.set(T0 + timedelta(seconds=30))
    # Act
    r = t.trade(-50, voided=True)
    # Assert
    assert r.violation is None and r.locks == ()


def test_counted_trade_when_same_id_arrives_voided_then_drops_out_of_the_window():
    # Arrange
    t = make_tester()
    trades_at(t, 0, 10)
    t.clock.set(T0 + timedelta(seconds=20))
    t.trade(None, trade_id=77)
    t.trade(None, trade_id=77, voided=True)
    t.clock.set(T0 + timedelta(seconds=30))
    # Act: without the void this would be the 4th in the minute
    r = t.trade(None)
    # Assert
    assert r.violation is None and r.locks == ()


def test_same_trade_id_when_delivered_twice_then_counted_once():
    # Arrange
    t = make_tester()
    trades_at(t, 0, 10)
    t.clock.set(T0 + timedelta(seconds=20))
    t.trade(None, trade_id=5)
    # Act
    r = t.trade(None, trade_id=5)
    # Assert
    assert r.violation is None and r.locks == ()


# ---- (f) -----------------------------------------------------------------------------------------
def test_daily_reset_when_cooldown_running_then_session_count_zero_and_cooldown_not_shortened():
    # Arrange: 3 per session, 1 h cooldown; the 4th trade at 16:40 CT locks until 17:40 CT
    start = ct(2026, 11, 24, 16, 30)
    t = make_tester(start=start, limits={"per_minute": 3, "per_hour": 3, "per_session": 3})
    trades_at(t, 0, 60, 120, start=start)
    breach = trades_at(t, 600, start=start)[0]
    # Act
    at_reset = t.at(ct(2026, 11, 24, 17, 0))
    t.at(ct(2026, 11, 24, 17, 41))
    after = t.trade(None)
    # Assert
    assert breach.lock_expiry == ct(2026, 11, 24, 17, 40)
    assert at_reset.state.trades == {}
    assert at_reset.state.account_locked(at_reset.now)
    assert at_reset.lock_expiry == ct(2026, 11, 24, 17, 40)
    assert after.violation is None and after.locks == ()


# ---- count, close_positions (section 8) ----------------------------------------------------------
def test_opening_and_closing_fills_when_count_fills_then_both_count():
    # Arrange
    t = make_tester(count="fills")
    trades_at(t, 0, pnl=None)
    trades_at(t, 10, pnl=20.0)
    trades_at(t, 20, pnl=None)
    # Act
    r = trades_at(t, 30, pnl=-10.0)[0]
    # Assert
    assert_cooldown(r, T0 + timedelta(seconds=90))


def test_opening_fills_when_count_round_trips_then_only_closing_trades_count():
    # Arrange: 3 opening + 3 closing fills in one minute
    t = make_tester(count="round_trips")
    results = []
    for i, pnl in enumerate((None, 20.0, None, -10.0, None, 5.0)):
        results += trades_at(t, i * 5, pnl=pnl)
    # Act: the 4th closing trade
    r = trades_at(t, 40, pnl=-5.0)[0]
    # Assert
    assert all(x.violation is None for x in results)
    assert r.violation.data["count"] == 4
    assert_cooldown(r, T0 + timedelta(seconds=100))


def test_breach_when_close_positions_true_then_flatten_and_cooldown():
    # Arrange
    t = make_tester(close_positions=True)
    t.position("MNQ", 1, avg=21000.0)
    trades_at(t, 0, 10, 20)
    # Act
    r = trades_at(t, 30)[0]
    # Assert
    assert r.broker_actions == (m.FlattenAccount(),)
    assert r.locks[0].kind == m.LOCK_COOLDOWN
    assert r.lock_expiry == T0 + timedelta(seconds=90)


def test_breach_when_position_open_and_close_positions_false_then_rule_asks_no_close():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    trades_at(t, 0, 10, 20)
    # Act
    r = trades_at(t, 30)[0]
    # Assert: the rule itself closes nothing (what the core's lockout guard does is its own)
    assert r.broker_actions == ()
    assert len(r.locks) == 1


# ---- trades during a cooldown --------------------------------------------------------------------
def test_trade_during_cooldown_when_it_breaches_again_then_cooldown_extended_from_now():
    # Arrange: cooldown 30 -> 90 s
    t = make_tester()
    trades_at(t, 0, 10, 20, 30)
    # Act: the trader trades anyway at 50 s (5 in the minute)
    r = trades_at(t, 50)[0]
    # Assert
    assert_cooldown(r, T0 + timedelta(seconds=110))


def test_trade_during_longer_lock_when_it_breaches_again_then_nothing_new():
    # Arrange: 5 trades in the session (limit 4) lock until the 17:00 reset
    t = make_tester(limits={"per_minute": 3, "per_hour": 4, "per_session": 4},
                    cooldowns={"per_session_breach": "until_reset"})
    trades_at(t, 0, 600, 1200, 1800, 2400)
    # Act: three more within the minute (4 in the minute, 8 in the session)
    results = trades_at(t, 2410, 2420, 2430)
    # Assert: 60 s, 30 min and "until reset" all end no later than the running lock
    assert all(r.violation is None and r.locks == () for r in results)
    assert results[-1].lock_expiry == ct(2026, 11, 24, 17, 0)


def test_cooldown_when_60_s_have_passed_then_unlocked_and_next_trade_judged_afresh():
    # Arrange
    t = make_tester()
    trades_at(t, 0, 10, 20, 30)
    # Act
    before = t.at(T0 + timedelta(seconds=89))
    expired = t.at(T0 + timedelta(seconds=90))
    r = trades_at(t, 95)[0]  # window (35, 95]: only this trade
    # Assert
    assert before.state.account_locked(before.now)
    assert not expired.state.account_locked(expired.now)
    assert r.violation is None


# ---- reconnect / restart (Reconciled) ------------------------------------------------------------
def _replay(t: RuleTester, *seconds_ago: float) -> m.Reconciled:
    return m.Reconciled(1, m.AccountEvent(1, "TEST", 50_000.0, True), (), (), tuple(
        m.TradeEvent(1, 1000 + i, MNQ, t.now - timedelta(seconds=s), 21000.0, None, 0.0,
                     m.SIDE_BUY, 1) for i, s in enumerate(seconds_ago)))


def test_reconnect_when_missed_trades_breached_20_s_ago_then_cooldown_from_breaching_trade():
    # Arrange: 4 trades at now-50 .. now-20 happened while riskd was disconnected
    t = make_tester()
    t.clock.set(T0 + timedelta(seconds=300))
    # Act
    r = t.send(_replay(t, 50, 40, 30, 20))
    # Assert: the 4th (now - 20 s) called for a cooldown until now + 40 s
    assert_cooldown(r, t.now + timedelta(seconds=40))


def test_reconnect_when_cooldown_called_for_is_already_over_then_no_new_lock():
    # Arrange: 4 trades 10 minutes ago
    t = make_tester()
    t.clock.set(T0 + timedelta(hours=1))
    # Act
    r = t.send(_replay(t, 630, 620, 610, 600))
    # Assert
    assert r.violation is None and r.locks == ()


def test_reconnect_when_session_limit_was_passed_hours_ago_then_not_relocked():
    # Arrange: a 51-trade day whose 1 h cooldown ended long ago
    start = ct(2026, 11, 24, 18, 0)
    t = make_tester(start=start)
    trades_at(t, *(i * 420 for i in range(51)), start=start)
    t.clock.set(t.now + timedelta(hours=2))
    # Act: the hub dropped and riskd reconciled: same trades again
    r = t.send(m.Reconciled(1, m.AccountEvent(1, "TEST", 50_000.0, True), (), (), ()))
    # Assert
    assert r.violation is None and r.locks == ()
    assert not r.state.account_locked(r.now)


def test_reconnect_when_own_cooldown_still_running_then_nothing_new():
    # Arrange
    t = make_tester()
    trades_at(t, 0, 10, 20, 30)
    t.clock.set(T0 + timedelta(seconds=40))
    # Act
    r = t.send(m.Reconciled(1, None, (), (), ()))
    # Assert
    assert r.violation is None and r.lock_expiry == T0 + timedelta(seconds=90)


# ---- clock skew ----------------------------------------------------------------------------------
def test_trade_stamped_ahead_of_our_clock_when_fourth_in_minute_then_counted_as_now():
    # Arrange: the broker's clock runs 5 s ahead of ours
    t = make_tester()
    for s in (0, 10, 20):
        t.clock.set(T0 + timedelta(seconds=s))
        t.trade(None, at=t.now + timedelta(seconds=5))
    t.clock.set(T0 + timedelta(seconds=30))
    # Act
    r = t.trade(None, at=t.now + timedelta(seconds=5))
    # Assert
    assert_cooldown(r, T0 + timedelta(seconds=90))


# ---- config --------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, field", [
    ({"limits": {"per_minute": 12}}, "per_hour"),
    ({"limits": {"per_hour": 60, "per_session": 40}}, "per_session"),
    ({"limits": {"per_minute": 0}}, "per_minute"),
    ({"cooldowns": {"per_minute_breach": "60"}}, "per_minute_breach"),
    ({"cooldowns": {"per_hour_breach": "until_reset"}}, "per_hour_breach"),
    ({"cooldowns": {"per_session_breach": "0s"}}, "per_session_breach"),
])
def test_params_when_invalid_then_rejected_naming_the_field(raw, field):
    # Act
    with pytest.raises(Exception) as info:
        make_converter().structure(raw, Params)
    # Assert
    assert any(msg.startswith(field) for msg in messages(info.value)), messages(info.value)


def test_params_when_defaults_then_3_10_50_and_60s_30m_1h():
    # Act
    p = make_converter().structure({}, Params)
    # Assert
    assert (p.limits.per_minute, p.limits.per_hour, p.limits.per_session) == (3, 10, 50)
    assert [parse_duration(d) for d in (p.cooldowns.per_minute_breach, p.cooldowns.per_hour_breach,
                                        p.cooldowns.per_session_breach)] == [60, 1800, 3600]
    assert (p.count, p.close_positions) == ("fills", False)


@pytest.mark.parametrize("text, seconds", [("60s", 60), ("30m", 1800), ("1h", 3600), (" 5s ", 5)])
def test_parse_duration_when_valid_then_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["60", "1d", "-5s", "0m", "1.5h", "", "h"])
def test_parse_duration_when_invalid_then_value_error(text):
    with pytest.raises(ValueError):
        parse_duration(text)


# ---- properties ----------------------------------------------------------------------------------
offsets = st.integers(-200_000, 5_000)  # ms relative to now (positive: the broker's clock ahead)


@settings(max_examples=300, deadline=None)
@given(ms=offsets)
def test_property_trade_in_minute_window_iff_now_minus_60_lt_ts_le_now(ms):
    now = T0
    ts = now + timedelta(milliseconds=ms)
    assert in_window(ts, now, 60) == (now - timedelta(seconds=60) < ts <= now)
    assert in_window(ts, now, 60) == (-60_000 < ms <= 0)


@settings(max_examples=300, deadline=None)
@given(offs=st.lists(offsets, max_size=30), span=st.sampled_from([60, 3600]))
def test_property_window_count_equals_brute_force_with_future_stamps_as_now(offs, span):
    now = T0
    records = [m.TradeEvent(1, i, MNQ, now + timedelta(milliseconds=o), 0.0, None, 0.0, 0, 1)
               for i, o in enumerate(offs)]
    times = trade_times(records, "fills", now)
    expected = sum(1 for r in records if in_window(min(r.created, now), now, span))
    assert window_count(times, now, span) == expected
    assert window_count(times, now, None) == len(records)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 40), st.booleans(), st.booleans()),
                      min_size=1, max_size=40),
       per_minute=st.integers(1, 4))
def test_property_cooldown_expiry_never_shortened_while_active(steps, per_minute):
    # Arrange: random trades (gap in seconds, voided?, closing?) under small limits
    t = make_tester(limits={"per_minute": per_minute, "per_hour": per_minute + 2,
                            "per_session": per_minute + 6},
                    cooldowns={"per_minute_breach": "20s", "per_hour_breach": "45s",
                               "per_session_breach": "90s"})
    previous = None
    for gap, voided, closing in steps:
        t.clock.advance(gap)
        # Act
        r = t.trade(-1.0 if closing else None, voided=voided)
        # Assert
        expiry = r.lock_expiry
        if previous is not None and previous > r.now:  # a lock was still running
            assert expiry is not None and expiry >= previous
        if r.violation is not None:
            assert r.lock_expiry >= r.now + timedelta(seconds=20)
        previous = expiry


# ---- usage (status display) ----------------------------------------------------------------------
def test_usage_when_two_trades_this_minute_then_counts_per_window():
    # Arrange
    t = make_tester()
    trades_at(t, 0, 70, 80)
    # Act
    usage = t.rule.usage(t.state, t.now)
    # Assert
    assert [(u.label, u.value, u.limit) for u in usage] == [
        ("trades this minute", 2, 3), ("trades this hour", 3, 10), ("trades this session", 3, 50)]
