"""CPU per enforced violation, per process: where riskd's work goes (and the simulator's).

Same set-up as bench/latency.py (each account at max_contracts 5, rounds of one violating buy
per account, optional background quote stream). Prints latency p50/p99 over the run and, for
every process of the daemon, its user+system CPU time during the rounds divided by the number
of violations, with its thread count (the account processes and the market feed run the SDK's
thread: 6 threads). The sum over processes is what one violation costs the machine; on a
2-core machine that bounds how many violations a second riskd can undo in a burst.

    .venv/bin/python bench/cpu_per_violation.py                       # 1 account, no quotes
    .venv/bin/python bench/cpu_per_violation.py --accounts 10 --violations 1000
    .venv/bin/python bench/cpu_per_violation.py --rate 2000 --daemon market_data=per_account
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as h  # noqa: E402
from bench.latency import RiskdTarget, apply_daemon_settings  # noqa: E402
from tests.e2e.conftest import Simulator  # noqa: E402


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.0, help="background quotes/s (0 = none)")
    ap.add_argument("--violations", type=int, default=300)
    ap.add_argument("--daemon", action="append", default=[], metavar="KEY=VALUE",
                    help="riskd daemon setting for this run (repeatable)")
    args = ap.parse_args(argv)
    apply_daemon_settings(ap, args.daemon)
    tmp = Path(tempfile.mkdtemp(prefix="riskd-bench-cpu-"))
    sim = Simulator(tmp)
    target = None
    try:
        ids, cids = h.setup_accounts(sim, args.accounts)
        h.open_positions(sim, ids)
        target = RiskdTarget(tmp, sim, ids, cids)
        target.wait_ready()
        time.sleep(1.0)
        h.run_rounds(sim, ids, args.accounts)  # warm-up, not counted
        procs = target.processes()
        stream = h.QuoteStream(sim, args.rate).start() if args.rate else None
        before = {}
        for p in procs:
            try:
                before[p.pid] = _cpu(p)
            except psutil.Error:
                pass
        sim_proc = psutil.Process(sim.proc.pid)
        sim0 = _cpu(sim_proc)
        t0 = time.monotonic()
        res = h.run_rounds(sim, ids, args.violations)
        wall = time.monotonic() - t0
        if stream:
            stream.stop()
        lat = res["latencies"]
        n = max(len(lat), 1)
        print(f"{args.accounts} account(s), {args.rate:.0f} quotes/s, settings "
              f"{RiskdTarget.daemon_settings or 'defaults'}: {len(lat)} violations "
              f"({res['missed']} missed) in {wall:.1f} s; latency p50 {h.pct(lat, 0.5):.1f} ms, "
              f"p99 {h.pct(lat, 0.99):.1f} ms, max {max(lat, default=float('nan')):.1f} ms")
        rows, total = [], 0.0
        for p in procs:
            try:
                used = _cpu(p) - before[p.pid]
                rows.append((used, p.pid, p.num_threads()))
            except (psutil.Error, KeyError):
                continue
            total += used
        for used, pid, threads in sorted(rows, reverse=True):
            if used * 1000 / n >= 0.01:
                print(f"  pid {pid:>7}  {threads} thread(s)  {used * 1000 / n:7.2f} ms/violation")
        print(f"  riskd total {total * 1000 / n:.2f} ms/violation "
              f"({total / wall * 100:.0f} % of a core); simulator "
              f"{(_cpu(sim_proc) - sim0) * 1000 / n:.2f} ms/violation")
    finally:
        if target is not None:
            target.stop()
        sim.stop()


if __name__ == "__main__":
    main()
