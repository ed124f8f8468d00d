"""012 TradeManagement against rules-spec section 2 (breakeven 10 ticks, offset 0; trail 20/10;
at most 1 modify per second per order), scenarios (a)-(g) with their exact figures.

A small fake broker plays the gateway's part: it turns the rule's PlaceStop/ModifyStop/CancelOrder
into the GatewayUserOrder events the real gateway sends back (or drops them, to play a refusal),
so the tests see the rule follow its own stop the way it does in the daemon.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from decimal import Decimal

import attrs
import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.state import Lockout, state_from_dict, state_to_dict
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.trade_management import (TAG_PREFIX, AutoBreakeven, TradeManagement, TrailingStop,
                                   target_stop, to_ticks)

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
T0 = ct(2026, 11, 24, 10, 0)
NAME = TradeManagement.name
SPEC = {"auto_breakeven": {"enabled": True, "profit_trigger_ticks": 10, "offset_ticks": 0},
        "trailing_stop": {"enabled": True, "activation_ticks": 20, "trail_distance_ticks": 10}}


def make_tester(**params) -> RuleTester:
    return RuleTester(TradeManagement, {**SPEC, **params}, start=T0)


class Broker:
    """Answers the rule's stop orders with order events, as the gateway does."""

    def __init__(self, t: RuleTester) -> None:
        self.t = t
        self.ids = itertools.count(9001)

    def open_position(self, symbol, size, side="long", avg=0.0, position_id=42):
        t = self.t
        ptype = m.POSITION_SHORT if side == "short" else m.POSITION_LONG
        return t.send(m.PositionEvent(1, t.contract_id(symbol), size, ptype, avg, position_id,
                                      t.now))

    def stop(self, symbol, *, side, size, stop_price, order_id=None, type=m.ORDER_STOP,
             status=m.STATUS_OPEN, tag=None):
        t = self.t
        return t.send(m.OrderEvent(1, order_id or next(self.ids), t.contract_id(symbol), status,
                                   type, side, size, CONTRACTS[symbol].symbol_id, None,
                                   stop_price, custom_tag=tag, created=t.now, updated=t.now))

    def execute(self, result, refuse: bool = False) -> list:
        """Apply the broker actions of ``result``; ``refuse`` plays a gateway success:false."""
        out = []
        if refuse:
            return out
        for a in result.broker_actions:
            if isinstance(a, m.PlaceStop):
                out.append(self.t.send(m.OrderEvent(
                    1, next(self.ids), a.contract_id, m.STATUS_OPEN, m.ORDER_STOP, a.side, a.size,
                    None, None, a.stop_price, custom_tag=a.custom_tag)))
            elif isinstance(a, m.ModifyStop):
                o = self.t.state.orders[a.order_id]
                out.append(self.t.send(m.OrderEvent(
                    1, o.order_id, o.contract_id, o.status, o.type, o.side,
                    a.size if a.size is not None else o.size, o.symbol_id, o.limit_price,
                    a.stop_price)))
            elif isinstance(a, m.CancelOrder):
                o = self.t.state.orders[a.order_id]
                out.append(self.t.send(m.OrderEvent(
                    1, o.order_id, o.contract_id, m.STATUS_CANCELLED, o.type, o.side, o.size,
                    o.symbol_id, o.limit_price, o.stop_price)))
        return out


def stops_of(state, cid=MNQ):
    return [o for o in state.orders.values() if o.contract_id == cid and o.type in m.STOP_TYPES]


def only(actions, cls):
    found = [a for a in actions if isinstance(a, cls)]
    assert len(found) == 1, actions
    return found[0]


def long_mnq_with_breakeven_stop():
    """Spec (a) played through: MNQ L2 @21000, breakeven stop at 21000 working."""
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    b.execute(t.quote("MNQ", 21002.50))
    return t, b


