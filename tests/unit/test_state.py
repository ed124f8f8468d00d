"""Properties of the pure reducer (risk_actors.state) and of its persistence.

The reducer is the only place account state changes; the daemon, the journal replay and the
tests all go through it, so these properties hold for riskd itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import attrs
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.state import (AccountState, DailyReset, LockLifted, LocksAdded, Position,
                               ResetScheduled, RuleMemorySet, change_from_dict, change_to_dict,
                               reduce, reduce_all, state_from_dict, state_to_dict)
from risk_actors.testing import CONTRACTS, ct

T0 = ct(2026, 11, 24, 10, 0)
IDS = tuple(c.contract_id for c in CONTRACTS.values())[:4]
ACC = 1


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- strategies ---------------------------------------------------------------------------------
contract = st.sampled_from(IDS)
money = st.integers(-100_000, 100_000).map(lambda c: c / 100)

position_ev = st.builds(
    lambda cid, size, typ, avg: m.PositionEvent(ACC, cid, size, typ, avg),
    contract, st.integers(0, 10), st.sampled_from([m.POSITION_LONG, m.POSITION_SHORT]),
    st.integers(1, 100_000).map(lambda q: q / 4))

trade_ev = st.builds(
    lambda tid, cid, pnl, fees, voided, dt: m.TradeEvent(ACC, tid, cid, at(dt), 100.0, pnl, fees,
                                                         m.SIDE_SELL, 1, voided),
    st.integers(1, 10), contract, st.one_of(st.none(), money),
    st.integers(0, 500).map(lambda c: c / 100), st.booleans(), st.integers(0, 3600))

order_ev = st.builds(
    lambda oid, cid, status: m.OrderEvent(ACC, oid, cid, status, m.ORDER_STOP, m.SIDE_SELL, 1,
                                          stop_price=99.0),
    st.integers(1, 6), contract, st.integers(1, 6))

quote_ev = st.builds(lambda cid, px: m.QuoteEvent(cid, px), contract,
                     st.one_of(st.none(), st.integers(1, 100_000).map(lambda q: q / 4)))

lock = st.builds(
    lambda kind, scope, sym, exp, ur: m.Lock(kind, "why", None if exp is None else at(exp),
                                             scope, sym if scope == "symbol" else None, ur),
    st.sampled_from([m.LOCK_HARD, m.LOCK_COOLDOWN, m.LOCK_INDEFINITE, m.LOCK_SYMBOL]),
    st.sampled_from(["account", "symbol"]), st.sampled_from(["MNQ", "es", "RTY"]),
    st.one_of(st.none(), st.integers(0, 20_000)), st.booleans())

locks_added = st.builds(LocksAdded, st.sampled_from(["r003", "r006", "r007", "r011"]),
                        st.lists(lock, min_size=1, max_size=3).map(tuple))

json_value = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=5),
                       money)
memory_set = st.builds(RuleMemorySet, st.sampled_from(["r008", "r012"]),
                       st.dictionaries(st.text(min_size=1, max_size=4), json_value, max_size=3))

other = st.one_of(
    st.builds(lambda c: m.ConnectionChanged(ACC, c), st.booleans()),
    st.builds(lambda ct_, bal: m.AccountEvent(ACC, "A", bal, ct_), st.one_of(st.none(), st.booleans()),
              st.one_of(st.none(), money)),
    st.just(m.Tick(ACC)),
    st.builds(LockLifted, st.sampled_from(["r003", "r011"]),
              st.one_of(st.none(), st.sampled_from(["RTY", "mnq"]))),
)

any_change = st.one_of(position_ev, trade_ev, order_ev, quote_ev, locks_added, memory_set, other)


def journal(changes=any_change, max_size=25):
    """A list of (change, at) with non-decreasing times."""
    return st.lists(st.tuples(changes, st.integers(0, 600)), max_size=max_size).map(
        lambda steps: [(c, at(sum(d for _, d in steps[:i + 1]))) for i, (c, _) in enumerate(steps)])


def base_state() -> AccountState:
    s = AccountState(ACC)
    return reduce(s, m.ContractsKnown(ACC, tuple(CONTRACTS.values())), T0)


def _inf(expiry):
    return datetime.max.replace(tzinfo=T0.tzinfo) if expiry is None else expiry


# ---- positions ----------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(events=st.lists(position_ev, max_size=30))
def test_property_position_map_equals_last_event_per_contract_with_size_above_zero(events):
    # Arrange
    last: dict[str, m.PositionEvent] = {}
    for ev in events:
        last[ev.contract_id] = ev
    # Act
    state = reduce_all(base_state(), [(ev, T0) for ev in events])
    # Assert
    expected = {cid: Position(cid, ev.size, ev.type, ev.average_price)
                for cid, ev in last.items() if ev.size > 0}
    assert dict(state.positions) == expected


@settings(max_examples=100, deadline=None)
@given(events=st.lists(order_ev, max_size=30))
def test_property_working_orders_are_last_event_per_order_with_status_open_or_pending(events):
    last: dict[int, m.OrderEvent] = {}
    for ev in events:
        last[ev.order_id] = ev
    state = reduce_all(base_state(), [(ev, T0) for ev in events])
    assert set(state.orders) == {oid for oid, ev in last.items()
                                 if ev.status in (m.STATUS_OPEN, m.STATUS_PENDING)}


# ---- daily realized ---------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(events=st.lists(trade_ev, max_size=30), reset_offset=st.one_of(st.none(),
                                                                         st.integers(0, 3600)))
def test_property_daily_realized_is_sum_over_distinct_non_voided_trade_ids(events, reset_offset):
    # Arrange: optionally a reset boundary; trades created before it belong to the previous day
    state = base_state()
    if reset_offset is not None:
        state = reduce(state, ResetScheduled(at(86_400), at(reset_offset)), T0)
    last: dict[int, m.TradeEvent] = {}
    for ev in events:
        if reset_offset is None or ev.created >= at(reset_offset):
            last[ev.trade_id] = ev
    # Act
    state = reduce_all(state, [(ev, at(3600)) for ev in events])
    # Assert
    counted = [ev for ev in last.values() if not ev.voided]
    pnl = sum((Decimal(str(ev.pnl)) for ev in counted if ev.pnl is not None), Decimal(0))
    fees = sum((Decimal(str(ev.fees)) for ev in counted), Decimal(0))
    assert Decimal(str(state.realized_pnl)) == pnl
    assert Decimal(str(state.fees_total)) == fees
    assert Decimal(str(state.net_realized(True))) == pnl - fees
    assert Decimal(str(state.net_realized(False))) == pnl
    assert set(state.trades) == set(last)


def _summed_afresh(state):
    counted = [t for t in state.trades.values() if not t.voided]
    return (float(sum((Decimal(str(t.pnl)) for t in counted if t.pnl is not None), Decimal(0))),
            float(sum((Decimal(str(t.fees)) for t in counted), Decimal(0))))


reconciled_trades = st.builds(
    lambda trades: m.Reconciled(ACC, None, (), (), tuple({t.trade_id: t for t in trades}.values())),
    st.lists(trade_ev, max_size=5))


@settings(max_examples=200, deadline=None)
@given(steps=journal(st.one_of(any_change, trade_ev, reconciled_trades,
                               st.just(DailyReset(at(1800), at(88_200)))), max_size=40),
       ask=st.lists(st.booleans(), min_size=40, max_size=40))
def test_property_day_figures_carried_fill_by_fill_equal_a_full_re_sum(steps, ask):
    """The day's realized P&L and fees are carried from state to state (one fill: O(1)) and
    cached per trades mapping; asked after any step, or only now and then, they must equal a
    full re-sum of that state's trades exactly."""
    state = base_state()
    for (change, when), asked in zip(steps, ask):
        state = reduce(state, change, when)
        if asked:
            assert (state.realized_pnl, state.fees_total) == _summed_afresh(state)
    assert (state.realized_pnl, state.fees_total) == _summed_afresh(state)


