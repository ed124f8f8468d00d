"""End-to-end harness: the real simulator and the real riskd daemon as processes, real SDK,
real sockets, a real SQLite file. Each test gets its own ports and state directory."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from gateway_sim.control_client import ControlClient

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05):
    """Poll until ``predicate()`` is truthy; fail naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last seen: {last!r}")


class Simulator:
    """A ``gateway-sim serve`` process on a free loopback port."""

    def __init__(self, tmp: Path) -> None:
        self.log_path = tmp / "sim.out"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway_sim", "serve", "--port", "0",
             "--quote-interval-ms", "1000"],
            stdout=subprocess.PIPE, stderr=open(self.log_path, "wb"), text=True,
            start_new_session=True)
        line = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
                break
        else:
            self.proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r} {self.log_path.read_text()}")
        self.control = ControlClient(self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def requests(self, path: str, since: int = 0) -> list[dict]:
        """Gateway requests (``/api/...``) or control calls (``/sim/...``) to ``path``, in order."""
        kind = "control" if path.startswith("/sim/") else "request"
        records = self.control.log(since=since, kind=kind)["records"]
        return [r for r in records if r.get("path") == path]

    def position(self, account_id: int, symbol: str) -> int:
        """Signed size the broker holds in ``symbol`` (0 = flat)."""
        total = 0
        for p in self.control.state(account_id)["positions"]:
            if p["contractId"].split(".")[3] == _EXCHANGE_ROOT.get(symbol, symbol):
                total += p["size"] if p["type"] == 1 else -p["size"]
        return total


_EXCHANGE_ROOT = {"ES": "EP", "NQ": "ENQ", "CL": "CLE", "GC": "GCE"}


class Daemon:
    """``riskd start --foreground`` as a process of its own session (killable as a group)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Daemon":
        self.out = open(self.config.parent / "riskd.out", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "risk_actors.cli.admin", "start", "--foreground",
             "--config", str(self.config), "--log-level", "WARNING"],
            stdout=self.out, stderr=self.out, start_new_session=True)
        return self

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "risk_actors.cli.admin", *args,
                                 "--config", str(self.config)],
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"riskd {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}\n{self.output()}")
        return result

    def status(self) -> dict | None:
        result = self.cli("status", "--json", check=False)
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def account(self, account_id: int) -> dict | None:
        st = self.status()
        if not st:
            return None
        return next((a for a in st["accounts"] if a["account_id"] == account_id), None)

    def wait_connected(self, account_id: int, timeout: float = 45) -> dict:
        return wait_for(lambda: (a := self.account(account_id)) and a["connected"] and a,
                        timeout, f"riskd connected to account {account_id}\n{self.output()}",
                        interval=0.3)

    def output(self) -> str:
        path = self.config.parent / "riskd.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def pidinfo(self) -> dict:
        state_dir = yaml.safe_load(self.config.read_text())["daemon"]["state_dir"]
        return json.loads((Path(state_dir) / "riskd.pid").read_text())

    def kill9(self) -> None:
        """SIGKILL every process of the daemon: main, supervisor, accounts, rules, gateway."""
        from risk_actors.daemon import kill_all
        kill_all(self.pidinfo())
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:  # and the actors, which live in the thespian admin's own process group
            from risk_actors.daemon import kill_all
            kill_all(self.pidinfo())
        except (OSError, ValueError, KeyError):
            pass


def write_config(tmp: Path, sim_url: str, account_id: int, rules: dict,
                 admin_port: int | None = None, account_name: str = "E2E",
                 extra: dict | None = None) -> Path:
    """A riskd config for one simulator account; ``extra`` sections (e.g. ``timers``) win."""
    config = {
        "version": 2,
        "broker": {"api_url": f"{sim_url}/api", "user_hub_url": f"{sim_url}/hubs/user",
                   "market_hub_url": f"{sim_url}/hubs/market", "username": "e2e",
                   "api_key": "e2e-key"},
        "accounts": [{"id": account_id, "name": account_name, "enabled": True}],
        "rules": rules,
        "timers": {"daily_reset": {"time": "17:00", "timezone": "America/Chicago"}},
        "daemon": {"admin_port": admin_port or free_port(), "state_dir": str(tmp / "state"),
                   "rule_timeout_ms": 100},
    }
    for key, value in (extra or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp / "riskd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def sim(tmp_path):
    s = Simulator(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def riskd_factory(tmp_path):
    daemons: list[Daemon] = []

    def make(config: Path) -> Daemon:
        d = Daemon(config).start()
        daemons.append(d)
        return d

    yield make
    for d in daemons:
        d.stop()
