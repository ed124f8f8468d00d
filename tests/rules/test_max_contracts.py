"""001 MaxContracts against rules-spec section 2 (limit 5, net, reduce) and its (inf) order.

Assertions are on the observable effects: the broker actions of the merged plan and the locks.
"""

from __future__ import annotations

import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given, settings, strategies as st

from risk_actors import messages as m
from risk_actors.state import AccountState, Position
from risk_actors.testing import CONTRACTS, RuleTester, ct
from rules.max_contracts import MaxContracts, account_count, reductions

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
NQ = CONTRACTS["NQ"].contract_id

DEFAULTS = {"limit": 5, "count_type": "net", "reduce_to_limit": True, "close_all": False}


def make_tester(**params) -> RuleTester:
    return RuleTester(MaxContracts, {**DEFAULTS, **params}, start=ct(2026, 11, 24, 10, 0))


# ---- (a) at the limit --------------------------------------------------------------------------
def test_positions_at_limit_when_net_count_is_5_then_no_action():
    # Arrange
    t = make_tester()
    # Act
    first = t.position("MNQ", 3)
    second = t.position("ES", 2)
    # Assert
    assert first.broker_actions == ()
    assert second.broker_actions == ()
    assert second.violation is None
    assert second.locks == ()


# ---- (b) one over: partial close of the excess -------------------------------------------------
def test_fill_over_limit_when_reduce_mode_then_partial_close_of_excess():
    # Arrange
    t = make_tester()
    t.position("MNQ", 3)
    t.position("ES", 2)
    # Act
    r = t.position("MNQ", 4)
    # Assert
    assert r.violation.data["count"] == 6
    assert r.broker_actions == (m.ReducePosition(MNQ, 1),)
    assert r.locks == ()
    assert not r.state.account_locked(r.now)


# ---- (c) close_all ----------------------------------------------------------------------------
def test_fill_over_limit_when_close_all_then_closes_every_position():
    # Arrange
    t = make_tester(close_all=True)
    t.position("MNQ", 3)
    t.position("ES", 2)
    # Act
    r = t.position("MNQ", 4)
    # Assert
    assert set(r.broker_actions) == {m.ClosePosition(MNQ), m.ClosePosition(ES)}
    assert len(r.broker_actions) == 2
    assert r.locks == ()


def test_fill_over_limit_when_reduce_to_limit_false_then_closes_every_position():
    # Arrange
    t = make_tester(reduce_to_limit=False)
    t.position("MNQ", 3)
    t.position("ES", 2)
    # Act
    r = t.position("MNQ", 4)
    # Assert
    assert set(r.broker_actions) == {m.ClosePosition(MNQ), m.ClosePosition(ES)}
    assert r.locks == ()


# ---- (d) net vs gross -------------------------------------------------------------------------
def test_long3_short2_when_net_limit_4_then_net_1_passes():
    # Arrange
    t = make_tester(limit=4, count_type="net")
    t.position("MNQ", 3, "long")
    # Act
    r = t.position("ES", 2, "short")
    # Assert
    assert r.violation is None
    assert r.broker_actions == ()


def test_long3_short2_when_gross_limit_4_then_gross_5_reduces_by_1():
    # Arrange
    t = make_tester(limit=4, count_type="gross")
    t.position("MNQ", 3, "long")
    # Act
    r = t.position("ES", 2, "short")
    # Assert
    assert r.violation.data["count"] == 5
    assert r.violation.data["excess"] == 1
    assert r.broker_actions == (m.ReducePosition(ES, 1),)  # the triggering contract first
    assert r.locks == ()


def test_net_count_when_trigger_is_on_the_hedging_side_then_reduces_the_net_side():
    # Arrange: MNQ L8 and ES S3 -> net 5; ES shrinks to S2 -> net 6.
    t = make_tester(limit=5, count_type="net")
    t.position("MNQ", 5, "long")
    t.position("ES", 3, "short")
    t.position("MNQ", 8, "long")
    # Act
    r = t.position("ES", 2, "short")
    # Assert: closing short ES would *raise* the net count; MNQ is reduced instead.
    assert r.broker_actions == (m.ReducePosition(MNQ, 1),)


# ---- (e) size 0 ------------------------------------------------------------------------------
def test_size_zero_event_when_counting_then_position_no_longer_counts():
    # Arrange
    t = make_tester()
    t.position("MNQ", 3)
    t.position("ES", 2)
    t.position("ES", 0)
    # Act: 4 MNQ alone is within 5; had ES still counted it would be 6
    r = t.position("MNQ", 4)
    # Assert
    assert ES not in r.state.positions
    assert r.broker_actions == ()


# ---- (inf) reduce order ------------------------------------------------------------------------
def test_excess_beyond_trigger_when_reduce_mode_then_trigger_closed_first_then_largest():
    # Arrange: NQ L4, MNQ S3, ES L2 -> net 3
    t = make_tester()
    t.position("NQ", 4)
    t.position("MNQ", 3, "short")
    t.position("ES", 2)
    # Act: MNQ reverses to L1 -> net 4 + 1 + 2 = 7, excess 2
    r = t.position("MNQ", 1, "long")
    # Assert: all of MNQ (the trigger), then 1 from NQ (the largest); ES untouched
    assert r.broker_actions == (m.ClosePosition(MNQ), m.ReducePosition(NQ, 1))