# ---- (a) breakeven at +10 ticks --------------------------------------------------------------
def test_long_2_when_plus_8_ticks_then_nothing_when_plus_10_then_places_breakeven_stop():
    # Arrange
    t = make_tester()
    Broker(t).open_position("MNQ", 2, avg=21000.0)
    # Act
    r8 = t.quote("MNQ", 21002.00)
    r10 = t.quote("MNQ", 21002.50)
    # Assert
    assert r8.broker_actions == ()
    place = only(r10.broker_actions, m.PlaceStop)
    assert (place.contract_id, place.side, place.size, place.stop_price) == (
        MNQ, m.SIDE_SELL, 2, 21000.00)
    assert place.custom_tag.startswith(TAG_PREFIX)
    assert r10.locks == ()


# ---- (b) trailing: high-water mark, only tighten ----------------------------------------------
def test_trailing_when_high_water_moves_then_modifies_to_exact_figures_and_never_loosens():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    stop_id = stops_of(t.state)[0].order_id
    t.clock.advance(1)
    # Act
    r20 = t.quote("MNQ", 21005.00)
    b.execute(r20)
    t.clock.advance(1)
    r29 = t.quote("MNQ", 21007.25)
    b.execute(r29)
    t.clock.advance(1)
    r_back = t.quote("MNQ", 21006.00)
    # Assert
    assert r20.broker_actions == (m.ModifyStop(stop_id, 21002.50),)
    assert r29.broker_actions == (m.ModifyStop(stop_id, 21004.75),)
    assert r_back.broker_actions == ()
    assert r_back.state.rule_memory[NAME]["positions"][MNQ]["mark"] == 21007.25
    assert stops_of(t.state)[0].stop_price == 21004.75
    assert len(stops_of(t.state)) == 1


# ---- (c) short: both fire, tighter wins --------------------------------------------------------
def test_es_short_when_breakeven_and_trail_fire_together_then_tighter_wins():
    # Arrange
    t = make_tester()
    b = Broker(t)
    b.open_position("ES", 1, "short", avg=6000.0)
    # Act
    r = t.quote("ES", 5995.00)
    b.execute(r)
    t.clock.advance(1)
    r2 = t.quote("ES", 5990.00)
    # Assert
    place = only(r.broker_actions, m.PlaceStop)
    assert (place.contract_id, place.side, place.size, place.stop_price) == (
        ES, m.SIDE_BUY, 1, 5997.50)
    stop_id = stops_of(t.state, ES)[0].order_id
    assert r2.broker_actions == (m.ModifyStop(stop_id, 5992.50),)


# ---- (d) an existing manual stop is moved, not doubled ----------------------------------------
def test_manual_stop_at_20990_when_breakeven_fires_then_modifies_it_no_second_stop():
    # Arrange
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    b.stop("MNQ", side=m.SIDE_SELL, size=2, stop_price=20990.0, order_id=555)
    t.quote("MNQ", 21002.00)
    # Act
    r = t.quote("MNQ", 21002.50)
    # Assert
    assert r.broker_actions == (m.ModifyStop(555, 21000.00),)


def test_trader_stop_arrives_after_rule_placed_one_then_rule_cancels_its_own_and_moves_theirs():
    # Arrange: the quote overtook the trader's new stop (two hubs): the rule placed a stop
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    b.execute(t.quote("MNQ", 21002.50))
    ours = stops_of(t.state)[0].order_id
    # Act: the trader's own full-size stop arrives
    r = b.stop("MNQ", side=m.SIDE_SELL, size=2, stop_price=20990.0, order_id=555)
    # Assert: two full stops could both fill and reverse the position: ours goes, and the
    # trader's is moved to breakeven instead
    assert set(r.broker_actions) == {m.CancelOrder(ours), m.ModifyStop(555, 21000.00)}
    b.execute(r)
    assert [(o.order_id, o.stop_price) for o in stops_of(t.state)] == [(555, 21000.0)]
    # ... and from now on the trader's stop is the one managed: never a new placement
    r = t.quote("MNQ", 21004.00)
    assert not any(isinstance(a, m.PlaceStop) for a in r.broker_actions)


