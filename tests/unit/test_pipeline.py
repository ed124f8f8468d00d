"""The pure pipeline steps: run_rule, lockout_guard and merge (rules-spec sections 4 and 8)."""

from __future__ import annotations

from datetime import timedelta

from risk_actors import messages as m
from risk_actors.pipeline import lockout_guard, merge, run_rule
from risk_actors.state import AccountState, LocksAdded, reduce
from risk_actors.testing import CONTRACTS, ct
from rules.base import Rule, RuleUpdate, RuleViolation

NOW = ct(2026, 11, 24, 13, 0)
MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
RTY = CONTRACTS["RTY"].contract_id
M2K = CONTRACTS["M2K"].contract_id
RTY_Z27 = "CON.F.US.RTY.Z27"


def verdict(rule: str, *actions, mode: str = "enforce", violated: bool = True,
            error: str | None = None) -> m.Verdict:
    violation = RuleViolation(rule, "why") if violated else None
    return m.Verdict(1, 1, rule, mode, violation, tuple(actions), error=error)


# ---- merge --------------------------------------------------------------------------------------
def test_flatten_close_and_reduce_when_merged_then_only_flatten_is_executed():
    # Arrange
    vs = [verdict("001", m.ReducePosition(MNQ, 1)), verdict("004", m.ClosePosition(MNQ)),
          verdict("003", m.FlattenAccount(), m.CancelOrders()),
          verdict("012", m.PlaceStop(ES, m.SIDE_SELL, 1, 5990.0))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.FlattenAccount(),)
    assert plan.rules == ("001", "004", "003", "012")


def test_close_and_reduce_of_same_contract_when_merged_then_close_wins():
    # Arrange
    vs = [verdict("001", m.ReducePosition(MNQ, 1)), verdict("004", m.ClosePosition(MNQ))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.ClosePosition(MNQ),)


def test_close_of_one_contract_when_merged_with_reduce_of_another_then_both_kept_close_first():
    # Arrange
    vs = [verdict("001", m.ReducePosition(MNQ, 1)), verdict("004", m.ClosePosition(ES))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.ClosePosition(ES), m.ReducePosition(MNQ, 1))


def test_two_reduces_of_one_contract_when_merged_then_largest_only():
    # Arrange
    vs = [verdict("001", m.ReducePosition(MNQ, 1)), verdict("002", m.ReducePosition(MNQ, 3)),
          verdict("x", m.ReducePosition(MNQ, 2))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.ReducePosition(MNQ, 3),)


def test_reduces_when_merged_then_triggering_order_of_the_rule_is_kept():
    # Arrange: 001 reduces the triggering contract first, then the largest
    vs = [verdict("001", m.ReducePosition(ES, 1), m.ReducePosition(MNQ, 2))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.ReducePosition(ES, 1), m.ReducePosition(MNQ, 2))


def test_shadow_verdict_when_merged_then_not_executed():
    # Arrange
    lock = m.Lock(m.LOCK_HARD, "shadow lock", NOW + timedelta(hours=4), until_reset=True)
    vs = [verdict("003", m.FlattenAccount(), lock, m.Alert("x"), mode="shadow"),
          verdict("001", m.ReducePosition(MNQ, 1))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.ReducePosition(MNQ, 1),)
    assert plan.locks == () and plan.alerts == ()
    assert plan.rules == ("001",)


def test_only_shadow_verdicts_when_merged_then_plan_is_empty():
    plan = merge([verdict("003", m.FlattenAccount(), mode="shadow")])
    assert plan.empty


def test_errored_or_clean_verdicts_when_merged_then_ignored():
    # Arrange
    vs = [verdict("x", violated=False, error="ValueError: boom"),
          verdict("y", violated=False)]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.empty and plan.rules == ()


def test_locks_and_alerts_when_merged_with_flatten_then_all_kept_with_their_rule():
    # Arrange
    hard = m.Lock(m.LOCK_HARD, "daily loss", NOW + timedelta(hours=4), until_reset=True)
    cool = m.Lock(m.LOCK_COOLDOWN, "loss tier", NOW + timedelta(minutes=5))
    vs = [verdict("003", m.FlattenAccount(), hard, m.Alert("loss", "critical")),
          verdict("007", m.FlattenAccount(), cool, m.Alert("cooldown"))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.FlattenAccount(),)
    assert plan.locks == (("003", hard), ("007", cool))
    assert plan.alerts == (("003", m.Alert("loss", "critical")), ("007", m.Alert("cooldown")))


def test_guard_close_when_merged_with_rule_reduce_then_close_wins():
    # Arrange
    guard = (m.ClosePosition(MNQ), m.CancelOrders(MNQ))
    # Act
    plan = merge([verdict("001", m.ReducePosition(MNQ, 1))], guard=guard)
    # Assert
    assert plan.broker_actions == (m.ClosePosition(MNQ), m.CancelOrders(MNQ))


def test_cancel_all_when_merged_with_single_cancels_then_only_cancel_all():
    # Arrange
    vs = [verdict("009", m.CancelOrders()), verdict("011", m.CancelOrders(RTY)),
          verdict("008", m.CancelOrder(42))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.CancelOrders(),)


