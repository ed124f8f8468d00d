"""reconcile.overlay: a snapshot answered after hub events it predates must not undo them."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.broker import reconcile
from risk_actors.state import reduce_all

from tests.unit.test_state import (ACC, T0, any_change, base_state, journal, money, order_ev,
                                   position_ev, trade_ev)

account_ev = st.builds(lambda name, bal, can: m.AccountEvent(ACC, name, bal, can),
                       st.sampled_from(["", "A", "B"]), st.one_of(st.none(), money),
                       st.one_of(st.none(), st.booleans()))

snapshot = st.builds(
    lambda acct, pos, orders, trades: reconcile.overlay(  # overlay of nothing = REST as read
        m.Reconciled(ACC, acct, tuple({p.contract_id: p for p in pos if p.size > 0}.values()),
                     tuple({o.order_id: o for o in orders if o.working}.values()),
                     tuple({t.trade_id: t for t in trades}.values())), ()),
    st.one_of(st.none(), account_ev), st.lists(position_ev, max_size=4),
    st.lists(order_ev, max_size=4), st.lists(trade_ev, max_size=4))

window_event = st.one_of(position_ev, order_ev, trade_ev, account_ev)


def _view(state):
    return (state.positions, state.orders, state.trades, state.name, state.balance,
            state.can_trade)


@settings(max_examples=300, deadline=None)
@given(prior=journal(any_change, max_size=10), rest=snapshot,
       window=st.lists(window_event, max_size=8))
def test_property_snapshot_applied_after_the_window_equals_it_applied_before(prior, rest,
                                                                            window):
    """The hub events came in while the REST answers were on their way: state must end as if
    the snapshot had arrived first and the hub events after it (their true order)."""
    base = reduce_all(base_state(), prior)
    now = prior[-1][1] if prior else T0
    live = reduce_all(base, [(ev, now) for ev in window]
                      + [(reconcile.overlay(rest, window), now)])
    true_order = reduce_all(base, [(rest, now)] + [(ev, now) for ev in window])
    assert _view(live) == _view(true_order)


def test_a_reduce_seen_on_the_hub_survives_a_snapshot_read_before_it():
    """Broker 6 -> reduced to 5 (hub) while the snapshot that says 6 is still on its way."""
    mnq = "CON.F.US.MNQ.Z26"
    rest = m.Reconciled(ACC, None, (m.PositionEvent(ACC, mnq, 6, m.POSITION_LONG, 100.0),),
                        (), ())
    hub = m.PositionEvent(ACC, mnq, 5, m.POSITION_LONG, 100.0)
    assert [p.size for p in reconcile.overlay(rest, [hub]).positions] == [5]
    closed = m.PositionEvent(ACC, mnq, 0, m.POSITION_LONG, 0.0)
    assert reconcile.overlay(rest, [hub, closed]).positions == ()
    # Events of another account (never routed here, but never trusted either) change nothing.
    assert reconcile.overlay(rest, [m.PositionEvent(ACC + 1, mnq, 1)]) is rest
    assert reconcile.overlay(rest, []) is rest
