"""The floor: the same enforcement-latency measurement as bench/latency.py, for a minimal client
on the same SDK (bench/_floor_client.py: ProjectX + ProjectXRealtimeClient, no actors, no
rules) that answers the same violating GatewayUserPosition with the same
``Position/partialCloseContract``. Then compares with riskd's results from latency.py
(var/bench/riskd[-quick].json): riskd/floor and riskd-floor for p50 and p99.

    .venv/bin/python bench/floor.py --quick
    .venv/bin/python bench/floor.py [--accounts 1,10,20 --rates 0,2000,20000 --violations 1000]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import latency  # noqa: E402


def compare(floor_rows: list[dict], riskd_path: Path) -> list[dict]:
    if not riskd_path.exists():
        print(f"(no riskd results at {riskd_path}: run bench/latency.py first for the ratio)")
        return []
    riskd = {(r["accounts"], r["rate_target"]): r for r in json.loads(riskd_path.read_text())["rows"]}
    out = []
    print("\nriskd vs floor (same accounts and quote-rate target):")
    print(f"{'acc':>3} {'q/s':>6} {'riskd p50':>9} {'floor p50':>9} {'ratio':>6} {'diff':>7}   "
          f"{'riskd p99':>9} {'floor p99':>9} {'ratio':>6} {'diff':>7}")
    for f in floor_rows:
        r = riskd.get((f["accounts"], f["rate_target"]))
        if r is None or not f["n"] or not r["n"]:
            continue
        c = {"accounts": f["accounts"], "rate_target": f["rate_target"],
             "riskd_p50": r["p50"], "floor_p50": f["p50"], "ratio_p50": r["p50"] / f["p50"],
             "diff_p50": r["p50"] - f["p50"], "riskd_p99": r["p99"], "floor_p99": f["p99"],
             "ratio_p99": r["p99"] / f["p99"], "diff_p99": r["p99"] - f["p99"],
             "riskd_missed": r["missed"], "floor_missed": f["missed"]}
        out.append(c)
        print(f"{c['accounts']:>3} {c['rate_target']:>6.0f} {c['riskd_p50']:>9.2f} {c['floor_p50']:>9.2f} "
              f"{c['ratio_p50']:>6.1f} {c['diff_p50']:>7.2f}   {c['riskd_p99']:>9.2f} "
              f"{c['floor_p99']:>9.2f} {c['ratio_p99']:>6.1f} {c['diff_p99']:>7.2f}")
    return out


if __name__ == "__main__":
    rows = latency.run(latency.FloorTarget)
    args = latency.parse_args()
    sfx = "-quick" if args.quick else ""
    riskd_path = Path(args.riskd) if args.riskd else latency.RESULTS / f"riskd{sfx}.json"
    cmp_rows = compare(rows, riskd_path)
    # a run with --out (a one-off) must not overwrite the comparison the report uses
    out = (Path(args.out).with_name(Path(args.out).stem + "-compare.json") if args.out
           else latency.RESULTS / f"compare{sfx}.json")
    out.write_text(json.dumps(cmp_rows, indent=1))
    sys.exit(0)