# ---- locks ------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(steps=journal(locks_added, max_size=20))
def test_property_locks_added_never_shorten_an_active_lock(steps):
    state = base_state()
    for change, now in steps:
        before = {lk.key: lk for lk in state.active_lockouts(now)}
        expiry_before = state.lock_expiry(now)
        was_locked = state.account_locked(now)
        state = reduce(state, change, now)
        after = {lk.key: lk for lk in state.active_lockouts(now)}
        for key, old in before.items():
            assert key in after, f"active lock {key} disappeared"
            assert _inf(after[key].expires_at) >= _inf(old.expires_at)
        if was_locked:
            assert state.account_locked(now)
            assert _inf(state.lock_expiry(now)) >= _inf(expiry_before)


@settings(max_examples=200, deadline=None)
@given(adds=st.lists(locks_added, min_size=1, max_size=6),
       trades=st.lists(trade_ev, max_size=6), positions=st.lists(position_ev, max_size=6))
def test_property_daily_reset_clears_exactly_until_reset_locks_and_trades(adds, trades,
                                                                          positions):
    # Arrange: every lock still active at the reset (expiries after it or none)
    far = [attrs.evolve(a, locks=tuple(
        attrs.evolve(lk, expires_at=None if lk.expires_at is None
                     else lk.expires_at + timedelta(days=2)) for lk in a.locks)) for a in adds]
    state = reduce_all(base_state(), [(c, T0) for c in [*far, *trades, *positions]])
    reset_at = ct(2026, 11, 24, 17, 0)
    # Act
    after = reduce(state, DailyReset(reset_at, ct(2026, 11, 25, 17, 0)), reset_at)
    # Assert
    assert after.lockouts == tuple(lk for lk in state.lockouts if not lk.until_reset)
    assert after.trades == {}
    assert after.realized_pnl == 0 and after.fees_total == 0
    assert after.positions == state.positions and after.orders == state.orders
    assert (after.last_reset_at, after.next_reset_at) == (reset_at, ct(2026, 11, 25, 17, 0))


