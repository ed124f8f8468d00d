"""002 MaxContractsPerInstrument against rules-spec section 2 (MNQ 2, ES 1, reduce, block).

Assertions are on the observable effects: the broker actions of the merged plan and the locks.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.state import AccountState, Position
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.max_contracts_per_instrument import (MaxContractsPerInstrument, Params,
                                                parse_unknown_policy, plan_root, root_count)

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
RTY = CONTRACTS["RTY"].contract_id
MNQ_H = m.ContractInfo("CON.F.US.MNQ.H27", "MNQH7", 0.25, 0.50, "F.US.MNQ")
ES_H = m.ContractInfo("CON.F.US.EP.H27", "ESH7", 0.25, 12.50, "F.US.EP")
RTY_H = m.ContractInfo("CON.F.US.RTY.H27", "RTYH7", 0.10, 5.00, "F.US.RTY")
WITH_NEXT_QUARTER = {**CONTRACTS, "MNQH7": MNQ_H, "ESH7": ES_H, "RTYH7": RTY_H}

SPEC = {"limits": {"MNQ": 2, "ES": 1}, "enforcement": "reduce_to_limit",
        "unknown_symbol_action": "block"}
START = ct(2026, 11, 24, 10, 0)


def make_tester(contracts=WITH_NEXT_QUARTER, **params) -> RuleTester:
    return RuleTester(MaxContractsPerInstrument, {**SPEC, **params}, start=START,
                      contracts=contracts)


# ---- within the limits ------------------------------------------------------------------------
def test_positions_at_their_limits_when_mnq_2_and_es_1_then_no_action():
    # Arrange
    t = make_tester()
    # Act
    first = t.position("MNQ", 2)
    second = t.position("ES", 1, "short")
    # Assert
    assert first.violation is None and first.broker_actions == ()
    assert second.violation is None and second.broker_actions == ()


# ---- (a) / (b) absolute size over the limit ----------------------------------------------------
@pytest.mark.parametrize("side", ["long", "short"])
def test_mnq_3_when_limit_2_then_partial_close_of_1_whatever_the_side(side):
    # Arrange
    t = make_tester()
    # Act
    r = t.position("MNQ", 3, side)
    # Assert
    assert r.broker_actions == (m.ReducePosition(MNQ, 1),)
    assert r.locks == ()
    assert not r.state.account_locked(r.now)
    assert "MNQ: 3 contract(s), limit 2" in r.violation.reason


def test_es_over_its_limit_when_mnq_within_then_only_es_reduced():
    # Arrange
    t = make_tester()
    t.position("MNQ", 2)
    # Act
    r = t.position("ES", 3)
    # Assert
    assert r.broker_actions == (m.ReducePosition(ES, 2),)


def test_limits_keys_when_lower_case_then_match_roots_case_insensitively():
    # Arrange
    t = make_tester(limits={"mnq": 2, "Es": 1})
    # Act
    r = t.position("MNQ", 3)
    # Assert
    assert r.broker_actions == (m.ReducePosition(MNQ, 1),)


def test_limit_zero_when_position_opens_then_closed_whole():
    # Arrange
    t = make_tester(limits={"MNQ": 0, "ES": 1})
    # Act
    r = t.position("MNQ", 1)
    # Assert
    assert r.broker_actions == (m.ClosePosition(MNQ),)


# ---- (c) unknown symbols ----------------------------------------------------------------------
def test_unknown_symbol_when_policy_block_then_closed():
    # Arrange
    t = make_tester()
    # Act
    r = t.position("RTY", 1)
    # Assert
    assert r.broker_actions == (m.ClosePosition(RTY),)
    assert r.locks == ()
    assert "not in limits" in r.violation.reason


def test_unknown_symbol_when_allow_with_limit_1_and_rty_2_then_partial_close_of_1():
    # Arrange
    t = make_tester(unknown_symbol_action="allow_with_limit:1")
    # Act
    within = t.position("RTY", 1)
    over = t.position("RTY", 2)
    # Assert
    assert within.broker_actions == ()
    assert over.broker_actions == (m.ReducePosition(RTY, 1),)


def test_unknown_symbol_when_policy_allow_then_no_action():
    # Arrange
    t = make_tester(unknown_symbol_action="allow")
    # Act
    r = t.position("RTY", 25)
    # Assert
    assert r.violation is None
    assert r.broker_actions == ()


# ---- (d) close_all ----------------------------------------------------------------------------
def test_mnq_3_when_close_all_then_all_of_mnq_closed_and_es_untouched():
    # Arrange
    t = make_tester(enforcement="close_all")
    t.position("ES", 1)
    # Act
    r = t.position("MNQ", 3)
    # Assert
    assert r.broker_actions == (m.ClosePosition(MNQ),)
    assert r.locks == ()


# ---- (e) one limit per root, across contract months -------------------------------------------
def test_two_months_when_together_over_the_limit_then_newest_month_reduced():
    # Arrange: MNQ Dec L1, then March L2 -> 3 MNQ contracts against a limit of 2
    t = make_tester()
    t.position("MNQ", 1)
    t.clock.advance(5)
    # Act
    r = t.position("MNQH7", 2)
    # Assert
    assert r.violation.data["plan"] == ((MNQ_H.contract_id, 1, False),)
    assert r.broker_actions == (m.ReducePosition(MNQ_H.contract_id, 1),)


def test_two_months_when_close_all_then_every_month_of_the_root_closed():
    # Arrange
    t = make_tester(enforcement="close_all")
    t.position("MNQ", 1)
    t.clock.advance(5)
    t.position("ES", 1)
    # Act
    r = t.position("MNQH7", 2)
    # Assert
    assert set(r.broker_actions) == {m.ClosePosition(MNQ), m.ClosePosition(MNQ_H.contract_id)}


def test_calendar_spread_when_legs_offset_then_both_legs_count():
    # Arrange: long Dec 2 + short March 1 = 3 contracts held (not net 1)
    t = make_tester()
    t.position("MNQ", 2)
    t.clock.advance(5)
    # Act
    r = t.position("MNQH7", 1, "short")
    # Assert
    assert r.broker_actions == (m.ClosePosition(MNQ_H.contract_id),)


def test_excess_beyond_newest_month_when_reduce_then_next_month_reduced_too():
    # Arrange: MNQ Dec L2 (older), March L1 (newer), then Dec grows to 4 -> 5 against 2
    t = make_tester(limits={"MNQ": 2})
    t.position("MNQ", 2)
    t.clock.advance(5)
    t.position("MNQH7", 1, "short")  # breach 3 > 2: March closed...
    t.position("MNQH7", 0)           # ...and gone
    t.clock.advance(5)
    t.position("MNQH7", 1)
    # Act
    r = t.position("MNQ", 4)
    # Assert: newest (March) whole, then 2 of December -> 2 left
    assert r.broker_actions == (m.ClosePosition(MNQ_H.contract_id), m.ReducePosition(MNQ, 2))


def test_size_zero_event_when_a_month_closes_then_it_no_longer_counts():
    # Arrange
    t = make_tester()
    t.position("MNQ", 1)
    t.position("MNQH7", 1)
    t.position("MNQH7", 0)
    # Act
    r = t.position("MNQ", 2)
    # Assert
    assert r.broker_actions == ()


# ---- re-checks: start-up, config reload -------------------------------------------------------
def test_reconciled_positions_over_limits_when_startup_then_every_root_brought_back():
    # Arrange
    t = make_tester()
    now = t.now
    snapshot = m.Reconciled(1, None, (
        m.PositionEvent(1, MNQ, 4, m.POSITION_SHORT, 21000.0, None, now),
        m.PositionEvent(1, ES, 1, m.POSITION_LONG, 6000.0, None, now),
        m.PositionEvent(1, RTY, 1, m.POSITION_LONG, 2200.0, None, now)), (), ())
    # Act
    r = t.send(snapshot)
    # Assert
    assert set(r.broker_actions) == {m.ReducePosition(MNQ, 2), m.ClosePosition(RTY)}


def test_config_reload_when_limit_lowered_then_config_tick_reduces_open_position():
    # Arrange: MNQ 2 is fine under the old limit
    t = make_tester()
    t.position("MNQ", 2)
    t.rule = MaxContractsPerInstrument(Params(limits={"MNQ": 1, "ES": 1}))
    # Act
    r = t.send(m.Tick(1, "config"))
    # Assert
    assert r.broker_actions == (m.ReducePosition(MNQ, 1),)


def test_event_on_one_root_when_another_root_is_over_then_only_event_root_judged():
    # Arrange: an unknown RTY opened under `allow`, then the config blocks unknown symbols
    t = make_tester(unknown_symbol_action="allow")
    t.position("RTY", 1)
    t.rule = MaxContractsPerInstrument(Params(**{**SPEC, "limits": {"MNQ": 2, "ES": 1}}))
    # Act: an MNQ fill within its limit says nothing about RTY (the config tick does)
    r = t.position("MNQ", 1)
    tick = t.send(m.Tick(1, "config"))
    # Assert
    assert r.broker_actions == ()
    assert tick.broker_actions == (m.ClosePosition(RTY),)


# ---- contract metadata not there yet ----------------------------------------------------------
def _without(*symbols):
    return {k: v for k, v in WITH_NEXT_QUARTER.items() if k not in symbols}


def test_unidentified_contract_when_metadata_arrives_then_judged_by_its_root():
    # Arrange: the first MNQ fill comes before Contract/searchById answered
    t = make_tester(contracts=_without("MNQ"))
    first = t.position(MNQ, 3)
    # Act
    r = t.send(m.ContractsKnown(1, (CONTRACTS["MNQ"],)))
    # Assert: nothing on a guess, then a reduce to the MNQ limit (not a block-close)
    assert first.broker_actions == ()
    assert first.verdict.wake_at == START + timedelta(seconds=10)
    assert r.broker_actions == (m.ReducePosition(MNQ, 1),)
    assert r.state.rule_memory.get("max_contracts_per_instrument", {}) == {}


def test_unidentified_contract_when_within_its_limit_once_known_then_no_action():
    # Arrange
    t = make_tester(contracts=_without("MNQ"))
    t.position(MNQ, 2)
    # Act
    r = t.send(m.ContractsKnown(1, (CONTRACTS["MNQ"],)))
    # Assert
    assert r.broker_actions == ()


def test_unidentified_contract_when_grace_ends_then_unknown_policy_applies():
    # Arrange
    t = make_tester(contracts=_without("RTY"))
    t.position(RTY, 1)
    # Act
    early = t.advance(9)
    r = t.advance(1)
    # Assert
    assert early.broker_actions == ()
    assert r.broker_actions == (m.ClosePosition(RTY),)
    assert any("could not be identified" in a.message for _, a in r.plan.alerts)


def test_unidentified_contract_when_grace_ends_and_policy_allow_then_no_action():
    # Arrange
    t = make_tester(contracts=_without("RTY"), unknown_symbol_action="allow")
    t.position(RTY, 5)
    # Act
    r = t.advance(30)
    # Assert
    assert r.broker_actions == ()


# ---- shadow and params ------------------------------------------------------------------------
def test_shadow_mode_when_over_limit_then_violation_recorded_but_nothing_executed():
    # Arrange
    t = RuleTester(MaxContractsPerInstrument, SPEC, mode="shadow")
    # Act
    r = t.position("MNQ", 3)
    # Assert
    assert r.violation is not None
    assert r.broker_actions == ()


@pytest.mark.parametrize("text, limit", [("block", 0), ("allow", None),
                                         ("allow_with_limit:1", 1), ("allow_with_limit:12", 12),
                                         ("BLOCK", 0)])
def test_unknown_policy_when_valid_then_parsed(text, limit):
    assert parse_unknown_policy(text) == limit


@pytest.mark.parametrize("params, words", [
    ({"limits": {"MNQ": -1}}, ["limits", "MNQ is -1"]),
    ({"limits": {"MN Q": 1}}, ["limits", "'MN Q'"]),
    ({"limits": {"MNQ": 1, "mnq": 2}}, ["limits", "MNQ appears twice"]),
    ({"limits": {"MNQ": 1}, "unknown_symbol_action": "allow_with_limit"},
     ["unknown_symbol_action", "'allow_with_limit'"]),
    ({"limits": {"MNQ": 1}, "unknown_symbol_action": "allow_with_limit:0"},
     ["unknown_symbol_action", "'allow_with_limit:0'"]),
    ({"limits": {"MNQ": 1}, "unknown_symbol_action": "close"},
     ["unknown_symbol_action", "'close'"]),
    ({"limits": {"MNQ": 1}, "unidentified_grace_seconds": -1},
     ["unidentified_grace_seconds", "-1"]),
])
def test_bad_params_when_loaded_then_error_names_field_and_value(params, words):
    with pytest.raises(ClassValidationError) as info:
        RuleTester(MaxContractsPerInstrument, params)
    text = str(info.value.exceptions[0])
    for word in words:
        assert word in text


@pytest.mark.parametrize("params", [{}, {"limits": {"MNQ": 1}, "enforcement": "close"},
                                    {"limits": {"MNQ": 1.5}}, {"limits": {"MNQ": 1}, "extra": 1}])
def test_missing_limits_or_bad_types_when_loaded_then_rejected(params):
    with pytest.raises(ClassValidationError):
        RuleTester(MaxContractsPerInstrument, params)


# ---- properties of the math -------------------------------------------------------------------
CIDS = ("A", "B", "C", "D")
root_positions = st.dictionaries(st.sampled_from(CIDS),
                                 st.integers(-12, 12).filter(lambda s: s != 0), max_size=4)
created_times = st.dictionaries(st.sampled_from(CIDS),
                                st.none() | st.integers(0, 100).map(
                                    lambda s: START + timedelta(seconds=s)), max_size=4)


def _apply(signed, plan):
    out = dict(signed)
    for cid, take in plan:
        out[cid] = out[cid] - take if out[cid] > 0 else out[cid] + take
    return out


@settings(max_examples=200, deadline=None)
@given(signed=root_positions, limit=st.integers(0, 30), close_all=st.booleans(),
       created=created_times)
def test_property_plan_brings_root_within_limit_and_never_grows_or_flips(
        signed, limit, close_all, created):
    count = root_count(signed.values())
    plan = plan_root(signed, limit, close_all, created)
    after = _apply(signed, plan)
    if count <= limit:
        assert plan == []
    elif close_all:
        assert root_count(after.values()) == 0
    else:
        assert root_count(after.values()) == limit  # exactly the excess, never more
    assert len({cid for cid, _ in plan}) == len(plan)
    for cid, take in plan:
        assert 1 <= take <= abs(signed[cid])
        assert after[cid] == 0 or (after[cid] > 0) == (signed[cid] > 0)


@settings(max_examples=200, deadline=None)
@given(signed=root_positions.filter(bool), limit=st.integers(0, 30), created=created_times,
       data=st.data())
def test_property_replan_on_a_larger_stale_state_never_asks_for_more_than_its_excess(
        signed, limit, created, data):
    # Arrange: a reduction is in flight when the trader adds lots (the state has not yet seen
    # the reduction); the enforcer keeps the lower of the two targets of each contract.
    adds = data.draw(st.dictionaries(st.sampled_from(sorted(signed)), st.integers(0, 5)))
    bigger = {c: s + (adds.get(c, 0) if s > 0 else -adds.get(c, 0)) for c, s in signed.items()}
    first = dict(plan_root(signed, limit, False, created))
    second = dict(plan_root(bigger, limit, False, created))
    # Act: final broker sizes = bigger state, each contract cut to its lowest requested target
    final = {}
    for c, s in bigger.items():
        targets = [abs(s)]
        if c in first:
            targets.append(abs(signed[c]) - first[c])
        if c in second:
            targets.append(abs(s) - second[c])
        final[c] = min(targets)
    # Assert
    assert sum(final.values()) == min(root_count(bigger.values()), limit)


MONTHS = {"MNQ": (CONTRACTS["MNQ"], MNQ_H), "ES": (CONTRACTS["ES"], ES_H),
          "RTY": (CONTRACTS["RTY"], RTY_H)}
holdings = st.dictionaries(st.sampled_from([(r, i) for r in MONTHS for i in (0, 1)]),
                           st.integers(-8, 8).filter(lambda s: s != 0), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(held=holdings, limits=st.fixed_dictionaries({"MNQ": st.integers(0, 6),
                                                    "ES": st.integers(0, 6)}),
       policy=st.sampled_from(["block", "allow", "allow_with_limit:1", "allow_with_limit:3"]),
       enforcement=st.sampled_from(["reduce_to_limit", "close_all"]))
def test_property_after_the_rules_actions_every_root_is_within_its_limit(
        held, limits, policy, enforcement):
    # Arrange
    params = Params(limits=limits, enforcement=enforcement, unknown_symbol_action=policy)
    contracts = {info.contract_id: info for pair in MONTHS.values() for info in pair}
    positions = {MONTHS[r][i].contract_id: Position(MONTHS[r][i].contract_id, abs(s),
                                                    m.POSITION_LONG if s > 0 else m.POSITION_SHORT,
                                                    1.0, created=START + timedelta(seconds=i))
                 for (r, i), s in held.items()}
    state = AccountState(1, positions=positions, contracts=contracts)
    rule = MaxContractsPerInstrument(params)
    # Act
    outcome = rule.evaluate(m.Tick(1, "config"), state, START)
    after = {cid: p.signed_size for cid, p in positions.items()}
    if outcome is not None and hasattr(outcome, "reason"):
        for action in rule.get_enforcement_action(outcome):
            if isinstance(action, m.ClosePosition):
                after[action.contract_id] = 0
            elif isinstance(action, m.ReducePosition):
                s = after[action.contract_id]
                assert 0 < action.size < abs(s)
                after[action.contract_id] = s - action.size if s > 0 else s + action.size
    # Assert
    for root, pair in MONTHS.items():
        ids = [c.contract_id for c in pair]
        before_count = root_count(p.signed_size for c, p in positions.items() if c in ids)
        count = root_count(after[c] for c in ids if c in after)
        limit = params.limit_for(root)
        if limit is None or before_count <= limit:
            assert count == before_count  # within its limit: untouched
        elif enforcement == "close_all":
            assert count == 0
        else:
            assert count == limit
    for cid, s in after.items():
        orig = positions[cid].signed_size
        assert abs(s) <= abs(orig) and (s == 0 or (s > 0) == (orig > 0))
