"""005 MaxUnrealizedProfit against rules-spec sections 0, 2 (005 a-c) and 004 d (missing data).

Target +1000 per position. Assertions are on what the broker is asked to do (``ClosePosition``
of one contract, never a flatten, never a lock) and on what the trader is told.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.config import ConfigError, parse_config
from risk_actors.pipeline import merge, run_rule
from risk_actors.state import AccountState, reduce
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.daily_realized_profit import DailyRealizedProfit
from rules.max_unrealized_profit import MaxUnrealizedProfit

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
DEFAULTS = {"target": 1000, "max_quote_age_seconds": 10}
TUESDAY_1000 = ct(2026, 11, 24, 10, 0)


def make_tester(contracts=CONTRACTS, **params) -> RuleTester:
    return RuleTester(MaxUnrealizedProfit, {**DEFAULTS, **params}, start=TUESDAY_1000,
                      contracts=contracts)


def assert_closed_only(r, *contract_ids: str) -> None:
    assert r.broker_actions == tuple(m.ClosePosition(c) for c in contract_ids)
    assert r.locks == ()
    assert not r.state.account_locked(r.now)


def assert_nothing(r) -> None:
    assert r.violation is None
    assert r.broker_actions == ()
    assert r.locks == ()


# ---- (a) -----------------------------------------------------------------------------------------
def test_es_long1_when_quote_6019_75_then_987_50_and_no_action():
    # Arrange
    t = make_tester()
    t.position("ES", 1, avg=6000.0)
    # Act
    r = t.quote("ES", 6019.75)
    # Assert
    assert r.state.unrealized(ES) == 987.5
    assert_nothing(r)


def test_es_long1_when_quote_6020_then_1000_breach_closes_es_only_no_lock():
    # Arrange
    t = make_tester()
    t.position("ES", 1, avg=6000.0)
    t.quote("ES", 6019.75)
    # Act
    r = t.quote("ES", 6020.0)
    # Assert: exactly at the target is a breach
    assert r.violation.data["pnl"] == {ES: 1000}
    assert_closed_only(r, ES)
    assert any(a.message == ("ESZ6 unrealized profit 1000.00 reached the per-position target "
                             "1000.00: closing that position (no lock).") for _, a in r.plan.alerts)


# ---- (b) -----------------------------------------------------------------------------------------
def test_mnq_short2_when_quote_20750_then_plus1000_and_close_mnq():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, "short", avg=21000.0)
    t.quote("MNQ", 20750.25)                   # +999
    # Act
    r = t.quote("MNQ", 20750.0)                # 250 pt x $2 x 2 = +1000
    # Assert
    assert r.state.unrealized(MNQ) == 1000
    assert_closed_only(r, MNQ)


def test_short_position_when_price_rises_then_loss_never_breaches():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, "short", avg=21000.0)
    # Act
    r = t.quote("MNQ", 21500.0)                # -2000
    # Assert
    assert_nothing(r)


# ---- (c) -----------------------------------------------------------------------------------------
def test_es_plus2000_and_mnq_plus500_when_evaluated_then_close_only_es():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.quote("MNQ", 21250.0)                    # +500
    t.position("ES", 1, avg=6000.0)
    # Act
    r = t.quote("ES", 6040.0)                  # +2000
    # Assert
    assert r.state.unrealized(MNQ) == 500
    assert_closed_only(r, ES)


def test_cascade_when_005_close_books_plus2000_on_plus800_day_then_013_locks():
    # Arrange: realized +800 today; 013 target 1000
    t = make_tester()
    t.trade(800)
    t.position("MNQ", 1, avg=21000.0)
    t.quote("MNQ", 21250.0)
    t.position("ES", 1, avg=6000.0)
    target = DailyRealizedProfit(DailyRealizedProfit.Params(1000.0, include_fees=False))
    # Act: 005 closes ES at +2000; the close books it and 013 judges the day at +2800
    close = t.quote("ES", 6040.0)
    booked = m.TradeEvent(1, 99, ES, t.now, 6040.0, 2000.0, 0.0, m.SIDE_SELL, 1)
    t.send(booked)
    flat = t.position("ES", 0)
    v013 = run_rule(target, "enforce", 1, 100, booked, flat.state, flat.now)
    # Assert: 005 closed ES only; 013 then flattens (MNQ too) and locks until the reset
    assert_closed_only(close, ES)
    assert v013.violation.data["pnl"] == 2800
    plan = merge([v013])
    assert plan.broker_actions == (m.FlattenAccount(),)
    assert [(lk.kind, lk.until_reset, lk.expires_at) for _, lk in plan.locks] == [
        (m.LOCK_HARD, True, ct(2026, 11, 24, 17, 0))]


# ---- missing and stale data (as 004 d) -----------------------------------------------------------
def test_position_when_no_quote_then_no_breach_and_one_warning_after_max_age():
    # Arrange
    t = make_tester()
    opened = t.position("ES", 1, avg=6000.0)
    # Act
    due = t.advance(10)
    later = t.advance(10)
    # Assert
    assert_nothing(opened)
    assert len(due.plan.alerts) == 1
    assert "cannot price ESZ6" in due.plan.alerts[0][1].message
    assert later.plan.alerts == ()


def test_position_when_contract_metadata_missing_then_never_breaches():
    # Arrange
    t = make_tester(contracts={k: v for k, v in CONTRACTS.items() if k != "ES"})
    t.position(ES, 1, avg=6000.0)
    # Act
    r = t.quote(ES, 7000.0)
    # Assert
    assert_nothing(r)


def test_stale_quote_when_past_target_then_used_with_warning():
    # Arrange
    t = make_tester()
    t.quote("ES", 6020.0)
    t.clock.advance(15)
    # Act
    r = t.position("ES", 1, avg=6000.0)
    # Assert
    assert_closed_only(r, ES)
    assert any("older than 10 s" in a.message for _, a in r.plan.alerts)


def test_breached_position_when_more_quotes_before_close_then_close_ordered_once():
    # Arrange
    t = make_tester()
    t.position("ES", 1, avg=6000.0)
    first = t.quote("ES", 6020.0)
    # Act
    more = [t.quote("ES", px) for px in (6021.0, 6025.0)]
    # Assert
    assert first.broker_actions == (m.ClosePosition(ES),)
    assert all(r.broker_actions == () for r in more)


def test_usage_when_two_positions_then_reports_the_best():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.quote("MNQ", 21250.0)                    # +500
    t.position("ES", 1, avg=6000.0)
    t.quote("ES", 5990.0)                      # -500
    # Act
    (usage,) = t.rule.usage(t.state, t.now)
    # Assert
    assert (usage.value, usage.limit) == (500, 1000)
    assert usage.percent == 50.0


# ---- configuration -------------------------------------------------------------------------------
def _raw(params: dict) -> dict:
    return {"version": 2, "broker": {"api_url": "http://127.0.0.1:1/api",
                                     "user_hub_url": "http://127.0.0.1:1/hubs/user",
                                     "market_hub_url": "http://127.0.0.1:1/hubs/market",
                                     "username": "u", "api_key": "k"},
            "accounts": [{"id": 1}], "rules": {"max_unrealized_profit": params}}


@pytest.mark.parametrize("params, path, value, words", [
    ({"target": -1000}, "target", "-1000", "must be > 0"),
    ({"target": 0}, "target", "0", "must be > 0"),
    ({"target": True}, "target", "True", "must be a number"),
    ({"max_quote_age_seconds": -1}, "max_quote_age_seconds", "-1", "must be > 0"),
    ({"mode_breakeven": True}, "mode_breakeven", None, ""),
], ids=["negative", "zero", "bool", "negative-age", "unknown-key"])
def test_invalid_param_when_loaded_then_error_names_field_and_value(params, path, value, words):
    # Act
    with pytest.raises(ConfigError) as info:
        parse_config(_raw(params), {"max_unrealized_profit": MaxUnrealizedProfit}, "riskd.yaml")
    # Assert
    (problem,) = info.value.problems
    assert (problem.path, problem.value) == (f"rules.max_unrealized_profit.{path}", value)
    assert words in problem.message


# ---- property ------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(symbol=st.sampled_from(sorted(CONTRACTS)), size=st.integers(1, 50), short=st.booleans(),
       avg_ticks=st.integers(10_000, 400_000), move=st.integers(-5_000, 5_000),
       target_cents=st.integers(1, 2_000_000))
def test_property_breach_iff_position_figure_at_or_above_target(symbol, size, short, avg_ticks,
                                                                 move, target_cents):
    # Arrange
    info = CONTRACTS[symbol]
    tick = Decimal(str(info.tick_size))
    now = TUESDAY_1000
    state = AccountState(1, contracts={info.contract_id: info})
    state = reduce(state, m.PositionEvent(1, info.contract_id, size,
                                          m.POSITION_SHORT if short else m.POSITION_LONG,
                                          float(tick * avg_ticks)), now)
    event = m.QuoteEvent(info.contract_id, float(tick * (avg_ticks + move)), received_at=now)
    state = reduce(state, event, now)
    rule = MaxUnrealizedProfit(MaxUnrealizedProfit.Params(target_cents / 100))
    figure = Decimal(move) * Decimal(str(info.tick_value)) * (-size if short else size)
    # Act
    outcome = rule.evaluate(event, state, now)
    # Assert
    breached = getattr(outcome, "reason", None) is not None
    assert breached == (figure >= Decimal(target_cents) / 100)
    if breached:
        assert rule.get_enforcement_action(outcome)[0] == m.ClosePosition(info.contract_id)
