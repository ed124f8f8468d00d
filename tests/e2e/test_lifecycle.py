"""The daemon's life as an operator sees it: start, status, reload, stop, recovery from kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from risk_actors.daemon import port_open
from tests.e2e.conftest import free_port, wait_for, write_config

pytestmark = pytest.mark.e2e
MAX5 = {"max_contracts": {"enabled": True, "limit": 5}}


def riskd(config, *args, timeout=90):
    return subprocess.run([sys.executable, "-m", "risk_actors.cli.admin", *args, "--config",
                           str(config)], capture_output=True, text=True, timeout=timeout)


def _account(sim):
    acc = sim.control.create_account("E2E", balance=50000.0)
    sim.control.set_price("MNQ", 21000)
    return acc["id"]


def test_status_when_daemon_down_says_so_and_starts_nothing(sim, tmp_path):
    config = write_config(tmp_path, sim.url, 1, MAX5)
    port = yaml.safe_load(config.read_text())["daemon"]["admin_port"]

    result = riskd(config, "status")

    assert result.returncode == 3
    assert "not running" in result.stderr
    time.sleep(0.5)
    assert not port_open(port)  # probing never launched an actor system


def test_background_start_status_stop_and_no_secret_in_logs(sim, tmp_path):
    account_id = _account(sim)
    config = write_config(tmp_path, sim.url, account_id, MAX5)
    port = yaml.safe_load(config.read_text())["daemon"]["admin_port"]
    try:
        started = riskd(config, "start")
        assert started.returncode == 0, started.stderr
        assert "riskd started" in started.stdout
        again = riskd(config, "start")
        assert again.returncode != 0 and "already running" in again.stderr

        text = wait_for(lambda: (r := riskd(config, "status")).returncode == 0
                        and "connected" in r.stdout and "NOT" not in r.stdout and r.stdout,
                        45, "status shows the account connected")
        assert f"account {account_id}" in text and "max_contracts" in text
    finally:
        stopped = riskd(config, "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    wait_for(lambda: not port_open(port), 10, "admin port released")
    log = (tmp_path / "state" / "logs" / "riskd.log").read_text()
    assert "e2e-key" not in log            # the API key
    assert "eyJ" not in log                # any JWT (tokens are base64url JSON)
    assert "access_token=" not in log or "access_token=***" in log


def test_config_reload_applies_new_limit_and_refuses_an_invalid_one(sim, riskd_factory, tmp_path):
    account_id = _account(sim)
    config = write_config(tmp_path, sim.url, account_id, MAX5)
    # A reload needs the admin password (set before the start, as riskd's user would).
    os.environ["RISKD_NEW_ADMIN_PASSWORD"] = os.environ["RISKD_ADMIN_PASSWORD"] = "e2e-admin-pw"
    try:
        assert riskd(config, "passwd").returncode == 0
        _reload_test_body(sim, riskd_factory, config, account_id)
    finally:
        del os.environ["RISKD_NEW_ADMIN_PASSWORD"], os.environ["RISKD_ADMIN_PASSWORD"]


def _reload_test_body(sim, riskd_factory, config, account_id):
    daemon = riskd_factory(config)
    daemon.wait_connected(account_id)
    data = yaml.safe_load(config.read_text())

    data["rules"]["max_contracts"]["limit"] = 3
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    assert "reloaded" in daemon.cli("config", "reload").stdout
    sim.control.place_order(account_id, "MNQ", "market", "buy", 4)
    wait_for(lambda: sim.position(account_id, "MNQ") == 3, 5, "reduced to the new limit 3")

    data["rules"]["max_contracts"]["limit"] = 0
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    refused = daemon.cli("config", "reload", check=False)
    assert refused.returncode != 0
    assert "rules.max_contracts.limit" in refused.stdout + refused.stderr
    sim.control.place_order(account_id, "MNQ", "market", "buy", 2)
    wait_for(lambda: sim.position(account_id, "MNQ") == 3, 5, "old limit 3 still enforced")


def test_start_after_main_process_killed_cleans_up_orphans_and_enforces(sim, riskd_factory,
                                                                       tmp_path):
    account_id = _account(sim)
    config = write_config(tmp_path, sim.url, account_id, MAX5)
    port = yaml.safe_load(config.read_text())["daemon"]["admin_port"]
    first = riskd_factory(config)
    first.wait_connected(account_id)

    os.kill(first.proc.pid, signal.SIGKILL)  # only the main process: its actors are orphaned
    first.proc.wait(10)
    time.sleep(0.5)
    assert port_open(port), "expected orphaned actor processes to keep the admin port"

    second = riskd_factory(config)
    second.wait_connected(account_id)
    sim.control.place_order(account_id, "MNQ", "market", "buy", 7)
    wait_for(lambda: sim.position(account_id, "MNQ") == 5, 5, "new daemon enforces")
