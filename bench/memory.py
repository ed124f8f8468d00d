"""Memory of the riskd daemon: total RSS and USS of all its processes (the daemon's own process
group and the thespian admin's group(s) recorded in the pidfile as ``actor_pgids``), for 1, 10
and 20 accounts with every rule enabled in etc/riskd.yaml as shipped (defaults), on the
simulator. Each account is flat with no orders (an idle, connected account). Also the cost per
added account.

    .venv/bin/python bench/memory.py [--accounts 1,10,20] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as h  # noqa: E402
from bench.latency import RiskdTarget  # noqa: E402
from tests.e2e.conftest import Simulator  # noqa: E402


def daemon_processes(pidinfo: dict) -> list[psutil.Process]:
    groups = {g for g in [pidinfo.get("pgid"), *pidinfo.get("actor_pgids", [])] if g}
    procs = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) in groups or p.pid == pidinfo.get("pid"):
                procs.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return procs


def measure(n: int, settle: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="riskd-bench-mem-"))
    sim = Simulator(tmp)
    target = None
    try:
        ids, cids = h.setup_accounts(sim, n)
        t0 = time.monotonic()

        class AllRules(RiskdTarget):
            def __init__(self, tmp, sim, ids, cids):
                config = h.write_multi_config(tmp, sim.url, ids, h.default_rules())
                from tests.e2e.conftest import Daemon
                self.daemon = Daemon(config).start()
                self.ids = ids

        target = AllRules(tmp, sim, ids, cids)
        target.wait_ready(timeout=300)
        ready_s = time.monotonic() - t0
        time.sleep(settle)
        procs = daemon_processes(target.daemon.pidinfo())
        rss = uss = 0
        for p in procs:
            try:
                mi = p.memory_full_info()
                rss += mi.rss
                uss += mi.uss
            except psutil.Error:
                pass
        return {"accounts": n, "processes": len(procs), "rss_mb": rss / 2**20,
                "uss_mb": uss / 2**20, "ready_s": ready_s}
    finally:
        if target is not None:
            target.stop()
        sim.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", default="1,10,20")
    ap.add_argument("--quick", action="store_true", help="1 and 2 accounts")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after all connected")
    args = ap.parse_args()
    counts = [1, 2] if args.quick else [int(x) for x in args.accounts.split(",")]
    rules = [k for k, v in h.default_rules().items() if v.get("enabled", True)]
    print(f"daemon memory, all default-enabled rules ({len(rules)}: {', '.join(rules)})")
    print(f"{'accounts':>8} {'procs':>5} {'RSS MB':>8} {'USS MB':>8} {'ready s':>7}")
    rows = []
    for n in counts:
        r = measure(n, args.settle)
        rows.append(r)
        print(f"{r['accounts']:>8} {r['processes']:>5} {r['rss_mb']:>8.0f} {r['uss_mb']:>8.0f} "
              f"{r['ready_s']:>7.1f}", flush=True)
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        d = b["accounts"] - a["accounts"]
        per = {"rss_mb": (b["rss_mb"] - a["rss_mb"]) / d, "uss_mb": (b["uss_mb"] - a["uss_mb"]) / d,
               "processes": (b["processes"] - a["processes"]) / d}
        print(f"per added account: {per['processes']:.1f} processes, RSS {per['rss_mb']:.0f} MB, "
              f"USS {per['uss_mb']:.0f} MB")
    else:
        per = None
    h.save_results(h.RESULTS / f"memory{'-quick' if args.quick else ''}.json",
                   {"machine": h.machine(), "rules": rules, "rows": rows, "per_account": per})
    return 0


if __name__ == "__main__":
    sys.exit(main())
