"""Enforcement latency of riskd on the simulator, judged by the simulator's own record.

One account at its max_contracts limit (5); N times the trader buys 1 more MNQ and riskd must
send ``Position/partialCloseContract``. Latency = simulator-monotonic time of riskd's REST call
minus that of the trader's order (control call), so it includes: the fill, the SignalR push, the
SDK, the GatewayActor, the AccountActor pipeline and rule actor, the EnforcerActor and the REST
call. Prints p50 / p99 / max in ms. The client request budget is lifted for the run (see below).

    .venv/bin/python bench/enforcement_latency.py [--n 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Daemon, Simulator, wait_for, write_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="violations to measure (default 200)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="riskd-bench-"))
    sim = Simulator(tmp)
    daemon = None
    try:
        acc = sim.control.create_account("E2E", balance=50000.0)
        sim.control.set_price("MNQ", 21000)
        # Hundreds of violations a minute exceed the gateway's 200 requests / 60 s (each costs a
        # close and a 2-call read-back): lift the client budget, the simulator does not limit.
        config = write_config(tmp, sim.url, acc["id"], {"max_contracts": {"limit": 5}},
                              extra={"broker": {"requests_per_minute": 100000}})
        daemon = Daemon(config).start()
        daemon.wait_connected(acc["id"])
        sim.control.place_order(acc["id"], "MNQ", "market", "buy", 5)
        time.sleep(0.5)
        latencies, riskd_share = [], []
        for i in range(args.n):
            since = sim.control.log()["next"]
            sim.control.place_order(acc["id"], "MNQ", "market", "buy", 1)
            wait_for(lambda: sim.position(acc["id"], "MNQ") == 5, 5, f"reduce #{i}", 0.002)
            order = sim.requests("/sim/orders", since)[0]
            reduce = sim.requests("/api/Position/partialCloseContract", since)[0]
            event = next(r for r in sim.control.log(since=since, kind="event")["records"]
                         if r.get("target") == "GatewayUserPosition")
            latencies.append((reduce["t"] - order["t"]) * 1000)
            riskd_share.append((reduce["t"] - event["t"]) * 1000)
            time.sleep(0.02)  # let riskd's verification read-back finish
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        print(f"enforcement latency, trader order -> riskd partialCloseContract "
              f"(n={len(latencies)}, 1 account, no quote stream):")
        print(f"  p50 {p(0.50):.2f} ms   p99 {p(0.99):.2f} ms   max {latencies[-1]:.2f} ms   "
              f"mean {statistics.mean(latencies):.2f} ms")
        latencies = sorted(riskd_share)
        print("of which riskd (simulator emits GatewayUserPosition -> riskd's REST call arrives):")
        print(f"  p50 {p(0.50):.2f} ms   p99 {p(0.99):.2f} ms   max {latencies[-1]:.2f} ms   "
              f"mean {statistics.mean(latencies):.2f} ms")
        return 0
    finally:
        if daemon is not None:
            daemon.stop()
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
