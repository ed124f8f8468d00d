"""013 DailyRealizedProfit against rules-spec sections 2 (013), 3, 4 and 8 (fees, shared total).

Target +1000, reset 17:00 America/Chicago. Assertions are on what the broker is asked to do
(``FlattenAccount`` = close all + cancel all), on the account's locks and on the trader's message.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.config import ConfigError, parse_config
from risk_actors.pipeline import lockout_guard, merge, run_rule
from risk_actors.state import AccountState, reduce
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.daily_realized_loss import DailyRealizedLoss, daily_figure
from rules.daily_realized_profit import DailyRealizedProfit

MNQ = CONTRACTS["MNQ"].contract_id
DEFAULTS = {"target": 1000, "include_fees": True, "message": "Target reached: done for today"}
TUESDAY_1300 = ct(2026, 11, 24, 13, 0)


def make_tester(start: datetime = TUESDAY_1300, **params) -> RuleTester:
    return RuleTester(DailyRealizedProfit, {**DEFAULTS, **params}, start=start)


def assert_flattened_and_locked(r, until: datetime) -> None:
    assert r.broker_actions == (m.FlattenAccount(),)  # close all + cancel all
    assert len(r.locks) == 1
    lock = r.locks[0]
    assert (lock.kind, lock.scope, lock.until_reset) == (m.LOCK_HARD, "account", True)
    assert r.state.account_locked(r.now)
    assert r.lock_expiry == until


# ---- spec scenarios ------------------------------------------------------------------------------
def test_trades_plus300_plus400_minus100_when_target_1000_then_600_and_no_action():
    # Arrange
    t = make_tester()
    # Act
    results = [t.trade(300), t.trade(400), t.trade(-100)]
    # Assert
    assert all(r.broker_actions == () and r.locks == () for r in results)
    assert results[-1].state.net_realized() == 600


def test_trades_plus900_plus200_when_target_1000_then_flatten_lock_until_reset_with_message():
    # Arrange
    t = make_tester()
    first = t.trade(900)
    # Act
    r = t.trade(200)
    # Assert
    assert first.broker_actions == ()
    assert r.violation.data["pnl"] == 1100
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))
    assert r.locks[0].reason.startswith("Target reached: done for today")
    (alert,) = [a for _, a in r.plan.alerts]
    assert alert.message.startswith("Target reached: done for today")
    assert "locked until the daily reset" in alert.message


def test_profit_exactly_at_target_when_plus600_plus400_then_breach():
    # Arrange
    t = make_tester()
    t.trade(600)
    # Act
    r = t.trade(400)
    # Assert
    assert r.state.net_realized() == 1000
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_profit_one_cent_short_of_target_when_999_99_then_no_action():
    # Arrange
    t = make_tester()
    t.trade(600)
    # Act
    r = t.trade(399.99)
    # Assert
    assert r.broker_actions == () and r.locks == ()


# ---- the shared total with 003 -------------------------------------------------------------------
def test_realized_total_when_003_and_013_judge_the_same_state_then_same_figure():
    # Arrange: fees of both half-turns count (section 8)
    t = make_tester()
    t.trade(None, fees=1.24, side=m.SIDE_BUY, price=21000.0)
    t.trade(-300, fees=1.24)
    t.trade(1302, fees=1.24)
    # Act
    r = t.trade(0.0, fees=0.0)
    loss = DailyRealizedLoss(DailyRealizedLoss.Params(-500.0, include_fees=True))
    # Assert: 1002 - 3.72 = 998.28 for both rules: below 013's target, above 003's limit
    assert daily_figure(r.state, True, "realized")[0] == 998.28
    assert loss.usage(r.state, r.now)[0].value == t.rule.usage(r.state, r.now)[0].value == 998.28
    assert r.broker_actions == ()


def test_fees_when_include_fees_true_then_fees_keep_figure_under_target():
    # Arrange
    t = make_tester(include_fees=True)
    t.trade(None, fees=1.24, side=m.SIDE_BUY, price=21000.0)
    # Act
    r = t.trade(1001, fees=1.24)
    # Assert: 1001 - 2.48 = 998.52
    assert r.state.net_realized(include_fees=True) == 998.52
    assert r.broker_actions == () and r.locks == ()


def test_fees_when_include_fees_false_then_only_profit_and_loss_counts():
    # Arrange
    t = make_tester(include_fees=False)
    t.trade(None, fees=1.24, side=m.SIDE_BUY, price=21000.0)
    # Act
    r = t.trade(1001, fees=1.24)
    # Assert
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_cascade_when_003_and_013_both_see_the_day_then_only_the_one_crossed_acts():
    # Arrange: +1100 realized: 013 breaches, 003 (limit -500) does not
    t = make_tester()
    t.trade(900)
    event = m.TradeEvent(1, 50, MNQ, t.now, 21000.0, 200.0, 0.0, m.SIDE_SELL, 1)
    # Act
    r = t.send(event)
    v003 = run_rule(DailyRealizedLoss(DailyRealizedLoss.Params(-500.0)), "enforce", 1, 2,
                    event, r.state, r.now)
    # Assert
    assert v003.violation is None
    assert merge([r.verdict, v003]).broker_actions == (m.FlattenAccount(),)


# ---- half-turns, voids, duplicates ---------------------------------------------------------------
def test_opening_half_turn_when_pnl_null_then_no_check():
    # Arrange: a figure already past the target that the rule never saw (planted in state)
    t = make_tester(include_fees=False)
    t.state = reduce(t.state, m.TradeEvent(1, 900, MNQ, t.now, 21000.0, 1500.0, 0.0,
                                           m.SIDE_SELL, 1), t.now)
    # Act
    r = t.trade(None, side=m.SIDE_BUY, price=21000.0)
    # Assert
    assert r.violation is None and r.broker_actions == ()


def test_voided_losing_trade_when_it_lifts_figure_to_target_then_breach():
    # Arrange
    t = make_tester()
    t.trade(900, trade_id=1)
    t.trade(-200, trade_id=2)
    before = t.trade(250, trade_id=3)
    # Act: the broker voids the -200
    r = t.trade(-200, trade_id=2, voided=True)
    # Assert
    assert before.state.net_realized() == 950 and before.broker_actions == ()
    assert r.state.net_realized() == 1150
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


def test_same_trade_id_when_delivered_twice_then_counted_once():
    # Arrange
    t = make_tester()
    t.trade(600, trade_id=7)
    # Act
    r = t.trade(600, trade_id=7)
    # Assert
    assert r.state.net_realized() == 600
    assert r.broker_actions == ()


# ---- while locked, after the reset, restart ------------------------------------------------------
def test_fill_while_locked_when_guarded_then_closed_and_013_adds_nothing():
    # Arrange
    t = make_tester()
    t.trade(1100)
    t.advance(60)
    before = t.state
    event = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, None, t.now)
    # Act
    opened = t.send(event)
    guard = lockout_guard(event, before, opened.state, opened.now)
    closing = t.trade(50)
    # Assert
    assert m.ClosePosition(MNQ) in guard
    assert closing.violation is None and closing.broker_actions == () and closing.locks == ()
    assert closing.state.net_realized() == 1150
    assert closing.lock_expiry == ct(2026, 11, 24, 17, 0)


def test_daily_reset_when_locked_then_unlocked_and_figure_zero():
    # Arrange
    t = make_tester()
    t.trade(1100)
    # Act
    at_reset = t.at(ct(2026, 11, 24, 17, 0))
    after = t.trade(500)
    # Assert
    assert not at_reset.state.account_locked(at_reset.now)
    assert at_reset.state.net_realized() == 0
    assert after.broker_actions == ()


def test_breach_at_1830_ct_when_after_reset_then_locked_until_1700_ct_tomorrow():
    # Arrange
    t = make_tester(start=ct(2026, 11, 24, 18, 30))
    # Act
    r = t.trade(1000)
    # Assert
    assert_flattened_and_locked(r, until=ct(2026, 11, 25, 17, 0))


def test_restart_when_trades_replayed_over_target_then_breach_on_reconciled():
    # Arrange: trades rebuilt from Trade/search at start-up
    t = make_tester()
    snapshot = m.Reconciled(1, None, (), (), tuple(
        m.TradeEvent(1, tid, MNQ, TUESDAY_1300, 21000.0, pnl, 0.0, m.SIDE_SELL, 1)
        for tid, pnl in ((1, 700.0), (2, 400.0))))
    # Act
    r = t.send(snapshot)
    # Assert
    assert_flattened_and_locked(r, until=ct(2026, 11, 24, 17, 0))


# ---- configuration -------------------------------------------------------------------------------
def _raw(params: dict) -> dict:
    return {"version": 2, "broker": {"api_url": "http://127.0.0.1:1/api",
                                     "user_hub_url": "http://127.0.0.1:1/hubs/user",
                                     "market_hub_url": "http://127.0.0.1:1/hubs/market",
                                     "username": "u", "api_key": "k"},
            "accounts": [{"id": 1}], "rules": {"daily_realized_profit": params}}


@pytest.mark.parametrize("params, path, value, words", [
    ({"target": -1000}, "target", "-1000", "must be > 0"),
    ({"target": 0}, "target", "0", "must be > 0"),
    ({"target": "1000"}, "target", "'1000'", "must be a number"),
    ({"message": ""}, "message", "''", "must not be empty"),
    ({"message": 5}, "message", "5", "must be a string"),
    ({"include_fees": "yes"}, "include_fees", "'yes'", "must be true or false"),
    ({"limit": 1000}, "limit", None, ""),
], ids=["negative", "zero", "string", "empty-message", "number-message", "fees-string",
        "unknown-key"])
def test_invalid_param_when_loaded_then_error_names_field_and_value(params, path, value, words):
    # Act
    with pytest.raises(ConfigError) as info:
        parse_config(_raw(params), {"daily_realized_profit": DailyRealizedProfit}, "riskd.yaml")
    # Assert
    (problem,) = info.value.problems
    assert (problem.path, problem.value) == (f"rules.daily_realized_profit.{path}", value)
    assert words in problem.message


def test_defaults_when_no_params_then_target_1000_fees_included():
    # Act
    params = DailyRealizedProfit.Params()
    # Assert
    assert (params.target, params.include_fees) == (1000.0, True)
    assert params.message


# ---- property: breach iff figure at or above target ----------------------------------------------
trade_st = st.tuples(st.integers(1, 12), st.one_of(st.none(), st.integers(-40_000, 60_000)),
                     st.integers(0, 500), st.booleans())


@settings(max_examples=300, deadline=None)
@given(trades=st.lists(trade_st, max_size=15), target_cents=st.integers(1, 100_000),
       include_fees=st.booleans())
def test_property_breach_iff_daily_figure_at_or_above_target(trades, target_cents, include_fees):
    # Arrange
    now = TUESDAY_1300
    state = AccountState(1, next_reset_at=ct(2026, 11, 24, 17, 0))
    last: dict[int, tuple] = {}
    for tid, pnl, fees, voided in trades:
        state = reduce(state, m.TradeEvent(1, tid, MNQ, now, 21000.0,
                                           None if pnl is None else pnl / 100, fees / 100,
                                           m.SIDE_SELL, 1, voided), now)
        last[tid] = (pnl, fees, voided)
    figure = sum(Decimal(p or 0) - (Decimal(f) if include_fees else 0)
                 for p, f, v in last.values() if not v) / 100
    rule = DailyRealizedProfit(DailyRealizedProfit.Params(target_cents / 100, include_fees))
    event = m.Reconciled(1, None, (), (), ())
    # Act
    violation = rule.evaluate(event, reduce(state, event, now), now)
    # Assert
    assert (violation is not None) == (figure >= Decimal(target_cents) / 100)
    if violation is not None:
        assert Decimal(str(violation.data["pnl"])) == figure
        actions = rule.get_enforcement_action(violation)
        assert actions[0] == m.FlattenAccount()
        assert attrs.evolve(actions[1], reason="") == m.Lock(
            m.LOCK_HARD, "", ct(2026, 11, 24, 17, 0), until_reset=True)
