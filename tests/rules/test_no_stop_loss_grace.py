"""008 NoStopLossGrace against rules-spec section 2 (grace 10 s), scenarios (a)-(h), plus restart
and reconciliation.

The clock is moved to the second (``RuleTester.advance`` delivers the timer ``Tick``); assertions
are on the broker actions of the merged plan, the locks, and the wake-up the rule asks for.
"""

from __future__ import annotations

import json
from datetime import timedelta

import attrs
import pytest
from cattrs.errors import ClassValidationError

from risk_actors import messages as m
from risk_actors.state import state_from_dict, state_to_dict
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.no_stop_loss_grace import NoStopLossGrace, has_protective_stop

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
T0 = ct(2026, 11, 24, 10, 0)
NAME = NoStopLossGrace.name


def make_tester(**params) -> RuleTester:
    return RuleTester(NoStopLossGrace, {"grace_period_seconds": 10, **params}, start=T0)


def closes(result) -> tuple:
    return tuple(a for a in result.broker_actions if isinstance(a, m.ClosePosition))


# ---- (a) a stop inside the grace satisfies it --------------------------------------------------
def test_sell_stop_at_4s_when_grace_ends_then_no_close():
    # Arrange
    t = make_tester()
    opened = t.position("MNQ", 1, avg=21000.0)
    t.advance(4)
    t.order("MNQ", type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    # Act
    r = t.advance(6)
    # Assert
    assert opened.verdict.wake_at == T0 + timedelta(seconds=10)
    assert r.broker_actions == ()
    assert r.violation is None
    assert t.advance(60).broker_actions == ()


# ---- (b) no stop: close at the deadline, not before ---------------------------------------------
def test_no_stop_when_grace_ends_then_closes_that_position_without_lock():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    before = t.advance(9.999)
    # Act
    r = t.advance(0.001)
    # Assert
    assert before.broker_actions == ()
    assert r.now == T0 + timedelta(seconds=10)
    assert closes(r) == (m.ClosePosition(MNQ),)
    assert r.locks == ()
    assert not r.state.account_locked(r.now)


# ---- (c) a limit order is no stop ---------------------------------------------------------------
def test_only_sell_limit_when_grace_ends_then_closes():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.order("MNQ", type=m.ORDER_LIMIT, side=m.SIDE_SELL, limit_price=21050.0)
    # Act
    r = t.advance(10)
    # Assert
    assert closes(r) == (m.ClosePosition(MNQ),)


# ---- (d) a stop on the wrong side is no stop ----------------------------------------------------
def test_short_with_sell_stop_when_grace_ends_then_closes():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, "short", avg=21000.0)
    t.order("MNQ", type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    # Act
    r = t.advance(10)
    # Assert
    assert closes(r) == (m.ClosePosition(MNQ),)


def test_short_with_buy_stop_when_grace_ends_then_no_close():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, "short", avg=21000.0)
    t.order("MNQ", type=m.ORDER_STOP, side=m.SIDE_BUY, stop_price=21010.0)
    # Act
    r = t.advance(10)
    # Assert
    assert r.broker_actions == ()


