"""003 DailyRealizedLoss against rules-spec sections 2 (a-h), 3, 4 and 8 (fees, basis, voids).

Limit -500, reset 17:00 America/Chicago. Assertions are on what the broker is asked to do
(``FlattenAccount`` = close all + cancel all, ``ClosePosition`` ...) and on the account's locks.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import attrs
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.pipeline import lockout_guard, run_rule
from risk_actors.state import (AccountState, LocksAdded, reduce, state_from_dict,
                               state_to_dict)
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.daily_realized_loss import DailyRealizedLoss

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
DEFAULTS = {"limit": -500, "include_fees": True, "basis": "realized"}
TUESDAY_1300 = ct(2026, 11, 24, 13, 0)


def make_tester(start: datetime = TUESDAY_1300, **params) -> RuleTester:
    return RuleTester(DailyRealizedLoss, {**DEFAULTS, **params}, start=start)


def assert_flattened_and_locked(r, until: datetime) -> None:
    assert r.broker_actions == (m.FlattenAccount(),)  # close all + cancel all
    assert len(r.locks) == 1
    lock = r.locks[0]
    assert (lock.kind, lock.scope, lock.until_reset) == (m.LOCK_HARD, "account", True)
    assert r.state.account_locked(r.now)
    assert r.lock_expiry == until


# ---- (a) ------------------------------------------------------------------------------------------
def test_trades_plus100_plus50_minus200_when_limit_minus500_then_minus50_and_no_action():
    # Arrange
    t = make_tester()
    # Act
    results = [t.trade(100), t.trade(50), t.trade(-200)]
    # Assert
    assert all(r.broker_actions == () and r.locks == () for r in results)
    assert results[-1].state.net_realized() == -50
    assert not results[-1].state.account_locked(results[-1].now)


# ---- (b) ------------------------------------------------------------------------------------------
def test_losses_minus300_minus250_at_1300_ct_when_limit_minus500_then_flatten_and_lock_until_1700_ct():
    # Arrange
    t = make_tester()
    first = t.trade(-300)
    # Act
    r = t.trade(-250)
    # Assert
    assert first.broker_actions == ()
    assert r.violation.data["pnl"] == -550
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))
    assert any(a.severity == "critical" for _, a in r.plan.alerts)


# ---- (c) ------------------------------------------------------------------------------------------
def test_losses_sum_exactly_to_limit_when_minus450_minus50_then_breach():
    # Arrange
    t = make_tester()
    t.trade(-450)
    # Act
    r = t.trade(-50)
    # Assert
    assert r.state.net_realized() == -500
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_loss_one_cent_above_limit_when_minus499_99_then_no_action():
    # Arrange
    t = make_tester()
    t.trade(-450)
    # Act
    r = t.trade(-49.99)
    # Assert
    assert r.state.net_realized() == -499.99
    assert r.broker_actions == ()
    assert r.locks == ()


# ---- (d) opening half-turns and voids ----------------------------------------------------------
def test_opening_half_turn_with_null_pnl_when_evaluated_then_pnl_unchanged_and_no_check():
    # Arrange: a figure already at the limit that the rule never saw (planted in state)
    t = make_tester(include_fees=False)
    t.trade(-100)
    t.state = reduce(t.state, m.TradeEvent(1, 900, MNQ, t.now, 21000.0, -450.0, 0.0,
                                           m.SIDE_SELL, 1), t.now)
    # Act: an opening fill carries profitAndLoss null
    r = t.trade(None, side=m.SIDE_BUY, price=21000.0)
    # Assert: nothing changed and nothing was checked, so nothing fires
    assert r.state.net_realized(include_fees=False) == -550
    assert r.violation is None
    assert r.broker_actions == ()


def test_voided_trade_when_never_counted_then_ignored():
    # Arrange
    t = make_tester()
    t.trade(-300)
    # Act
    r = t.trade(-600, voided=True)
    # Assert
    assert r.state.net_realized() == -300
    assert r.broker_actions == ()
    assert r.locks == ()


def test_counted_trade_when_same_id_arrives_voided_then_subtracted():
    # Arrange
    t = make_tester()
    t.trade(-300, trade_id=7)
    voided = t.trade(-300, trade_id=7, voided=True)
    # Act: had the void not been subtracted, this would make -550
    r = t.trade(-250, trade_id=8)
    # Assert
    assert voided.state.net_realized() == 0
    assert r.state.net_realized() == -250
    assert r.broker_actions == ()
    assert r.locks == ()


def test_same_trade_id_when_delivered_twice_then_counted_once():
    # Arrange: REST reconciliation re-sends trades that the hub already delivered
    t = make_tester()
    t.trade(-300, trade_id=7)
    # Act
    r = t.trade(-300, trade_id=7)
    # Assert
    assert r.state.net_realized() == -300
    assert r.broker_actions == ()


# ---- (e) -----------------------------------------------------------------------------------------
def test_breach_at_1830_ct_when_after_todays_reset_then_locked_until_1700_ct_tomorrow():
    # Arrange: start 13:00, let the 17:00 reset run, then trade in the evening session
    t = make_tester()
    t.trade(-400)
    t.at(ct(2026, 11, 24, 18, 30))
    # Act
    r = t.trade(-500)
    # Assert: the afternoon -400 belongs to the previous trading day
    assert r.state.net_realized() == -500
    assert_flattened_and_locked(r, until=ct(2026, 11, 25, 17, 0))


def test_breach_at_1830_ct_when_daemon_started_after_reset_then_locked_until_1700_ct_tomorrow():
    # Arrange
    t = make_tester(start=ct(2026, 11, 24, 18, 30))
    t.trade(-300)
    # Act
    r = t.trade(-250)
    # Assert
    assert_flattened_and_locked(r, until=ct(2026, 11, 25, 17, 0))


# ---- (f) -----------------------------------------------------------------------------------------
def test_position_opened_while_locked_when_guarded_then_closed_at_once_lock_unchanged_pnl_added():
    # Arrange: locked at 13:00 until 17:00
    t = make_tester()
    t.trade(-300)
    t.trade(-250)
    expiry = t.state.lock_expiry(t.now)
    t.advance(60)
    before = t.state
    event = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, None, t.now)
    # Act: the trader buys 1 MNQ anyway
    opened = t.send(event)
    guard = lockout_guard(event, before, opened.state, opened.now)
    closing = t.trade(-40, side=m.SIDE_SELL, price=20980.0)
    # Assert
    assert m.ClosePosition(MNQ) in guard
    assert opened.broker_actions == () and opened.locks == ()  # 003 adds nothing itself
    assert closing.state.net_realized() == -590  # the closing P&L still counts
    assert closing.lock_expiry == expiry == ct(2026, 11, 24, 17, 0)
    assert closing.broker_actions == () and closing.locks == ()


def test_working_order_while_locked_when_guarded_then_cancelled():
    # Arrange
    t = make_tester()
    t.trade(-550)
    before = t.state
    event = m.OrderEvent(1, 55, MNQ, m.STATUS_OPEN, m.ORDER_LIMIT, m.SIDE_BUY, 1, "F.US.MNQ",
                         limit_price=20900.0)
    # Act
    r = t.send(event)
    # Assert
    assert lockout_guard(event, before, r.state, r.now) == (m.CancelOrder(55),)


def test_cooldown_lock_of_another_rule_when_003_breaches_then_escalates_to_hard_lock():
    # Arrange: a 007-style cooldown of 5 minutes is running
    t = make_tester()
    t.state = reduce(t.state, LocksAdded("cooldown_after_loss", (
        m.Lock(m.LOCK_COOLDOWN, "cooldown", t.now.replace(minute=5)),)), t.now)
    # Act: the forced close books -600
    r = t.trade(-600)
    # Assert: 003 still evaluates while locked, and the latest expiry wins
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


# ---- (g) -----------------------------------------------------------------------------------------
def test_daily_reset_at_1700_ct_when_locked_then_pnl_zero_and_unlocked():
    # Arrange
    t = make_tester()
    t.trade(-300)
    t.trade(-250)
    # Act
    just_before = t.at(ct(2026, 11, 24, 16, 59, 59))
    at_reset = t.at(ct(2026, 11, 24, 17, 0))
    after = t.trade(-100)
    # Assert
    assert just_before.state.account_locked(just_before.now)
    assert just_before.state.net_realized() == -550
    assert at_reset.state.net_realized() == 0
    assert not at_reset.state.account_locked(at_reset.now)
    assert at_reset.lock_expiry is None
    assert at_reset.state.next_reset_at == ct(2026, 11, 25, 17, 0)
    assert after.broker_actions == () and after.state.net_realized() == -100


def test_lock_at_reset_when_position_arrives_after_1700_then_not_closed():
    # Arrange
    t = make_tester()
    t.trade(-550)
    t.at(ct(2026, 11, 24, 17, 0))
    before = t.state
    event = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, None, t.now)
    # Act
    r = t.send(event)
    # Assert
    assert lockout_guard(event, before, r.state, r.now) == ()


# ---- (h) -----------------------------------------------------------------------------------------
def test_restart_at_1500_ct_when_locked_then_still_locked_and_open_positions_closed_on_startup():
    # Arrange: locked at 13:00; the state is persisted as JSON
    t = make_tester()
    t.trade(-300, trade_id=1)
    t.trade(-250, trade_id=2)
    saved = json.dumps(state_to_dict(t.state))
    restart = ct(2026, 11, 24, 15, 0)
    restored = state_from_dict(json.loads(saved))
    snapshot = m.Reconciled(
        1, m.AccountEvent(1, "TEST", 50_000.0, True),
        positions=(m.PositionEvent(1, MNQ, 2, m.POSITION_LONG, 21000.0, None, restart),),
        orders=(m.OrderEvent(1, 31, MNQ, m.STATUS_OPEN, m.ORDER_STOP, m.SIDE_SELL, 2,
                             "F.US.MNQ", stop_price=20990.0),),
        trades=tuple(m.TradeEvent(1, tid, MNQ, TUESDAY_1300, 21000.0, pnl, 0.0, m.SIDE_SELL, 1)
                     for tid, pnl in ((1, -300.0), (2, -250.0))))
    # Act
    after = reduce(restored, snapshot, restart)
    guard = lockout_guard(snapshot, restored, after, restart)
    verdict = run_rule(DailyRealizedLoss(DailyRealizedLoss.Params(-500)), "enforce", 1, 1,
                       snapshot, after, restart)
    # Assert
    assert after.account_locked(restart)
    assert after.lock_expiry(restart) == ct(2026, 11, 24, 17, 0)
    assert after.net_realized() == -550  # re-sent trades deduped by id
    assert guard == (m.ClosePosition(MNQ), m.CancelOrder(31))
    assert verdict.error is None and verdict.actions == ()


# ---- DST -----------------------------------------------------------------------------------------
def test_breach_in_july_when_cdt_then_locked_until_2200_utc():
    # Arrange
    t = make_tester(start=ct(2026, 7, 15, 13, 0))
    # Act
    r = t.trade(-500)
    # Assert
    assert_flattened_and_locked(r, until=datetime(2026, 7, 15, 22, 0, tzinfo=timezone.utc))


def test_breach_in_december_when_cst_then_locked_until_2300_utc():
    # Arrange
    t = make_tester(start=ct(2026, 12, 15, 13, 0))
    # Act
    r = t.trade(-500)
    # Assert
    assert_flattened_and_locked(r, until=datetime(2026, 12, 15, 23, 0, tzinfo=timezone.utc))


def test_breach_on_dst_end_day_when_locked_then_expires_at_1700_cst():
    # Arrange: 2026-11-01, clocks go back at 02:00 CT
    t = make_tester(start=ct(2026, 11, 1, 1, 30))
    # Act
    r = t.trade(-500)
    # Assert
    assert_flattened_and_locked(r, until=datetime(2026, 11, 1, 23, 0, tzinfo=timezone.utc))


def test_trade_booked_after_reset_on_eve_of_dst_end_when_replayed_next_morning_then_counted():
    # Arrange: Sunday 2026-11-01 10:00 CST; the last reset was Saturday 17:00 CDT (22:00 UTC)
    t = make_tester(start=ct(2026, 11, 1, 10, 0))
    booked = ct(2026, 10, 31, 17, 30)
    snapshot = m.Reconciled(1, None, (), (), (
        m.TradeEvent(1, 101, MNQ, booked, 21000.0, -300.0, 0.0, m.SIDE_SELL, 1),
        m.TradeEvent(1, 102, MNQ, ct(2026, 10, 31, 16, 59), 21000.0, -900.0, 0.0, m.SIDE_SELL, 1)))
    t.trade(-200)
    # Act
    r = t.send(snapshot)
    # Assert: 17:30 belongs to today's trading day, 16:59 to the previous one
    assert r.state.net_realized() == -500
    assert_flattened_and_locked(r, until=ct(2026, 11, 1, 17, 0))


# ---- fees (section 8) ----------------------------------------------------------------------------
def test_fees_when_include_fees_true_then_fees_of_both_half_turns_push_figure_over_limit():
    # Arrange
    t = make_tester(include_fees=True)
    t.trade(None, fees=1.24, side=m.SIDE_BUY, price=21000.0)  # opening half-turn
    # Act
    r = t.trade(-498, fees=1.24)
    # Assert: -498 - 2.48 = -500.48
    assert r.state.net_realized(include_fees=True) == -500.48
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_fees_when_include_fees_false_then_only_profit_and_loss_counts():
    # Arrange
    t = make_tester(include_fees=False)
    t.trade(None, fees=1.24, side=m.SIDE_BUY, price=21000.0)
    # Act
    r = t.trade(-498, fees=1.24)
    # Assert
    assert r.state.net_realized(include_fees=False) == -498
    assert r.broker_actions == ()
    assert r.locks == ()


def test_opening_half_turn_fees_when_include_fees_true_then_figure_changes_and_is_checked():
    # Arrange: -499.00 realized, fees not yet at issue
    t = make_tester(include_fees=True)
    t.trade(-499)
    # Act: an opening fill (profitAndLoss null) charges 1.50 of fees
    r = t.trade(None, fees=1.50, side=m.SIDE_BUY, price=21000.0)
    # Assert: -500.50 <= -500
    assert r.state.net_realized(include_fees=True) == -500.5
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_opening_half_turn_fees_when_include_fees_false_then_no_action():
    # Arrange
    t = make_tester(include_fees=False)
    t.trade(-499)
    # Act
    r = t.trade(None, fees=1.50, side=m.SIDE_BUY, price=21000.0)
    # Assert
    assert r.broker_actions == ()
    assert r.locks == ()


def test_voided_trade_when_it_had_fees_then_its_fees_no_longer_count():
    # Arrange
    t = make_tester(include_fees=True)
    t.trade(-499, fees=2.0, trade_id=3)
    t.trade(-499, fees=2.0, trade_id=3, voided=True)
    # Act
    r = t.trade(-450, fees=1.0, trade_id=4)
    # Assert
    assert r.state.net_realized() == -451
    assert r.broker_actions == ()


# ---- basis: net ----------------------------------------------------------------------------------
def test_net_basis_when_unrealized_at_latest_quote_reaches_limit_then_breach():
    # Arrange: realized -300; MNQ L2 @21000.00 ($2/pt per contract)
    t = make_tester(basis="net")
    t.trade(-300)
    t.position("MNQ", 2, avg=21000.0)
    below = t.quote("MNQ", 20950.25)  # -49.75 pt x 2 x $2 = -199.00 -> -499.00
    # Act
    r = t.quote("MNQ", 20950.00)  # -200.00 -> -500.00
    # Assert
    assert below.broker_actions == () and below.locks == ()
    assert r.violation.data["pnl"] == -500
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_net_basis_when_unrealized_loss_on_trade_event_then_counted():
    # Arrange: ES S1 @6000.00, quote 6006.00 -> -24 ticks x 12.50 = -300
    t = make_tester(basis="net")
    t.position("ES", 1, "short", avg=6000.0)
    t.quote("ES", 6006.0)
    # Act: an MNQ loss is realized elsewhere
    r = t.trade(-200, symbol="MNQ")
    # Assert
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_net_basis_when_quote_missing_then_never_breaches_on_missing_data():
    # Arrange: realized -499, MNQ L10 open but no quote received yet
    t = make_tester(basis="net")
    t.position("MNQ", 10, avg=21000.0)
    # Act
    r = t.trade(-499)
    other = t.quote("ES", 6000.0)  # a quote for another contract re-evaluates: still no data
    # Assert
    assert r.broker_actions == () and r.locks == ()
    assert other.broker_actions == () and other.locks == ()


def test_net_basis_when_closing_trade_arrives_before_position_update_then_loss_not_counted_twice():
    # Arrange: MNQ L2 @21000.00 at 20925.00 -> unrealized -300, net -300
    t = make_tester(basis="net")
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20925.0)
    # Act: the trader closes at 20925.00; the gateway sends the Trade before the Position
    trade = t.trade(-300, size=2, price=20925.0)
    flat = t.position("MNQ", 0)
    # Assert: the day is at -300, not -600
    assert trade.broker_actions == () and trade.locks == ()
    assert flat.broker_actions == () and flat.locks == ()
    assert not flat.state.account_locked(flat.now)


def test_net_basis_when_closing_trade_books_loss_past_limit_then_breach():
    # Arrange: realized -150; MNQ L2 @21000.00 at 20937.50 -> unrealized -250, net -400
    t = make_tester(basis="net")
    t.trade(-150)
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20937.50)
    # Act: closed lower than the last quote (slippage): books -360 -> realized -510
    trade = t.trade(-360, size=2, price=20910.0)
    flat = t.position("MNQ", 0)
    # Assert: -510 even with the closed lots gone from the position -> breach on the trade
    assert_flattened_and_locked(trade, until=ct(2026, 11, 24, 17, 0))
    assert flat.broker_actions == () and flat.state.account_locked(flat.now)


def test_net_basis_when_position_update_settles_the_loss_then_breach_on_position_event():
    # Arrange: realized -480; MNQ L2 @21000.00 at 21010.00 -> unrealized +40, net -440
    t = make_tester(basis="net")
    t.trade(-480)
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 21010.0)
    # Act: closed at 20990.00 (slippage): books -40 -> realized -520
    trade = t.trade(-40, size=2, price=20990.0)
    flat = t.position("MNQ", 0)
    # Assert: the trade alone is ambiguous (the +40 may be gone or not); the update is not
    assert trade.broker_actions == ()
    assert_flattened_and_locked(flat, until=ct(2026, 11, 24, 17, 0))


def test_realized_basis_when_unrealized_loss_is_large_then_ignored():
    # Arrange
    t = make_tester(basis="realized")
    t.trade(-100)
    t.position("MNQ", 10, avg=21000.0)
    # Act
    r = t.quote("MNQ", 20500.0)  # -10,000 unrealized
    # Assert
    assert r.broker_actions == () and r.locks == ()


# ---- property: breach iff figure <= limit -------------------------------------------------------
cents = st.integers(-60_000, 40_000)
trade_st = st.tuples(st.integers(1, 12),                     # trade id (repeats = re-deliveries)
                     st.one_of(st.none(), cents),            # pnl in cents, None = opening
                     st.integers(0, 500),                    # fees in cents
                     st.booleans())                          # voided


@settings(max_examples=300, deadline=None)
@given(trades=st.lists(trade_st, max_size=15), limit_cents=st.integers(-100_000, -1),
       include_fees=st.booleans())
def test_property_breach_iff_daily_figure_at_or_below_limit(trades, limit_cents, include_fees):
    # Arrange
    now = TUESDAY_1300
    state = AccountState(1, next_reset_at=ct(2026, 11, 24, 17, 0))
    last: dict[int, tuple] = {}
    for tid, pnl, fees, voided in trades:
        ev = m.TradeEvent(1, tid, MNQ, now, 21000.0, None if pnl is None else pnl / 100,
                          fees / 100, m.SIDE_SELL, 1, voided)
        state = reduce(state, ev, now)
        last[tid] = (pnl, fees, voided)
    figure = sum(Decimal(p or 0) - (Decimal(f) if include_fees else 0)
                 for p, f, v in last.values() if not v) / 100
    limit = limit_cents / 100
    rule = DailyRealizedLoss(DailyRealizedLoss.Params(limit, include_fees))
    event = m.Reconciled(1, None, (), (), ())
    # Act
    violation = rule.evaluate(event, reduce(state, event, now), now)
    # Assert
    assert (violation is not None) == (figure <= Decimal(limit_cents) / 100)
    if violation is not None:
        assert Decimal(str(violation.data["pnl"])) == figure
        actions = rule.get_enforcement_action(violation)
        assert m.FlattenAccount() in actions
        assert attrs.evolve(actions[1], reason="") == m.Lock(
            m.LOCK_HARD, "", ct(2026, 11, 24, 17, 0), until_reset=True)
