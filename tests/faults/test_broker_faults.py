"""Broker faults injected by the simulator while riskd enforces max_contracts (limit 5, the
trader buys 6 -> one partial close). Each test measures the enforcement delay from the fill
(the trader's order at the simulator) to the broker holding 5, and checks the broker ends right:
exactly 5, never 4 (no double reduction)."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import (MAX5, Daemon, Simulator, calls, setup_account, wait_for,
                                   write_config)

pytestmark = pytest.mark.e2e
PARTIAL = "/api/Position/partialCloseContract"
BUDGET_S = 5.0   # what the fault suite accepts for one enforcement through a transient fault


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One simulator + daemon for the transient-fault tests (they leave the broker at 5 MNQ and
    each starts by buying over the limit from wherever it is): saves a start per test."""
    tmp = tmp_path_factory.mktemp("shared")
    sim = Simulator(tmp)
    acc = sim.control.create_account("E2E", balance=50000.0)
    sim.control.set_price("MNQ", 21000)
    daemon = Daemon(write_config(tmp, sim.url, acc["id"], MAX5)).start()
    try:
        daemon.wait_connected(acc["id"])
        yield sim, daemon, acc["id"]
    finally:
        daemon.stop()
        sim.stop()


@pytest.fixture
def live(shared):
    sim, daemon, account_id = shared
    sim.control.clear_faults()
    daemon.wait_connected(account_id, timeout=20)
    yield shared
    sim.control.clear_faults()


def _violate_and_measure(sim, account_id, budget=BUDGET_S, extra=1):
    """Buy 5 + extra; seconds until the broker is back at 5, and the checks after."""
    since = sim.control.log()["next"]
    t0 = time.monotonic()
    before = sim.position(account_id, "MNQ")
    sim.control.place_order(account_id, "MNQ", "market", "buy", 5 + extra - before)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, budget, "MNQ reduced to 5",
             interval=0.02)
    delay = time.monotonic() - t0
    time.sleep(0.5)
    assert sim.position(account_id, "MNQ") == 5, "double reduction"
    return delay, since


@pytest.mark.slow
def test_short_websocket_drop_then_fill_reduced_after_reconnect(sim, riskd_factory, tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    sim.control.drop("all")
    delay, _ = _violate_and_measure(sim, account_id, budget=15)
    daemon.wait_connected(account_id, timeout=15)
    print(f"drop: enforced in {delay:.2f}s")


def test_fill_event_lost_by_hub_drop_recovered_by_reconciliation(live):
    sim, daemon, account_id = live
    sim.control.add_fault("hub:user", "drop")   # the next user event is lost, sockets closed
    delay, _ = _violate_and_measure(sim, account_id, budget=15)
    print(f"event lost + drop: enforced in {delay:.2f}s")


@pytest.mark.parametrize("kind,count,extra", [
    ("5xx", 3, {}), pytest.param("429", 1, {"retry_after": 1}, marks=pytest.mark.slow)])
def test_reduce_refused_by_broker_then_retried_until_broker_state_matches(live, kind, count,
                                                                         extra):
    sim, _, account_id = live
    sim.control.add_fault(PARTIAL, kind, count=count, **extra)
    delay, since = _violate_and_measure(sim, account_id)
    statuses = [r["status"] for r in calls(sim, PARTIAL, since)]
    assert statuses[-1] == 200 and statuses.count(200) == 1, statuses
    print(f"{kind} x{count}: enforced in {delay:.2f}s after {len(statuses)} calls")


def test_reduce_refused_with_429_is_not_resent_before_retry_after(live):
    sim, _, account_id = live
    sim.control.add_fault(PARTIAL, "429", retry_after=2)
    _, since = _violate_and_measure(sim, account_id)
    sent = calls(sim, PARTIAL, since)
    assert len(sent) == 2 and sent[1]["t"] - sent[0]["t"] >= 1.9, [r["t"] for r in sent]


def test_reduce_answered_after_the_sdk_timeout_is_not_done_twice(sim, riskd_factory, tmp_path):
    """The broker executes the reduce but answers after riskd's 0.5 s request timeout."""
    account_id, _ = setup_account(sim, riskd_factory, tmp_path,
                                  extra={"broker": {"timeout_seconds": 0.5}})
    sim.control.add_fault(PARTIAL, "slow", delay_ms=1500)
    delay, since = _violate_and_measure(sim, account_id)
    time.sleep(1.2)  # the slow answer arrives; nothing more may happen
    assert sim.position(account_id, "MNQ") == 5
    assert len(calls(sim, PARTIAL, since)) == 1
    print(f"slow beyond timeout: enforced in {delay:.2f}s")


def test_gateway_logout_then_reconnects_and_enforces(live):
    sim, daemon, account_id = live
    sim.control.logout()
    delay, _ = _violate_and_measure(sim, account_id, budget=15)
    daemon.wait_connected(account_id, timeout=15)
    print(f"logout: enforced in {delay:.2f}s")


def test_reconcile_answered_late_does_not_undo_what_the_hub_showed(live):
    """The reconcile after a user-hub drop reads the broker flat, and its answer is held up
    1.5 s. Meanwhile the trader buys 6 and riskd reduces to 5, both seen on the hub. The late
    snapshot must not take riskd back to flat (a loss rule would not see the position) or to
    6 (a second reduce, the broker at 4)."""
    sim, daemon, account_id = live
    held = sim.position(account_id, "MNQ")
    if held:
        sim.control.place_order(account_id, "MNQ", "market", "sell", held)
    wait_for(lambda: (a := daemon.account(account_id)) and not a["positions"], 5,
             "riskd sees the account flat")
    since = sim.control.log()["next"]
    sim.control.add_fault("/api/Position/searchOpen", "late", delay_ms=1500)
    sim.control.drop("user")
    wait_for(lambda: calls(sim, "/api/Position/searchOpen", since), 10,
             "the reconcile's position search reached the broker")
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, BUDGET_S, "MNQ reduced to 5",
             interval=0.02)
    wait_for(lambda: [r for r in calls(sim, "/api/Position/searchOpen", since)
                      if r.get("fault") == "late" and r.get("status")], 5,
             "the late snapshot answered")
    time.sleep(0.5)
    assert sim.position(account_id, "MNQ") == 5, "double reduction"
    assert len(calls(sim, PARTIAL, since)) == 1
    wait_for(lambda: [p["size"] for p in daemon.account(account_id)["positions"]] == [5], 3,
             "riskd status shows the 5 the broker holds")


