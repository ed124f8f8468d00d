"""Write docs/performance.md from the JSON results the bench scripts left in var/bench/.

    .venv/bin/python bench/report.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as h  # noqa: E402

RES = h.RESULTS


def load(name: str):
    p = RES / name
    return json.loads(p.read_text()) if p.exists() else None


def latency_table(doc) -> list[str]:
    out = ["| target | accounts | quotes/s target | emitted/s (measured) | delivered/s (measured) "
           "| n | missed | p50 ms | p99 ms | max ms | p50 first/last 50 | CPU total % | hottest process % | simulator % |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        sat = " (saturated, stopped early)" if r.get("saturated") else ""
        out.append(f"| {r['target']} | {r['accounts']} | {r['rate_target']:.0f} | "
                   f"{r['quotes_emitted_per_s']} | {r['quotes_delivered_per_s']} | {r['n']} | "
                   f"{r['missed']}{sat} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | "
                   f"{_drift(r)} | "
                   f"{r.get('cpu_total', 0):.0f} | {r.get('cpu_hot', 0):.0f} | {r.get('cpu_sim', 0):.0f} |")
    return out


OPT_STEPS = {  # file stem -> what that run adds over the one before
    "opt-A-none": "none: rules and enforcer in their own actors, every quote forwarded",
    "opt-B-rules-inline": "+ riskd's rules judged inside the account process",
    "opt-C-enforcer-inline": "+ the enforcer inside the account process",
    "opt-D-all": "+ quotes held to one per contract per 20 ms (shipped defaults)",
    "opt-E-feed-batched": "+ component feed sent once a second (no switch: the defaults re-run "
                          "after that change)",
    "opt-F-broker-inline": "+ the broker link inside the account process",
    "opt-G0-per-account-quotes": "code of the next row set, one market hub per account (its "
                                 "'before', measured just before it)",
    "opt-G1-shared-feed": "+ one shared market data feed for all accounts",
    "opt-H-hub-verify-one-txn": "+ verified by the broker's position update, one transaction per "
                                "message, alerts straight to the Notifier, short message str, "
                                "hub events taken straight from the SDK (shipped defaults)",
}


def optimisation_section(paths) -> list[str]:
    """Before/after: the same cases with the optimisations switched on one after another
    (bench/latency.py --daemon KEY=VALUE). The batching of a drain into one message, the
    journal written after the broker call and the read-back of only what a goal needs are in
    every run (they have no switch); the previous session's figures above them are the
    'before' of those."""
    out = ["## Optimisations, before and after", "",
           "Each row set is `bench/latency.py --accounts 1,10 --rates 0,2000 --violations 200` "
           "with the `--daemon` settings shown (same machine), switching on one optimisation at "
           "a time: the first six row sets one after another in one session, the last three "
           "(one market hub per account, then the shared feed, then the final code) in the "
           "next. In every run: one `InboundBatch` message "
           "per drain of the broker session (not one per event), the journal and audit written "
           "after the broker call has left (one transaction per handled message), and a "
           "read-back of only what the goal is judged on.", "",
           "| optimisations | --daemon | accounts | quotes/s | n | missed | p50 ms | p99 ms | "
           "CPU total % |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for path in paths:
        doc = json.loads(path.read_text())
        argv = doc.get("argv", [])
        settings = " ".join(argv[i + 1] for i, a in enumerate(argv) if a == "--daemon") or "defaults"
        for r in doc["rows"]:
            sat = " (saturated)" if r.get("saturated") else ""
            out.append(f"| {OPT_STEPS.get(path.stem, path.stem)} | {settings} | {r['accounts']} | "
                       f"{r['rate_target']:.0f} | {r['n']} | {r['missed']}{sat} | {r['p50']:.2f} "
                       f"| {r['p99']:.2f} | {r.get('cpu_total', 0):.0f} |")
    return out + [""]


def throughput_section(doc, first: bool = True) -> list[str]:
    """The Throughput section from bench/throughput.py's results (riskd, or the floor)."""
    tgt = doc["cases"][0]["target"] if doc["cases"] else "riskd"
    out = []
    if first:
        out += ["## Throughput", "",
                f"bench/throughput.py: the highest quote rate at which enforcement p99 stays under "
                f"{doc['p99_ms']:.0f} ms with nothing missed, per account and in total, and what "
                "saturates first. Same set-up as the latency cases (each account at max_contracts 5; "
                "rounds of one violating buy per account), with the simulator's fast quote stream "
                "(`/sim/quotes/stream`, gateway_sim/quote_stream.py) on the 8 contracts every account "
                "needs quotes of: per account = emitted/s, total = delivered/s (emitted x accounts "
                "with one market hub per account; emitted with riskd's shared feed). Search: 0, then doubling until a step "
                "misses an enforcement, then bisection of each boundary; "
                f"{doc['violations']} violations per step (p99 of a small step is close to its max). "
                "A step *passes* with p99 under the limit, no miss, the stream at >= 90 % of its "
                "target and < 1 % of quotes dropped for a backlogged socket; *no miss* drops the p99 "
                "condition. CPU: % of one core over the step; `sdk` = the riskd process holding "
                "sockets to the simulator (the broker link running the SDK), `main` = the daemon, "
                "`actor` = any other; machine busy = all cores, every process (others' too: 100 = "
                "every core busy).", ""]
    out += [f"{tgt} (argv: {' '.join(doc.get('argv', [])) or '-'}):", "",
            "| accounts | p99 < limit up to (quotes/s per account) | total delivered/s there "
            "| violations/s per account there | p99 ms there | first failing rate: why "
            "| no miss up to (quotes/s per account) | what saturates first |",
            "|---:|---:|---:|---:|---:|---|---:|---|"]
    for c in doc["cases"]:
        b, f, bo = c["best"], c["first_fail"], c.get("best_no_miss")
        if b:
            there = (f"{b['quotes_emitted_per_s']} | {b['quotes_delivered_per_s']} | "
                     f"{b['violations_per_s_per_account']} | {b['p99']:.1f}")
        else:
            there = "none (fails at 0) | - | - | -"
        why = f"{f['rate_target']:.0f}: {f['why']}" if f else "none within the search"
        out.append(f"| {c['accounts']} | {there} | {why} | "
                   f"{bo['quotes_emitted_per_s'] if bo else 'none'} | {c['saturates']} |")
    out += ["", "Steps:", "",
            "| accounts | quotes/s target | emitted/s | delivered/s | dropped/s | violations/s per account "
            "| n | missed | p50 ms | p99 ms | CPU total % | busiest processes (role %) | simulator % "
            "| machine busy % | verdict |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for c in doc["cases"]:
        for r in sorted(c["steps"], key=lambda r: r["rate_target"]):
            top = ", ".join(f"{t['role']} {t['cpu']:.0f}" for t in r["cpu_top"])
            verdict = "pass" if r["pass"] else (("p99 only: " if r.get("ok") else "fail: ") + r["why"])
            out.append(f"| {r['accounts']} | {r['rate_target']:.0f} | {r['quotes_emitted_per_s']} | "
                       f"{r['quotes_delivered_per_s']} | {r['quotes_dropped_per_s']} | "
                       f"{r['violations_per_s_per_account']} | {r['n']} | {r['missed']} | "
                       f"{r['p50']:.2f} | {r['p99']:.2f} | {r['cpu_total']:.0f} | {top} | "
                       f"{r['cpu_sim']:.0f} | {_opt(r.get('cpu_machine'))} | {verdict} |")
    return out + [""]


def _opt(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def _drift(r: dict) -> str:
    if "p50_first50" not in r:
        return "-"
    return f"{r['p50_first50']:.1f} / {r['p50_last50']:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(h.ROOT / "docs" / "performance.md"))
    args = ap.parse_args()
    sfx = "-quick" if args.quick else ""
    mach = h.machine()
    lines = ["# riskd performance", "",
             "Figures written by `bench/report.py` from the results of the bench scripts "
             f"({'quick' if args.quick else 'full'} mode). Do not edit by hand: re-run.", "",
             "## Machine", "",
             f"- nproc: {mach['nproc']}; CPU: {mach['cpu']}; Python {mach['python']}; "
             f"Linux {mach['kernel']}; riskd at `{h.git_rev()}`", "",
             "## Reproduce", "",
             "```", "make bench        # full: latency, floor, memory, placement, throughput, rule cost, this file",
             "make bench-quick  # quick: 1 account, < 1 min", "```", "",
             "Everything runs on the loopback simulator (`gateway_sim`) on this one machine: the "
             "simulator, its quote stream, riskd (or the floor) and the driver share the cores.",
             ""]
    riskd, floor, cmp_ = load(f"riskd{sfx}.json"), load(f"floor{sfx}.json"), load(f"compare{sfx}.json")
    lines += ["## Enforcement latency", "",
              "Violating `GatewayUserPosition` emitted by the simulator -> riskd's "
              "`Position/partialCloseContract` received, both on the simulator's monotonic clock "
              "(its `/sim/log`). Each account sits at max_contracts 5 (only that rule enabled); "
              "each round the trader buys 1 more MNQ on every account. Missed = no call within "
              "2 s; a case stops after 10 misses (saturated). Quote stream: the simulator's fast "
              "quote stream (`/sim/quotes/stream`, gateway_sim/quote_stream.py: pre-encoded quotes "
              "sent every 5 ms, one websocket message per socket per tick, prices +-2 ticks around "
              "the base) on 8 contracts every account needs quotes of (MNQ held, a far resting "
              "limit order in the 7 others); emitted = quotes generated/s, delivered = quotes the "
              "simulator handed to the subscribed sockets/s (the floor and riskd with "
              "`market_data: per_account`: emitted x accounts, one market hub per account; riskd "
              "by default: emitted, one shared market hub for the daemon; a client that "
              "falls behind can have tens of MB in loopback socket buffers, so delivered may "
              "overstate what it processed), dropped = quotes not sent because a socket's backlog "
              "exceeded 1 s of stream; measured over the whole case. "
              "CPU columns: % of one core over the case (riskd: all its processes; hottest = the "
              "busiest single process).", ""]
    for doc, title in ((riskd, "riskd (bench/latency.py):"),
                       (floor, "Floor, a minimal client on the same SDK (bench/floor.py, "
                               "bench/_floor_client.py: one asyncio process, one REST client and "
                               "one realtime client per account, no actors, no rules):")):
        if doc:
            lines += [title, ""] + latency_table(doc) + [""]
        if doc is riskd and riskd and not args.quick:
            for extra in sorted(RES.glob("riskd-*x*.json")):  # targeted re-runs of one case
                lines += [f"Re-run ({extra.name}, argv {' '.join(json.loads(extra.read_text())['argv'])}):", ""]
                lines += latency_table(json.loads(extra.read_text())) + [""]
    if cmp_:
        lines += ["### riskd vs floor", "",
                  "| accounts | quotes/s target | riskd p50 | floor p50 | riskd/floor | riskd-floor ms "
                  "| riskd p99 | floor p99 | riskd/floor | riskd-floor ms |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for c in cmp_:
            lines.append(f"| {c['accounts']} | {c['rate_target']:.0f} | {c['riskd_p50']:.2f} | "
                         f"{c['floor_p50']:.2f} | {c['ratio_p50']:.1f} | {c['diff_p50']:.2f} | "
                         f"{c['riskd_p99']:.2f} | {c['floor_p99']:.2f} | {c['ratio_p99']:.1f} | "
                         f"{c['diff_p99']:.2f} |")
        lines.append("")
    opts = sorted(RES.glob("opt-*.json"))
    if opts and not args.quick:
        lines += optimisation_section(opts)
    for name in (f"throughput{sfx}.json", f"throughput-floor{sfx}.json"):
        tp = load(name)
        if tp:
            lines += throughput_section(tp, first=name.startswith(f"throughput{sfx}"))
    mem = load(f"memory{sfx}.json")
    if mem:
        lines += ["## Memory", "",
                  f"All processes of the daemon (its group and the thespian admin's groups from "
                  f"the pidfile), idle connected accounts, every default-enabled rule "
                  f"({len(mem['rules'])}: {', '.join(mem['rules'])}). USS = memory unique to "
                  "each process (forked actors share the rest copy-on-write); RSS double-counts "
                  "the shared pages.", "",
                  "| accounts | processes | RSS MB | USS MB | ready s |", "|---:|---:|---:|---:|---:|"]
        for r in mem["rows"]:
            lines.append(f"| {r['accounts']} | {r['processes']} | {r['rss_mb']:.0f} | "
                         f"{r['uss_mb']:.0f} | {r['ready_s']:.1f} |")
        if mem.get("per_account"):
            p = mem["per_account"]
            lines += ["", f"Per added account: {p['processes']:.1f} processes, RSS "
                          f"{p['rss_mb']:.0f} MB, USS {p['uss_mb']:.0f} MB."]
        lines.append("")
    pl = load(f"placement{sfx}.json")
    if pl:
        lines += ["## Rule placement", "",
                  "The rules subscribed to the event, evaluated inline (`run_rule` in a loop, one "
                  "process) versus fanned out to the daemon's own RuleActor class (one process "
                  "per rule, multiprocTCPBase) and all verdicts collected, timed inside an actor. "
                  f"Realistic state: 30 fills, long 5 MNQ + 2 MES with stops, fresh quotes; n={pl['n']}.", "",
                  "| event | rules (K) | inline ms/event | actors p50 ms | actors p99 ms | "
                  "Evaluate pickle bytes |", "|---|---:|---:|---:|---:|---:|"]
        for c in pl["cases"]:
            lines.append(f"| {c['event']} | {c['k']} | {c['inline_ms']:.3f} | "
                         f"{c['actors_p50_ms']:.3f} | {c['actors_p99_ms']:.3f} | "
                         f"{c['evaluate_pickle_bytes']} |")
        s = pl["single_rule_roundtrip"]
        lines += ["", f"One rule actor ({s['rule']}) alone: round trip p50 {s['p50_ms']:.3f} ms, "
                      f"p99 {s['p99_ms']:.3f} ms.", ""]
    costs = sorted(RES.glob("rule-cost-*.json")) if not args.quick else []
    if costs:
        lines += ["## Rule cost as the day fills up", "",
                  "bench/rule_cost.py: microseconds of the account's own CPU for one event on a "
                  "day with N fills: the reducer, then every default-enabled rule that subscribes "
                  "to the event (inline, as shipped); status = the day's realized P&L and fees "
                  "the account's status push reads after a quote. basis = that of "
                  "daily_realized_loss / daily_realized_profit (net: they also judge quotes).", "",
                  "| results | rev | basis | fills today | quote us | position us | fill us | "
                  "status us |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for path in costs:
            doc = json.loads(path.read_text())
            for r in doc["rows"]:
                lines.append(f"| {path.stem[len('rule-cost-'):]} | `{doc['rev']}` | "
                             f"{doc['basis']} | {r['fills']} | {r['quote_us']:.1f} | "
                             f"{r['position_us']:.1f} | {r['fill_us']:.1f} | "
                             f"{r['status_us']:.1f} |")
        lines.append("")
    notes = h.ROOT / "bench" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