def test_trader_stop_smaller_than_position_when_rule_stop_working_then_both_kept():
    # Arrange
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    b.execute(t.quote("MNQ", 21002.50))
    # Act: a 1-lot stop does not cover a 2-lot position
    r = b.stop("MNQ", side=m.SIDE_SELL, size=1, stop_price=20990.0, order_id=556)
    # Assert
    assert not any(isinstance(a, m.CancelOrder) for a in r.broker_actions)


# ---- (e) offset ticks -------------------------------------------------------------------------
@pytest.mark.parametrize("symbol,side,avg,quote,expected", [
    ("MNQ", "long", 21000.0, 21002.50, 21000.50),
    ("ES", "short", 6000.0, 5997.50, 5999.50),
])
def test_offset_2_ticks_when_breakeven_fires_then_stop_two_ticks_into_profit(
        symbol, side, avg, quote, expected):
    # Arrange
    t = make_tester(auto_breakeven={"profit_trigger_ticks": 10, "offset_ticks": 2})
    Broker(t).open_position(symbol, 1, side, avg=avg)
    # Act
    r = t.quote(symbol, quote)
    # Assert
    assert only(r.broker_actions, m.PlaceStop).stop_price == expected


# ---- (f) size changes and closing ---------------------------------------------------------------
def test_position_scaled_2_to_3_when_stop_managed_then_modifies_stop_size_to_3():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    stop_id = stops_of(t.state)[0].order_id
    # Act
    r = b.open_position("MNQ", 3, avg=21000.0)
    # Assert
    assert r.broker_actions == (m.ModifyStop(stop_id, 21000.00, 3),)


def test_position_reduced_3_to_1_when_stop_managed_then_stop_shrinks_too():
    # Arrange
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 3, avg=21000.0)
    b.execute(t.quote("MNQ", 21002.50))
    stop_id = stops_of(t.state)[0].order_id
    # Act
    r = b.open_position("MNQ", 1, avg=21000.0)
    # Assert: a stop larger than the position would reverse it when hit
    assert r.broker_actions == (m.ModifyStop(stop_id, 21000.00, 1),)


def test_position_closed_by_trader_when_own_stop_still_working_then_drops_tracking_and_cancels():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    stop_id = stops_of(t.state)[0].order_id
    # Act
    r = b.open_position("MNQ", 0)
    # Assert
    assert r.broker_actions == (m.CancelOrder(stop_id),)
    assert NAME not in r.state.rule_memory or MNQ not in r.state.rule_memory[NAME].get(
        "positions", {})


def test_position_closed_by_its_stop_when_flat_then_drops_tracking_quietly():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    stop = stops_of(t.state)[0]
    b.stop("MNQ", side=m.SIDE_SELL, size=2, stop_price=21000.0, order_id=stop.order_id,
           status=m.STATUS_FILLED)
    # Act
    r = b.open_position("MNQ", 0)
    # Assert
    assert r.broker_actions == ()
    assert NAME not in r.state.rule_memory


def test_manual_stop_when_position_closed_then_not_cancelled_by_the_rule():
    # Arrange: the trader's own stop, moved by the rule, is still the trader's
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    b.stop("MNQ", side=m.SIDE_SELL, size=2, stop_price=20990.0, order_id=555)
    b.execute(t.quote("MNQ", 21002.50))
    # Act
    r = b.open_position("MNQ", 0)
    # Assert
    assert r.broker_actions == ()


# ---- (g) a refused modify is retried on a later quote, at most once per second ----------------
def test_modify_refused_when_next_quote_within_1s_then_waits_then_retries():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    stop_id = stops_of(t.state)[0].order_id
    t.clock.advance(1)
    first = t.quote("MNQ", 21005.00)
    b.execute(first, refuse=True)  # success:false: the stop stays at 21000
    # Act
    t.clock.advance(0.5)
    too_soon = t.quote("MNQ", 21005.00)
    t.clock.advance(0.5)
    retry = t.quote("MNQ", 21005.00)
    # Assert
    assert first.broker_actions == (m.ModifyStop(stop_id, 21002.50),)
    assert too_soon.broker_actions == ()
    assert too_soon.verdict.wake_at == T0 + timedelta(seconds=2)
    assert retry.broker_actions == (m.ModifyStop(stop_id, 21002.50),)