def test_all_tokens_expired_then_rest_401_refreshes_and_enforces(live):
    sim, daemon, account_id = live
    sim.control.tokens(expire_all=True)
    delay, since = _violate_and_measure(sim, account_id, budget=15)
    assert calls(sim, "/api/Auth/loginKey", since), "expected a fresh login after the 401"
    print(f"token expiry: enforced in {delay:.2f}s")


def test_can_trade_flapping_then_violation_enforced_and_flag_ends_right(live):
    sim, daemon, account_id = live
    for flag in (False, True, False, True, False, True):
        sim.control.set_can_trade(account_id, flag)
        time.sleep(0.05)
    delay, _ = _violate_and_measure(sim, account_id)
    wait_for(lambda: (a := daemon.account(account_id)) and a["can_trade"] is True, 5,
             "status canTrade true (last value)")
    print(f"canTrade flapping: enforced in {delay:.2f}s")


def test_persistent_broker_failure_shown_in_status_while_it_lasts(sim, riskd_factory, tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    sim.control.add_fault(PARTIAL, "5xx", count=100000)
    sim.control.add_fault("/api/Position/closeContract", "5xx", count=100000)
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: len(calls(sim, PARTIAL)) >= 4, 10, "four refused attempts")
    wait_for(lambda: (a := daemon.account(account_id)) and a["failures"], 2,
             "failure shown in riskd status --json")


@pytest.mark.slow
@pytest.mark.timeout(420)  # the enforcer gives up after 40 attempts, ~3 min
def test_persistent_broker_failure_eventually_final_failure_in_status(sim, riskd_factory,
                                                                     tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    sim.control.add_fault(PARTIAL, "5xx", count=100000)
    sim.control.add_fault("/api/Position/closeContract", "5xx", count=100000)
    t0 = time.monotonic()
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    a = wait_for(lambda: (a := daemon.account(account_id)) and a["failures"] and a, 300,
                 "final failure in riskd status --json", interval=1)
    print(f"persistent 5xx: final failure shown after {time.monotonic() - t0:.0f}s: "
          f"{a['failures']}")
    sim.control.clear_faults()
