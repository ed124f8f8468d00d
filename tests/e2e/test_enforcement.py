"""riskd end to end: simulator + daemon processes, the trader trading through the simulator.

Judged only by what the broker (the simulator) saw and holds, and by `riskd status`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import wait_for, write_config

pytestmark = pytest.mark.e2e
CT = ZoneInfo("America/Chicago")
MAX5 = {"max_contracts": {"enabled": True, "limit": 5, "count_type": "net",
                          "reduce_to_limit": True}}
LOSS500 = {"daily_realized_loss": {"enabled": True, "limit": -500, "include_fees": False}}


def next_1700_ct(now: datetime) -> datetime:
    local = now.astimezone(CT)
    reset = datetime(local.year, local.month, local.day, 17, tzinfo=CT)
    if reset <= local:
        tomorrow = local.date() + timedelta(days=1)
        reset = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 17, tzinfo=CT)
    return reset.astimezone(timezone.utc)


def _setup(sim, riskd_factory, tmp_path, rules):
    acc = sim.control.create_account("E2E", balance=50000.0)
    sim.control.set_price("MNQ", 21000)
    sim.control.set_price("ES", 6000)
    daemon = riskd_factory(write_config(tmp_path, sim.url, acc["id"], rules))
    daemon.wait_connected(acc["id"])
    return acc["id"], daemon


def _trade(sim, account_id, side, size, symbol):
    return sim.control.place_order(account_id, symbol, "market", side, size)


def test_trader_buys_6_mnq_with_limit_5_then_broker_gets_reduce_within_1s(sim, riskd_factory,
                                                                          tmp_path):
    account_id, daemon = _setup(sim, riskd_factory, tmp_path, MAX5)
    since = sim.control.log()["next"]

    _trade(sim, account_id, "buy", 6, "MNQ")

    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 5, "MNQ reduced to 5")
    order = sim.requests("/sim/orders", since)[0]
    reduce = sim.requests("/api/Position/partialCloseContract", since)
    assert len(reduce) == 1 and reduce[0]["body"]["size"] == 1
    assert reduce[0]["t"] - order["t"] < 1.0
    status = daemon.account(account_id)
    assert status["lockouts"] == []  # 001 never locks


def _lose_550_with_es_open_and_a_working_order(sim, account_id):
    _trade(sim, account_id, "buy", 1, "ES")
    working = sim.control.place_order(account_id, "MNQ", "limit", "buy", 1, limit_price=20000)
    _trade(sim, account_id, "buy", 2, "MNQ")
    sim.control.set_price("MNQ", 20925)            # 2 x -75 pt x $2 = -$300
    _trade(sim, account_id, "sell", 2, "MNQ")
    _trade(sim, account_id, "buy", 1, "MNQ")
    sim.control.set_price("MNQ", 20800)            # 1 x -125 pt x $2 = -$250
    _trade(sim, account_id, "sell", 1, "MNQ")      # daily realized -550 <= -500
    return working


def test_losses_reach_limit_then_all_closed_orders_cancelled_locked_until_1700_ct(
        sim, riskd_factory, tmp_path):
    account_id, daemon = _setup(sim, riskd_factory, tmp_path, LOSS500)

    working = _lose_550_with_es_open_and_a_working_order(sim, account_id)

    wait_for(lambda: sim.position(account_id, "ES") == 0, 5, "ES closed by riskd")
    wait_for(lambda: not sim.control.state(account_id)["orders"], 5, "working order cancelled")
    assert any(r["body"].get("orderId") == working for r in sim.requests("/api/Order/cancel"))
    status = wait_for(lambda: (a := daemon.account(account_id)) and a["lockouts"] and a, 5,
                      "lock shown by riskd status")
    lock = status["lockouts"][0]
    assert lock["rule"] == "daily_realized_loss"
    assert datetime.fromisoformat(lock["expires_at"]) == next_1700_ct(datetime.now(timezone.utc))
    assert status["realized_pnl"] == -550.0

    # while locked, a new fill is flattened at once
    since = sim.control.log()["next"]
    _trade(sim, account_id, "buy", 1, "MNQ")
    wait_for(lambda: sim.position(account_id, "MNQ") == 0, 5, "fill while locked flattened")
    order = sim.requests("/sim/orders", since)[0]
    close = sim.requests("/api/Position/closeContract", since)[0]
    assert close["t"] - order["t"] < 1.0


def test_daemon_killed_while_locked_then_restarted_still_locked_and_new_fill_flattened(
        sim, riskd_factory, tmp_path):
    account_id, daemon = _setup(sim, riskd_factory, tmp_path, LOSS500)
    _lose_550_with_es_open_and_a_working_order(sim, account_id)
    wait_for(lambda: (a := daemon.account(account_id)) and a["lockouts"], 5, "locked")

    daemon.kill9()
    _trade(sim, account_id, "buy", 2, "MNQ")      # traded while riskd was down
    restarted = riskd_factory(daemon.config)
    status = restarted.wait_connected(account_id)

    assert status["lockouts"] and status["lockouts"][0]["rule"] == "daily_realized_loss"
    wait_for(lambda: sim.position(account_id, "MNQ") == 0, 10,
             "position opened while down closed at start-up")
    _trade(sim, account_id, "buy", 1, "ES")
    wait_for(lambda: sim.position(account_id, "ES") == 0, 5, "new fill after restart flattened")
    wait_for(lambda: (a := restarted.account(account_id)) and a["realized_pnl"] <= -550.0, 5,
             "daily P&L rebuilt from the journal and REST")
