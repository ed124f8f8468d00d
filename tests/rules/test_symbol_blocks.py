"""011 SymbolBlocks against rules-spec section 2 (blocked [RTY, BTC]) and its (inf) matching.

Assertions are on the observable effects: the broker actions of the merged plan, the locks in
the resulting state, and what the core's lockout guard does with them afterwards.
"""

from __future__ import annotations

import fnmatch

import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.pipeline import lockout_guard
from risk_actors.state import AccountState, Position
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.symbol_blocks import Params, SymbolBlocks, matching_pattern

RTY = CONTRACTS["RTY"].contract_id
MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
MES = CONTRACTS["MES"].contract_id
RTY_H = m.ContractInfo("CON.F.US.RTY.H27", "RTYH7", 0.10, 5.00, "F.US.RTY")
WITH_NEXT_QUARTER = {**CONTRACTS, "RTYH7": RTY_H}
START = ct(2026, 11, 24, 10, 0)


def make_tester(blocked=("RTY", "BTC"), contracts=WITH_NEXT_QUARTER, mode="enforce") -> RuleTester:
    return RuleTester(SymbolBlocks, {"blocked_symbols": list(blocked)}, start=START,
                      contracts=contracts, mode=mode)


def reload(t: RuleTester, blocked) -> m.Tick:
    """What a config reload does: a new rule with the new params, then Tick(reason="config")."""
    t.rule = SymbolBlocks(Params(blocked_symbols=list(blocked)))
    return t.send(m.Tick(t.state.account_id, "config"))


def symbol_locks(state: AccountState):
    return [(lk.rule, lk.kind, lk.scope, lk.symbol, lk.expires_at) for lk in state.lockouts]


# ---- (a) a position in a blocked symbol -------------------------------------------------------
def test_rty_position_when_rty_blocked_then_close_cancel_and_permanent_symbol_lock():
    # Arrange
    t = make_tester()
    # Act
    r = t.position("RTY", 1)
    # Assert
    assert r.broker_actions == (m.ClosePosition(RTY), m.CancelOrders(RTY))
    assert symbol_locks(r.state) == [("symbol_blocks", m.LOCK_SYMBOL, "symbol", "RTY", None)]
    assert r.state.locked_for(RTY, r.now)
    assert not r.state.account_locked(r.now)
    assert any("RTY" in a.message for _, a in r.plan.alerts)


def test_rty_locked_when_mnq_trades_then_mnq_stays_tradable():
    # Arrange
    t = make_tester()
    t.position("RTY", 1)
    # Act
    r = t.position("MNQ", 2)
    # Assert
    assert r.violation is None and r.broker_actions == ()
    assert not r.state.locked_for(MNQ, r.now)
    assert lockout_guard(m.PositionEvent(1, MNQ, 2), r.state, r.state, r.now) == ()


def test_rty_locked_when_trader_fills_rty_again_then_closed_without_a_second_lock():
    # Arrange
    t = make_tester()
    t.position("RTY", 1)
    t.position("RTY", 0)
    before = t.state
    # Act
    r = t.position("RTY", 2)
    # Assert: the core's guard undoes the fill too; the rule asks for the same close
    # (the enforcer joins both into one job) and keeps the one lock
    assert r.broker_actions == (m.ClosePosition(RTY), m.CancelOrders(RTY))
    assert r.locks == ()
    assert len(r.state.lockouts) == 1
    assert m.ClosePosition(RTY) in lockout_guard(m.PositionEvent(1, RTY, 2), before, r.state,
                                                 r.now)


def test_rty_locked_when_position_only_shrinks_then_the_rest_is_still_closed():
    # Arrange: a close that did not fully hold (the broker left 1 of 3)
    t = make_tester()
    t.position("RTY", 3)
    # Act
    r = t.position("RTY", 1)
    # Assert
    assert m.ClosePosition(RTY) in r.broker_actions
    assert r.locks == ()


def test_rty_position_when_it_has_working_orders_then_they_are_cancelled_too():
    # Arrange: orders first (a resting limit and a stop), not yet blocked
    t = make_tester(blocked=())
    t.order("RTY", type=m.ORDER_LIMIT, side=m.SIDE_BUY, limit_price=2100.0)
    t.position("RTY", 1)
    # Act
    r = reload(t, ["RTY"])
    # Assert
    assert r.broker_actions == (m.ClosePosition(RTY), m.CancelOrders(RTY))