def test_modify_keeps_being_refused_then_backs_off():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    t.clock.advance(1)
    sent_at = []
    # Act: a quote every 0.25 s for 10 s, every modify refused
    for i in range(40):
        r = t.quote("MNQ", 21005.00)
        if r.broker_actions:
            sent_at.append(round((t.now - T0).total_seconds(), 2))
        t.clock.advance(0.25)
    # Assert: 1 s, then 2 s, then 4 s apart
    assert sent_at == [1.0, 2.0, 4.0, 8.0]


def test_two_tightenings_within_1s_when_rate_limited_then_second_sent_after_1s():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    stop_id = stops_of(t.state)[0].order_id
    t.clock.advance(1)
    b.execute(t.quote("MNQ", 21005.00))
    # Act
    t.clock.advance(0.3)
    held = t.quote("MNQ", 21007.25)
    timer = t.advance(0.7)
    # Assert
    assert held.broker_actions == ()
    assert held.verdict.wake_at == T0 + timedelta(seconds=2)
    assert timer.broker_actions == (m.ModifyStop(stop_id, 21004.75),)


# ---- placement bookkeeping -------------------------------------------------------------------
def test_placement_pending_when_quotes_arrive_before_order_event_then_no_second_place():
    # Arrange
    t = make_tester()
    Broker(t).open_position("MNQ", 2, avg=21000.0)
    first = t.quote("MNQ", 21002.50)
    # Act
    t.clock.advance(0.2)
    again = t.quote("MNQ", 21003.00)
    # Assert
    assert len(first.broker_actions) == 1
    assert again.broker_actions == ()
    pending = again.state.rule_memory[NAME]["positions"][MNQ]["pending"]
    assert pending["tag"] == only(first.broker_actions, m.PlaceStop).custom_tag


def test_placement_never_confirmed_when_timeout_passes_then_replaced_with_the_same_tag():
    # Arrange
    t = make_tester()
    Broker(t).open_position("MNQ", 2, avg=21000.0)
    first = only(t.quote("MNQ", 21002.50).broker_actions, m.PlaceStop)
    # Act
    early = t.advance(4.9)
    late = t.advance(0.1)
    # Assert
    assert early.broker_actions == ()
    again = only(late.broker_actions, m.PlaceStop)
    assert again.custom_tag == first.custom_tag
    assert again.stop_price == 21000.00


def test_placed_stop_arrives_when_order_event_then_pending_cleared_and_own_stop_known():
    # Arrange
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    # Act
    events = b.execute(t.quote("MNQ", 21002.50))
    # Assert
    entry = events[-1].state.rule_memory[NAME]["positions"][MNQ]
    assert "pending" not in entry
    assert entry["own"] == stops_of(t.state)[0].order_id


def test_own_stop_cancelled_by_trader_when_cancel_event_then_a_new_stop_with_a_new_tag():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    old = stops_of(t.state)[0]
    # Act
    r = b.stop("MNQ", side=m.SIDE_SELL, size=2, stop_price=21000.0, order_id=old.order_id,
               status=m.STATUS_CANCELLED)
    # Assert
    place = only(r.broker_actions, m.PlaceStop)
    assert place.stop_price == 21000.00
    assert place.custom_tag.endswith("-2")


def test_reversal_long_to_short_when_own_sell_stop_working_then_cancelled_and_tracking_restarts():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    own = stops_of(t.state)[0].order_id
    # Act
    r = b.open_position("MNQ", 1, "short", avg=21002.50)
    # Assert
    assert r.broker_actions == (m.CancelOrder(own),)
    entry = r.state.rule_memory[NAME]["positions"][MNQ]
    assert entry["side"] == m.POSITION_SHORT and entry["mark"] is None
    assert entry["gen"] == 1  # tags keep counting: the position id stays the same


