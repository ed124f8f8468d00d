"""Throughput: the highest quote rate at which riskd's enforcement p99 stays under 50 ms, per
account and in total, and what saturates first.

Same set-up and measurement as bench/latency.py (each account at its max_contracts limit,
rounds of one violating buy per account, latency on the simulator's clock), with the
simulator's fast quote stream (``/sim/quotes/stream``) on the 8 contracts every account is
subscribed to. For each account count, a step search over the stream's rate: 0, then doubling
from ``--start`` while no enforcement is missed, then ``--bisect`` bisection steps (geometric
midpoints) on each boundary (p99 < limit; no miss). Every step runs on a fresh simulator and a
fresh daemon (``--reuse``: one for all steps), since riskd's state grows with the day's fills.
A step passes when, over its ``--violations`` violations:

- p99 < ``--p99-ms`` (50) and no enforcement was missed (none within 2 s; a step stops after 3
  misses), and
- the stream reached riskd: the simulator emitted >= 90 % of the target (else the *simulator*
  is the limit, and the search stops) and dropped < 1 % of the quotes for slow sockets.

With ``market_data: per_account`` (and for the floor) every account's market socket receives
every quote, so the per-account event rate is the emitted quote rate (+ the violations/s) and
the total is emitted x accounts; with riskd's default shared feed one socket receives them and
each account gets at most one quote per contract per ``quote_interval_ms``. Per step the CPU of every riskd process (% of one core, each labelled: ``main``, the
daemon process; ``sdk`` = an actor process with sockets to the simulator, i.e. the broker
link that runs the SDK; ``actor`` = any other) and of the simulator is sampled, and the report
names what saturates first, from the first step that missed an enforcement (else the highest
rate searched): the busiest process if it is at >= 85 % of a core, else the simulator, else the
machine (all processes together >= 85 % of every core), else "no single process": a latency
limit (queueing, scheduling, rule timeouts), not CPU.

Not searched: the violation rate. The rounds are closed-loop (the next round starts after the
enforcements), so violations/s per account is what the target sustained, not an offered load.

    .venv/bin/python bench/throughput.py --quick     # 1 account, 20 violations/step, < 1 min
    .venv/bin/python bench/throughput.py             # 1 and 10 accounts, 200 violations/step
    .venv/bin/python bench/throughput.py --accounts 1 --target floor   # the floor, same search
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as h  # noqa: E402
from bench import latency  # noqa: E402
from tests.e2e.conftest import Simulator  # noqa: E402

RESULTS = latency.RESULTS
SAT_CORE = 85.0          # % of one core that counts as saturated


class ProcSampler:
    """CPU % (100 = one core) of each target process and of the simulator over one step, with
    a role per process (see the module docstring)."""

    def __init__(self, target, sim_proc: psutil.Process, sim_port: int) -> None:
        self.target, self.sim, self.port = target, sim_proc, sim_port
        self.procs = target.processes()
        main_pid = None
        if hasattr(target, "daemon"):
            try:
                main_pid = target.daemon.pidinfo().get("pid")
            except Exception:
                pass
        self.roles = {p.pid: self._role(p, main_pid) for p in self.procs}
        self.machine0 = psutil.cpu_times()
        for p in [*self.procs, sim_proc]:
            try:
                p.cpu_percent()
            except psutil.Error:
                pass

    def _role(self, p: psutil.Process, main_pid: int | None) -> str:
        if self.target.name == "floor":
            return "floor"
        if p.pid == main_pid:
            return "main"
        try:
            conns = p.net_connections("tcp") if hasattr(p, "net_connections") else p.connections("tcp")
        except psutil.Error:
            conns = []
        if any(c.raddr and c.raddr.port == self.port for c in conns):
            return "sdk"
        return "actor"

    def read(self) -> dict:
        per = []
        for p in self.procs:
            try:
                per.append({"pid": p.pid, "role": self.roles.get(p.pid, "?"),
                            "cpu": round(p.cpu_percent(), 1), "threads": p.num_threads()})
            except psutil.Error:
                pass
        per.sort(key=lambda r: -r["cpu"])
        try:
            sim = round(self.sim.cpu_percent(), 1)
        except psutil.Error:
            sim = 0.0
        by_role: dict[str, float] = {}
        for r in per:
            by_role[r["role"]] = round(by_role.get(r["role"], 0.0) + r["cpu"], 1)
        t0, t1 = self.machine0, psutil.cpu_times()
        total = sum(t1) - sum(t0)
        idle = (t1.idle - t0.idle) + (getattr(t1, "iowait", 0.0) - getattr(t0, "iowait", 0.0))
        machine = round(100.0 * (1 - idle / total), 1) if total > 0 else 0.0
        return {"cpu_total": round(sum(r["cpu"] for r in per), 1), "cpu_sim": sim,
                "cpu_top": per[:3], "cpu_by_role": by_role,
                # every core of the machine, every process (others' too): 100 = all cores busy
                "cpu_machine": machine}


def verdict(row: dict, p99_ms: float) -> str:
    """'' when the step passes, else why not."""
    why = []
    if row["rate_target"] and row["quotes_emitted_per_s"] < 0.9 * row["rate_target"]:
        why.append("simulator below 90 % of target")
    if row["missed"]:
        why.append(f"{row['missed']} missed")
    if not row["n"] or not row["p99"] < p99_ms:
        why.append(f"p99 {row['p99']:.0f} ms")
    if row["quotes_queued_per_s"] and row["quotes_dropped_per_s"] > 0.01 * (
            row["quotes_queued_per_s"] + row["quotes_dropped_per_s"]):
        why.append("quotes dropped (socket backlog)")
    return ", ".join(why)


def saturates(row: dict | None, nproc: int) -> str:
    """What saturates first, from the CPU figures of the first step where enforcement broke
    down (a miss, or the stream not delivered), else of the highest rate searched."""
    if row is None:
        return "nothing measured"
    return f"at {row['rate_target']:.0f} quotes/s: " + _saturates(row, nproc)


def _saturates(row: dict, nproc: int) -> str:
    top = row["cpu_top"][0] if row["cpu_top"] else None
    if "simulator below" in row["why"]:
        return f"the simulator (one process, {row['cpu_sim']:.0f} % of a core) cannot emit the target"
    if top and top["cpu"] >= SAT_CORE:
        return f"riskd's {top['role']} process (pid {top['pid']}, {top['threads']} threads) at {top['cpu']:.0f} % of a core"
    if row["cpu_sim"] >= SAT_CORE:
        return f"the simulator at {row['cpu_sim']:.0f} % of a core"
    if row["cpu_total"] + row["cpu_sim"] >= SAT_CORE * nproc or row.get("cpu_machine", 0) >= SAT_CORE:
        other = max(0.0, row.get("cpu_machine", 0) * nproc - row["cpu_total"] - row["cpu_sim"])
        return (f"the machine: {row.get('cpu_machine', 0):.0f} % of {nproc} cores busy (in % of one core: "
                f"target {row['cpu_total']:.0f}, simulator {row['cpu_sim']:.0f}, other processes "
                f"{other:.0f})")
    hot = f"{top['role']} {top['cpu']:.0f} %" if top else "-"
    return (f"no single process at a full core (busiest: {hot}; simulator {row['cpu_sim']:.0f} %): "
            f"a latency limit (queueing, scheduling, rule timeouts), not CPU")


def boundary(steps: list[dict], key: str) -> tuple[dict | None, dict | None]:
    """(highest step below which every step passed ``key``, the first step that failed it),
    by rate: a noisy pass above a failure does not count."""
    best = None
    for r in sorted(steps, key=lambda r: r["rate_target"]):
        if not r[key]:
            return best, r
        best = r
    return best, None


def step(sim: Simulator, target, ids: list[int], rate: float, violations: int, p99_ms: float,
         sim_proc: psutil.Process, sim_port: int) -> dict:
    stream = h.QuoteStream(sim, rate).start() if rate else None
    s0 = stream.snapshot() if stream else None
    cpu = ProcSampler(target, sim_proc, sim_port)
    try:
        res = h.run_rounds(sim, ids, violations, max_missed=3)
    finally:
        cpu_row = cpu.read()
        s1 = stream.snapshot() if stream else None
        if stream:
            stream.stop()
    emitted, delivered = h.quote_rate(sim, res["since"], res["phase_t0"], res["phase_t1"])
    sr = h.stream_rates(s0, s1)
    span = max(res["phase_t1"] - res["phase_t0"], 1e-9)
    row = {"target": target.name, "accounts": len(ids), "rate_target": rate,
           "quotes_emitted_per_s": round(emitted + sr["emitted"]),
           "quotes_delivered_per_s": round(delivered + sr["written"]),
           "quotes_queued_per_s": round(sr["queued"]), "quotes_dropped_per_s": round(sr["dropped"]),
           "violations_per_s_per_account": round(len(res["latencies"]) / span / len(ids), 2),
           "missed": res["missed"], **h.summary(res["latencies"]), **cpu_row}
    row["why"] = verdict(row, p99_ms)
    row["pass"] = not row["why"]
    row["ok"] = not [w for w in row["why"].split(", ") if w and not w.startswith("p99")]
    return row


def fmt(r: dict) -> str:
    top = r["cpu_top"][0] if r["cpu_top"] else {"role": "-", "cpu": 0}
    return (f"{r['target']:5} {r['accounts']:>3} {r['rate_target']:>7.0f} {r['quotes_emitted_per_s']:>8} "
            f"{r['quotes_delivered_per_s']:>9} {r['quotes_dropped_per_s']:>7} "
            f"{r['violations_per_s_per_account']:>6.2f} {r['n']:>4} {r['missed']:>3} "
            f"{r['p50']:>7.1f} {r['p99']:>7.1f} {r['cpu_total']:>6.0f} {top['role']:>5} {top['cpu']:>4.0f} "
            f"{r['cpu_sim']:>5.0f} {r.get('cpu_machine', 0):>5.0f}  {'pass' if r['pass'] else ('p99 only: ' if r['ok'] else 'FAIL: ') + r['why']}")


HEADER = (f"{'tgt':5} {'acc':>3} {'q/s tgt':>7} {'emitted':>8} {'delivered':>9} {'drop/s':>7} "
          f"{'viol/s':>6} {'n':>4} {'mis':>3} {'p50 ms':>7} {'p99 ms':>7} {'cpu%':>6} {'hot':>5} {'hot%':>4} "
          f"{'sim%':>5} {'mach%':>5}  verdict")


class Bed:
    """A simulator with ``n`` accounts at the limit and the target connected and warmed up."""

    def __init__(self, target_cls, n: int) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"riskd-bench-tp-{target_cls.name}-"))
        self.sim = Simulator(self.tmp)
        self.target = None
        try:
            self.ids, cids = h.setup_accounts(self.sim, n)
            h.open_positions(self.sim, self.ids)
            self.target = target_cls(self.tmp, self.sim, self.ids, cids)
            self.target.wait_ready()
            time.sleep(1.0)
            h.run_rounds(self.sim, self.ids, n)  # warm-up, not counted
        except BaseException:
            self.close()
            raise
        self.sim_proc = psutil.Process(self.sim.proc.pid)
        self.sim_port = int(self.sim.url.rsplit(":", 1)[1])

    def close(self) -> None:
        if self.target is not None:
            self.target.stop()
        self.sim.stop()


def search(target_cls, n_accounts: int, args, log=print) -> dict:
    """Step search; by default every step gets a fresh simulator and a fresh riskd: each
    violation adds two fills to the account's day, and riskd's state (shipped in every
    Evaluate) grows with them, so a daemon reused across steps would make later steps slower;
    a fresh one also starts with empty socket buffers. ``--reuse`` keeps one for all steps."""
    steps: list[dict] = []
    shared = Bed(target_cls, n_accounts) if args.reuse else None
    try:
        def run(rate: float) -> dict:
            bed = shared or Bed(target_cls, n_accounts)
            try:
                row = step(bed.sim, bed.target, bed.ids, rate, args.violations, args.p99_ms,
                           bed.sim_proc, bed.sim_port)
            finally:
                if bed is not shared:
                    bed.close()
            steps.append(row)
            log(fmt(row))
            if shared:
                # A client that fell behind still has quotes in its socket buffers (loopback
                # TCP buffers grow to tens of MB): let it drain before the next step.
                time.sleep(0.5 if row["pass"] else args.drain_s)
            return row

        # ladder: 0, then doubling while enforcement holds (no miss, stream delivered)
        run(0.0)
        rate = args.start
        while steps[-1]["ok"] and "simulator below" not in steps[-1]["why"] and rate <= args.max_rate:
            run(rate)
            rate *= 2
        # bisection on each boundary: p99 < limit ("pass"), then no miss ("ok")
        for key in ("pass", "ok"):
            for _ in range(args.bisect):
                lo_row, hi_row = boundary(steps, key)
                if lo_row is None or hi_row is None or "simulator below" in hi_row["why"]:
                    break
                lo, hi = lo_row["rate_target"], hi_row["rate_target"]
                mid = round(math.sqrt(lo * hi), -1) if lo else round(hi / 2, -1)
                if not lo < mid < hi or mid in {r["rate_target"] for r in steps}:
                    break
                run(mid)
    finally:
        if shared is not None:
            shared.close()
    nproc = psutil.cpu_count() or 1
    best, fail = boundary(steps, "pass")
    best_ok, fail_ok = boundary(steps, "ok")
    case = {"target": target_cls.name, "accounts": n_accounts, "steps": steps, "best": best,
            "first_fail": fail, "best_no_miss": best_ok, "first_miss": fail_ok,
            "saturates": saturates(fail_ok or max(steps, key=lambda r: r["rate_target"]), nproc)}
    who = f"{target_cls.name}, {n_accounts} account(s)"
    if best is None:
        log(f"  -> {who}: p99 >= {args.p99_ms:.0f} ms already without quotes ({fail['why']})")
    else:
        log(f"  -> {who}: p99 < {args.p99_ms:.0f} ms up to {best['quotes_emitted_per_s']} quotes/s per account "
            f"({best['quotes_delivered_per_s']} delivered/s in total, {best['violations_per_s_per_account']} "
            f"violations/s per account, p99 {best['p99']:.1f} ms)"
            + (f"; fails at {fail['rate_target']:.0f} ({fail['why']})" if fail else ""))
    if best_ok is not None:
        log(f"  -> {who}: no missed enforcement up to {best_ok['quotes_emitted_per_s']} quotes/s per account"
            + (f"; misses at {fail_ok['rate_target']:.0f} ({fail_ok['why']})" if fail_ok else
               " (the highest rate searched)"))
    log(f"     saturates first: {case['saturates']}")
    return case


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 account, 20 violations per step, rates 0/500/1,000/2,000/4,000, 1 bisection")
    ap.add_argument("--accounts", default="1,10")
    ap.add_argument("--violations", type=int, default=200, help="per step")
    ap.add_argument("--p99-ms", type=float, default=50.0)
    ap.add_argument("--start", type=float, default=250.0, help="first non-zero quote rate")
    ap.add_argument("--max-rate", type=float, default=64000.0)
    ap.add_argument("--bisect", type=int, default=3)
    ap.add_argument("--reuse", action="store_true",
                    help="one simulator and daemon for every step (faster; later steps carry the "
                         "earlier steps' fills)")
    ap.add_argument("--drain-s", type=float, default=5.0, help="--reuse: pause after a failing step")
    ap.add_argument("--target", choices=("riskd", "floor"), default="riskd")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.accounts, args.violations, args.start, args.max_rate, args.bisect = "1", 20, 500.0, 4000.0, 1
        args.drain_s = 2.0
    accounts = [int(x) for x in args.accounts.split(",") if x]
    target_cls = latency.RiskdTarget if args.target == "riskd" else latency.FloorTarget
    print(f"throughput search ({args.target}): highest quote rate with enforcement p99 < "
          f"{args.p99_ms:.0f} ms and nothing missed; {args.violations} violations per step")
    print(HEADER, flush=True)
    cases = [search(target_cls, n, args, log=lambda s: print(s, flush=True)) for n in accounts]
    name = "throughput" + ("" if args.target == "riskd" else "-floor") + ("-quick" if args.quick else "")
    out = Path(args.out) if args.out else RESULTS / f"{name}.json"
    h.save_results(out, {"machine": h.machine(), "rev": h.git_rev(), "argv": sys.argv[1:],
                         "p99_ms": args.p99_ms, "violations": args.violations, "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())
