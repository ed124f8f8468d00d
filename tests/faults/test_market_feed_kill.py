"""Fault: the shared market data feed (MarketFeedActor) SIGKILLed, with the shipped placement.

The Supervisor restarts it and replays every account's wanted contracts to it; the next price
move must still reach the rules. Enforcement on fills never depended on the feed."""

from __future__ import annotations

import time

import psutil
import pytest

from tests.faults.conftest import actor_processes, kill_pid, setup_account, wait_for

pytestmark = pytest.mark.e2e
RULES = {"daily_unrealized_loss": {"enabled": True, "limit": -200}}


def _feed_pid(daemon) -> int | None:
    """The feed: the Supervisor's third child (notifier, component host, feed, then the
    accounts; every actor shares one command line, so creation order tells), threaded."""
    try:
        procs = actor_processes(daemon)
        sup = max(procs, key=lambda p: len(p.children()), default=None)
        if sup is None:
            return None
        kids = sorted(sup.children(), key=lambda p: (p.create_time(), p.pid))
        if len(kids) < 4 or kids[2].num_threads() < 2:
            return None
        return kids[2].pid
    except psutil.Error:  # a process ended while we looked (the killed feed): look again
        return None


def test_feed_sigkilled_then_restarted_and_next_price_drop_still_closes(sim, riskd_factory,
                                                                        tmp_path):
    account_id, daemon = setup_account(sim, riskd_factory, tmp_path, rules=RULES,
                                       placement="inline")
    sim.control.place_order(account_id, "MNQ", "market", "buy", 2)
    old = wait_for(lambda: _feed_pid(daemon), 10, "market feed process")
    time.sleep(1.0)  # the account has asked for MNQ quotes
    at_kill = sim.control.log()["next"]
    kill_pid(old)
    t0 = time.monotonic()
    new = wait_for(lambda: (p := _feed_pid(daemon)) and p != old and p, 10, "a new feed")
    since = sim.control.log()["next"]
    # the new feed logs in and subscribes MNQ again (the Supervisor replayed the interest)
    wait_for(lambda: any(r.get("hub") == "market" and r.get("target") == "SubscribeContractQuotes"
                         and not r.get("error")
                         for r in sim.control.log(since=at_kill, kind="hub")["records"]),
             15, "MNQ quotes subscribed again after the restart")
    assert psutil.pid_exists(new)
    time.sleep(0.5)

    sim.control.set_price("MNQ", 20940)  # 2 x -60 pt x $2 = -$240 <= -$200

    wait_for(lambda: sim.position(account_id, "MNQ") == 0, 10,
             f"MNQ closed on the price drop after the feed restart\n{daemon.output()}")
    closes = [r for r in sim.control.log(since=since, kind="request")["records"]
              if r.get("path") == "/api/Position/closeContract"]
    assert len(closes) == 1
    print(f"feed kill: new feed in {time.monotonic() - t0:.2f}s; close after the drop")