# ---- what it leaves alone ---------------------------------------------------------------------
@pytest.mark.parametrize("order_type", [m.ORDER_TRAILING_STOP, m.ORDER_STOP_LIMIT])
def test_trader_trailing_or_stop_limit_when_armed_then_left_alone_and_said_once(order_type):
    # Arrange
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    b.stop("MNQ", side=m.SIDE_SELL, size=2, stop_price=20990.0, type=order_type)
    # Act
    r1 = t.quote("MNQ", 21002.50)
    r2 = t.quote("MNQ", 21010.00)
    # Assert
    assert r1.broker_actions == () and r2.broker_actions == ()
    assert len(r1.plan.alerts) == 1 and r2.plan.alerts == ()


def test_buy_stop_on_a_long_when_armed_then_not_taken_for_protection():
    # Arrange: a buy stop adds to a long; it protects nothing
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 1, avg=21000.0)
    b.stop("MNQ", side=m.SIDE_BUY, size=1, stop_price=21010.0, order_id=700)
    # Act
    r = t.quote("MNQ", 21002.50)
    # Assert
    assert only(r.broker_actions, m.PlaceStop).side == m.SIDE_SELL


def test_account_locked_when_armed_then_places_nothing():
    # Arrange
    t = make_tester()
    Broker(t).open_position("MNQ", 2, avg=21000.0)
    t.state = attrs.evolve(t.state, lockouts=(Lockout("daily_realized_loss", m.LOCK_HARD, "x",
                                                      T0, T0 + timedelta(hours=1)),))
    # Act
    r = t.quote("MNQ", 21002.50)
    # Assert
    assert r.broker_actions == ()


def test_no_quote_when_position_event_then_nothing():
    # Arrange
    t = make_tester()
    # Act
    r = Broker(t).open_position("MNQ", 2, avg=21000.0)
    # Assert
    assert r.broker_actions == ()


def test_quote_from_before_the_position_when_position_opens_then_not_counted_as_profit():
    # Arrange: a stale 21010 quote, then a fill at 21000
    t = make_tester()
    t.quote("MNQ", 21010.00)
    # Act
    r = Broker(t).open_position("MNQ", 2, avg=21000.0)
    # Assert
    assert r.broker_actions == ()


def test_unknown_contract_metadata_when_quote_then_nothing():
    # Arrange
    t = make_tester()
    t.state = attrs.evolve(t.state, contracts={})
    Broker(t).open_position("MNQ", 2, avg=21000.0)
    # Act
    r = t.quote("MNQ", 21010.00)
    # Assert
    assert r.broker_actions == ()


# ---- price edge cases ---------------------------------------------------------------------------
def test_trail_target_through_the_market_when_modify_retried_then_one_tick_inside_the_market():
    # Arrange: stop at 21000, high at 21010 (trail 21007.50), modify refused, price falls back
    t, b = long_mnq_with_breakeven_stop()
    stop_id = stops_of(t.state)[0].order_id
    t.clock.advance(1)
    b.execute(t.quote("MNQ", 21010.00), refuse=True)
    t.clock.advance(1)
    # Act
    r = t.quote("MNQ", 21007.25)
    # Assert: a sell stop at/above the market is refused by the broker
    assert r.broker_actions == (m.ModifyStop(stop_id, 21007.00),)


def test_average_off_the_grid_when_breakeven_then_stop_rounded_toward_profit():
    # Arrange: scaled in at 21000 and 21000.25 -> average 21000.125
    t = make_tester()
    Broker(t).open_position("MNQ", 2, avg=21000.125)
    # Act
    r = t.quote("MNQ", 21002.75)
    # Assert
    assert only(r.broker_actions, m.PlaceStop).stop_price == 21000.25


