"""Fault: one actor of the running daemon SIGKILLed mid-stream (AccountActor, EnforcerActor,
GatewayActor), found by its place in the process tree (see conftest.actors). Its parent must
restart it with its state, recover what it missed (REST reconciliation), finish the pending
enforcement exactly once, and enforce the next violation."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import (audit_ok, calls, kill_pid, measure, setup_account,
                                   wait_actors, wait_for)

pytestmark = pytest.mark.e2e
PARTIAL = "/api/Position/partialCloseContract"


def _lose_20(sim, daemon, account_id):
    sim.control.place_order(account_id, "MNQ", "market", "buy", 1)
    sim.control.set_price("MNQ", 20990)
    sim.control.place_order(account_id, "MNQ", "market", "sell", 1)
    sim.control.set_price("MNQ", 21000)
    wait_for(lambda: (a := daemon.account(account_id)) and a["realized_pnl"] == -20.0, 10,
             "realized -20 recorded")


def _after(sim, daemon, account_id, tmp_path, killed: set, since: int):
    """Shared checks once the pending violation is resolved: a new tree, state kept, the next
    violation enforced; returns the enforcement delay of that next violation."""
    wait_actors(daemon, exclude=killed)
    daemon.wait_connected(account_id)
    time.sleep(0.7)
    assert sim.position(account_id, "MNQ") == 5, "double reduction after the restart"
    executed = [r for r in calls(sim, PARTIAL, since) if r.get("status") == 200]
    assert len(executed) == 1, executed
    assert daemon.account(account_id)["realized_pnl"] == -20.0
    t0 = time.monotonic()
    sim.control.place_order(account_id, "MNQ", "market", "buy", 2)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 5, "next violation enforced")
    audit_ok(tmp_path / "state")
    return time.monotonic() - t0


def test_gateway_actor_sigkilled_with_a_fill_in_flight_then_reconciled_and_enforced(
        sim, riskd_factory, tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, daemon, account_id)
    tree = wait_actors(daemon)
    since = sim.control.log()["next"]
    sim.control.add_fault("hub:user", "slow", delay_ms=2000)  # the fill event is held back

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    kill_pid(tree["gateway"])                                  # ... and dies with the socket
    delay = measure(lambda: sim.position(account_id, "MNQ") == 5, 15,
                    "fill missed by the dead gateway found by reconciliation and reduced")
    after = _after(sim, daemon, account_id, tmp_path, {tree["gateway"]}, since)
    print(f"gateway kill: pending enforced {delay:.2f}s after the kill; next in {after:.2f}s")


def test_enforcer_actor_sigkilled_with_a_reduce_in_flight_then_completed_exactly_once(
        sim, riskd_factory, tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, daemon, account_id)
    tree = wait_actors(daemon)
    since = sim.control.log()["next"]
    sim.control.add_fault(PARTIAL, "slow", delay_ms=1500)    # at the broker, answer pending

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: calls(sim, PARTIAL, since), 5, "reduce sent")
    kill_pid(tree["enforcer"])
    time.sleep(2.0)  # past the slow answer: the in-flight reduce has landed at the broker
    delay = measure(lambda: sim.position(account_id, "MNQ") == 5, 1, "reduce landed, once")
    after = _after(sim, daemon, account_id, tmp_path, {tree["enforcer"]}, since)
    print(f"enforcer kill: pending done {delay:.2f}s after the kill; next in {after:.2f}s")


@pytest.mark.slow
def test_enforcer_actor_sigkilled_before_its_call_then_replayed_and_enforced(
        sim, riskd_factory, tmp_path):
    """The reduce is refused (500, not executed) and the enforcer dies while backing off: the
    account replays the unfinished Enforce to the new enforcer."""
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, daemon, account_id)
    tree = wait_actors(daemon)
    since = sim.control.log()["next"]
    sim.control.add_fault(PARTIAL, "5xx", count=2)

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: calls(sim, PARTIAL, since), 5, "reduce refused")
    kill_pid(tree["enforcer"])
    delay = measure(lambda: sim.position(account_id, "MNQ") == 5, 10, "replayed reduce landed")
    after = _after(sim, daemon, account_id, tmp_path, {tree["enforcer"]}, since)
    print(f"enforcer kill (refused call): done {delay:.2f}s after the kill; next in {after:.2f}s")


def test_account_actor_sigkilled_right_after_a_violating_fill_then_restored_and_enforced(
        sim, riskd_factory, tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, daemon, account_id)
    tree = wait_actors(daemon)
    since = sim.control.log()["next"]

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    kill_pid(tree["account"])
    old = {tree["account"], tree["gateway"], tree["enforcer"], *tree["rules"]}
    wait_actors(daemon, timeout=4, exclude=old)  # a new account tree is up
    delay = measure(lambda: sim.position(account_id, "MNQ") == 5, 10, "reduce landed")
    after = _after(sim, daemon, account_id, tmp_path, old, since)
    print(f"account kill: done {delay:.2f}s after the kill; next in {after:.2f}s")


@pytest.mark.slow
def test_account_actor_sigkilled_before_the_fill_arrives_then_new_tree_reconciles(
        sim, riskd_factory, tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, daemon, account_id)
    tree = wait_actors(daemon)
    since = sim.control.log()["next"]
    kill_pid(tree["account"])
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)  # while the tree is down
    delay = measure(lambda: sim.position(account_id, "MNQ") == 5, 20, "reduced by the new tree")
    old = {tree["account"], tree["gateway"], tree["enforcer"], *tree["rules"]}
    after = _after(sim, daemon, account_id, tmp_path, old, since)
    print(f"account kill (fill while down): reduced {delay:.2f}s after; next in {after:.2f}s")