# ---- (b) every month of the root --------------------------------------------------------------
def test_rty_two_months_open_when_blocked_then_both_closed_and_one_symbol_lock():
    # Arrange
    t = make_tester()
    now = t.now
    snapshot = m.Reconciled(1, None, (
        m.PositionEvent(1, RTY, 1, m.POSITION_LONG, 2200.0, None, now),
        m.PositionEvent(1, RTY_H.contract_id, 2, m.POSITION_SHORT, 2210.0, None, now)), (), ())
    # Act
    r = t.send(snapshot)
    # Assert
    assert set(r.broker_actions) == {m.ClosePosition(RTY), m.ClosePosition(RTY_H.contract_id),
                                     m.CancelOrders(RTY), m.CancelOrders(RTY_H.contract_id)}
    assert symbol_locks(r.state) == [("symbol_blocks", m.LOCK_SYMBOL, "symbol", "RTY", None)]


def test_second_month_when_first_already_open_then_event_closes_the_whole_root():
    # Arrange: RTY Dec open before the block existed
    t = make_tester(blocked=())
    t.position("RTY", 1)
    t.rule = SymbolBlocks(Params(blocked_symbols=["RTY"]))
    # Act: a March fill arrives before the config tick
    r = t.position("RTYH7", 1)
    # Assert
    assert set(r.broker_actions) == {m.ClosePosition(RTY), m.ClosePosition(RTY_H.contract_id),
                                     m.CancelOrders(RTY), m.CancelOrders(RTY_H.contract_id)}


# ---- (c)-(e) matching: exact or glob, case-insensitive, never a substring ---------------------
@pytest.mark.parametrize("blocked, symbol, hit", [
    (["ES"], "ES", True), (["ES"], "MES", False),                           # (c)
    (["rty"], "RTY", True), (["Rty"], "RTY", True),                         # (d)
    (["M*"], "MNQ", True), (["M*"], "MES", True), (["M*"], "M2K", True),    # (e)
    (["M*"], "ES", False), (["M*"], "RTY", False),
    (["ES*"], "ES", True), (["ES*"], "MES", False),
    (["?ES"], "MES", True), (["?ES"], "ES", False), (["NQ"], "MNQ", False),
])
def test_blocked_pattern_when_position_opens_then_blocks_only_whole_root_matches(blocked, symbol,
                                                                                   hit):
    # Arrange
    t = make_tester(blocked=blocked)
    cid = CONTRACTS[symbol].contract_id
    # Act
    r = t.position(symbol, 1)
    # Assert
    assert (m.ClosePosition(cid) in r.broker_actions) is hit
    assert r.state.locked_for(cid, r.now) is hit


def test_es_blocked_when_contract_id_uses_exchange_root_ep_then_still_es():
    # Arrange: ES is CON.F.US.EP.Z26; the root comes from the name ESZ6
    t = make_tester(blocked=["ES"])
    # Act
    r = t.position("ES", 1)
    # Assert
    assert r.broker_actions[0] == m.ClosePosition(ES)
    assert r.state.lockouts[0].symbol == "ES"


# ---- (f) working orders -----------------------------------------------------------------------
def test_working_rty_order_when_rty_blocked_then_cancelled_and_symbol_locked():
    # Arrange
    t = make_tester()
    # Act
    r = t.order("RTY", type=m.ORDER_LIMIT, side=m.SIDE_BUY, limit_price=2100.0)
    # Assert
    assert r.broker_actions == (m.CancelOrders(RTY),)
    assert r.state.symbol_locked("RTY", r.now)


def test_working_order_when_only_its_symbol_id_identifies_rty_then_cancelled():
    # Arrange: no contract metadata yet; the order's symbolId F.US.RTY names the root
    t = make_tester(contracts={k: v for k, v in CONTRACTS.items() if k != "RTY"})
    # Act
    r = t.send(m.OrderEvent(1, 77, RTY, m.STATUS_OPEN, m.ORDER_LIMIT, m.SIDE_BUY, 1,
                            "F.US.RTY", 2100.0))
    # Assert
    assert r.broker_actions == (m.CancelOrders(RTY),)


def test_rty_order_when_cancelled_or_filled_then_no_action():
    # Arrange
    t = make_tester(blocked=())
    t.order("RTY", order_id=5, type=m.ORDER_LIMIT, limit_price=2100.0)
    t.rule = SymbolBlocks(Params(blocked_symbols=["RTY"]))
    # Act
    r = t.order("RTY", order_id=5, type=m.ORDER_LIMIT, status=m.STATUS_CANCELLED)
    # Assert
    assert r.violation is None and r.broker_actions == ()


