"""Both command lines as real processes against one running daemon (real simulator, SDK,
sockets, SQLite): admin changes with and without the password, forged admin messages, the
trader's status and live dashboard after a 003 breach, and loopback-only sockets.

One simulator + daemon serve the whole module (two accounts: A for admin changes, B for the
daily-loss breach) to keep the run short; tests are ordered where they share state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest
import yaml

from risk_actors.daemon import port_open
from tests.e2e.conftest import Daemon, Simulator, free_port, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
CONFIG_COMMENT = "# the admin's own note: keep me\n"


def run(prog: str, config: Path, *args: str, password: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    module = {"riskd": "risk_actors.cli.admin", "risk-trader": "risk_actors.cli.trader"}[prog]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKD_")}
    if password is not None:
        env["RISKD_ADMIN_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", module, *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sim = Simulator(tmp)
        c = self.sim.control
        self.a = c.create_account("ADMIN-A", balance=50000.0)["id"]
        self.b = c.create_account("LOSS-B", balance=50000.0)["id"]
        c.set_price("MNQ", 21000)
        self.port = free_port()
        config = {
            "version": 2,
            "broker": {"api_url": f"{self.sim.url}/api", "user_hub_url": f"{self.sim.url}/hubs/user",
                       "market_hub_url": f"{self.sim.url}/hubs/market", "username": "e2e",
                       "api_key": "e2e-key"},
            "accounts": [{"id": self.a, "name": "ADMIN-A"},
                         {"id": self.b, "name": "LOSS-B",
                          "overrides": {"rules": {"daily_realized_loss": {"limit": -50}}}}],
            "rules": {"max_contracts": {"enabled": True, "limit": 5},
                      "daily_realized_loss": {"enabled": True, "limit": -100000,
                                              "include_fees": False}},
            "daemon": {"admin_port": self.port, "state_dir": str(tmp / "state")},
        }
        self.config = tmp / "riskd.yaml"
        self.config.write_text(CONFIG_COMMENT + yaml.safe_dump(config, sort_keys=False))
        env = dict(os.environ, RISKD_NEW_ADMIN_PASSWORD=PASSWORD)
        out = subprocess.run([sys.executable, "-m", "risk_actors.cli.admin", "passwd",
                              "--config", str(self.config)], capture_output=True, text=True,
                             env=env, stdin=subprocess.DEVNULL, timeout=60)
        assert out.returncode == 0, out.stderr
        self.daemon = Daemon(self.config).start()
        for acc in (self.a, self.b):
            self.daemon.wait_connected(acc)

    def trade(self, account: int, side: str, size: int) -> None:
        self.sim.control.place_order(account, "MNQ", "market", side, size)

    def close(self) -> None:
        self.daemon.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("cli"))
    yield e
    e.close()


def _admin_rows(env: Env) -> list[dict]:
    out = run("riskd", env.config, "audit", "--kind", "admin", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_rules_set_with_wrong_password_changes_nothing_and_is_audited(env):
    before = env.config.read_text()

    out = run("riskd", env.config, "rules", "set", "max_contracts", "limit", "2",
              password="not the password")

    assert out.returncode == 4
    assert "wrong admin password" in out.stderr
    assert env.config.read_text() == before
    row = _admin_rows(env)[0]
    assert row["detail"]["outcome"] == "refused" and row["detail"]["command"] == "rules_set"
    assert "wrong admin password" in row["detail"]["reason"]
    assert PASSWORD not in json.dumps(row)
    env.trade(env.a, "buy", 5)  # the old limit 5 still holds: nothing reduced
    time.sleep(0.8)
    assert env.sim.position(env.a, "MNQ") == 5
    env.trade(env.a, "sell", 5)
    wait_for(lambda: env.sim.position(env.a, "MNQ") == 0, 5, "flat again")


def test_rules_set_takes_effect_on_next_event_and_keeps_comments(env):
    out = run("riskd", env.config, "rules", "set", "max_contracts", "limit", "2",
              password=PASSWORD)

    assert out.returncode == 0, out.stderr
    assert "max_contracts.limit 5 -> 2" in out.stdout and "reloaded" in out.stdout
    text = env.config.read_text()
    assert text.startswith(CONFIG_COMMENT) and "limit: 2" in text
    env.trade(env.a, "buy", 3)
    wait_for(lambda: env.sim.position(env.a, "MNQ") == 2, 5, "reduced to the new limit 2")
    row = _admin_rows(env)[0]
    assert row["detail"]["outcome"] == "done" and row["detail"]["args"]["value"] == 2
    listed = json.loads(run("riskd", env.config, "rules", "list", "--json").stdout)
    assert next(r for r in listed if r["rule"] == "max_contracts")["params"]["limit"] == 2


def test_forged_admin_messages_without_valid_proof_are_refused(env):
    from risk_actors import messages as m
    from risk_actors import security
    from risk_actors.daemon import ask
    before = env.config.read_text()
    args = {"rule": "max_contracts", "key": "limit", "value": 50, "account": None}

    no_proof = ask(env.port, m.AdminRequest("rules_set", args), timeout=10)
    bogus = ask(env.port, m.AdminRequest("rules_set", args, "v1.1.00", "nonce"), timeout=10)
    # a proof made for other args, replayed with these (a valid nonce, the right password)
    ch = ask(env.port, m.AdminRequest("challenge"), timeout=10).data
    key = security.key_from_password(PASSWORD, ch)
    other = security.make_proof(key, "rules_set", {**args, "value": 3}, ch["nonce"])
    tampered = ask(env.port, m.AdminRequest("rules_set", args, other, ch["nonce"]), timeout=10)

    for reply in (no_proof, bogus, tampered):
        assert not reply.ok and reply.message.startswith("refused")
    assert env.config.read_text() == before
    reasons = [r["detail"]["reason"] for r in _admin_rows(env)[:3]]
    assert any("no proof" in r for r in reasons) and any("wrong admin password" in r
                                                         for r in reasons)


def test_no_riskd_socket_listens_on_a_non_loopback_address(env):
    from risk_actors.netshim import non_loopback_listeners
    info = env.daemon.pidinfo()
    groups = {g for g in [info.get("pgid"), *info.get("actor_pgids", [])] if g}
    pids = {info["pid"]}
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) in groups:
                pids.add(p.pid)
        except (ProcessLookupError, PermissionError):
            pass
    listening = [c for c in psutil.net_connections(kind="inet")
                 if c.pid in pids and c.status == psutil.CONN_LISTEN]

    assert len(pids) >= 6  # daemon, admin, supervisor, notifier, 2 accounts + their children
    assert any(c.laddr.port == env.port for c in listening)
    assert len(listening) >= 5
    assert non_loopback_listeners(pids) == []


def _lose_60_on_b(env: Env) -> None:
    env.trade(env.b, "buy", 2)
    env.sim.control.set_price("MNQ", 20985)   # 2 x -15 pt x $2 = -$60
    env.trade(env.b, "sell", 2)
    env.sim.control.set_price("MNQ", 21000)


def test_trader_status_json_shows_lock_and_countdown_after_003_breach(env):
    _lose_60_on_b(env)

    def locked():
        out = run("risk-trader", env.config, "status", "--json", "--account", str(env.b))
        data = json.loads(out.stdout) if out.returncode == 0 else None
        return data and data["accounts"] and data["accounts"][0]["lockouts"] and data
    data = wait_for(locked, 10, "risk-trader status shows the 003 lock", interval=0.3)

    acc = data["accounts"][0]
    lock = acc["lockouts"][0]
    assert lock["rule"] == "daily_realized_loss" and "reached the limit -50.00" in lock["reason"]
    expires = datetime.fromisoformat(lock["expires_at"])
    left = (expires - datetime.now(timezone.utc)).total_seconds()
    assert 0 < lock["seconds_left"] <= 86400 and abs(lock["seconds_left"] - left) < 30
    assert lock["countdown"].endswith("s") and acc["locked"] is True
    assert acc["next_reset_at"] == lock["expires_at"]
    loss = next(u for u in acc["limits"] if u["rule"] == "daily_realized_loss")
    assert loss["value"] == -60.0 and loss["limit"] == -50.0 and loss["percent_used"] == 120.0
    assert data["daemon"]["running"] is True
    history = json.loads(run("risk-trader", env.config, "history", "--json",
                             "--account", str(env.b)).stdout)
    assert {"verdict", "lock"} <= {h["kind"] for h in history}
    text = run("risk-trader", env.config, "status", "--account", str(env.b))
    assert text.returncode == 0 and "ACCOUNT LOCKED by daily_realized_loss" in text.stdout
    assert "(120% used)" in text.stdout
    admin = run("riskd", env.config, "status")
    assert admin.returncode == 0 and "LOCKED by daily_realized_loss" in admin.stdout
    locks = json.loads(run("riskd", env.config, "lockouts", "--json").stdout)
    assert [(lk["account_id"], lk["rule"]) for lk in locks] == [(env.b, "daily_realized_loss")]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_trader_watch_in_a_terminal_shows_lock_countdown_ticking(env):
    # (runs after the 003 breach above)
    session = f"riskd-watch-{os.getpid()}"
    cmd = (f"{sys.executable} -m risk_actors.cli.trader watch --config {env.config} "
           f"--account {env.b}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", cmd],
                   check=True)
    try:
        def screen():
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout
        first = wait_for(lambda: "unlocks in" in (s := screen()) and s, 15,
                         "the dashboard with the lock countdown")
        assert "ACCOUNT LOCKED by daily_realized_loss" in first
        assert "-60.00" in first and "120%" in first
        time.sleep(2.2)
        second = screen()
        countdowns = [s.split("unlocks in ")[1].split()[0] for s in (first, second)]
        assert countdowns[0] != countdowns[1], "the countdown did not move"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_trader_has_no_way_to_change_anything(env):
    out = subprocess.run([sys.executable, "-m", "risk_actors.cli.trader", "--help"],
                         capture_output=True, text=True, timeout=30)
    assert {"status", "watch", "history", "rules", "stats"} == {
        line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.strip()}
    rules = run("risk-trader", env.config, "rules")
    assert rules.returncode == 0 and "max_contracts" in rules.stdout and "limit 2" in rules.stdout


def test_commands_while_daemon_down_say_so_and_start_nothing(tmp_path):
    config = tmp_path / "riskd.yaml"
    port = free_port()
    config.write_text(yaml.safe_dump({
        "version": 2,
        "broker": {"api_url": "http://127.0.0.1:9/api", "user_hub_url": "http://127.0.0.1:9/hubs/user",
                   "market_hub_url": "http://127.0.0.1:9/hubs/market", "username": "u",
                   "api_key": "k"},
        "accounts": [{"id": 1}], "rules": {"max_contracts": {"limit": 5}},
        "daemon": {"admin_port": port, "state_dir": str(tmp_path / "state")}}))

    trader = run("risk-trader", config, "status", "--json")
    admin = run("riskd", config, "rules", "set", "max_contracts", "limit", "3", password=PASSWORD)

    assert trader.returncode == 3 and "NOT running" in trader.stderr
    assert admin.returncode == 3 and "not running" in admin.stderr
    time.sleep(0.3)
    assert not port_open(port)
