"""Analytics end to end: the trader makes round turns in the simulator, riskd's analytics
component records them, and `risk-trader stats --json` (a real process) reports the figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.e2e.conftest import wait_for, write_config

pytestmark = pytest.mark.e2e


def trader_stats(config, *args: str) -> dict | None:
    result = subprocess.run([sys.executable, "-m", "risk_actors.cli.trader", "stats", "--json",
                             *args, "--config", str(config)], capture_output=True, text=True,
                            timeout=60)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _round_turn(sim, account_id, symbol, first_side, size, entry, exit_):
    sim.control.set_price(symbol, entry)
    sim.control.place_order(account_id, symbol, "market", first_side, size)
    wait_for(lambda: sim.position(account_id, symbol) != 0, 5, f"{symbol} position opened")
    sim.control.set_price(symbol, exit_)
    sim.control.place_order(account_id, symbol, "market",
                            "sell" if first_side == "buy" else "buy", size)
    wait_for(lambda: sim.position(account_id, symbol) == 0, 5, f"{symbol} position closed")


def test_round_turns_in_the_simulator_when_stats_asked_then_figures_match(sim, riskd_factory,
                                                                          tmp_path):
    acc = sim.control.create_account("E2E", balance=50000.0)["id"]
    config = write_config(tmp_path, sim.url, acc,
                          {"max_contracts": {"enabled": True, "limit": 5}},
                          extra={"components": {"analytics": {"enabled": True,
                                                              "daily_report": True}}})
    daemon = riskd_factory(config)
    daemon.wait_connected(acc)

    # MNQ: $2 a point, fees 0.37 a side a contract; ES: $50 a point, 1.40 a side.
    _round_turn(sim, acc, "MNQ", "buy", 2, 21000, 21010)   # +10 pts x 2 x $2  = +40.00
    _round_turn(sim, acc, "ES", "sell", 1, 6000, 6004)     # -4 pts x 1 x $50  = -200.00
    _round_turn(sim, acc, "MNQ", "buy", 1, 21010, 21005)   # -5 pts x 1 x $2   = -10.00

    # The simulator's own record of those fills, to know the test drove what it meant to.
    closing = [t for t in sim.control.state(acc)["trades"] if t.get("profitAndLoss") is not None]
    assert sorted(t["profitAndLoss"] for t in closing) == [-200.0, -10.0, 40.0]

    data = wait_for(lambda: (d := trader_stats(config, "--account", str(acc)))
                    and d["accounts"] and d["accounts"][0]["fills"] == 6 and d, 20,
                    f"analytics recorded the 6 fills\n{daemon.output()}", interval=0.5)
    a = data["accounts"][0]
    assert (a["trades"], a["wins"], a["losses"], a["scratches"]) == (3, 1, 2, 0)
    assert a["win_rate"] == 33.33                           # 1 / 3
    assert a["gross_pnl"] == -170.00                        # 40 - 200 - 10
    assert a["fees"] == 5.02                                # (2+2) x 0.37 + 2 x 1.40 + 2 x 0.37
    assert a["net_pnl"] == -175.02
    assert a["profit_factor"] == 0.19                       # 40 / 210
    assert (a["average_win"], a["average_loss"]) == (40.00, -105.00)
    assert (a["largest_win"], a["largest_loss"]) == (40.00, -200.00)
    assert {k: v["net_pnl"] for k, v in a["by_instrument"].items()} == {
        "ES": -202.80, "MNQ": 27.78}                        # MNQ: 30 - 2.22
    assert round(sum(v["net_pnl"] for v in a["by_hour"].values()), 2) == -175.02

    daemon.stop()
    # The figures are in the database: still there with the daemon down, and it says so.
    down = subprocess.run([sys.executable, "-m", "risk_actors.cli.trader", "stats",
                           "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert down.returncode == 0 and "riskd is NOT running" in down.stderr
    assert "-175.02" in down.stdout and "profit factor" in down.stdout


def _host_pids(config) -> list[int]:
    log = config.parent / "state" / "logs" / "riskd.log"
    if not log.exists():
        return []
    return [int(line.split()[2]) for line in log.read_text(errors="replace").splitlines()
            if "risk_actors.component_host: components running:" in line]


def test_component_host_killed_when_restarted_then_analytics_goes_on(sim, riskd_factory,
                                                                     tmp_path):
    acc = sim.control.create_account("E2E", balance=50000.0)["id"]
    config = write_config(tmp_path, sim.url, acc, {"max_contracts": {"enabled": True,
                                                                      "limit": 5}})
    daemon = riskd_factory(config)
    daemon.wait_connected(acc)
    (first,) = wait_for(lambda: _host_pids(config), 10, "the component host started")

    os.kill(first, signal.SIGKILL)
    pids = wait_for(lambda: (p := _host_pids(config)) and len(p) == 2 and p, 15,
                    f"the component host restarted\n{daemon.output()}")
    assert pids[1] != first

    _round_turn(sim, acc, "MNQ", "buy", 1, 21000, 21004)   # +4 pts x $2 = +8.00
    data = wait_for(lambda: (d := trader_stats(config)) and d["accounts"]
                    and d["accounts"][0]["trades"] == 1 and d, 20,
                    f"analytics recorded the trade after the restart\n{daemon.output()}",
                    interval=0.5)
    assert data["accounts"][0]["gross_pnl"] == 8.0
    assert daemon.account(acc)["connected"]   # the accounts never noticed
