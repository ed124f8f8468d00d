"""Cost of judging one event with every default-enabled rule, as the trading day fills up.

The account's state carries the day's fills, and some figures are taken over all of them (the
day's realized P&L and fees). This prints, for days of 0 to ``--max`` fills, the inline cost in
the account's process of one quote, one position update and one closing fill (the reducer, then
all rules of etc/riskd.yaml that subscribe to the event together), and of the status figures the
account pushes (realized P&L, fees) after a quote. ``--basis net`` judges the daily loss/profit rules on realized +
unrealized P&L, which makes them subscribe to quotes as well.

    .venv/bin/python bench/rule_cost.py                 # 0, 100, 500, 2000 fills
    .venv/bin/python bench/rule_cost.py --basis net

Results go to var/bench/rule-cost-<label>.json (label: the basis, or ``--label``), which
bench/report.py puts in docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as h  # noqa: E402
from bench.placement import enabled_rules  # noqa: E402
from risk_actors import messages as m  # noqa: E402
from risk_actors.pipeline import run_rule  # noqa: E402
from risk_actors.state import reduce  # noqa: E402
from risk_actors.testing import RuleTester, ct  # noqa: E402


def day_state(fills: int):
    """An account with ``fills`` fills today (half of them closing, small P&L), long 2 MNQ."""
    _name, cls, params = enabled_rules()[0]
    t = RuleTester(cls, params, start=ct(2026, 11, 24, 9, 0))
    for i in range(fills):
        # Small alternating P&L: no loss or profit limit is reached, every rule keeps judging.
        t.trade((2.5 if i % 4 == 1 else -2.0) if i % 2 else None,
                "MNQ" if i % 3 else "MES", fees=0.37, at=t.now)
    t.position("MNQ", 2, avg=21000.0)
    t.order("MNQ", side=m.SIDE_SELL, size=2, stop_price=20950.0)
    t.quote("MNQ", 21001.0)
    t.quote("MES", 6001.0)
    return t


def cost_us(rules, event, before, now, n: int) -> tuple[float, list[str]]:
    """Microseconds to apply ``event`` to ``before`` (the reducer) and judge the result with
    every rule that subscribes to it, as the account does for each event (the state is
    rebuilt every time: figures derived from the day's fills are not reused across fills)."""
    subs = [(nm, r) for nm, r in rules if r.applies_to_event(event)]
    t0 = time.perf_counter()
    for i in range(n):
        state = reduce(before, event, now)
        for _nm, r in subs:
            run_rule(r, "enforce", state.account_id, i, event, state, now)
    return (time.perf_counter() - t0) * 1e6 / n, [nm for nm, _ in subs]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fills", default="0,100,500,2000", help="day sizes (comma list)")
    ap.add_argument("--n", type=int, default=300, help="evaluations per case")
    ap.add_argument("--basis", choices=("realized", "net"), default="realized",
                    help="basis of daily_realized_loss / daily_realized_profit")
    ap.add_argument("--label", default=None,
                    help="results name: var/bench/rule-cost-<label>.json (default: the basis)")
    args = ap.parse_args(argv)
    specs = []
    for nm, cls, params in enabled_rules():
        if hasattr(params, "basis"):
            params = attrs.evolve(params, basis=args.basis)
        specs.append((nm, cls(params)))
    print(f"rule cost per event, {len(specs)} default-enabled rules inline, basis "
          f"{args.basis}; microseconds per event (reducer + all subscribed rules)")
    print(f"{'fills today':>11} {'quote':>9} {'position':>9} {'fill':>9} {'status':>9}")
    results = {"machine": h.machine(), "rev": h.git_rev(), "argv": sys.argv[1:] if argv is None
               else list(argv), "basis": args.basis, "rules": [nm for nm, _ in specs],
               "rows": []}
    for fills in (int(x) for x in args.fills.split(",")):
        t = day_state(fills)
        now, aid = t.now, t.state.account_id
        quote = m.QuoteEvent(t.contract_id("MNQ"), 21002.0, timestamp=now, received_at=now)
        pos = m.PositionEvent(aid, t.contract_id("MNQ"), 3, m.POSITION_LONG, 21000.0, None, now)
        fill = m.TradeEvent(aid, 10**9, t.contract_id("MNQ"), now, 21002.0, 1.0, 0.37,
                            m.SIDE_SELL, 1)
        row = []
        for ev in (quote, pos, fill):
            us, _subs = cost_us(specs, ev, t.state, now, args.n)
            row.append(us)
        t0 = time.perf_counter()
        for _ in range(args.n):
            # what the account's status push reads after a quote (same fills, new state)
            state = reduce(t.state, quote, now)
            state.realized_pnl, state.fees_total
        row.append((time.perf_counter() - t0) * 1e6 / args.n)
        print(f"{fills:>11} " + " ".join(f"{v:>9.1f}" for v in row), flush=True)
        results["rows"].append({"fills": fills, "quote_us": row[0], "position_us": row[1],
                                "fill_us": row[2], "status_us": row[3]})
    h.save_results(h.RESULTS / f"rule-cost-{args.label or args.basis}.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