@pytest.mark.parametrize("params,quote,expected", [
    ({"trailing_stop": {"enabled": False}}, 21010.00, 21000.00),       # breakeven only
    ({"auto_breakeven": {"enabled": False}}, 21002.50, None),          # trailing only, not yet
    ({"auto_breakeven": {"enabled": False}}, 21005.00, 21002.50),      # trailing only, active
])
def test_one_part_disabled_when_quote_then_only_the_other_part_acts(params, quote, expected):
    # Arrange
    t = make_tester(**params)
    Broker(t).open_position("MNQ", 1, avg=21000.0)
    # Act
    r = t.quote("MNQ", quote)
    # Assert
    if expected is None:
        assert r.broker_actions == ()
    else:
        assert only(r.broker_actions, m.PlaceStop).stop_price == expected


def test_two_manual_stops_when_trailing_then_moves_the_tighter_and_resizes_none():
    # Arrange
    t = make_tester()
    b = Broker(t)
    b.open_position("MNQ", 2, avg=21000.0)
    b.stop("MNQ", side=m.SIDE_SELL, size=1, stop_price=20990.0, order_id=601)
    b.stop("MNQ", side=m.SIDE_SELL, size=1, stop_price=20995.0, order_id=602)
    # Act
    r = t.quote("MNQ", 21005.00)
    # Assert
    assert r.broker_actions == (m.ModifyStop(602, 21002.50),)


# ---- restart -----------------------------------------------------------------------------------
def test_restart_when_memory_restored_then_trailing_continues_from_saved_high_water_mark():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    t.clock.advance(1)
    b.execute(t.quote("MNQ", 21007.25))
    stop = stops_of(t.state)[0]
    saved = json.loads(json.dumps(state_to_dict(t.state)))
    fresh = make_tester()
    fresh.clock.set(t.now + timedelta(seconds=30))
    fresh.state = attrs.evolve(state_from_dict(saved), positions={}, orders={})
    pos = m.PositionEvent(1, MNQ, 2, m.POSITION_LONG, 21000.0, 42, T0)
    order = m.OrderEvent(1, stop.order_id, MNQ, m.STATUS_OPEN, m.ORDER_STOP, m.SIDE_SELL, 2,
                         stop_price=stop.stop_price)
    # Act
    reconciled = fresh.send(m.Reconciled(1, None, (pos,), (order,), ()))
    lower = fresh.quote("MNQ", 21006.00)
    # Assert: the stop stays at 21004.75 (mark 21007.25 remembered), no second stop
    assert reconciled.broker_actions == ()
    assert lower.broker_actions == ()
    assert stop.stop_price == 21004.75


def test_memory_when_tracking_then_json_only():
    # Arrange
    t, b = long_mnq_with_breakeven_stop()
    t.clock.advance(1)
    # Act
    r = t.quote("MNQ", 21005.00)
    # Assert
    memory = r.state.rule_memory[NAME]
    assert json.loads(json.dumps(memory)) == memory


def test_shadow_mode_when_armed_then_nothing_executed():
    # Arrange
    t = RuleTester(TradeManagement, SPEC, start=T0, mode="shadow")
    Broker(t).open_position("MNQ", 2, avg=21000.0)
    # Act
    r = t.quote("MNQ", 21002.50)
    # Assert
    assert r.violation is not None
    assert r.broker_actions == ()


# ---- config ----------------------------------------------------------------------------------
def test_defaults_when_no_params_then_spec_values():
    p = TradeManagement.Params()
    assert (p.auto_breakeven.enabled, p.auto_breakeven.profit_trigger_ticks,
            p.auto_breakeven.offset_ticks) == (True, 10, 0)
    assert (p.trailing_stop.enabled, p.trailing_stop.activation_ticks,
            p.trailing_stop.trail_distance_ticks) == (True, 20, 10)
    assert p.min_modify_interval_seconds == 1.0


def test_v1_config_shape_when_loaded_then_accepted():
    # Arrange: the block of the 1.0 risk_config.yaml (rules-spec section 6), minus `enabled`
    t = RuleTester(TradeManagement, SPEC)
    # Assert
    assert t.rule.params.trailing_stop.trail_distance_ticks == 10


