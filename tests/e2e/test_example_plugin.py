"""A third-party rule package, installed with pip, is picked up by riskd with no core change.

The test installs ``examples/riskd-max-loss-per-trade`` into the running environment (it stays
installed afterwards, like any plugin a user adds), then proves its rule through RuleTester and
end to end: simulator + a real daemon whose config enables the rule.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for, write_config

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "riskd-max-loss-per-trade"


@pytest.fixture(scope="module")
def installed():
    # A venv of Python 3.12 has no setuptools: then pip builds the example in isolation.
    isolation = ["--no-build-isolation"] if _has_setuptools() else []
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                             *isolation, str(EXAMPLE)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    importlib.invalidate_caches()
    return importlib.import_module("riskd_max_loss_per_trade")


def _has_setuptools() -> bool:
    return importlib.util.find_spec("setuptools") is not None


def test_installed_package_is_discovered_through_its_entry_point(installed):
    from risk_actors.plugins import discover
    found, _ = discover(include_package=False)   # entry points only: no folder scan
    assert found["max_loss_per_trade"] is installed.MaxLossPerTrade


def test_losing_trade_beyond_limit_when_tested_then_symbol_closed_and_locked_until_reset(installed):
    from risk_actors.testing import RuleTester, ct
    from rules.base import ClosePosition
    t = RuleTester(installed.MaxLossPerTrade, {"limit": -100}, start=ct(2026, 11, 24, 11, 0))
    t.position("MNQ", 2, avg=21000.0)
    assert t.trade(-99.5).violation is None
    r = t.trade(-100.0)
    assert ClosePosition(t.contract_id("MNQ")) in r.broker_actions
    assert r.state.symbol_locked("MNQ", r.now) and not r.state.account_locked(r.now)
    assert r.state.active_lockouts(r.now)[0].expires_at == ct(2026, 11, 24, 17, 0)


def test_example_rule_enforces_end_to_end_without_core_change(installed, sim, riskd_factory,
                                                              tmp_path):
    acc = sim.control.create_account("E2E", balance=50000.0)
    account_id = acc["id"]
    sim.control.set_price("MNQ", 21000)
    sim.control.set_price("ES", 6000)
    daemon = riskd_factory(write_config(tmp_path, sim.url, account_id,
                                        {"max_loss_per_trade": {"limit": -100}}))
    daemon.wait_connected(account_id)

    sim.control.place_order(account_id, "MNQ", "market", "buy", 1)
    sim.control.set_price("MNQ", 20940)                  # 1 x -60 pt x $2 = -120
    sim.control.place_order(account_id, "MNQ", "market", "sell", 1)
    wait_for(lambda: any(lk["symbol"] == "MNQ" for lk in
                         (daemon.account(account_id) or {}).get("lockouts", [])),
             5, "MNQ locked by the plugin")

    sim.control.place_order(account_id, "MNQ", "market", "buy", 1)
    wait_for(lambda: sim.position(account_id, "MNQ") == 0, 5, "MNQ fill flattened while locked")
    sim.control.place_order(account_id, "ES", "market", "buy", 1)
    import time
    time.sleep(0.7)
    assert sim.position(account_id, "ES") == 1           # other symbols stay tradable