def test_trigger_closed_when_excess_remains_then_largest_other_position_reduced():
    # Arrange: NQ L4, MNQ S1, ES L2 -> net 5
    t = make_tester()
    t.position("NQ", 4)
    t.position("MNQ", 1, "short")
    t.position("ES", 2)
    # Act: MNQ short closes -> net 6; the trigger has no position left
    r = t.position("MNQ", 0)
    # Assert
    assert r.broker_actions == (m.ReducePosition(NQ, 1),)


def test_reconciled_positions_over_limit_when_startup_then_reduces_largest_first():
    # Arrange
    t = make_tester()
    now = t.now
    snapshot = m.Reconciled(1, None, (
        m.PositionEvent(1, MNQ, 2, m.POSITION_LONG, 21000.0, None, now),
        m.PositionEvent(1, NQ, 5, m.POSITION_LONG, 21000.0, None, now)), (), ())
    # Act
    r = t.send(snapshot)
    # Assert: count 7, no trigger -> the largest (NQ) gives 2
    assert r.broker_actions == (m.ReducePosition(NQ, 2),)


def test_shadow_mode_when_over_limit_then_violation_recorded_but_nothing_executed():
    # Arrange
    t = RuleTester(MaxContracts, DEFAULTS, mode="shadow")
    t.position("MNQ", 3)
    # Act
    r = t.position("ES", 3)
    # Assert
    assert r.violation is not None
    assert r.broker_actions == ()


def test_limit_zero_when_configured_then_rejected_at_load():
    with pytest.raises(ClassValidationError):
        make_tester(limit=0)


# ---- properties of the math -------------------------------------------------------------------
CIDS = ("A", "B", "C", "D", "E")
signed_positions = st.dictionaries(st.sampled_from(CIDS),
                                   st.integers(-15, 15).filter(lambda s: s != 0), max_size=5)


def _apply(signed: dict[str, int], plan) -> dict[str, int]:
    out = dict(signed)
    for cid, take in plan:
        s = out[cid]
        out[cid] = s - take if s > 0 else s + take
    return out


@settings(max_examples=300, deadline=None)
@given(signed=signed_positions, limit=st.integers(1, 40),
       count_type=st.sampled_from(["net", "gross"]), trigger=st.sampled_from(CIDS + (None,)))
def test_property_reductions_bring_count_exactly_to_limit_and_never_grow_a_position(
        signed, limit, count_type, trigger):
    count = account_count(list(signed.values()), count_type)
    excess = count - limit
    plan = reductions(signed, excess, trigger, count_type) if excess > 0 else []
    after = _apply(signed, plan)
    assert account_count(list(after.values()), count_type) == min(count, limit)
    assert len({cid for cid, _ in plan}) == len(plan)  # one action per contract
    for cid, take in plan:
        assert 1 <= take <= abs(signed[cid])
        # never grows and never flips side
        assert abs(after[cid]) < abs(signed[cid])
        assert after[cid] == 0 or (after[cid] > 0) == (signed[cid] > 0)
    if plan and trigger in signed and trigger in dict(plan):
        assert plan[0][0] == trigger


@settings(max_examples=200, deadline=None)
@given(signed=signed_positions.filter(bool), limit=st.integers(1, 20),
       count_type=st.sampled_from(["net", "gross"]), data=st.data())
def test_property_rule_actions_bring_account_to_limit(signed, limit, count_type, data):
    # Arrange: positions on real catalogue contracts, and an event on one of them
    ids = [c.contract_id for c in CONTRACTS.values()][:len(CIDS)]
    real = {ids[CIDS.index(k)]: v for k, v in signed.items()}
    now = ct(2026, 11, 24, 10, 0)
    positions = {cid: Position(cid, abs(s), m.POSITION_LONG if s > 0 else m.POSITION_SHORT, 1.0)
                 for cid, s in real.items()}
    state = AccountState(1, positions=positions)
    trigger = data.draw(st.sampled_from(sorted(real)))
    p = positions[trigger]
    event = m.PositionEvent(1, trigger, p.size, p.type, 1.0)
    rule = MaxContracts(MaxContracts.Params(limit=limit, count_type=count_type))
    # Act
    violation = rule.evaluate(event, state, now)
    # Assert
    count = account_count(list(real.values()), count_type)
    assert (violation is not None) == (count > limit)
    if violation is None:
        return
    after = dict(real)
    for action in rule.get_enforcement_action(violation):
        if isinstance(action, m.ClosePosition):
            after[action.contract_id] = 0
        else:
            assert isinstance(action, m.ReducePosition)
            s = after[action.contract_id]
            assert 0 < action.size < abs(s)  # a partial close is strictly partial
            after[action.contract_id] = s - action.size if s > 0 else s + action.size
    assert account_count(list(after.values()), count_type) == limit
    assert all(abs(after[c]) <= abs(real[c]) for c in real)
