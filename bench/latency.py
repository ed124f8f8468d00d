"""Enforcement latency of riskd on the simulator, judged by the simulator's own log.

Each account sits at its max_contracts limit (long 5 MNQ; only max_contracts enabled, limit 5:
the other default rules would fire on the repeated buys: trade frequency, no stop loss). Every
round the trader buys 1 more MNQ on every account (one control call after another), and riskd
must send ``Position/partialCloseContract`` for that account. Latency = simulator-monotonic
``t`` of that REST call minus ``t`` of the violating ``GatewayUserPosition`` event as the
simulator emitted it: SignalR push, SDK, GatewayActor, AccountActor pipeline, rule actor,
EnforcerActor, SDK, REST. p50 / p99 / max per (accounts, quote rate); a violation without the
call within 2 s is counted as missed, and a
case stops early (marked saturated) after 10 misses.

Background quotes: the simulator's fast quote stream (``/sim/quotes/stream``,
gateway_sim/quote_stream.py) over 8 contracts every account is subscribed to (see
_harness.QuoteStream). The rates printed are measured over the phase: "emitted" = quotes
generated per second (plus the engine's few own quotes from the log), "delivered" = quotes the
simulator's socket writers handed to the subscribed sockets per second (every account's socket
counts: 10 accounts x 2,000 emitted = up to 20,000 delivered), "drop/s" = quotes not sent because
a socket's backlog exceeded 1 s of stream (the client did not keep up).

    .venv/bin/python bench/latency.py --quick        # 1 account, 0 and 200 q/s, 20 violations
    .venv/bin/python bench/latency.py                # 1/10/20 accounts x 0/2,000/20,000 q/s
    .venv/bin/python bench/latency.py --accounts 10 --rates 0,2000 --violations 300
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as h  # noqa: E402
from tests.e2e.conftest import Daemon, Simulator, wait_for  # noqa: E402

RESULTS = h.RESULTS


class RiskdTarget:
    name = "riskd"
    daemon_settings: dict = {}  # --daemon KEY=VALUE: riskd's daemon section (before/after runs)

    def __init__(self, tmp: Path, sim: Simulator, ids: list[int], cids: list[str]) -> None:
        config = h.write_multi_config(tmp, sim.url, ids, {"max_contracts": {"limit": h.LIMIT}},
                                      extra={"daemon": dict(self.daemon_settings)})
        self.daemon = Daemon(config).start()
        self.ids = ids

    def wait_ready(self, timeout: float = 120) -> None:
        def all_connected():
            st = self.daemon.status()
            if not st:
                return False
            up = {a["account_id"] for a in st["accounts"] if a.get("connected")}
            return set(self.ids) <= up
        wait_for(all_connected, timeout, f"riskd connected to {len(self.ids)} accounts\n"
                 f"{self.daemon.output()}", interval=0.5)

    def processes(self) -> list:
        from bench.memory import daemon_processes
        return daemon_processes(self.daemon.pidinfo())

    def stop(self) -> None:
        self.daemon.stop()


class FloorTarget:
    name = "floor"

    def __init__(self, tmp: Path, sim: Simulator, ids: list[int], cids: list[str]) -> None:
        cmd = [sys.executable, str(h.ROOT / "bench" / "_floor_client.py"), "--url", sim.url,
               "--limit", str(h.LIMIT), "--quotes", ",".join(cids)]
        for i, a in enumerate(ids):
            cmd += ["--account", f"{a}:BENCH-{i:02d}"]
        self.err = open(tmp / "floor.err", "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     start_new_session=True)
        self.tmp = tmp

    def processes(self) -> list:
        return [psutil.Process(self.proc.pid)]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"floor client not ready: {(self.tmp / 'floor.err').read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def measure(target_cls, n_accounts: int, rates: list[float], violations: int,
            log=print) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix=f"riskd-bench-{target_cls.name}-"))
    sim = Simulator(tmp)
    target = None
    rows = []
    try:
        ids, cids = h.setup_accounts(sim, n_accounts)
        h.open_positions(sim, ids)
        started = time.monotonic()
        target = target_cls(tmp, sim, ids, cids)
        target.wait_ready()
        log(f"  {target_cls.name}: {n_accounts} account(s) ready in "
            f"{time.monotonic() - started:.1f} s")
        time.sleep(1.0)  # reconciliation, quote subscriptions
        h.run_rounds(sim, ids, n_accounts)  # warm-up round, not counted
        procs = target.processes()
        sim_proc = psutil.Process(sim.proc.pid)
        for rate in rates:
            stream = h.QuoteStream(sim, rate).start() if rate else None
            s0 = stream.snapshot() if stream else None
            cpu = _CpuSampler(procs, sim_proc)
            try:
                res = h.run_rounds(sim, ids, violations)
            finally:
                cpu_row = cpu.read()
                s1 = stream.snapshot() if stream else None
                if stream:
                    stream.stop()
            # over the whole phase (the stream runs throughout it, misses included)
            emitted, delivered = h.quote_rate(sim, res["since"], res["phase_t0"], res["phase_t1"])
            sr = h.stream_rates(s0, s1)
            emitted += sr["emitted"]
            delivered += sr["written"]
            row = {"target": target_cls.name, "accounts": n_accounts, "rate_target": rate,
                   "quotes_emitted_per_s": round(emitted), "quotes_delivered_per_s": round(delivered),
                   "quotes_queued_per_s": round(sr["queued"]), "quotes_dropped_per_s": round(sr["dropped"]),
                   "stream_late_ticks": sr["late_ticks"], "stream_max_lag_ms": sr["max_lag_ms"],
                   "violations_per_s": round(len(res["latencies"]) / max(res["phase_t1"] - res["phase_t0"], 1e-9), 1),
                   "missed": res["missed"], "saturated": res["saturated"], **h.summary(res["latencies"]), **cpu_row,
                   # drift: every violation adds two fills to the day's state, which travels
                   # in every Evaluate; compare the first and the last 50 violations
                   "p50_first50": h.pct(res["latencies"][:50], 0.5),
                   "p50_last50": h.pct(res["latencies"][-50:], 0.5)}
            rows.append(row)
            log(fmt_row(row))
            time.sleep(0.5)
    finally:
        if target is not None:
            target.stop()
        sim.stop()
    return rows


class _CpuSampler:
    """CPU % of each target process and of the simulator over one phase (100 = one core)."""

    def __init__(self, procs, sim_proc) -> None:
        self.procs, self.sim = procs, sim_proc
        for p in [*procs, sim_proc]:
            try:
                p.cpu_percent()
            except psutil.Error:
                pass

    def read(self) -> dict:
        per = []
        for p in self.procs:
            try:
                per.append((p.cpu_percent(), p.num_threads()))
            except psutil.Error:
                pass
        hot = max(per, default=(0.0, 0))
        try:
            sim = self.sim.cpu_percent()
        except psutil.Error:
            sim = 0.0
        return {"cpu_total": round(sum(c for c, _ in per), 1), "cpu_hot": round(hot[0], 1),
                "cpu_hot_threads": hot[1], "cpu_sim": round(sim, 1)}


HEADER = (f"{'target':6} {'acc':>3} {'q/s target':>10} {'q/s emitted':>11} {'q/s delivered':>13} "
          f"{'n':>5} {'missed':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'cpu tot%':>8} {'hot%':>5} {'sim%':>5} {'drop/s':>7}")


def fmt_row(r: dict) -> str:
    return (f"{r['target']:6} {r['accounts']:>3} {r['rate_target']:>10.0f} "
            f"{r['quotes_emitted_per_s']:>11} {r['quotes_delivered_per_s']:>13} {r['n']:>5} "
            f"{r['missed']:>6} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.2f} "
            f"{r['cpu_total']:>8.0f} {r['cpu_hot']:>5.0f} {r['cpu_sim']:>5.0f} "
            f"{r.get('quotes_dropped_per_s', 0):>7}")


def apply_daemon_settings(ap: argparse.ArgumentParser, items: list[str]) -> None:
    """``--daemon KEY=VALUE`` items into RiskdTarget.daemon_settings (digits become ints)."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--daemon {item!r}: expected KEY=VALUE")
        RiskdTarget.daemon_settings[key] = int(value) if value.isdigit() else value


