"""007 CooldownAfterLoss against rules-spec sections 2, 4 and 8.

Tiers -100 -> 300 s, -200 -> 900 s, -300 -> 1800 s. A single trade's P&L at or below a tier
closes everything (``FlattenAccount`` = close all + cancel all), then starts a cooldown lock; a
new loss during a cooldown makes it end at max(current expiry, now + tier).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.config import make_converter
from risk_actors.pipeline import lockout_guard
from risk_actors.state import LocksAdded, reduce
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.cooldown_after_loss import (CooldownAfterLoss, Params, Tier, tier_for, trade_figure)

MNQ = CONTRACTS["MNQ"].contract_id
T0 = ct(2026, 11, 24, 10, 0)
TIERS = [{"loss_amount": -100, "cooldown_duration": 300},
         {"loss_amount": -200, "cooldown_duration": 900},
         {"loss_amount": -300, "cooldown_duration": 1800}]


def make_tester(start: datetime = T0, **params) -> RuleTester:
    return RuleTester(CooldownAfterLoss, {"loss_thresholds": TIERS, **params}, start=start)


def assert_flattened_and_cooling(r, seconds: float) -> None:
    assert r.broker_actions == (m.FlattenAccount(),)  # close all + cancel all, then the lock
    assert len(r.locks) == 1
    lock = r.locks[0]
    assert (lock.kind, lock.scope, lock.until_reset) == (m.LOCK_COOLDOWN, "account", False)
    assert r.state.account_locked(r.now)
    assert r.lock_expiry == r.now + timedelta(seconds=seconds)


def assert_nothing(r) -> None:
    assert r.violation is None
    assert r.broker_actions == () and r.locks == ()


# ---- the tiers (rules-spec 007) ------------------------------------------------------------------
def test_loss_minus75_when_smallest_tier_minus100_then_nothing():
    assert_nothing(make_tester().trade(-75))


def test_loss_exactly_minus100_when_tier_minus100_then_flatten_and_300_s_cooldown():
    # Act
    r = make_tester().trade(-100.00)
    # Assert
    assert r.violation.data["tier"] == -100 and r.violation.data["seconds"] == 300
    assert_flattened_and_cooling(r, 300)
    assert any(a.severity == "warning" for _, a in r.plan.alerts)


def test_loss_minus99_99_when_tier_minus100_then_nothing():
    assert_nothing(make_tester().trade(-99.99))


@pytest.mark.parametrize("pnl, seconds", [(-150, 300), (-200, 900), (-250, 900), (-300, 1800),
                                          (-350, 1800), (-5000, 1800)])
def test_loss_when_it_reaches_several_tiers_then_largest_tier_wins(pnl, seconds):
    # Act
    r = make_tester().trade(pnl)
    # Assert
    assert_flattened_and_cooling(r, seconds)


def test_tiers_when_written_in_any_order_then_same_choice():
    # Arrange
    t = make_tester(loss_thresholds=list(reversed(TIERS)))
    # Act
    r = t.trade(-250)
    # Assert
    assert_flattened_and_cooling(r, 900)


# ---- nothing happens -----------------------------------------------------------------------------
def test_opening_half_turn_when_pnl_null_then_nothing():
    assert_nothing(make_tester().trade(None, side=m.SIDE_BUY, fees=5.0))


def test_profit_when_plus200_then_nothing():
    assert_nothing(make_tester().trade(200))


def test_voided_loss_when_minus500_then_nothing():
    assert_nothing(make_tester().trade(-500, voided=True))


def test_counted_loss_when_same_id_arrives_voided_then_cooldown_not_shortened():
    # Arrange
    t = make_tester()
    t.trade(-150, trade_id=9)
    # Act
    r = t.trade(-150, trade_id=9, voided=True)
    # Assert
    assert_nothing(r)
    assert r.lock_expiry == T0 + timedelta(seconds=300)


# ---- fees ----------------------------------------------------------------------------------------
def test_loss_minus99_with_fees_when_include_fees_false_then_profit_and_loss_only():
    assert_nothing(make_tester().trade(-99.0, fees=1.24))


def test_loss_minus99_with_fees_when_include_fees_true_then_trade_fees_subtracted():
    # Act: -99.00 - 1.24 = -100.24
    r = make_tester(include_fees=True).trade(-99.0, fees=1.24)
    # Assert
    assert r.violation.data["pnl"] == -100.24
    assert_flattened_and_cooling(r, 300)


def test_trade_figure_when_cents_then_exact():
    assert trade_figure(-99.9, 0.1, True) == -100.0
    assert trade_figure(-0.1, 0.2, False) == -0.1


# ---- a new loss during a cooldown ----------------------------------------------------------------
def test_new_bigger_loss_during_cooldown_when_tier_longer_then_expiry_now_plus_new_tier():
    # Arrange: -150 at 10:00 -> until 10:05
    t = make_tester()
    t.trade(-150)
    t.advance(120)
    # Act: -250 at 10:02 -> until 10:17
    r = t.trade(-250)
    # Assert
    assert_flattened_and_cooling(r, 900)


def test_new_small_loss_late_in_cooldown_when_now_plus_tier_later_then_extended():
    # Arrange: -150 at 10:00 -> until 10:05
    t = make_tester()
    t.trade(-150)
    t.advance(200)
    # Act: -120 at 10:03:20 -> until 10:08:20
    r = t.trade(-120)
    # Assert
    assert_flattened_and_cooling(r, 300)


def test_new_small_loss_during_long_cooldown_when_now_plus_tier_earlier_then_not_shortened():
    # Arrange: -350 at 10:00 -> until 10:30
    t = make_tester()
    t.trade(-350)
    t.advance(60)
    # Act: -100 at 10:01 would end at 10:06
    r = t.trade(-100)
    # Assert: max(10:30, 10:06) = 10:30, nothing new to do
    assert_nothing(r)
    assert r.lock_expiry == T0 + timedelta(seconds=1800)


def test_cooldown_when_expired_then_unlocked_and_next_loss_starts_a_new_one():
    # Arrange
    t = make_tester()
    t.trade(-150)
    # Act
    before = t.at(T0 + timedelta(seconds=299))
    after = t.at(T0 + timedelta(seconds=300))
    again = t.trade(-150)
    # Assert
    assert before.state.account_locked(before.now)
    assert not after.state.account_locked(after.now)
    assert_flattened_and_cooling(again, 300)


def test_fill_during_cooldown_when_guarded_then_closed_by_lockout_guard():
    # Arrange
    t = make_tester()
    t.trade(-150)
    t.advance(30)
    before = t.state
    event = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, None, t.now)
    # Act
    r = t.send(event)
    # Assert
    assert m.ClosePosition(MNQ) in lockout_guard(event, before, r.state, r.now)


def test_other_rules_lock_when_running_then_007_still_starts_its_own_cooldown():
    # Arrange: a 006 cooldown is running
    t = make_tester()
    t.state = reduce(t.state, LocksAdded("trade_frequency_limit", (
        m.Lock(m.LOCK_COOLDOWN, "freq", T0 + timedelta(seconds=60)),)), t.now)
    # Act
    r = t.trade(-150)
    # Assert
    assert_flattened_and_cooling(r, 300)


# ---- reconnect / restart (Reconciled) ------------------------------------------------------------
def _replay(t: RuleTester, *trades: tuple[float, float | None, bool]) -> m.Reconciled:
    return m.Reconciled(1, m.AccountEvent(1, "TEST", 50_000.0, True), (), (), tuple(
        m.TradeEvent(1, 500 + i, MNQ, t.now - timedelta(seconds=ago), 21000.0, pnl, 0.0,
                     m.SIDE_SELL, 1, voided) for i, (ago, pnl, voided) in enumerate(trades)))


def test_reconnect_when_loss_booked_100_s_ago_while_disconnected_then_rest_of_cooldown():
    # Arrange
    t = make_tester()
    # Act: -150 (300 s tier) booked 100 s ago
    r = t.send(_replay(t, (100, -150.0, False), (50, 30.0, False), (40, None, False)))
    # Assert
    assert r.broker_actions == (m.FlattenAccount(),)
    assert r.lock_expiry == t.now + timedelta(seconds=200)


def test_reconnect_when_loss_cooldown_already_over_then_nothing():
    # Arrange
    t = make_tester()
    # Act
    r = t.send(_replay(t, (400, -150.0, False), (10, -500.0, True)))
    # Assert: the -150 cooldown ended 100 s ago; the -500 is voided
    assert_nothing(r)


def test_reconnect_when_own_cooldown_still_running_then_nothing_new():
    # Arrange
    t = make_tester()
    t.trade(-150)
    t.advance(10)
    # Act
    r = t.send(m.Reconciled(1, None, (), (), ()))
    # Assert
    assert_nothing(r)
    assert r.lock_expiry == T0 + timedelta(seconds=300)


# ---- config --------------------------------------------------------------------------------------
def test_params_when_defaults_then_spec_tiers_and_profit_and_loss_only():
    # Act
    p = make_converter().structure({}, Params)
    # Assert
    assert p.loss_thresholds == (Tier(-100.0, 300), Tier(-200.0, 900), Tier(-300.0, 1800))
    assert p.include_fees is False


@pytest.mark.parametrize("tiers", [
    [],
    [{"loss_amount": 100, "cooldown_duration": 300}],
    [{"loss_amount": -100, "cooldown_duration": 0}],
    [{"loss_amount": -100, "cooldown_duration": "5m"}],
    [{"loss_amount": -100}],
    [{"loss_amount": -100, "cooldown_duration": 300},
     {"loss_amount": -100, "cooldown_duration": 900}],      # the same loss twice
    [{"loss_amount": -100, "cooldown_duration": 900},
     {"loss_amount": -200, "cooldown_duration": 300}],      # a bigger loss, a shorter cooldown
])
def test_params_when_tiers_invalid_then_rejected(tiers):
    with pytest.raises(Exception):
        make_converter().structure({"loss_thresholds": tiers}, Params)


# ---- properties ----------------------------------------------------------------------------------
tier_st = st.lists(st.tuples(st.integers(-100_000, -1), st.integers(1, 7200)), min_size=1,
                   max_size=6, unique_by=lambda x: x[0])


@settings(max_examples=300, deadline=None)
@given(raw=tier_st, a=st.integers(-200_000, 50_000), b=st.integers(-200_000, 50_000))
def test_property_tier_selection_monotone_bigger_loss_never_shorter_cooldown(raw, a, b):
    # Arrange: any tiers, any order (monotone configs or not: selection must stay monotone)
    tiers = [Tier(c / 100, d) for c, d in raw]
    big, small = min(a, b) / 100, max(a, b) / 100
    # Act
    t_big, t_small = tier_for(big, tiers), tier_for(small, tiers)
    # Assert
    if t_small is not None:
        assert t_big is not None and t_big.cooldown_duration >= t_small.cooldown_duration
    for figure, chosen in ((big, t_big), (small, t_small)):
        reached = [t for t in tiers if figure <= t.loss_amount]
        assert (chosen is None) == (not reached)
        if chosen is not None:
            assert chosen in reached
            assert chosen.cooldown_duration == max(t.cooldown_duration for t in reached)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 900), st.one_of(st.none(), st.integers(-500, 200)),
                                st.booleans()), min_size=1, max_size=25))
def test_property_cooldown_expiry_never_shortened_and_covers_now_plus_tier(steps):
    # Arrange
    t = make_tester()
    previous = None
    for gap, pnl, voided in steps:
        t.clock.advance(gap)
        # Act
        r = t.trade(pnl, voided=voided)
        # Assert
        expiry = r.lock_expiry
        if previous is not None and previous > r.now:
            assert expiry is not None and expiry >= previous
        tier = None if pnl is None or voided else tier_for(float(pnl), Params().loss_thresholds)
        if tier is not None:
            assert expiry >= r.now + timedelta(seconds=tier.cooldown_duration)
        previous = expiry
