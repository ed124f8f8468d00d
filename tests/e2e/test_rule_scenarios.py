"""Every rule proven from broker event to broker call: one scenario file per rule.

For each ``tests/scenarios/rules/<rule>.yaml`` the harness creates the account ``E2E`` on a fresh
simulator, starts a real riskd daemon on it with the rules of ``<rule>.riskd.yaml``, and runs the
scenario through the simulator's control API (the same runner as ``gateway-sim scenario``). The
scenario states the trader's actions and the broker calls riskd must make, with deadlines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway_sim.scenario import run_scenario
from tests.e2e.conftest import write_config

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parents[1] / "scenarios" / "rules"
SCENARIOS = sorted(p for p in HERE.glob("*.yaml") if not p.name.endswith(".riskd.yaml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_rule_scenario(scenario, sim, riskd_factory, tmp_path):
    riskd_rules = yaml.safe_load(scenario.with_suffix(".riskd.yaml").read_text())
    acc = sim.control.create_account("E2E", balance=50000.0)
    for symbol, price in (riskd_rules.get("prices") or {}).items():
        sim.control.set_price(symbol, price)
    daemon = riskd_factory(write_config(tmp_path, sim.url, acc["id"], riskd_rules["rules"],
                                        extra=riskd_rules.get("config")))
    daemon.wait_connected(acc["id"])

    result = run_scenario(scenario, sim.url)

    failures = "\n".join(f"  {f}" for f in result.failures)
    assert result.passed, f"{result.summary()}\n{failures}\n--- riskd output ---\n{daemon.output()}"