# ---- (g) hot-add, removal, position already gone ----------------------------------------------
def test_es_added_to_blocked_list_when_es_position_open_then_config_tick_closes_and_locks():
    # Arrange
    t = make_tester(blocked=["RTY"])
    t.position("ES", 2)
    t.position("MNQ", 1)
    # Act
    r = reload(t, ["RTY", "ES"])
    # Assert
    assert r.broker_actions == (m.ClosePosition(ES), m.CancelOrders(ES))
    assert r.state.symbol_locked("ES", r.now)
    assert not r.state.locked_for(MNQ, r.now)


def test_symbol_removed_from_blocked_list_when_config_tick_then_its_lock_is_lifted():
    # Arrange
    t = make_tester(blocked=["RTY", "ES"])
    t.position("RTY", 1)
    t.position("ES", 1)
    t.position("RTY", 0)
    t.position("ES", 0)
    # Act
    r = reload(t, ["ES"])
    # Assert
    assert r.plan.lifts == (("symbol_blocks", m.LiftLock(symbol="RTY")),)
    assert not r.state.symbol_locked("RTY", r.now)
    assert r.state.symbol_locked("ES", r.now)
    assert lockout_guard(m.PositionEvent(1, RTY, 1), r.state, r.state, r.now) == ()


def test_pattern_removed_when_another_pattern_still_matches_then_lock_kept():
    # Arrange
    t = make_tester(blocked=["RTY", "R*"])
    t.position("RTY", 1)
    # Act
    r = reload(t, ["R*"])
    # Assert
    assert r.plan.lifts == ()
    assert r.state.symbol_locked("RTY", r.now)


def test_lift_and_new_block_when_same_reload_then_both_happen():
    # Arrange
    t = make_tester(blocked=["RTY"])
    t.position("RTY", 1)
    t.position("RTY", 0)
    t.position("MES", 1)
    # Act
    r = reload(t, ["MES"])
    # Assert
    assert r.broker_actions == (m.ClosePosition(MES), m.CancelOrders(MES))
    assert ("symbol_blocks", m.LiftLock(symbol="RTY")) in r.plan.lifts
    assert not r.state.symbol_locked("RTY", r.now)
    assert r.state.symbol_locked("MES", r.now)


def test_blocked_symbol_when_position_already_gone_then_no_error_and_no_action():
    # Arrange
    t = make_tester()
    t.position("RTY", 1)
    # Act: the close went through; the flat update and a reload find nothing to do
    flat = t.position("RTY", 0)
    tick = t.send(m.Tick(1, "config"))
    # Assert
    assert flat.violation is None and flat.broker_actions == ()
    assert tick.violation is None and tick.broker_actions == ()
    assert tick.state.symbol_locked("RTY", tick.now)


def test_restart_with_config_without_symbol_when_reconciled_then_lock_lifted():
    # Arrange: the lock was restored from the database; the new config no longer blocks RTY
    t = make_tester()
    t.position("RTY", 1)
    t.position("RTY", 0)
    t.rule = SymbolBlocks(Params(blocked_symbols=[]))
    # Act
    r = t.send(m.Reconciled(1, None, (), (), ()))
    # Assert
    assert not r.state.symbol_locked("RTY", r.now)


def test_restart_when_blocked_position_still_open_then_closed_without_a_second_lock():
    # Arrange
    t = make_tester()
    t.position("RTY", 1)
    # Act
    r = t.send(m.Reconciled(1, None, (m.PositionEvent(1, RTY, 1, m.POSITION_LONG, 2200.0),),
                            (), ()))
    # Assert
    assert m.ClosePosition(RTY) in r.broker_actions
    assert r.locks == ()
    assert len(r.state.lockouts) == 1


# ---- contract metadata late -------------------------------------------------------------------
def test_rty_fill_when_metadata_arrives_later_then_blocked_on_contracts_known():
    # Arrange
    t = make_tester(contracts={k: v for k, v in CONTRACTS.items() if k != "RTY"})
    first = t.position(RTY, 1)
    # Act
    r = t.send(m.ContractsKnown(1, (CONTRACTS["RTY"],)))
    # Assert: no guess from the id, then the block once the name says RTY
    assert first.broker_actions == ()
    assert r.broker_actions == (m.ClosePosition(RTY), m.CancelOrders(RTY))
    assert r.state.symbol_locked("RTY", r.now)


