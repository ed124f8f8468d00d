"""Fault: the top of the tree SIGKILLed alone: the Supervisor (no parent actor: the daemon
process watches it, risk_actors/daemon.py ``SupervisorWatch``) and the Notifier (restarted by the
Supervisor). Judged by the broker (max_contracts limit 5: a fill of 6 ends at exactly 5),
``riskd status``, the saved state and the log. None of these tests depends on rule actors."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.faults.conftest import (actor_processes, audit_ok, calls, kill_pid, setup_account,
                                   wait_for)

pytestmark = pytest.mark.e2e
PARTIAL = "/api/Position/partialCloseContract"


def _lose_20(sim, account_id):
    sim.control.place_order(account_id, "MNQ", "market", "buy", 1)
    sim.control.set_price("MNQ", 20990)
    sim.control.place_order(account_id, "MNQ", "market", "sell", 1)
    sim.control.set_price("MNQ", 21000)


def _gateways(daemon) -> list[int]:
    """pids of GatewayActors (the only actors with extra threads: the SDK loop)."""
    out = []
    for p in actor_processes(daemon):
        try:
            if p.num_threads() > 1 and p.ppid() != 1 and p.children() == []:
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


def _tree(daemon) -> dict:
    """Supervisor, its children (notifier, account ...) and the account's gateway, by shape:
    the account is the supervisor child with a threaded child (the gateway)."""
    procs = actor_processes(daemon)
    for acct in procs:
        try:
            kids = acct.children()
            gws = [k for k in kids if k.num_threads() > 1]
            if len(gws) != 1:
                continue
            sup = psutil.Process(acct.ppid())
            others = [c.pid for c in sup.children() if c.pid != acct.pid]
            return {"supervisor": sup.pid, "account": acct.pid, "gateway": gws[0].pid,
                    "supervisor_children": others}
        except psutil.Error:
            continue
    return {}


def _notifier(daemon, tree) -> int:
    """The Notifier: the Supervisor's first child (created at boot before the components and
    the accounts; every actor shares the daemon's command line, so only order tells)."""
    kids = []
    for pid in tree["supervisor_children"]:
        try:
            kids.append((psutil.Process(pid).create_time(), pid))
        except psutil.Error:
            continue
    assert kids, f"no supervisor child besides the account: {tree}"
    return min(kids)[1]


def _log(state_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in (state_dir / "logs").glob("*.log*"))


def test_supervisor_sigkilled_alone_then_rebooted_by_the_daemon_and_enforcing(
        sim, riskd_factory, tmp_path):
    """kill -9 of the Supervisor; the trader buys 6 right after. The daemon process notices
    (its Supervisor check answers "not booted"), removes the orphaned old tree and boots a new
    Supervisor; the account restores from SQLite, reconciles and reduces: exactly once."""
    state_dir = tmp_path / "state"
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    _lose_20(sim, account_id)
    before = wait_for(lambda: (a := daemon.account(account_id)) and a["realized_pnl"] == -20.0
                      and a, 10, "realized -20 recorded")
    tree = wait_for(lambda: _tree(daemon), 20, "actor tree")
    since = sim.control.log()["next"]

    kill_pid(tree["supervisor"])
    t0 = time.monotonic()
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 30,
             f"MNQ reduced to 5 after the supervisor kill\n{daemon.output()}", interval=0.05)
    delay = time.monotonic() - t0
    after = daemon.wait_connected(account_id, timeout=20)
    answered = time.monotonic() - t0
    time.sleep(1.0)
    assert sim.position(account_id, "MNQ") == 5, "double enforcement"
    assert len([r for r in calls(sim, PARTIAL, since) if r.get("status", 200) == 200]) == 1
    # the old tree is gone, one new tree runs (never two gateways on one account)
    old = {tree["account"], tree["gateway"], tree["supervisor"]}
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status()
                             != psutil.STATUS_ZOMBIE for p in old), 10, "old tree gone")
    new = wait_for(lambda: _tree(daemon), 10, "new tree")
    assert new["supervisor"] != tree["supervisor"]
    assert len(_gateways(daemon)) == 1, _gateways(daemon)
    assert after["realized_pnl"] == before["realized_pnl"]
    assert after["lockouts"] == before["lockouts"]
    assert "Supervisor died" in _log(state_dir)
    audit_ok(state_dir)
    print(f"supervisor kill: broker at 5 {delay:.2f}s after the kill (fill right after it); "
          f"status answering + connected after {answered:.2f}s")


@pytest.mark.slow
def test_supervisor_sigkilled_twice_in_a_row_still_recovers(sim, riskd_factory, tmp_path):
    """A second kill soon after the first re-boot: the watch keeps working."""
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    for round_ in range(2):
        tree = wait_for(lambda: _tree(daemon), 20, "actor tree")
        daemon.wait_connected(account_id, timeout=20)
        kill_pid(tree["supervisor"])
        wait_for(lambda: (t := _tree(daemon)) and t["supervisor"] != tree["supervisor"] and t,
                 20, f"new tree after kill {round_ + 1}")
    daemon.wait_connected(account_id, timeout=20)
    since = sim.control.log()["next"]
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 10, "MNQ reduced to 5")
    time.sleep(0.5)
    assert sim.position(account_id, "MNQ") == 5
    assert len(calls(sim, PARTIAL, since)) == 1


def test_notifier_sigkilled_alone_then_restarted_and_alerts_still_logged(sim, riskd_factory,
                                                                        tmp_path):
    """kill -9 of the Notifier: the Supervisor restarts it; enforcement never depended on it;
    the alert of the next enforcement reaches the daemon log through the new Notifier."""
    state_dir = tmp_path / "state"
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path)
    tree = wait_for(lambda: _tree(daemon), 20, "actor tree")
    notifier = _notifier(daemon, tree)
    kill_pid(notifier)
    t0 = time.monotonic()
    wait_for(lambda: (t := _tree(daemon)) and notifier not in t["supervisor_children"]
             and len(t["supervisor_children"]) >= len(tree["supervisor_children"]), 10,
             "notifier restarted")
    restarted = time.monotonic() - t0
    time.sleep(0.5)
    log_before = len(_log(state_dir))
    since = sim.control.log()["next"]
    t1 = time.monotonic()
    sim.control.place_order(account_id, "MNQ", "market", "buy", 6)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 10, "MNQ reduced to 5")
    delay = time.monotonic() - t1
    assert len(calls(sim, PARTIAL, since)) == 1
    # the enforcement's alert ("enforced: ...") is logged by the new Notifier
    wait_for(lambda: "ALERT" in _log(state_dir)[log_before:]
             and "max_contracts" in _log(state_dir)[log_before:], 10,
             "an alert of the enforcement in the daemon log after the notifier restart")
    assert daemon.status() is not None
    print(f"notifier kill: restarted in {restarted:.2f}s; next violation enforced in "
          f"{delay:.2f}s and alerted")
