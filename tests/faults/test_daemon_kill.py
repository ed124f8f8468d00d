"""Fault: the whole daemon SIGKILLed (every process: main, supervisor, account, gateway, rules,
enforcer) at chosen points of one enforcement, then restarted on the same state directory.

The violation: max_contracts limit 5, the trader buys 6 MNQ, riskd must partially close 1.
"Exactly once in effect" is judged on the broker (the simulator): the position ends at 5, never
4 (a second reduction would be a double enforcement), and the count of
``Position/partialCloseContract`` calls the broker *executed* is one.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.faults.conftest import audit_ok, calls, repeat, setup_account, wait_for

pytestmark = pytest.mark.e2e
PARTIAL = "/api/Position/partialCloseContract"


def _lose_20(sim, account_id):
    """A closed losing round trip (-10 pt x $2 = -$20) so daily P&L is not trivially zero."""
    sim.control.place_order(account_id, "MNQ", "market", "buy", 1)
    sim.control.set_price("MNQ", 20990)
    sim.control.place_order(account_id, "MNQ", "market", "sell", 1)
    sim.control.set_price("MNQ", 21000)


def _state_before(daemon, account_id):
    return wait_for(lambda: (a := daemon.account(account_id)) and a["realized_pnl"] == -20.0 and a,
                    10, "realized -20 recorded")


def _restart_and_check(sim, riskd_factory, daemon, account_id, tmp_path, since, before):
    t0 = time.monotonic()
    restarted = riskd_factory(daemon.config)
    restarted.wait_connected(account_id)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 15, "MNQ at 5 after restart",
             interval=0.02)
    delay = time.monotonic() - t0  # from the restart (process start) to the broker at 5
    time.sleep(1.0)  # room for a (wrong) second reduction to show
    assert sim.position(account_id, "MNQ") == 5, "double enforcement: reduced below the limit"
    executed = [r for r in calls(sim, PARTIAL, since) if r.get("status", 200) == 200]
    after = restarted.account(account_id)
    assert after["realized_pnl"] == before["realized_pnl"]
    assert after["lockouts"] == before["lockouts"]
    audit_ok(tmp_path / "state")
    return restarted, delay, executed


def test_daemon_sigkilled_after_reduce_sent_before_answer_then_restart_reduces_exactly_once(
        sim, riskd_factory, tmp_path):
    """Kill point: the partial close is at the broker (slow answer, executed anyway)."""
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, account_id)
    before = _state_before(daemon, account_id)
    sim.control.add_fault(PARTIAL, "slow", delay_ms=1500)
    since = sim.control.log()["next"]

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: calls(sim, PARTIAL, since), 5, "reduce call reached the broker")
    daemon.kill9()
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 5, "broker executed the slow reduce")

    _, delay, _ = _restart_and_check(sim, riskd_factory, daemon, account_id, tmp_path, since,
                                     before)
    print(f"broker at 5 {delay:.2f}s after the restart (incl. start-up)")
    assert len(calls(sim, PARTIAL, since)) == 1, "a second partial close was sent after restart"


def test_daemon_sigkilled_during_verification_read_back_then_restart_reduces_exactly_once(
        sim, riskd_factory, tmp_path):
    """Kill point: after the reduce was executed, while the enforcer reads the broker back."""
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, account_id)
    before = _state_before(daemon, account_id)
    since = sim.control.log()["next"]
    sim.control.add_fault("/api/Position/searchOpen", "slow", delay_ms=2000)

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: calls(sim, "/api/Position/searchOpen", since), 5, "verification read-back")
    daemon.kill9()
    assert sim.position(account_id, "MNQ") == 5

    _, delay, _ = _restart_and_check(sim, riskd_factory, daemon, account_id, tmp_path, since,
                                     before)
    print(f"broker at 5 {delay:.2f}s after the restart (incl. start-up)")
    assert len(calls(sim, PARTIAL, since)) == 1


def test_daemon_sigkilled_before_the_fill_reached_it_then_restart_reconciles_and_reduces(
        sim, riskd_factory, tmp_path):
    """Kill point: before the enforcement call (the fill event is held back by the hub)."""
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, account_id)
    before = _state_before(daemon, account_id)
    since = sim.control.log()["next"]
    sim.control.add_fault("hub:user", "slow", delay_ms=3000)

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    daemon.kill9()
    assert calls(sim, PARTIAL, since) == [], "riskd acted before the kill; the test proves nothing"
    sim.control.clear_faults()

    _, delay, _ = _restart_and_check(sim, riskd_factory, daemon, account_id, tmp_path, since,
                                     before)
    print(f"reduced {delay:.2f}s after the restart (incl. start-up)")
    assert len(calls(sim, PARTIAL, since)) == 1


@pytest.mark.slow
def test_daemon_sigkilled_while_reduce_keeps_failing_with_5xx_then_restart_completes_it(
        sim, riskd_factory, tmp_path):
    """Kill point: the reduce is refused (HTTP 500, not executed) again and again; riskd is
    retrying when it dies. After restart (broker healthy again) it is done exactly once."""
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, account_id)
    before = _state_before(daemon, account_id)
    since = sim.control.log()["next"]
    sim.control.add_fault(PARTIAL, "5xx", count=1000)

    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: len(calls(sim, PARTIAL, since)) >= 2, 5, "reduce refused and retried")
    daemon.kill9()
    assert sim.position(account_id, "MNQ") == 6
    sim.control.clear_faults()

    _, delay, executed = _restart_and_check(sim, riskd_factory, daemon, account_id, tmp_path,
                                            since, before)
    print(f"reduced {delay:.2f}s after the restart (incl. start-up)")
    assert len(executed) == 1


@pytest.mark.slow
def test_daemon_sigkilled_at_random_points_of_enforcement_repeatedly(sim, riskd_factory, tmp_path):
    """Long mode: buy 1-3 over the limit, SIGKILL after a random 0-400 ms, restart; the broker
    must end at exactly 5 every time (never below: no double reduction)."""
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    sim.control.place_order(account_id, "MNQ", "market", "buy", 5)
    rng = random.Random(6)
    delays = []
    for i in range(repeat(3, 10)):
        extra = rng.randint(1, 3)
        since = sim.control.log()["next"]
        sim.control.place_order(account_id, "MNQ", "market", "buy", extra)
        time.sleep(rng.uniform(0, 0.4))
        daemon.kill9()
        t0 = time.monotonic()
        daemon = riskd_factory(daemon.config)
        daemon.wait_connected(account_id)
        wait_for(lambda: sim.position(account_id, "MNQ") == 5, 15, f"round {i}: MNQ back at 5",
                 interval=0.02)
        delays.append(time.monotonic() - t0)
        time.sleep(1.0)
        assert sim.position(account_id, "MNQ") == 5, f"round {i}: double reduction"
        reduced = sum(r["body"]["size"] for r in calls(sim, PARTIAL, since)
                      if r.get("status") == 200)
        assert reduced == extra, f"round {i}: reduced {reduced} for {extra} over the limit"
    audit_ok(tmp_path / "state")
    print(f"random kill -9: {len(delays)} rounds; enforced after restart in "
          f"{min(delays):.2f}-{max(delays):.2f}s from the restart (incl. start-up)")
