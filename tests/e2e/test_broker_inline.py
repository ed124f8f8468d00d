"""``daemon.broker_placement: inline``: the broker session runs inside the account's process,
so an enforcement crosses no process at all. The same behaviour as with the broker link in its
own actor (tests/e2e/test_enforcement.py), judged by the simulator: reduce, flatten and lock,
survive a kill -9 of the account process."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import wait_for, write_config
from tests.e2e.test_enforcement import LOSS500, MAX5, _lose_550_with_es_open_and_a_working_order
from tests.faults.conftest import actor_processes, kill_pid

pytestmark = pytest.mark.e2e
INLINE = {"daemon": {"broker_placement": "inline"}}


def _setup(sim, riskd_factory, tmp_path, rules):
    acc = sim.control.create_account("E2E", balance=50000.0)
    sim.control.set_price("MNQ", 21000)
    sim.control.set_price("ES", 6000)
    daemon = riskd_factory(write_config(tmp_path, sim.url, acc["id"], rules, extra=INLINE))
    daemon.wait_connected(acc["id"])
    return acc["id"], daemon


def _account_pid(daemon, exclude=None):
    """With everything inline the account is the Supervisor's child with the SDK's threads."""
    for p in actor_processes(daemon):
        try:
            if p.pid != exclude and p.num_threads() > 1 and not p.children():
                return p.pid
        except Exception:  # noqa: BLE001 - ended meanwhile
            continue
    return None


def test_inline_broker_buy_6_with_limit_5_then_one_reduce_within_1s(sim, riskd_factory,
                                                                    tmp_path):
    account_id, daemon = _setup(sim, riskd_factory, tmp_path, MAX5)
    since = sim.control.log()["next"]
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 5, "MNQ reduced to 5")
    order = sim.requests("/sim/orders", since)[0]
    reduce = sim.requests("/api/Position/partialCloseContract", since)
    assert len(reduce) == 1 and reduce[0]["body"]["size"] == 1
    assert reduce[0]["t"] - order["t"] < 1.0


def test_inline_broker_loss_limit_then_flattened_cancelled_and_locked(sim, riskd_factory,
                                                                      tmp_path):
    account_id, daemon = _setup(sim, riskd_factory, tmp_path, LOSS500)
    _lose_550_with_es_open_and_a_working_order(sim, account_id)
    wait_for(lambda: sim.position(account_id, "ES") == 0, 5, "ES closed by riskd")
    wait_for(lambda: not sim.control.state(account_id)["orders"], 5, "working order cancelled")
    status = wait_for(lambda: (a := daemon.account(account_id)) and a["lockouts"] and a, 5,
                      "lock shown by riskd status")
    assert status["lockouts"][0]["rule"] == "daily_realized_loss"
    sim.control.place_order(account_id, "MNQ", "market", "buy", 1)
    wait_for(lambda: sim.position(account_id, "MNQ") == 0, 5, "fill while locked flattened")


def test_inline_broker_account_process_killed_after_a_fill_then_restarted_and_enforced_once(
        sim, riskd_factory, tmp_path):
    account_id, daemon = _setup(sim, riskd_factory, tmp_path, MAX5)
    old = wait_for(lambda: _account_pid(daemon), 10, "account process")
    since = sim.control.log()["next"]
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    kill_pid(old)
    wait_for(lambda: _account_pid(daemon, exclude=old), 10, "a new account process")
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 10, "reduce landed")
    time.sleep(0.7)
    executed = [r for r in sim.requests("/api/Position/partialCloseContract", since)
                if r.get("status") == 200]
    assert len(executed) == 1 and sim.position(account_id, "MNQ") == 5