def test_lock_added_when_same_key_and_later_expiry_then_extended():
    # Arrange
    state = reduce(base_state(), LocksAdded("r007", (m.Lock(m.LOCK_COOLDOWN, "a", at(300)),)),
                   T0)
    # Act
    longer = reduce(state, LocksAdded("r007", (m.Lock(m.LOCK_COOLDOWN, "b", at(900)),)), at(60))
    shorter = reduce(longer, LocksAdded("r007", (m.Lock(m.LOCK_COOLDOWN, "c", at(400)),)), at(61))
    # Assert
    assert longer.lock_expiry(at(60)) == at(900)
    assert shorter.lock_expiry(at(61)) == at(900)
    assert len(shorter.lockouts) == 1


def test_lock_when_expiry_passes_then_dropped_on_next_change():
    state = reduce(base_state(), LocksAdded("r007", (m.Lock(m.LOCK_COOLDOWN, "a", at(300)),)),
                   T0)
    assert state.account_locked(at(299))
    after = reduce(state, m.Tick(ACC), at(300))
    assert after.lockouts == ()
    assert not after.account_locked(at(300))


def test_trade_created_before_last_reset_when_arriving_late_then_not_counted():
    state = reduce(base_state(), DailyReset(at(100), at(86_500)), at(100))
    late = m.TradeEvent(ACC, 1, IDS[0], at(99), 1.0, -300.0, 0.0, m.SIDE_SELL, 1)
    after = reduce(state, late, at(101))
    assert after.realized_pnl == 0


# ---- journal and persistence ------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(steps=journal())
def test_property_reduce_all_over_json_journal_equals_step_by_step(steps):
    # Arrange: the journal as the store writes it (JSON text per change)
    stored = [(json.dumps(change_to_dict(c)), when) for c, when in steps]
    # Act
    step_by_step = base_state()
    for change, when in steps:
        step_by_step = reduce(step_by_step, change, when)
    replayed = reduce_all(base_state(), [(change_from_dict(json.loads(text)), when)
                                         for text, when in stored])
    # Assert
    assert replayed == step_by_step


@settings(max_examples=150, deadline=None)
@given(steps=journal(), reset=st.booleans())
def test_property_state_round_trips_through_json(steps, reset):
    # Arrange
    state = reduce_all(base_state(), steps)
    if reset:
        state = reduce(state, DailyReset(at(50_000), at(136_400)), at(50_000))
    # Act
    restored = state_from_dict(json.loads(json.dumps(state_to_dict(state))))
    # Assert: quotes are rebuilt on reconnect, not persisted
    assert restored == attrs.evolve(state, quotes={})
    assert restored.net_realized() == state.net_realized()
    assert restored.lock_expiry(at(0)) == state.lock_expiry(at(0))


@settings(max_examples=150, deadline=None)
@given(steps=journal())
def test_property_reducer_never_raises_and_keeps_only_active_locks(steps):
    state = base_state()
    for change, when in steps:
        state = reduce(state, change, when)
        assert all(lk.active(when) for lk in state.lockouts)
        assert all(p.size > 0 for p in state.positions.values())