@pytest.mark.parametrize("params", [
    {"auto_breakeven": {"enabled": False}, "trailing_stop": {"enabled": False}},
    {"auto_breakeven": {"profit_trigger_ticks": 10, "offset_ticks": 10}},
    {"auto_breakeven": {"offset_ticks": -1}},
    {"auto_breakeven": {"profit_trigger_ticks": 0}},
    {"trailing_stop": {"trail_distance_ticks": 0}},
    {"trailing_stop": {"activation_ticks": "20"}},
    {"trailing_stop": {"trail_ticks": 4}},
    {"min_modify_interval_seconds": 0},
])
def test_bad_params_when_configured_then_rejected_at_load(params):
    with pytest.raises(ClassValidationError):
        make_tester(**params)


# ---- properties --------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(direction=st.sampled_from([1, -1]), avg=st.integers(-50, 50),
       marks=st.lists(st.integers(-80, 80), min_size=1, max_size=30),
       trigger=st.integers(1, 15), offset=st.integers(0, 14), activation=st.integers(1, 40),
       distance=st.integers(1, 30), be_on=st.booleans(), tr_on=st.booleans())
def test_property_target_stop_only_tightens_as_the_best_price_improves(
        direction, avg, marks, trigger, offset, activation, distance, be_on, tr_on):
    if offset >= trigger or not (be_on or tr_on):
        return
    params = TradeManagement.Params(auto_breakeven=AutoBreakeven(be_on, trigger, offset),
                                    trailing_stop=TrailingStop(tr_on, activation, distance))
    best, prev = None, None
    for price in marks:
        best = price if best is None else (max(best, price) if direction > 0 else min(best, price))
        target = target_stop(direction, Decimal(avg * 4 + 1) / 4, Decimal(best), params)
        if prev is not None:
            assert target is not None
            assert (target[0] - prev) * direction >= 0
        if target is not None:
            prev = target[0]


@settings(max_examples=150, deadline=None)
@given(symbol=st.sampled_from(["MNQ", "ES", "RTY", "CL"]), side=st.sampled_from(["long", "short"]),
       path=st.lists(st.tuples(st.integers(-30, 30), st.sampled_from([0.1, 0.4, 1.0, 2.5]),
                               st.booleans()), min_size=1, max_size=40),
       manual=st.booleans())
def test_property_stops_only_tighten_and_stay_on_the_tick_grid_over_random_quote_paths(
        symbol, side, path, manual):
    # Arrange
    info = CONTRACTS[symbol]
    tick = Decimal(str(info.tick_size))
    entry = Decimal(1000) * tick * 20
    direction = 1 if side == "long" else -1
    t = make_tester()
    b = Broker(t)
    b.open_position(symbol, 2, side, avg=float(entry))
    if manual:
        b.stop(symbol, side=m.SIDE_SELL if direction > 0 else m.SIDE_BUY, size=2,
               stop_price=float(entry - direction * 30 * tick), order_id=1)
    level = Decimal(0)
    seen: list[Decimal] = []
    # Act: a random walk in ticks; some broker calls refused
    for step, wait, refused in path:
        level += step
        price = entry + level * tick
        t.clock.advance(wait)
        r = t.quote(symbol, float(price))
        for a in r.broker_actions:
            assert isinstance(a, (m.PlaceStop, m.ModifyStop))
            assert (to_ticks(a.stop_price, info.tick_size) % 1) == 0      # on the grid
            # never through the market
            assert (price - Decimal(str(a.stop_price))) * direction > 0
        b.execute(r, refuse=refused)
        working = stops_of(t.state, info.contract_id)
        # Assert: never two stops, and the working stop only tightens
        assert len(working) <= 1
        if working:
            stop = Decimal(str(working[0].stop_price))
            if seen:
                assert (stop - seen[-1]) * direction >= 0
            seen.append(stop)
