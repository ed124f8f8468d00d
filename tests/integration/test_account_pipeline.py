"""The AccountActor pipeline on thespian's simpleSystemBase: broker event in, broker calls out.

A scripted broker actor stands in for the GatewayActor (this tests one piece: the account's
pipeline, rules, enforcer and SQLite journal together); end-to-end tests use the real SDK.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from thespian.actors import ActorSystem

from risk_actors import messages as m
from risk_actors.account import AccountActor, AccountInit, RuleSpec
from risk_actors.db import Database
from risk_actors.plugins import rule_path
from risk_actors.testing import CONTRACTS
from rules.daily_realized_loss import DailyRealizedLoss, Params as LossParams
from rules.max_contracts import MaxContracts, Params as MaxParams
from tests.integration.fakes import FakeBroker, GetCalls, SetBroker

MNQ = CONTRACTS["MNQ"].contract_id
ES = CONTRACTS["ES"].contract_id
ACC = 7


@pytest.fixture
def system():
    asys = ActorSystem("simpleSystemBase")
    yield asys
    asys.shutdown()


PLACEMENT = {"enforcer": "actor"}


@pytest.fixture(autouse=True, params=["actor", "inline"])
def enforcer_placement(request):
    """Every pipeline test runs with the enforcer in its own actor and inside the account."""
    PLACEMENT["enforcer"] = request.param
    yield request.param
    PLACEMENT["enforcer"] = "actor"


def _start(asys, tmp_path, rules):
    db = str(tmp_path / "riskd.sqlite")
    Database(db).close()
    broker = asys.createActor(FakeBroker)
    acct = asys.createActor(AccountActor)
    asys.tell(acct, AccountInit(ACC, "TEST", None, tuple(rules), db, gateway_address=broker,
                                enforcer_placement=PLACEMENT["enforcer"]))
    asys.tell(acct, m.Inbound(ACC, 1, m.ContractsKnown(ACC, tuple(CONTRACTS.values())),
                              datetime.now(timezone.utc)))
    return acct, broker, db


def _send(asys, acct, seq, event):
    asys.tell(acct, m.Inbound(ACC, seq, event, datetime.now(timezone.utc)))


def _ask(asys, address, msg, expected, timeout=5.0):
    """ask(), skipping the status reports the account pushes to its parent (this test)."""
    reply = asys.ask(address, msg, timeout)
    while reply is not None and not isinstance(reply, expected):
        reply = asys.listen(timeout)
    return reply


def _idle(asys, seconds):
    """Let the system run its timers for ``seconds`` (status pushes to us are dropped)."""
    import time
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        asys.listen(left)


def _calls(asys, broker):
    calls, positions, orders = _ask(asys, broker, GetCalls(), tuple)
    return [(op, args) for op, args, _ in calls], positions, orders


MAX5 = RuleSpec("max_contracts", rule_path(MaxContracts), "enforce", MaxParams(limit=5))
LOSS500 = RuleSpec("daily_realized_loss", rule_path(DailyRealizedLoss), "enforce",
                   LossParams(limit=-500.0, include_fees=False))


def test_position_over_limit_when_reduce_mode_then_partial_close_of_excess(system, tmp_path,
                                                                           enforcer_placement):
    acct, broker, _ = _start(system, tmp_path, [MAX5])
    _ask(system, broker, SetBroker(positions={MNQ: 6}), bool)

    _send(system, acct, 2, m.PositionEvent(ACC, MNQ, 6, m.POSITION_LONG, 21000.0))

    calls, positions, _ = _calls(system, broker)
    assert ("partial_close", {"contract_id": MNQ, "size": 1}) in calls
    assert positions == {MNQ: 5}
    after = calls[calls.index(("partial_close", {"contract_id": MNQ, "size": 1})):]
    from risk_actors.enforcer import HUB_VERIFY
    if enforcer_placement == "actor" or not HUB_VERIFY:
        # verified by reading the positions back (a reduce is not judged on orders)
        assert calls[-1] == ("search_positions", {})
        assert ("search_orders", {}) not in after
    else:
        # inside the account the broker's own position update (5) verifies it: no read-back
        _send(system, acct, 3, m.PositionEvent(ACC, MNQ, 5, m.POSITION_LONG, 21000.0))
        _idle(system, 1.3)  # past HUB_VERIFY_SECONDS: a pending read-back would go out now
        calls, _, _ = _calls(system, broker)
        assert ("search_positions", {}) not in calls and ("search_orders", {}) not in calls


def test_inline_enforcer_without_a_position_update_reads_back_after_hub_verify_seconds(
        system, tmp_path, enforcer_placement):
    from risk_actors.enforcer import HUB_VERIFY
    if enforcer_placement != "inline" or not HUB_VERIFY:
        pytest.skip("hub verification is the inline enforcer's (and needs enforcer.HUB_VERIFY)")
    acct, broker, _ = _start(system, tmp_path, [MAX5])
    _ask(system, broker, SetBroker(positions={MNQ: 6}), bool)
    _send(system, acct, 2, m.PositionEvent(ACC, MNQ, 6, m.POSITION_LONG, 21000.0))
    calls, _, _ = _calls(system, broker)
    assert ("search_positions", {}) not in calls  # waiting for the hub's update first

    _idle(system, 1.3)  # no update came (this broker pushes none)

    calls, _, _ = _calls(system, broker)
    assert calls[-1] == ("search_positions", {})


def test_realized_loss_at_limit_then_flatten_cancel_and_lock_until_reset(system, tmp_path):
    acct, broker, db = _start(system, tmp_path, [LOSS500])
    _ask(system, broker, SetBroker(positions={MNQ: 2, ES: -1}, orders={55: MNQ}), bool)
    now = datetime.now(timezone.utc)
    _send(system, acct, 2, m.PositionEvent(ACC, MNQ, 2, m.POSITION_LONG, 21000.0))
    _send(system, acct, 3, m.PositionEvent(ACC, ES, 1, m.POSITION_SHORT, 6000.0))
    _send(system, acct, 4, m.OrderEvent(ACC, 55, MNQ, m.STATUS_OPEN, m.ORDER_LIMIT, m.SIDE_BUY, 1))

    _send(system, acct, 5, m.TradeEvent(ACC, 100, MNQ, now, 21000.0, -300.0, 0.0, 1, 1))
    _send(system, acct, 6, m.TradeEvent(ACC, 101, MNQ, now, 21000.0, -250.0, 0.0, 1, 1))

    calls, positions, orders = _calls(system, broker)
    assert ("close", {"contract_id": MNQ}) in calls and ("close", {"contract_id": ES}) in calls
    assert ("cancel", {"order_id": 55}) in calls
    assert positions == {} and orders == {}
    state, _ = Database(db, migrate=False).load(ACC)
    lock = next(lk for lk in state.lockouts if lk.rule == "daily_realized_loss")
    assert lock.until_reset and lock.expires_at == state.next_reset_at
    assert state.net_realized(include_fees=False) == -550.0


def test_fill_while_locked_then_guard_closes_it_at_once(system, tmp_path):
    acct, broker, _ = _start(system, tmp_path, [LOSS500])
    now = datetime.now(timezone.utc)
    _send(system, acct, 2, m.TradeEvent(ACC, 100, MNQ, now, 21000.0, -600.0, 0.0, 1, 1))
    _ask(system, broker, SetBroker(positions={MNQ: 1}), bool)

    _send(system, acct, 3, m.PositionEvent(ACC, MNQ, 1, m.POSITION_LONG, 21000.0))

    calls, positions, _ = _calls(system, broker)
    assert ("close", {"contract_id": MNQ}) in calls
    assert positions == {}


def test_restart_from_journal_keeps_lock_and_guard_flattens_reconciled_position(system, tmp_path):
    acct, broker, db = _start(system, tmp_path, [LOSS500])
    now = datetime.now(timezone.utc)
    _send(system, acct, 2, m.TradeEvent(ACC, 100, MNQ, now, 21000.0, -600.0, 0.0, 1, 1))
    _calls(system, broker)

    # a second account actor on the same database = the daemon after a restart
    broker2 = system.createActor(FakeBroker)
    _ask(system, broker2, SetBroker(positions={ES: 2}), bool)
    acct2 = system.createActor(AccountActor)
    system.tell(acct2, AccountInit(ACC, "TEST", None, (LOSS500,), db, gateway_address=broker2))
    recon = m.Reconciled(ACC, m.AccountEvent(ACC, "TEST", 50000.0, True),
                         (m.PositionEvent(ACC, ES, 2, m.POSITION_LONG, 6000.0),), (), ())
    system.tell(acct2, m.Inbound(ACC, 50, recon, datetime.now(timezone.utc)))

    calls, positions, _ = _calls(system, broker2)
    assert ("close", {"contract_id": ES}) in calls
    assert positions == {}


def test_enforcement_call_fails_once_then_retried_until_flat(system, tmp_path):
    acct, broker, _ = _start(system, tmp_path, [MAX5])
    _ask(system, broker, SetBroker(positions={MNQ: 8}, fail_ops=("partial_close",)), bool)

    _send(system, acct, 2, m.PositionEvent(ACC, MNQ, 8, m.POSITION_LONG, 21000.0))
    import time
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        calls, positions, _ = _calls(system, broker)
        if positions == {MNQ: 5}:
            break
        time.sleep(0.05)
    assert positions == {MNQ: 5}
    assert [op for op, _ in calls].count("partial_close") == 2


def test_daily_reset_at_1700_ct_zeroes_pnl_and_lifts_the_loss_lock(system, tmp_path):
    from risk_actors.clock import FakeClock
    from risk_actors.testing import ct
    import time

    clock = FakeClock(ct(2026, 11, 24, 16, 59, 0))
    db = str(tmp_path / "riskd.sqlite")
    Database(db).close()
    broker = system.createActor(FakeBroker)
    acct = system.createActor(AccountActor)
    system.tell(acct, AccountInit(ACC, "TEST", None, (LOSS500,), db, gateway_address=broker,
                                  clock=clock))
    _send(system, acct, 2, m.TradeEvent(ACC, 100, MNQ, clock.now(), 21000.0, -600.0, 0.0, 1, 1))
    _calls(system, broker)  # let the pipeline settle
    state, _ = Database(db, migrate=False).load(ACC)
    assert state.account_locked(clock.now())
    assert state.lock_expiry(clock.now()) == ct(2026, 11, 24, 17, 0)

    clock.set(ct(2026, 11, 24, 17, 0, 1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the account's 1 s sweep notices the reset
        system.listen(0.2)
        state, _ = Database(db, migrate=False).load(ACC)
        if not state.lockouts:
            break
    assert state.lockouts == ()
    assert state.net_realized() == 0.0
    assert state.next_reset_at == ct(2026, 11, 25, 17, 0)


def test_reset_missed_while_down_runs_at_start_up(system, tmp_path):
    from risk_actors.clock import FakeClock
    from risk_actors.testing import ct

    clock = FakeClock(ct(2026, 11, 24, 16, 30))
    acct, broker, db = None, system.createActor(FakeBroker), str(tmp_path / "riskd.sqlite")
    Database(db).close()
    acct = system.createActor(AccountActor)
    system.tell(acct, AccountInit(ACC, "TEST", None, (LOSS500,), db, gateway_address=broker,
                                  clock=clock))
    _send(system, acct, 2, m.TradeEvent(ACC, 100, MNQ, clock.now(), 21000.0, -600.0, 0.0, 1, 1))
    _calls(system, broker)
    system.tell(acct, __import__("thespian.actors", fromlist=["x"]).ActorExitRequest())

    # the daemon comes back the next morning: the 17:00 reset happened while it was down
    later = FakeClock(ct(2026, 11, 25, 9, 0))
    again = system.createActor(AccountActor)
    system.tell(again, AccountInit(ACC, "TEST", None, (LOSS500,), db, gateway_address=broker,
                                   clock=later))
    _calls(system, broker)

    state, _ = Database(db, migrate=False).load(ACC)
    assert state.lockouts == ()
    assert state.trades == {}
    assert state.last_reset_at == ct(2026, 11, 24, 17, 0)
    assert state.next_reset_at == ct(2026, 11, 25, 17, 0)


def test_inline_enforcer_after_a_refused_reduce_reads_back_at_once_and_retries(
        system, tmp_path, enforcer_placement):
    """A refused call brings no position update: waiting HUB_VERIFY_SECONDS for one would delay
    every retry under broker errors (the 5xx fault test went from 0.4 to 3.4 s)."""
    from risk_actors.enforcer import HUB_VERIFY
    if enforcer_placement != "inline" or not HUB_VERIFY:
        pytest.skip("hub verification is the inline enforcer's (and needs enforcer.HUB_VERIFY)")
    acct, broker, _ = _start(system, tmp_path, [MAX5])
    _ask(system, broker, SetBroker(positions={MNQ: 6}, fail_ops=("partial_close",)), bool)
    _send(system, acct, 2, m.PositionEvent(ACC, MNQ, 6, m.POSITION_LONG, 21000.0))
    _idle(system, 0.4)  # backoff 0.05 s: well under HUB_VERIFY_SECONDS
    calls, positions, _ = _calls(system, broker)
    reduce = ("partial_close", {"contract_id": MNQ, "size": 1})
    assert calls[:3] == [reduce, ("search_positions", {}), reduce], calls
    assert positions == {MNQ: 5}