# ---- shadow and params ------------------------------------------------------------------------
def test_shadow_mode_when_blocked_then_violation_recorded_but_nothing_executed_or_locked():
    # Arrange
    t = make_tester(mode="shadow")
    # Act
    r = t.position("RTY", 1)
    # Assert
    assert r.violation is not None
    assert r.broker_actions == () and r.state.lockouts == ()


def test_blocked_symbols_when_loaded_then_upper_cased_and_deduplicated():
    assert Params(blocked_symbols=["rty", " RTY ", "m*"]).blocked_symbols == ("RTY", "M*")
    assert Params().blocked_symbols == ()


@pytest.mark.parametrize("value, words", [
    ("RTY", ["blocked_symbols", "'RTY'"]),
    (["RTY", "E[S]"], ["blocked_symbols", "'E[S]'"]),
    (["RTY", ""], ["blocked_symbols", "''"]),
    (["ES.U25"], ["blocked_symbols", "'ES.U25'"]),
    ([5], ["blocked_symbols", "5"]),
    ({"RTY": True}, ["blocked_symbols", "{'RTY': True}"]),
])
def test_bad_blocked_symbols_when_loaded_then_error_names_field_and_value(value, words):
    with pytest.raises(ClassValidationError) as info:
        RuleTester(SymbolBlocks, {"blocked_symbols": value})
    text = str(info.value.exceptions[0])
    for word in words:
        assert word in text


# ---- properties -------------------------------------------------------------------------------
roots = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=5)
cased = st.sampled_from([str.upper, str.lower, str.title])


@settings(max_examples=200, deadline=None)
@given(root=roots, pattern=roots, c1=cased, c2=cased)
def test_property_exact_pattern_matches_only_the_same_root_in_any_case(root, pattern, c1, c2):
    hit = matching_pattern(c1(root), (c2(pattern),)) is not None
    assert hit == (root == pattern)  # in particular never a substring


@settings(max_examples=200, deadline=None)
@given(root=roots, prefix=roots, c1=cased, c2=cased)
def test_property_star_pattern_is_a_prefix_match_of_the_whole_root(root, prefix, c1, c2):
    assert (matching_pattern(c1(root), (c2(prefix) + "*",)) is not None) == root.startswith(prefix)
    # a leading-star pattern is a suffix match, never "contains"
    assert (matching_pattern(c1(root), ("*" + c2(prefix),)) is not None) == root.endswith(prefix)


@settings(max_examples=200, deadline=None)
@given(root=roots, pattern=roots, data=st.data())
def test_property_question_mark_stands_for_exactly_one_character(root, pattern, data):
    i = data.draw(st.integers(0, len(pattern) - 1))
    glob = pattern[:i] + "?" + pattern[i + 1:]
    expected = len(root) == len(pattern) and all(
        a == b for j, (a, b) in enumerate(zip(root, pattern)) if j != i)
    assert (matching_pattern(root, (glob,)) is not None) == expected


SYMBOLS = ("MNQ", "MES", "ES", "NQ", "RTY", "M2K")


@settings(max_examples=150, deadline=None)
@given(held=st.dictionaries(st.sampled_from(SYMBOLS), st.integers(1, 5), min_size=1),
       blocked=st.lists(st.sampled_from(SYMBOLS + ("M*", "*S", "?Q", "R??", "es", "nq")),
                        max_size=3))
def test_property_reload_closes_exactly_the_positions_of_matching_roots(held, blocked):
    # Arrange
    contracts = {c.contract_id: c for c in CONTRACTS.values()}
    positions = {CONTRACTS[s].contract_id: Position(CONTRACTS[s].contract_id, n, m.POSITION_LONG,
                                                    1.0) for s, n in held.items()}
    state = AccountState(1, positions=positions, contracts=contracts)
    rule = SymbolBlocks(Params(blocked_symbols=blocked))
    # Act
    outcome = rule.evaluate(m.Tick(1, "config"), state, START)
    actions = rule.get_enforcement_action(outcome) if hasattr(outcome, "reason") else ()
    # Assert
    closed = {a.contract_id for a in actions if isinstance(a, m.ClosePosition)}
    locked = {a.symbol for a in actions if isinstance(a, m.Lock)}
    expect = {s for s in held if any(fnmatch.fnmatchcase(s, p.upper()) for p in blocked)}
    assert closed == {CONTRACTS[s].contract_id for s in expect}
    assert locked == expect
    assert all(a.scope == "symbol" and a.expires_at is None
               for a in actions if isinstance(a, m.Lock))