# ---- (e) a stop placed then cancelled inside the grace ------------------------------------------
def test_stop_placed_at_3s_cancelled_at_6s_when_grace_ends_at_10s_then_closes():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.advance(3)
    t.order("MNQ", order_id=77, type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    t.advance(3)
    cancelled = t.order("MNQ", order_id=77, type=m.ORDER_STOP, side=m.SIDE_SELL,
                        stop_price=20990.0, status=m.STATUS_CANCELLED)
    # Act
    r = t.advance(4)
    # Assert: the original deadline holds; the cancel did not start a new grace
    assert cancelled.verdict.wake_at == T0 + timedelta(seconds=10)
    assert r.now == T0 + timedelta(seconds=10)
    assert closes(r) == (m.ClosePosition(MNQ),)


# ---- (f) flat before the deadline cancels the timer ---------------------------------------------
def test_size_zero_at_5s_when_grace_would_end_then_timer_cancelled():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.advance(5)
    flat = t.position("MNQ", 0)
    # Act
    r = t.advance(5)
    # Assert
    assert flat.verdict.wake_at is None
    assert NAME not in flat.state.rule_memory
    assert r.broker_actions == ()


# ---- (g) scaling in does not restart the timer --------------------------------------------------
def test_scaling_1_to_2_at_5s_when_grace_ends_then_closes_at_10s_not_15s():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.advance(5)
    scaled = t.position("MNQ", 2, avg=21001.0)
    # Act
    r = t.advance(5)
    # Assert
    assert scaled.verdict.wake_at == T0 + timedelta(seconds=10)
    assert closes(r) == (m.ClosePosition(MNQ),)


# ---- (h) a bracket stop satisfies the rule ------------------------------------------------------
def test_bracket_stop_arriving_before_position_event_when_grace_ends_then_no_close():
    # Arrange: the simulator announces the bracket child around the entry fill
    t = make_tester()
    t.order("MNQ", type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0,
            status=m.STATUS_PENDING)
    t.position("MNQ", 1, avg=21000.0)
    # Act
    r = t.advance(10)
    # Assert
    assert r.broker_actions == ()


@pytest.mark.parametrize("order_type", [m.ORDER_STOP_LIMIT, m.ORDER_STOP, m.ORDER_TRAILING_STOP])
def test_each_stop_type_when_working_then_counts_as_protection(order_type):
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.order("MNQ", type=order_type, side=m.SIDE_SELL, stop_price=20990.0, limit_price=20989.0)
    # Act
    r = t.advance(10)
    # Assert
    assert r.broker_actions == ()


def test_stop_in_another_contract_when_grace_ends_then_still_closes():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.order("ES", type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=5990.0)
    # Act
    r = t.advance(10)
    # Assert
    assert closes(r) == (m.ClosePosition(MNQ),)


def test_two_positions_when_only_one_protected_then_closes_only_the_naked_one():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.position("ES", 1, avg=6000.0)
    t.order("MNQ", type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    # Act
    r = t.advance(10)
    # Assert
    assert closes(r) == (m.ClosePosition(ES),)
    assert r.violation.contract_id == ES


def test_two_positions_opened_apart_when_first_deadline_then_wakes_for_the_second():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.advance(4)
    t.position("ES", 1, avg=6000.0)
    # Act
    first = t.advance(6)
    second = t.advance(4)
    # Assert
    assert closes(first) == (m.ClosePosition(MNQ),)
    assert first.verdict.wake_at == T0 + timedelta(seconds=14)
    assert m.ClosePosition(ES) in closes(second)


# ---- after the grace -------------------------------------------------------------------------
def test_stop_cancelled_after_grace_when_not_replaced_then_fresh_grace_then_close():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.order("MNQ", order_id=5, type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    t.advance(10)
    t.advance(20)
    # Act: at t+30 the trader cancels the stop
    gap = t.order("MNQ", order_id=5, type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0,
                  status=m.STATUS_CANCELLED)
    early = t.advance(9)
    late = t.advance(1)
    # Assert
    assert gap.broker_actions == ()
    assert gap.verdict.wake_at == T0 + timedelta(seconds=40)
    assert early.broker_actions == ()
    assert closes(late) == (m.ClosePosition(MNQ),)


def test_stop_moved_by_cancel_and_replace_after_grace_then_no_close():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.order("MNQ", order_id=5, type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    t.advance(15)
    # Act
    t.order("MNQ", order_id=5, type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0,
            status=m.STATUS_CANCELLED)
    t.advance(1)
    t.order("MNQ", order_id=6, type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20995.0)
    r = t.advance(30)
    # Assert
    assert r.broker_actions == ()


def test_reversal_long_to_short_when_old_sell_stop_remains_then_new_grace_and_close():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.order("MNQ", type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    t.advance(5)
    # Act: sold 2 -> short 1; the sell stop no longer protects it
    flipped = t.position("MNQ", 1, "short", avg=21005.0)
    at_10 = t.advance(5)
    at_15 = t.advance(5)
    # Assert
    assert flipped.verdict.wake_at == T0 + timedelta(seconds=15)
    assert at_10.broker_actions == ()
    assert closes(at_15) == (m.ClosePosition(MNQ),)


def test_close_not_taken_when_position_still_open_then_judged_again_one_grace_later():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    first = t.advance(10)
    # Act: the broker never closed it
    quiet = t.advance(9)
    again = t.advance(1)
    # Assert
    assert closes(first) == (m.ClosePosition(MNQ),)
    assert quiet.broker_actions == ()
    assert closes(again) == (m.ClosePosition(MNQ),)


def test_late_timer_when_stop_arrived_after_deadline_then_no_close():
    # Arrange: the timer did not fire on time; the stop shows up 1 s after the deadline
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.clock.advance(11)
    # Act
    r = t.order("MNQ", type=m.ORDER_STOP, side=m.SIDE_SELL, stop_price=20990.0)
    # Assert: the position is protected now; closing it would only cost the trader
    assert r.broker_actions == ()


# ---- restart and reconciliation -------------------------------------------------------------
def _restart(t: RuleTester) -> RuleTester:
    """A new daemon: state restored from its JSON form; positions/orders come from REST."""
    saved = json.loads(json.dumps(state_to_dict(t.state)))
    fresh = make_tester()
    fresh.clock.set(t.now)
    # Positions and orders are rebuilt from REST (the Reconciled event), not persisted.
    fresh.state = attrs.evolve(state_from_dict(saved), positions={}, orders={})
    return fresh


def _reconciled(t: RuleTester, positions=(), orders=()) -> m.Reconciled:
    return m.Reconciled(t.state.account_id, None, tuple(positions), tuple(orders), ())


def test_restart_inside_grace_when_reconciled_then_original_deadline_holds():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.advance(4)
    t = _restart(t)
    t.clock.advance(2)  # riskd was down 2 s
    pos = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, 9, T0)
    # Act
    r = t.send(_reconciled(t, [pos]))
    at_deadline = t.advance(4)
    # Assert
    assert r.verdict.wake_at == T0 + timedelta(seconds=10)
    assert closes(at_deadline) == (m.ClosePosition(MNQ),)


def test_restart_after_deadline_when_reconciled_without_stop_then_closes_at_once():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t.advance(4)
    t = _restart(t)
    t.clock.advance(30)
    pos = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, 9, T0)
    # Act
    r = t.send(_reconciled(t, [pos]))
    # Assert
    assert closes(r) == (m.ClosePosition(MNQ),)


def test_restart_after_deadline_when_reconciled_with_stop_then_no_close():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    t = _restart(t)
    t.clock.advance(30)
    pos = m.PositionEvent(1, MNQ, 1, m.POSITION_LONG, 21000.0, 9, T0)
    stop = m.OrderEvent(1, 3, MNQ, m.STATUS_OPEN, m.ORDER_STOP, m.SIDE_SELL, 1, stop_price=20990.0)
    # Act
    r = t.send(_reconciled(t, [pos], [stop]))
    # Assert
    assert r.broker_actions == ()


def test_position_found_by_reconciliation_without_deadline_then_grace_starts_then_close():
    # Arrange: riskd starts with a naked position already open
    t = make_tester()
    pos = m.PositionEvent(1, MNQ, 2, m.POSITION_LONG, 21000.0, 9, T0 - timedelta(hours=1))
    # Act
    r = t.send(_reconciled(t, [pos]))
    after = t.advance(10)
    # Assert
    assert r.broker_actions == ()
    assert r.verdict.wake_at == T0 + timedelta(seconds=10)
    assert closes(after) == (m.ClosePosition(MNQ),)


def test_memory_when_tracking_then_json_only_and_deadline_iso():
    # Arrange
    t = make_tester()
    # Act
    r = t.position("MNQ", 1, avg=21000.0)
    # Assert
    memory = r.state.rule_memory[NAME]
    assert json.loads(json.dumps(memory)) == memory
    assert memory["positions"][MNQ]["deadline"] == (T0 + timedelta(seconds=10)).isoformat()


def test_unchanged_state_when_event_then_no_memory_rewrite():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1, avg=21000.0)
    # Act: an order in another contract changes nothing for MNQ
    r = t.order("ES", type=m.ORDER_LIMIT, side=m.SIDE_BUY, limit_price=5900.0)
    # Assert: no journal write for nothing, but the timer is re-asserted
    assert r.verdict.memory is None
    assert r.verdict.wake_at == T0 + timedelta(seconds=10)


# ---- modes and config ------------------------------------------------------------------------
def test_shadow_mode_when_grace_ends_then_violation_recorded_but_nothing_executed():
    # Arrange
    t = RuleTester(NoStopLossGrace, {"grace_period_seconds": 10}, start=T0, mode="shadow")
    t.position("MNQ", 1, avg=21000.0)
    # Act
    r = t.advance(10)
    # Assert
    assert r.violation is not None
    assert r.broker_actions == ()


def test_defaults_when_no_params_then_grace_is_10_seconds():
    assert NoStopLossGrace.Params().grace_period_seconds == 10.0


def test_alert_when_closing_then_names_the_contract_and_the_grace():
    # Arrange
    t = make_tester(grace_period_seconds=2)
    t.position("MNQ", 1, avg=21000.0)
    # Act
    r = t.advance(2)
    # Assert
    assert [a.message for _, a in r.plan.alerts] == [
        "No stop loss on MNQZ6 within 2 s: position closed."]


@pytest.mark.parametrize("bad", [0, -5, "10", True])
def test_grace_invalid_when_configured_then_rejected_at_load(bad):
    with pytest.raises(ClassValidationError):
        make_tester(grace_period_seconds=bad)


def test_has_protective_stop_ignores_non_working_status():
    # Arrange
    from risk_actors.state import WorkingOrder
    filled = WorkingOrder(1, MNQ, m.ORDER_STOP, m.SIDE_SELL, 1, m.STATUS_FILLED)
    working = WorkingOrder(2, MNQ, m.ORDER_STOP, m.SIDE_SELL, 1, m.STATUS_OPEN)
    # Act / Assert
    assert not has_protective_stop({1: filled}, MNQ, m.POSITION_LONG)
    assert has_protective_stop({2: working}, MNQ, m.POSITION_LONG)
    assert not has_protective_stop({2: working}, MNQ, m.POSITION_SHORT)
