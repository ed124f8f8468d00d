"""Fault: the AccountActor SIGKILLed where riskd's rules and the enforcer run inside the
account's process and the broker link in its own actor (``broker_placement: actor``; the
shipped all-inline placement is killed in tests/e2e/test_broker_inline.py): killing the
account kills its rules and enforcer too. The restarted account must restore its state, reconcile, and get the pending
violation enforced exactly once by its own rules."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import (actor_processes, audit_ok, calls, kill_pid, measure,
                                   setup_account, wait_for)
from tests.faults.test_actor_kill import PARTIAL, _lose_20

pytestmark = pytest.mark.e2e


def _account_pid(daemon, exclude: int | None = None) -> int | None:
    """The AccountActor: the process whose one child is the (threaded) GatewayActor."""
    for p in actor_processes(daemon):
        try:
            kids = p.children()
            if p.pid != exclude and len(kids) == 1 and kids[0].num_threads() > 1:
                return p.pid
        except Exception:  # noqa: BLE001 - a process that ended meanwhile
            continue
    return None


def test_account_with_inline_rules_and_enforcer_sigkilled_after_a_fill_then_enforced_once(
        sim, riskd_factory, tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path, placement="inline",
                                       extra={"daemon": {"broker_placement": "actor"}})
    _lose_20(sim, daemon, account_id)
    old = wait_for(lambda: _account_pid(daemon), 10, "account actor (inline placement)")
    since = sim.control.log()["next"]

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    kill_pid(old)

    wait_for(lambda: _account_pid(daemon, exclude=old), 10, "a new account actor")
    delay = measure(lambda: sim.position(account_id, "MNQ") == 5, 10, "reduce landed")
    daemon.wait_connected(account_id)
    time.sleep(0.7)
    assert sim.position(account_id, "MNQ") == 5, "double reduction after the restart"
    executed = [r for r in calls(sim, PARTIAL, since) if r.get("status") == 200]
    assert len(executed) == 1, executed
    assert daemon.account(account_id)["realized_pnl"] == -20.0
    sim.control.place_order(account_id, "MNQ", "market", "buy", 2)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 5, "next violation enforced")
    audit_ok(tmp_path / "state")
    print(f"account kill (inline rules + enforcer): reduced {delay:.2f}s after the kill")