def parse_args(argv=None, quick_violations=20):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 account, 0 and 200 q/s, 20 violations")
    ap.add_argument("--accounts", default="1,10,20", help="comma list (default 1,10,20)")
    ap.add_argument("--rates", default="0,2000,20000", help="quotes/s targets, 0 = no stream")
    ap.add_argument("--violations", type=int, default=1000, help="per (accounts, rate) case")
    ap.add_argument("--out", default=None, help="JSON results file")
    ap.add_argument("--riskd", default=None,
                    help="floor.py: riskd results to compare with (default var/bench/riskd[-quick].json)")
    ap.add_argument("--daemon", action="append", default=[], metavar="KEY=VALUE",
                    help="riskd daemon setting for this run, e.g. rule_placement=actor or "
                         "quote_interval_ms=0 (repeatable; compares an optimisation off/on)")
    args = ap.parse_args(argv)
    apply_daemon_settings(ap, args.daemon)
    if args.quick:
        args.accounts, args.rates, args.violations = "1", "0,200", quick_violations
    args.accounts = [int(x) for x in args.accounts.split(",") if x]
    args.rates = [float(x) for x in args.rates.split(",") if x]
    return args


def run(target_cls, argv=None) -> list[dict]:
    args = parse_args(argv)
    print(f"enforcement latency, violating GatewayUserPosition emitted -> "
          f"Position/partialCloseContract received (simulator clock), {target_cls.name}:")
    print(HEADER, flush=True)
    rows = []
    for n in args.accounts:
        rows += measure(target_cls, n, args.rates, args.violations,
                        log=lambda s: print(s, flush=True))
    out = Path(args.out) if args.out else RESULTS / (
        f"{target_cls.name}{'-quick' if args.quick else ''}.json")
    print(f"total missed enforcements: {sum(r['missed'] for r in rows)}")
    h.save_results(out, {"machine": h.machine(), "rev": h.git_rev(), "argv": sys.argv[1:],
                         "rows": rows})
    return rows


if __name__ == "__main__":
    rows = run(RiskdTarget)
    sys.exit(1 if any(r["missed"] for r in rows) else 0)
