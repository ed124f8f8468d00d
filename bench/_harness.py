"""Shared pieces of the benchmarks: N simulator accounts, a multi-account riskd config, a
background quote stream driven through the control API (price paths), the violation rounds and
the percentile arithmetic. Everything is judged on the simulator's clock (its log's ``t``).

Not a test module: the bench scripts import it. Core code (risk_actors/, rules/, gateway_sim/)
is used as-is.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Simulator, free_port  # noqa: E402

LIMIT = 5                      # max_contracts limit each account sits at
VIOLATION_CONTRACT = "MNQ"
# Contracts that carry the background quote stream. riskd (and the floor) subscribe quotes
# only for contracts held or with a working order, so every account gets a far-away resting
# limit order in each of the others: quotes then reach every account's market hub socket.
QUOTE_CONTRACTS = {"MNQ": (21000.0, 0.25), "MES": (6000.0, 0.25), "ES": (6000.0, 0.25),
                   "NQ": (21000.0, 0.25), "RTY": (2200.0, 0.1), "M2K": (2200.0, 0.1),
                   "CL": (70.0, 0.01), "GC": (2600.0, 0.1)}


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 0.50), "p99": pct(values, 0.99),
            "max": max(values) if values else float("nan")}


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release()}


def setup_accounts(sim: Simulator, n: int) -> tuple[list[int], list[str]]:
    """``n`` fresh accounts (ids) and the gateway ids of the quote contracts (prices set)."""
    cids = [sim.control.set_price(sym, price)["contractId"]
            for sym, (price, _tick) in QUOTE_CONTRACTS.items()]
    ids = []
    for i in range(n):
        acc = sim.control.create_account(f"BENCH-{i:02d}", balance=1_000_000.0)
        ids.append(acc["id"])
    return ids, cids


def open_positions(sim: Simulator, ids: list[int], quotes: bool = True) -> None:
    """Each account long ``LIMIT`` MNQ (at the max_contracts limit), plus (``quotes``) a
    resting far-away buy limit in every other quote contract."""
    for a in ids:
        sim.control.place_order(a, VIOLATION_CONTRACT, "market", "buy", LIMIT)
        if quotes:
            for sym, (price, tick) in QUOTE_CONTRACTS.items():
                if sym != VIOLATION_CONTRACT:
                    far = round(round(price * 0.5 / tick) * tick, 6)
                    sim.control.place_order(a, sym, "limit", "buy", 1, limit_price=far)


def write_multi_config(tmp: Path, sim_url: str, ids: list[int], rules: dict,
                       extra: dict | None = None) -> Path:
    config: dict[str, Any] = {
        "version": 2,
        "broker": {"api_url": f"{sim_url}/api", "user_hub_url": f"{sim_url}/hubs/user",
                   "market_hub_url": f"{sim_url}/hubs/market", "username": "bench",
                   "api_key": "bench-key",
                   # hundreds of enforcements a minute (each a close and a 2-call read-back)
                   # exceed the gateway's 200/60 s; the simulator does not limit, so lift it.
                   "requests_per_minute": 100000},
        "accounts": [{"id": a, "name": f"BENCH-{i:02d}", "enabled": True}
                     for i, a in enumerate(ids)],
        "rules": rules,
        "timers": {"daily_reset": {"time": "17:00", "timezone": "America/Chicago"}},
        "daemon": {"admin_port": free_port(), "state_dir": str(tmp / "state"),
                   "rule_timeout_ms": 100},
    }
    for key, value in (extra or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp / "riskd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def default_rules() -> dict:
    """The rules section of etc/riskd.yaml as shipped (enabled ones as they are)."""
    doc = yaml.safe_load((ROOT / "etc" / "riskd.yaml").read_text())
    return doc["rules"]


class QuoteStream:
    """Background quotes at about ``rate`` emitted quotes/s in total over QUOTE_CONTRACTS,
    played by the simulator itself (``/sim/prices/path``, one path per contract, prices
    wiggling +-1 tick around the base) and re-armed in chunks from a thread.

    The simulator plays a path with ``asyncio.sleep(interval)`` and takes a whole-ms interval,
    so the per-contract rate tops out near 1,000/s (8 contracts: ~8,000/s ideal, less in
    practice); the achieved rate is measured from the simulator's log, not assumed.
    """

    CHUNK_S = 5.0

    def __init__(self, sim: Simulator, rate: float) -> None:
        self.sim = sim
        self.rate = rate
        self.contracts = list(QUOTE_CONTRACTS)
        self.interval_ms = max(1, round(len(self.contracts) * 1000 / rate))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="quote-stream")

    def start(self) -> "QuoteStream":
        self._thread.start()
        time.sleep(0.5)
        return self

    def _path(self, sym: str) -> list[float]:
        price, tick = QUOTE_CONTRACTS[sym]
        steps = int(self.CHUNK_S * 1000 / self.interval_ms) + 50
        wiggle = (0, 1, 0, -1)
        return [round(price + wiggle[i % 4] * tick, 6) for i in range(steps)]

    def _run(self) -> None:
        paths = {s: self._path(s) for s in self.contracts}
        while not self._stop.is_set():
            for sym in self.contracts:
                try:
                    self.sim.control.price_path(sym, paths[sym], self.interval_ms)
                except Exception:  # the simulator is going away
                    return
            self._stop.wait(self.CHUNK_S - 0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sym, (price, _tick) in QUOTE_CONTRACTS.items():
            try:  # a one-price path cancels the one still playing
                self.sim.control.price_path(sym, [price], 1000)
            except Exception:
                pass


def quote_rate(sim: Simulator, since: int, t0: float, t1: float) -> tuple[float, float]:
    """(emitted, delivered) quotes/s between simulator times t0 and t1, from the log
    (``/sim/log`` returns every record since the cursor in one answer)."""
    emitted = delivered = 0
    for r in sim.control.log(since=since, kind="event")["records"]:
        if r.get("target") == "GatewayQuote" and not r.get("snapshot") and t0 <= r["t"] <= t1:
            emitted += 1
            delivered += r.get("delivered", 0)
    span = max(t1 - t0, 1e-9)
    return emitted / span, delivered / span


def run_rounds(sim: Simulator, ids: list[int], violations: int,
               timeout_s: float = 2.0, settle_s: float = 0.03, max_missed: int = 10,
               on_round: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Rounds of one violation per account (the trader buys 1 more MNQ on every account, one
    control call after another) until ``violations`` were measured. Latency per violation =
    simulator's ``t`` of riskd's ``Position/partialCloseContract`` for that account minus the
    ``t`` of the first ``GatewayUserPosition`` event of that account after the order (the
    violating event as emitted). A violation with no call within ``timeout_s`` is *missed*
    (the position is then put back by the control API so the next round starts at the limit).
    After ``max_missed`` misses the phase stops early and is reported as saturated.
    """
    latencies: list[float] = []
    missed = 0
    t_first = t_last = None
    start_n = sim.control.log(kind="mark")["next"]
    phase_t0 = sim.control.clock()["monotonic"]
    rounds = 0
    while len(latencies) + missed < violations and missed < max_missed:
        rounds += 1
        since = sim.control.log(kind="mark")["next"]
        for a in ids:
            sim.control.place_order(a, VIOLATION_CONTRACT, "market", "buy", 1)
        deadline = time.monotonic() + timeout_s
        calls: dict[int, dict] = {}
        while time.monotonic() < deadline:
            for r in sim.control.log(since=since, kind="request")["records"]:
                if r.get("path") == "/api/Position/partialCloseContract":
                    calls.setdefault(r.get("accountId"), r)
            if len(calls) >= len(ids):
                break
            time.sleep(0.003)
        events: dict[int, dict] = {}
        for r in sim.control.log(since=since, kind="event")["records"]:
            if r.get("target") == "GatewayUserPosition":
                events.setdefault(r.get("accountId"), r)
        if len(calls) < len(ids):  # one last look, then match calls after their event only
            calls = {}
            for r in sim.control.log(since=since, kind="request")["records"]:
                if r.get("path") == "/api/Position/partialCloseContract":
                    ev = events.get(r.get("accountId"))
                    if ev is not None and r["t"] >= ev["t"]:
                        calls.setdefault(r.get("accountId"), r)
        for a in ids:
            ev, call = events.get(a), calls.get(a)
            if ev is None:
                raise RuntimeError(f"no GatewayUserPosition event for account {a} in round {rounds}")
            if call is None:
                missed += 1
                continue
            latencies.append((call["t"] - ev["t"]) * 1000)
            t_first = ev["t"] if t_first is None else min(t_first, ev["t"])
            t_last = call["t"] if t_last is None else max(t_last, call["t"])
        time.sleep(settle_s)  # let riskd's read-back verification finish
        if len(calls) < len(ids):  # a late enforcement may still come: wait, then re-level
            time.sleep(1.0)
            for a in ids:
                excess = sim.position(a, VIOLATION_CONTRACT) - LIMIT
                if excess > 0:
                    sim.control.close_position(a, VIOLATION_CONTRACT, excess)
                elif excess < 0:
                    sim.control.place_order(a, VIOLATION_CONTRACT, "market", "buy", -excess)
        if on_round:
            on_round(rounds)
    phase_t1 = sim.control.clock()["monotonic"]
    return {"latencies": latencies, "missed": missed, "rounds": rounds,
            "phase_t0": phase_t0, "phase_t1": phase_t1,
            "saturated": missed >= max_missed,
            "t0": t_first or 0.0, "t1": t_last or 0.0, "since": start_n}


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=5).stdout.strip()
    except Exception:
        return "?"