def test_stop_for_closed_contract_when_merged_then_dropped():
    # Arrange
    vs = [verdict("004", m.ClosePosition(MNQ)),
          verdict("012", m.PlaceStop(MNQ, m.SIDE_SELL, 2, 20990.0), m.ModifyStop(7, 6000.0))]
    # Act
    plan = merge(vs)
    # Assert
    assert plan.broker_actions == (m.ClosePosition(MNQ), m.ModifyStop(7, 6000.0))


def test_same_action_from_two_rules_when_merged_then_executed_once():
    plan = merge([verdict("004", m.ClosePosition(ES)), verdict("005", m.ClosePosition(ES))])
    assert plan.broker_actions == (m.ClosePosition(ES),)


# ---- lockout_guard -----------------------------------------------------------------------------
def state_with(*locks: m.Lock, rule: str = "r") -> AccountState:
    s = reduce(AccountState(1), m.ContractsKnown(1, tuple(CONTRACTS.values())), NOW)
    s = reduce(s, m.ContractsKnown(1, (m.ContractInfo(RTY_Z27, "RTYZ7", 0.1, 5.0, "F.US.RTY"),)),
               NOW)
    return reduce(s, LocksAdded(rule, tuple(locks)), NOW) if locks else s


ACCOUNT_LOCK = m.Lock(m.LOCK_HARD, "daily loss", ct(2026, 11, 24, 17, 0), until_reset=True)
RTY_LOCK = m.Lock(m.LOCK_SYMBOL, "blocked", None, scope="symbol", symbol="rty")


def guard(state: AccountState, event, now=NOW) -> tuple:
    after = reduce(state, event, now)
    return lockout_guard(event, state, after, now)


def position(cid: str, size: int = 1) -> m.PositionEvent:
    return m.PositionEvent(1, cid, size, m.POSITION_LONG, 100.0)


def order(oid: int, cid: str, status: int = m.STATUS_OPEN) -> m.OrderEvent:
    return m.OrderEvent(1, oid, cid, status, m.ORDER_LIMIT, m.SIDE_BUY, 1, limit_price=99.0)


def test_account_lock_when_any_position_opens_then_closed_and_its_orders_cancelled():
    state = state_with(ACCOUNT_LOCK)
    for cid in (MNQ, ES, RTY):
        assert guard(state, position(cid)) == (m.ClosePosition(cid), m.CancelOrders(cid))


def test_account_lock_when_position_goes_to_zero_then_nothing_to_do():
    assert guard(state_with(ACCOUNT_LOCK), position(MNQ, 0)) == ()


def test_no_lock_when_position_opens_then_no_action():
    assert guard(state_with(), position(MNQ, 3)) == ()
    assert guard(state_with(), order(1, MNQ)) == ()


def test_symbol_lock_when_position_in_that_root_then_closed_other_roots_untouched():
    # Arrange
    state = state_with(RTY_LOCK, rule="symbol_blocks")
    # Act / Assert: both RTY months are closed; M2K, MNQ, ES are not RTY
    assert guard(state, position(RTY)) == (m.ClosePosition(RTY), m.CancelOrders(RTY))
    assert guard(state, position(RTY_Z27)) == (m.ClosePosition(RTY_Z27),
                                               m.CancelOrders(RTY_Z27))
    for cid in (M2K, MNQ, ES):
        assert guard(state, position(cid)) == ()


def test_account_lock_when_working_order_arrives_then_cancelled():
    assert guard(state_with(ACCOUNT_LOCK), order(77, MNQ)) == (m.CancelOrder(77),)
    assert guard(state_with(ACCOUNT_LOCK), order(78, MNQ, m.STATUS_PENDING)) == (
        m.CancelOrder(78),)


def test_account_lock_when_order_is_filled_or_cancelled_then_nothing_to_cancel():
    for status in (m.STATUS_FILLED, m.STATUS_CANCELLED, m.STATUS_REJECTED):
        assert guard(state_with(ACCOUNT_LOCK), order(77, MNQ, status)) == ()


def test_symbol_lock_when_working_order_then_only_that_symbols_order_cancelled():
    state = state_with(RTY_LOCK, rule="symbol_blocks")
    assert guard(state, order(5, RTY)) == (m.CancelOrder(5),)
    assert guard(state, order(6, MNQ)) == ()


def test_cooldown_lock_when_position_opens_then_closed():
    cool = m.Lock(m.LOCK_COOLDOWN, "cool", NOW + timedelta(minutes=5))
    assert guard(state_with(cool), position(ES)) == (m.ClosePosition(ES), m.CancelOrders(ES))


def test_lock_when_expired_then_fills_are_no_longer_closed():
    cool = m.Lock(m.LOCK_COOLDOWN, "cool", NOW + timedelta(minutes=5))
    assert guard(state_with(cool), position(ES), now=NOW + timedelta(minutes=5)) == ()


