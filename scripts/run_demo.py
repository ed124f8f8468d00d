"""``make run``: the gateway simulator with a demo account, and riskd watching it, in one command.

Starts ``gateway-sim serve`` on 127.0.0.1:8931 (state kept in var/demo/sim-state.json), makes
sure an account named DEMO-RISKD exists, writes var/demo/riskd.yaml from etc/demo/riskd.yaml
with that account's id, runs riskd in the foreground on it, and tells you how to trade.
Ctrl-C stops both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "demo"
PORT = int(os.environ.get("RISKD_SIM_PORT", "8931"))
URL = f"http://127.0.0.1:{PORT}"
BIN = Path(sys.executable).parent
ACCOUNT = "DEMO-RISKD"


def start_simulator() -> subprocess.Popen | None:
    from gateway_sim.control_client import ControlClient, ControlError
    try:
        ControlClient(URL, timeout=1).accounts()
        print(f"* a simulator already answers on {URL}: using it")
        return None
    except ControlError:
        pass
    VAR.mkdir(parents=True, exist_ok=True)
    log = open(VAR / "gateway-sim.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "gateway_sim", "serve", "--port", str(PORT),
                             "--state", str(VAR / "sim-state.json")],
                            stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gateway-sim exited (status {proc.returncode}); see {VAR / 'gateway-sim.log'}")
        try:
            ControlClient(URL, timeout=1).accounts()
            print(f"* simulator listening on {URL} (log: {VAR / 'gateway-sim.log'})")
            return proc
        except ControlError:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"gateway-sim did not answer on {URL} within 20 s")


def demo_account() -> dict:
    from gateway_sim.control_client import ControlClient
    client = ControlClient(URL)
    for acc in client.accounts():
        if acc.get("name") == ACCOUNT:
            return acc
    return client.create_account(ACCOUNT, balance=50000.0)


def write_config(account_id: int) -> Path:
    yaml = YAML()  # round-trip: the comments of the demo config stay for the reader
    data = yaml.load((ROOT / "etc" / "demo" / "riskd.yaml").read_text())
    data["accounts"][0]["id"] = account_id
    data["accounts"][0]["name"] = ACCOUNT
    data.setdefault("daemon", {})["state_dir"] = str(VAR / "state")
    for key, path in (("api_url", "/api"), ("user_hub_url", "/hubs/user"),
                      ("market_hub_url", "/hubs/market")):
        data["broker"][key] = URL + path
    out = VAR / "riskd.yaml"
    with out.open("w") as fh:
        yaml.dump(data, fh)
    return out


def main() -> int:
    sim = start_simulator()
    acc = demo_account()
    config = write_config(int(acc["id"]))
    sim_cli = BIN / "gateway-sim"
    riskd = BIN / "riskd"
    print(f"""
* demo account {ACCOUNT} (id {acc['id']}) on the simulator; riskd config: {config}

  Trade as the trader would, in another terminal (prices start at MNQ 21000):
    {sim_cli} order buy 2 MNQ --account {acc['id']}        # fine: limit is 5 contracts
    {sim_cli} order buy 4 MNQ --account {acc['id']}        # 6 > 5: riskd closes 1 at once
    {sim_cli} state --account {acc['id']}                  # what the broker holds now
    {sim_cli} price MNQ 20900 ; {sim_cli} close MNQ --account {acc['id']}   # book a loss
  What to watch:
    {riskd} status --config {config}             # positions, daily P&L, locks, rules
    tail -f {VAR / 'state' / 'logs' / 'riskd.log'}
    {sim_cli} log --json --url {URL}            # every request riskd made to the broker
  Daily loss limit is -500: after it, every new fill is closed until 17:00 America/Chicago.
  Ctrl-C here stops riskd and the simulator.
""", flush=True)
    daemon = subprocess.Popen([sys.executable, "-m", "risk_actors.cli.admin", "start",
                               "--foreground", "--config", str(config)])
    try:
        return daemon.wait()
    except KeyboardInterrupt:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        return 0
    finally:
        if sim is not None:
            sim.terminate()
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()


if __name__ == "__main__":
    sys.exit(main())
