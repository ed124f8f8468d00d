"""Rules placed inline (``daemon.rule_placement``): judged inside the AccountActor's process.

The same pipeline as tests/integration/test_account_pipeline.py, with no RuleActor: a breach is
enforced just the same, a plugin that raises is reported without stopping the other rules, and
inline and actor rules can be mixed on one account.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import attrs
import pytest
from thespian.actors import ActorSystem

from risk_actors import messages as m
from risk_actors.account import AccountActor, AccountInit, RulePids, RuleSpec
from risk_actors.db import Database
from risk_actors.plugins import rule_path
from risk_actors.supervisor import placement_of
from risk_actors.testing import CONTRACTS
from rules.daily_realized_loss import DailyRealizedLoss, Params as LossParams
from rules.max_contracts import MaxContracts, Params as MaxParams
from tests.integration.fakes import FakeBroker, GetCalls, NoParams, RaisingRule, SetBroker

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
ACC = 7
MAX5 = RuleSpec("max_contracts", rule_path(MaxContracts), "enforce", MaxParams(limit=5),
                placement="inline")
LOSS500 = RuleSpec("daily_realized_loss", rule_path(DailyRealizedLoss), "enforce",
                   LossParams(limit=-500.0, include_fees=False))


@pytest.fixture
def system():
    asys = ActorSystem("simpleSystemBase")
    yield asys
    asys.shutdown()


def _start(asys, tmp_path, rules):
    db = str(tmp_path / "riskd.sqlite")
    Database(db).close()
    broker = asys.createActor(FakeBroker)
    acct = asys.createActor(AccountActor)
    asys.tell(acct, AccountInit(ACC, "TEST", None, tuple(rules), db, gateway_address=broker))
    asys.tell(acct, m.Inbound(ACC, 1, m.ContractsKnown(ACC, tuple(CONTRACTS.values())),
                              datetime.now(timezone.utc)))
    return acct, broker


def _ask(asys, address, msg, expected, timeout=5.0):
    reply = asys.ask(address, msg, timeout)
    while reply is not None and not isinstance(reply, expected):
        reply = asys.listen(timeout)
    return reply


def _broker_after(asys, broker, until, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        calls, positions, orders = _ask(asys, broker, GetCalls(), tuple)
        if until(positions, orders) or time.monotonic() > deadline:
            return [(op, args) for op, args, _ in calls], positions, orders
        time.sleep(0.05)


def test_inline_max_contracts_over_limit_then_excess_closed_without_rule_actor(system, tmp_path):
    acct, broker = _start(system, tmp_path, [MAX5])
    _ask(system, broker, SetBroker(positions={MNQ: 7}), bool)

    system.tell(acct, m.Inbound(ACC, 2, m.PositionEvent(ACC, MNQ, 7, m.POSITION_LONG, 21000.0),
                                datetime.now(timezone.utc)))

    calls, positions, _ = _broker_after(system, broker, lambda p, o: p == {MNQ: 5})
    assert ("partial_close", {"contract_id": MNQ, "size": 2}) in calls
    assert positions == {MNQ: 5}
    assert _ask(system, acct, RulePids(), dict) == {}  # no rule process was started


def test_inline_rule_raises_then_reported_and_other_inline_rule_still_enforces(system, tmp_path):
    raising = RuleSpec("raising_rule", rule_path(RaisingRule), "enforce", NoParams(),
                       placement="inline")
    acct, broker = _start(system, tmp_path, [raising, MAX5])
    _ask(system, broker, SetBroker(positions={MNQ: 6}), bool)

    system.tell(acct, m.Inbound(ACC, 2, m.PositionEvent(ACC, MNQ, 6, m.POSITION_LONG, 21000.0),
                                datetime.now(timezone.utc)))

    _, positions, _ = _broker_after(system, broker, lambda p, o: p == {MNQ: 5})
    assert positions == {MNQ: 5}
    # The failure is on the record (and alerted: the same _failure path as a RuleActor's).
    with Database(str(tmp_path / "riskd.sqlite"), migrate=False) as db:
        rows = db.audit_rows(kind="rule_failure")
    assert [r.rule for r in rows] == ["raising_rule"]
    assert "plugin bug" in rows[0].detail["text"]


def test_inline_and_actor_rules_mixed_then_both_enforce(system, tmp_path):
    acct, broker = _start(system, tmp_path, [MAX5, LOSS500])
    _ask(system, broker, SetBroker(positions={MNQ: 6, ES: -1}), bool)
    now = datetime.now(timezone.utc)
    system.tell(acct, m.Inbound(ACC, 2, m.PositionEvent(ACC, MNQ, 6, m.POSITION_LONG, 21000.0), now))
    _broker_after(system, broker, lambda p, o: p.get(MNQ) == 5)
    system.tell(acct, m.Inbound(ACC, 3, m.PositionEvent(ACC, ES, 1, m.POSITION_SHORT, 6000.0), now))
    system.tell(acct, m.Inbound(ACC, 4, m.TradeEvent(ACC, 9, ES, now, 6000.0, -600.0, 0.0, 1, 1),
                                now))

    calls, positions, _ = _broker_after(system, broker, lambda p, o: p == {})
    assert ("partial_close", {"contract_id": MNQ, "size": 1}) in calls  # inline max_contracts
    assert ("close", {"contract_id": ES}) in calls                       # actor daily loss
    assert positions == {}
    assert set(_ask(system, acct, RulePids(), dict)) == {"daily_realized_loss"}


@pytest.mark.parametrize("setting, module, expected", [
    ("auto", "rules.max_contracts", "inline"),
    ("auto", "riskd_max_loss_per_trade.rule", "actor"),
    ("actor", "rules.max_contracts", "actor"),
    ("inline", "thirdparty.rule", "inline"),
])
def test_placement_of_rule_class_then_builtins_inline_third_party_in_actors(setting, module,
                                                                            expected):
    cls = type("R", (), {"__module__": module})
    assert placement_of(cls, setting) == expected
    assert attrs.evolve(MAX5, placement=expected).placement == expected
