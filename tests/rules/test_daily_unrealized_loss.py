"""004 DailyUnrealizedLoss against rules-spec sections 0, 2 (004 a-e) and 3 (quotes, pipeline).

Limit -300 per position. Assertions are on what the broker is asked to do (``ClosePosition`` of
one contract, never a flatten, never a lock) and on what the trader is told (``Alert``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.config import ConfigError, parse_config
from risk_actors.pipeline import merge, run_rule
from risk_actors.state import (AccountState, reduce, state_from_dict, state_to_dict,
                               unrealized_pnl)
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.daily_realized_loss import DailyRealizedLoss
from rules.daily_unrealized_loss import REFIRE_SECONDS, DailyUnrealizedLoss

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
DEFAULTS = {"limit": -300, "max_quote_age_seconds": 10}
TUESDAY_1000 = ct(2026, 11, 24, 10, 0)


def make_tester(contracts=CONTRACTS, **params) -> RuleTester:
    return RuleTester(DailyUnrealizedLoss, {**DEFAULTS, **params}, start=TUESDAY_1000,
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
def test_mnq_long2_when_quote_20950_then_minus200_and_no_action():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    # Act
    r = t.quote("MNQ", 20950.0)
    # Assert
    assert r.state.unrealized(MNQ) == -200
    assert_nothing(r)


def test_mnq_long2_when_quote_20925_25_then_minus299_and_no_action():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20950.0)
    # Act
    r = t.quote("MNQ", 20925.25)
    # Assert
    assert r.state.unrealized(MNQ) == -299
    assert_nothing(r)


def test_mnq_long2_when_quote_20925_then_minus300_breach_closes_mnq_only_no_lock():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20950.0)
    t.quote("MNQ", 20925.25)
    # Act
    r = t.quote("MNQ", 20925.0)
    # Assert: exactly at the limit is a breach
    assert r.violation.data["pnl"] == {MNQ: -300}
    assert_closed_only(r, MNQ)
    assert any(a.message == ("MNQZ6 unrealized loss -300.00 reached the per-position limit "
                             "-300.00: closing that position (no lock).") for _, a in r.plan.alerts)


# ---- (b) -----------------------------------------------------------------------------------------
def test_mnq_minus320_and_es_plus100_when_evaluated_then_close_only_mnq():
    # Arrange
    t = make_tester()
    t.position("ES", 1, avg=6000.0)
    t.quote("ES", 6002.0)                      # +8 ticks x 12.50 = +100
    t.position("MNQ", 2, avg=21000.0)
    # Act
    r = t.quote("MNQ", 20920.0)                # -80 pt x $2 x 2 = -320
    # Assert
    assert r.state.unrealized(ES) == 100
    assert r.state.unrealized(MNQ) == -320
    assert_closed_only(r, MNQ)


def test_es_far_past_limit_when_mnq_slightly_down_then_close_only_es():
    # Arrange: a figure is per position, never summed (V34)
    t = make_tester()
    t.position("ES", 1, avg=6000.0)
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20990.0)                    # -40
    # Act
    r = t.quote("ES", 5970.0)                  # -1500
    # Assert
    assert_closed_only(r, ES)


def test_two_positions_when_both_past_limit_at_one_event_then_both_closed():
    # Arrange: prices known before the positions (e.g. a reconnect)
    t = make_tester()
    t.quote("ES", 5970.0)
    t.quote("MNQ", 20900.0)
    snapshot = m.Reconciled(1, None, (
        m.PositionEvent(1, ES, 1, m.POSITION_LONG, 6000.0),
        m.PositionEvent(1, MNQ, 2, m.POSITION_LONG, 21000.0)), (), ())
    # Act
    r = t.send(snapshot)
    # Assert
    assert set(r.broker_actions) == {m.ClosePosition(ES), m.ClosePosition(MNQ)}
    assert r.locks == ()


def test_sum_of_positions_past_limit_when_each_is_above_then_no_action():
    # Arrange: -200 + -200 = -400, but each position is only -200
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20950.0)
    t.position("ES", 1, "short", avg=6000.0)
    # Act
    r = t.quote("ES", 6004.0)                  # -16 ticks x 12.50 = -200
    # Assert
    assert_nothing(r)


# ---- (c) -----------------------------------------------------------------------------------------
def test_es_short1_when_quote_6006_then_minus300_and_close_es():
    # Arrange
    t = make_tester()
    t.position("ES", 1, "short", avg=6000.0)
    t.quote("ES", 6005.75)                     # -23 ticks = -287.50
    # Act
    r = t.quote("ES", 6006.0)                  # -24 ticks x 12.50 = -300
    # Assert
    assert r.state.unrealized(ES) == -300
    assert_closed_only(r, ES)


def test_short_position_when_price_falls_then_profit_never_breaches():
    # Arrange
    t = make_tester()
    t.position("ES", 1, "short", avg=6000.0)
    # Act
    r = t.quote("ES", 5900.0)                  # +5000
    # Assert
    assert_nothing(r)


# ---- (d) missing data: never breach --------------------------------------------------------------
def test_position_when_no_quote_yet_then_no_breach_and_contract_noted_as_unpriced():
    # Arrange
    t = make_tester()
    # Act
    r = t.position("MNQ", 2, avg=21000.0)
    # Assert
    assert_nothing(r)
    assert r.plan.alerts == ()  # a missing first quote is normal for a moment
    assert r.state.rule_memory["daily_unrealized_loss"]["unpriced"][MNQ]["why"] == "no quote yet"


def test_position_when_unpriced_for_max_quote_age_then_one_warning_and_still_no_breach():
    # Arrange
    t = make_tester()
    opened = t.position("MNQ", 2, avg=21000.0)
    # Act
    early = t.advance(9)
    due = t.advance(1)
    later = t.advance(30)
    # Assert: the rule asks to be woken when the warning is due, warns once, never closes
    assert opened.verdict.wake_at == TUESDAY_1000 + timedelta(seconds=10)
    assert early.plan.alerts == ()
    assert [a.message for _, a in due.plan.alerts] == [
        "daily_unrealized_loss: cannot price MNQZ6 (no quote yet); that position is not "
        "checked against the unrealized loss -300.00 until it can be."]
    assert later.plan.alerts == ()
    for r in (early, due, later):
        assert r.broker_actions == () and r.locks == ()


def test_unpriced_position_when_quote_arrives_then_judged_and_note_cleared():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    # Act
    fine = t.quote("MNQ", 20990.0)
    breach = t.quote("MNQ", 20900.0)
    # Assert
    assert_nothing(fine)
    assert "unpriced" not in fine.state.rule_memory.get("daily_unrealized_loss", {})
    assert_closed_only(breach, MNQ)


def test_position_when_contract_metadata_missing_then_skipped_until_contracts_known():
    # Arrange: riskd has not learnt MNQ's tick size/value yet (Contract/searchById pending)
    t = make_tester(contracts={k: v for k, v in CONTRACTS.items() if k != "MNQ"})
    t.position(MNQ, 2, avg=21000.0)
    # Act
    blind = t.quote(MNQ, 20900.0)
    known = t.send(m.ContractsKnown(1, (CONTRACTS["MNQ"],)))
    # Assert
    assert_nothing(blind)
    assert (blind.state.rule_memory["daily_unrealized_loss"]["unpriced"][MNQ]["why"]
            == "no contract metadata (tick size/value)")
    assert_closed_only(known, MNQ)


def test_quote_without_last_price_when_only_bid_ask_then_no_breach():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    # Act
    r = t.send(m.QuoteEvent(MNQ, None, best_bid=20000.0, best_ask=20000.25,
                            received_at=t.now))
    # Assert
    assert_nothing(r)


def test_stale_quote_when_older_than_max_age_then_used_with_one_warning():
    # Arrange: the last MNQ quote came 11 s ago, before the position existed
    t = make_tester()
    t.quote("MNQ", 20925.0)
    t.clock.advance(11)
    # Act: the fill arrives; the only price is 11 s old
    r = t.position("MNQ", 2, avg=21000.0)
    again = t.position("MNQ", 3, avg=21000.0)
    # Assert: the figure -300 is used (breach), the trader is told the quote was stale, once
    assert_closed_only(r, MNQ)
    assert "quote 11 s old" in r.violation.reason
    warnings = [a.message for _, a in r.plan.alerts if "older than" in a.message]
    assert warnings == ["daily_unrealized_loss: the quote of MNQZ6 is older than 10 s; "
                        "judging the position on it."]
    assert not any("older than" in a.message for _, a in again.plan.alerts)
    assert again.broker_actions == (m.ClosePosition(MNQ),)  # a new size is judged at once


def test_quote_exactly_max_age_old_when_evaluated_then_no_stale_warning():
    # Arrange
    t = make_tester()
    t.quote("MNQ", 20990.0)
    t.clock.advance(10)
    # Act
    r = t.position("MNQ", 2, avg=21000.0)
    # Assert
    assert_nothing(r)
    assert r.plan.alerts == ()


def test_stale_quote_when_not_breached_then_warning_only():
    # Arrange
    t = make_tester()
    t.quote("MNQ", 20990.0)
    t.clock.advance(30)
    # Act
    r = t.position("MNQ", 2, avg=21000.0)
    # Assert
    assert r.broker_actions == () and r.locks == ()
    assert len(r.plan.alerts) == 1 and r.plan.alerts[0][1].severity == "warning"


# ---- (e) cascade into 003 ------------------------------------------------------------------------
def test_cascade_when_004_close_books_minus300_on_minus400_day_then_003_locks():
    # Arrange: realized -400 today; 003 limit -500
    t = make_tester()
    t.trade(-400)
    t.position("MNQ", 2, avg=21000.0)
    daily = DailyRealizedLoss(DailyRealizedLoss.Params(-500.0, include_fees=False))
    # Act: 004 closes MNQ at -300; the close books -300 and 003 judges the day at -700
    close = t.quote("MNQ", 20925.0)
    booked = m.TradeEvent(1, 99, MNQ, t.now, 20925.0, -300.0, 0.0, m.SIDE_SELL, 2)
    t.send(booked)
    flat = t.position("MNQ", 0)
    v003 = run_rule(daily, "enforce", 1, 100, booked, flat.state, flat.now)
    # Assert
    assert_closed_only(close, MNQ)
    assert flat.broker_actions == ()
    assert v003.violation.data["pnl"] == -700
    plan = merge([v003])
    assert plan.broker_actions == (m.FlattenAccount(),)
    assert [lk.until_reset for _, lk in plan.locks] == [True]


# ---- no repeated closes while the close is under way ---------------------------------------------
def test_breached_position_when_more_quotes_arrive_before_it_closes_then_close_ordered_once():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    first = t.quote("MNQ", 20925.0)
    # Act
    more = [t.quote("MNQ", px) for px in (20924.0, 20920.0, 20930.0)]
    # Assert
    assert first.broker_actions == (m.ClosePosition(MNQ),)
    assert all(r.broker_actions == () and r.plan.alerts == () for r in more)


def test_breached_position_when_still_open_after_refire_interval_then_close_ordered_again():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20925.0)
    t.clock.advance(REFIRE_SECONDS - 0.5)
    inside = t.quote("MNQ", 20920.0)
    t.clock.advance(0.5)
    # Act
    r = t.quote("MNQ", 20920.0)
    # Assert: a lost close job must not leave the position open for good
    assert inside.broker_actions == ()
    assert_closed_only(r, MNQ)


def test_breached_position_when_size_changes_during_close_then_judged_again_at_once():
    # Arrange: the trader adds a lot while riskd is closing
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20925.0)
    # Act
    r = t.position("MNQ", 3, avg=20975.0)      # -50 pt x $2 x 3 = -300
    # Assert
    assert_closed_only(r, MNQ)


def test_closed_position_when_size_zero_then_memory_cleared():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20925.0)
    # Act
    r = t.position("MNQ", 0)
    # Assert
    assert_nothing(r)
    assert "daily_unrealized_loss" not in r.state.rule_memory


def test_closing_memory_when_persisted_as_json_then_still_suppresses_repeat():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20925.0)
    t.state = state_from_dict(json.loads(json.dumps(state_to_dict(t.state))))
    # Act: quotes are not persisted; a new one arrives
    r = t.quote("MNQ", 20920.0)
    # Assert
    assert r.broker_actions == ()


def test_quote_of_contract_not_held_when_received_then_not_evaluated():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20990.0)
    # Act
    r = t.quote("ES", 5000.0)
    # Assert
    assert r.verdict.memory is None and r.verdict.violation is None and r.plan.empty


def test_reconciled_position_when_last_quote_already_past_limit_then_closed():
    # Arrange: reconnect; REST says MNQ L2 @21000 is open and the feed's price is 20900
    t = make_tester()
    t.quote("MNQ", 20900.0)
    snapshot = m.Reconciled(1, None, (m.PositionEvent(1, MNQ, 2, m.POSITION_LONG, 21000.0),),
                            (), ())
    # Act
    r = t.send(snapshot)
    # Assert
    assert_closed_only(r, MNQ)


def test_loss_far_past_limit_when_breached_then_closes_the_position_never_flattens():
    # Arrange
    t = make_tester()
    t.position("ES", 1, avg=6000.0)
    # Act
    r = t.quote("ES", 5976.0)                  # -96 ticks = -1200
    # Assert
    assert_closed_only(r, ES)
    assert not any(isinstance(a, m.FlattenAccount) for a in r.broker_actions)


def test_shadow_mode_when_breached_then_nothing_enforced():
    # Arrange
    t = RuleTester(DailyUnrealizedLoss, DEFAULTS, start=TUESDAY_1000, mode="shadow")
    t.position("MNQ", 2, avg=21000.0)
    # Act
    r = t.quote("MNQ", 20900.0)
    # Assert
    assert r.violation is not None
    assert r.broker_actions == () and r.plan.alerts == ()


def test_usage_when_two_positions_then_reports_the_worst():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2, avg=21000.0)
    t.quote("MNQ", 20950.0)                    # -200
    t.position("ES", 1, avg=6000.0)
    t.quote("ES", 6001.0)                      # +50
    # Act
    (usage,) = t.rule.usage(t.state, t.now)
    # Assert
    assert (usage.value, usage.limit, usage.unit) == (-200, -300, "$")
    assert "MNQZ6" in usage.label


# ---- configuration -------------------------------------------------------------------------------
def _raw(params: dict) -> dict:
    return {"version": 2, "broker": {"api_url": "http://127.0.0.1:1/api",
                                     "user_hub_url": "http://127.0.0.1:1/hubs/user",
                                     "market_hub_url": "http://127.0.0.1:1/hubs/market",
                                     "username": "u", "api_key": "k"},
            "accounts": [{"id": 1}], "rules": {"daily_unrealized_loss": params}}


@pytest.mark.parametrize("params, path, value, words", [
    ({"limit": 300}, "limit", "300", "must be < 0"),
    ({"limit": 0}, "limit", "0", "must be < 0"),
    ({"limit": "-300"}, "limit", "'-300'", "must be a number"),
    ({"max_quote_age_seconds": 0}, "max_quote_age_seconds", "0", "must be > 0"),
    ({"loss_limit": -300}, "loss_limit", None, ""),
], ids=["positive", "zero", "string", "zero-age", "unknown-key"])
def test_invalid_param_when_loaded_then_error_names_field_and_value(params, path, value, words):
    # Act
    with pytest.raises(ConfigError) as info:
        parse_config(_raw(params), {"daily_unrealized_loss": DailyUnrealizedLoss}, "riskd.yaml")
    # Assert
    (problem,) = info.value.problems
    assert (problem.path, problem.value) == (f"rules.daily_unrealized_loss.{path}", value)
    assert words in problem.message


def test_defaults_when_no_params_then_limit_minus300_and_quote_age_10s():
    # Act
    params = DailyUnrealizedLoss.Params()
    # Assert
    assert (params.limit, params.max_quote_age_seconds) == (-300.0, 10.0)


# ---- properties ----------------------------------------------------------------------------------
contracts_st = st.sampled_from(sorted(CONTRACTS))
size_st = st.integers(1, 50)
avg_ticks_st = st.integers(10_000, 400_000)
move_ticks_st = st.integers(-5_000, 5_000)


def _exact(info: m.ContractInfo, move_ticks: int, signed_size: int) -> Decimal:
    return Decimal(move_ticks) * Decimal(str(info.tick_value)) * signed_size


@settings(max_examples=300, deadline=None)
@given(symbol=contracts_st, size=size_st, avg_ticks=avg_ticks_st, move=move_ticks_st)
def test_property_unrealized_is_ticks_times_tick_value_times_size_and_side_symmetric(
        symbol, size, avg_ticks, move):
    # Arrange
    info = CONTRACTS[symbol]
    tick = Decimal(str(info.tick_size))
    avg = float(tick * avg_ticks)
    px = float(tick * (avg_ticks + move))
    # Act
    long_ = unrealized_pnl(avg, px, size, info.tick_size, info.tick_value)
    short = unrealized_pnl(avg, px, -size, info.tick_size, info.tick_value)
    one = unrealized_pnl(avg, px, 1, info.tick_size, info.tick_value)
    # Assert
    assert Decimal(str(long_)) == _exact(info, move, size)          # (px-avg)/tick x value x size
    assert short == -long_                                         # long/short symmetric
    assert Decimal(str(long_)) == Decimal(str(one)) * size          # linear in size
    assert (long_ > 0) == (move > 0) and (long_ < 0) == (move < 0)  # sign follows the move


@settings(max_examples=300, deadline=None)
@given(symbol=contracts_st, size=size_st, short=st.booleans(), avg_ticks=avg_ticks_st,
       move=move_ticks_st, limit_cents=st.integers(-2_000_000, -1))
def test_property_breach_iff_position_figure_at_or_below_limit(symbol, size, short, avg_ticks,
                                                                move, limit_cents):
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
    rule = DailyUnrealizedLoss(DailyUnrealizedLoss.Params(limit_cents / 100))
    figure = _exact(info, move, -size if short else size)
    # Act
    outcome = rule.evaluate(event, state, now)
    # Assert
    breached = getattr(outcome, "reason", None) is not None
    assert breached == (figure <= Decimal(limit_cents) / 100)
    if breached:
        assert rule.get_enforcement_action(outcome)[0] == m.ClosePosition(info.contract_id)
