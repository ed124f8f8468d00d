"""What the AccountActor tells people (``Notify``) and components (``ComponentFeedBatch``).

The test is the account's parent (simpleSystemBase), so it receives what the Supervisor would:
early warnings at 75 % and 90 % of a limit, a lock announced once when it starts and once when
it ends, a broker link down too long and back, and the event stream for the analytics.
"""

from __future__ import annotations

import time

import pytest
from thespian.actors import ActorSystem

from risk_actors import messages as m
from risk_actors.account import AccountActor, AccountInit, RuleSpec
from risk_actors.clock import FakeClock
from risk_actors.db import Database
from risk_actors.plugins import rule_path
from risk_actors.testing import CONTRACTS, ct
from rules.daily_realized_loss import DailyRealizedLoss, Params as LossParams
from tests.integration.fakes import FakeBroker

MNQ = CONTRACTS["MNQ"].contract_id
ACC = 7
LOSS500 = RuleSpec("daily_realized_loss", rule_path(DailyRealizedLoss), "enforce",
                   LossParams(limit=-500.0, include_fees=False), placement="inline")


@pytest.fixture
def system():
    asys = ActorSystem("simpleSystemBase")
    yield asys
    asys.shutdown()


class Inbox:
    """Everything the account sent its parent, gathered while waiting for a condition."""

    def __init__(self, asys) -> None:
        self.asys = asys
        self.messages: list = []

    def notes(self, kind: str) -> list[m.Notify]:
        return [x for x in self.messages if isinstance(x, m.Notify) and x.kind == kind]

    def feeds(self) -> list:
        return [f.item for b in self.messages if isinstance(b, m.ComponentFeedBatch)
                for f in b.feeds]

    def wait(self, until, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not until(self) and time.monotonic() < deadline:
            msg = self.asys.listen(0.1)
            if msg is not None:
                self.messages.append(msg)
        return until(self)


def _start(asys, tmp_path, clock, **kw):
    db = str(tmp_path / "riskd.sqlite")
    Database(db).close()
    acct = asys.createActor(AccountActor)
    asys.tell(acct, AccountInit(ACC, "TEST", None, (LOSS500,), db,
                                gateway_address=asys.createActor(FakeBroker), clock=clock, **kw))
    return acct


def _trade(asys, acct, seq, trade_id, pnl, clock):
    asys.tell(acct, m.Inbound(ACC, seq, m.TradeEvent(ACC, trade_id, MNQ, clock.now(), 21000.0,
                                                     pnl, 0.0, 1, 1), clock.now()))


def test_loss_nears_then_hits_limit_then_two_warnings_one_lock_start_and_lock_end_at_reset(
        system, tmp_path):
    clock = FakeClock(ct(2026, 11, 24, 16, 0))
    acct = _start(system, tmp_path, clock)
    inbox = Inbox(system)

    _trade(system, acct, 2, 1, -400.0, clock)   # 80 % of -500: the 75 % warning
    assert inbox.wait(lambda i: len(i.notes("warning")) == 1)
    _trade(system, acct, 3, 2, -60.0, clock)    # 92 %: the 90 % warning
    assert inbox.wait(lambda i: len(i.notes("warning")) == 2)
    _trade(system, acct, 4, 3, -50.0, clock)    # -510: breach, locked until 17:00 CT
    assert inbox.wait(lambda i: i.notes("lock_start"))
    _trade(system, acct, 5, 4, -10.0, clock)    # still locked: no second announcement
    inbox.wait(lambda i: False, timeout=1.5)

    warnings = inbox.notes("warning")
    assert [w.data["fraction"] for w in warnings] == [0.75, 0.9]
    assert [w.data["value"] for w in warnings] == [-400.0, -460.0]
    assert all(w.rule == "daily_realized_loss" and w.severity == "warning" for w in warnings)
    starts = inbox.notes("lock_start")
    assert len(starts) == 1
    assert starts[0].data["expires_at"] == ct(2026, 11, 24, 17, 0).isoformat()
    assert "account locked until" in starts[0].message
    assert inbox.notes("lock_end") == []

    clock.set(ct(2026, 11, 24, 17, 0, 1))       # the daily reset lifts the lock
    assert inbox.wait(lambda i: i.notes("lock_end"))
    assert len(inbox.notes("lock_end")) == 1 and inbox.notes("lock_end")[0].severity == "info"


def test_warning_fractions_from_config_then_only_those_announced(system, tmp_path):
    clock = FakeClock(ct(2026, 11, 24, 10, 0))
    acct = _start(system, tmp_path, clock, warning_fractions=(0.5,))
    inbox = Inbox(system)
    _trade(system, acct, 2, 1, -300.0, clock)   # 60 %
    assert inbox.wait(lambda i: i.notes("warning"))
    _trade(system, acct, 3, 2, -180.0, clock)   # 96 %: no 90 % step configured
    inbox.wait(lambda i: False, timeout=1.5)
    assert [w.data["fraction"] for w in inbox.notes("warning")] == [0.5]


def test_broker_down_longer_than_setting_then_one_critical_alert_and_one_when_back(
        system, tmp_path):
    clock = FakeClock(ct(2026, 11, 24, 10, 0))
    acct = _start(system, tmp_path, clock, disconnect_alert_seconds=0.3)
    inbox = Inbox(system)   # no ConnectionChanged(up) has come: the link counts as down

    assert inbox.wait(lambda i: i.notes("disconnected"))
    assert inbox.notes("disconnected")[0].severity == "critical"
    system.tell(acct, m.Inbound(ACC, 2, m.ConnectionChanged(ACC, True), clock.now()))
    assert inbox.wait(lambda i: i.notes("reconnected"))
    inbox.wait(lambda i: False, timeout=1.2)
    assert len(inbox.notes("disconnected")) == 1 and len(inbox.notes("reconnected")) == 1


def test_trade_and_breach_then_component_feed_gets_trade_and_rule_trigger(system, tmp_path):
    clock = FakeClock(ct(2026, 11, 24, 10, 0))
    acct = _start(system, tmp_path, clock)
    inbox = Inbox(system)
    _trade(system, acct, 2, 1, -600.0, clock)
    assert inbox.wait(lambda i: any(isinstance(x, m.RuleTriggered) for x in i.feeds()))
    items = inbox.feeds()
    trades = [x for x in items if isinstance(x, m.TradeEvent)]
    assert [t.trade_id for t in trades] == [1]
    trig = next(x for x in items if isinstance(x, m.RuleTriggered))
    assert trig.rule == "daily_realized_loss" and trig.mode == "enforce"