def test_new_symbol_lock_when_it_starts_then_only_that_symbols_orders_cancelled():
    # Arrange: positions and orders exist before the lock
    s = state_with()
    for ev in (position(RTY, 2), position(MNQ, 1), order(5, RTY), order(6, MNQ)):
        s = reduce(s, ev, NOW)
    locked = reduce(s, LocksAdded("symbol_blocks", (RTY_LOCK,)), NOW)
    # Act: a lock just started (event None)
    actions = lockout_guard(None, s, locked, NOW)
    # Assert: positions are the locking rule's business (011 asks to close; a cooldown doesn't)
    assert actions == (m.CancelOrder(5),)


def test_cooldown_with_open_position_when_trader_reduces_then_not_closed():
    # rules-spec 4: only a new or increased position is closed while locked
    cool = m.Lock(m.LOCK_COOLDOWN, "cool", NOW + timedelta(minutes=5))
    before = reduce(state_with(cool), position(ES, 3), NOW)
    assert guard(before, position(ES, 2)) == ()
    assert guard(before, position(ES, 4)) == (m.ClosePosition(ES), m.CancelOrders(ES))


def test_cooldown_when_reconnect_finds_same_position_then_kept_and_grown_one_closed():
    cool = m.Lock(m.LOCK_COOLDOWN, "cool", NOW + timedelta(minutes=5))
    before = reduce(state_with(cool), position(ES, 1), NOW)
    snap = m.Reconciled(1, None, (position(ES, 1), position(MNQ, 1)), (), ())
    assert guard(before, snap) == (m.ClosePosition(MNQ),)


def test_account_lock_when_reconciled_then_every_position_closed_every_order_cancelled():
    # Arrange
    s = state_with(ACCOUNT_LOCK)
    snap = m.Reconciled(1, None, (position(MNQ, 2), position(ES, 1)),
                        (order(5, MNQ), order(6, ES, m.STATUS_FILLED)), ())
    # Act
    actions = guard(s, snap)
    # Assert
    assert actions == (m.ClosePosition(MNQ), m.ClosePosition(ES), m.CancelOrder(5))


# ---- run_rule ---------------------------------------------------------------------------------
class Exploding(Rule):
    name = "exploding"
    events = (m.PositionEvent,)

    def evaluate(self, event, state, now):
        raise ZeroDivisionError("bad plugin")

    def get_enforcement_action(self, violation):
        return ()


class ExplodingEnforcement(Rule):
    name = "exploding_enforcement"
    events = (m.PositionEvent,)

    def evaluate(self, event, state, now):
        return RuleViolation(self.name, "breach")

    def get_enforcement_action(self, violation):
        raise KeyError("plan")


class WrongReturn(Rule):
    name = "wrong_return"
    events = (m.PositionEvent,)

    def evaluate(self, event, state, now):
        return True

    def get_enforcement_action(self, violation):
        return ()


class Remembering(Rule):
    name = "remembering"
    events = (m.PositionEvent,)

    def evaluate(self, event, state, now):
        if event.size > 5:
            return RuleViolation(self.name, "big", event.contract_id, memory={"n": 2},
                                 wake_at=now + timedelta(seconds=10))
        return RuleUpdate(memory={"n": 1}, wake_at=now + timedelta(seconds=10))

    def get_enforcement_action(self, violation):
        return (m.ClosePosition(violation.contract_id), m.Alert("big"))


def test_rule_raises_when_run_then_error_verdict_and_no_actions():
    # Act
    v = run_rule(Exploding(), "enforce", 1, 7, position(MNQ), AccountState(1), NOW)
    # Assert
    assert (v.rule, v.mode, v.seq, v.account_id) == ("exploding", "enforce", 7, 1)
    assert "ZeroDivisionError: bad plugin" in v.error
    assert v.violation is None and v.actions == () and v.memory is None
    assert merge([v]).empty


def test_enforcement_raises_when_run_then_error_verdict():
    v = run_rule(ExplodingEnforcement(), "enforce", 1, 1, position(MNQ), AccountState(1), NOW)
    assert "KeyError" in v.error
    assert v.actions == ()


def test_evaluate_returns_wrong_type_when_run_then_error_verdict():
    v = run_rule(WrongReturn(), "enforce", 1, 1, position(MNQ), AccountState(1), NOW)
    assert "TypeError" in v.error and "bool" in v.error


def test_violation_when_run_then_actions_memory_and_wake_carried():
    v = run_rule(Remembering(), "shadow", 1, 3, position(MNQ, 6), AccountState(1), NOW)
    assert v.error is None
    assert v.actions == (m.ClosePosition(MNQ), m.Alert("big"))
    assert v.memory == {"n": 2} and v.wake_at == NOW + timedelta(seconds=10)
    assert v.mode == "shadow"


def test_update_when_run_then_memory_without_violation_or_actions():
    v = run_rule(Remembering(), "enforce", 1, 3, position(MNQ, 1), AccountState(1), NOW)
    assert v.violation is None and v.actions == ()
    assert v.memory == {"n": 1} and v.wake_at == NOW + timedelta(seconds=10)
