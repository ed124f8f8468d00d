"""Rule placement: the cost of fanning one event out to K rule actors (one process each, the
design's shape) versus evaluating the same plugins inline (an in-process loop over
``risk_actors.pipeline.run_rule``), on a realistic account state.

- inline: every default-enabled rule of etc/riskd.yaml that subscribes to the event, called
  with run_rule in this process (what "placement: inline" would cost the AccountActor);
- actors: the same rules hosted by the daemon's own RuleActor class in a multiprocTCPBase actor
  system; a FanOut actor (bench/_placement_actors.py) sends Evaluate to all of them and waits
  for every Verdict, timed inside the actor process, as the AccountActor does;
- the pickled size of one Evaluate (event + full state snapshot), which every rule receives.

    .venv/bin/python bench/placement.py [--n 500] [--quick]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _harness as h  # noqa: E402
from risk_actors import messages as m  # noqa: E402
from risk_actors.config.load import make_converter  # noqa: E402
from risk_actors.pipeline import run_rule  # noqa: E402
from risk_actors.plugins import discover, rule_path  # noqa: E402
from risk_actors.rule_host import RuleInit  # noqa: E402
from risk_actors.state import reduce  # noqa: E402
from risk_actors.testing import RuleTester, ct  # noqa: E402
from tests.e2e.conftest import free_port  # noqa: E402


def enabled_rules():
    registry, _ = discover()
    conv = make_converter()
    out = []
    for name, spec in h.default_rules().items():
        if not spec.get("enabled", True) or name not in registry:
            continue
        cls = registry[name]
        params = conv.structure({k: v for k, v in spec.items() if k not in ("enabled", "mode")},
                                cls.Params)
        out.append((name, cls, params))
    return out


def realistic_state():
    """An account mid-session: 30 fills today, long 5 MNQ + 2 MES with stops, quotes fresh."""
    _name, cls, params = enabled_rules()[0]
    t = RuleTester(cls, params, start=ct(2026, 11, 24, 10, 0))
    for i in range(30):
        t.trade(-5.0 if i % 3 else 12.5, "MNQ" if i % 2 else "MES", fees=0.74)
        t.advance(20)
    t.position("MNQ", 5, avg=21000.0)
    t.position("MES", 2, avg=6000.0)
    t.order("MNQ", side=m.SIDE_SELL, size=5, stop_price=20950.0)
    t.order("MES", side=m.SIDE_SELL, size=2, stop_price=5980.0)
    t.quote("MNQ", 21001.0)
    t.quote("MES", 6001.0)
    return t


def inline_cost(rules, event, state, now, n):
    subs = [(nm, r) for nm, r in rules if r.applies_to_event(event)]
    t0 = time.perf_counter()
    for i in range(n):
        for nm, r in subs:
            run_rule(r, "enforce", state.account_id, i, event, state, now)
    return (time.perf_counter() - t0) * 1000 / n, [nm for nm, _ in subs]


def actor_cost(rule_specs, evaluate, n):
    from thespian.actors import ActorExitRequest, ActorSystem
    from bench._placement_actors import FanOut, Run, Setup
    asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()})
    try:
        fan = asys.createActor(FanOut)
        inits = tuple(RuleInit(evaluate.account_id, nm, rule_path(cls), params)
                      for nm, cls, params in rule_specs)
        reply = asys.ask(fan, Setup(inits), 60)
        assert reply and reply[0] == "ready", reply
        asys.ask(fan, Run(20, evaluate), 60)  # warm-up
        reply = asys.ask(fan, Run(n, evaluate), 600)
        assert reply and reply[0] == "done", reply
        asys.tell(fan, ActorExitRequest())
        return reply[1]
    finally:
        asys.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 100 if args.quick else args.n
    specs = enabled_rules()
    t = realistic_state()
    now = t.now
    viol = m.PositionEvent(t.state.account_id, t.contract_id("MNQ"), 6, m.POSITION_LONG,
                           21000.0, None, now)
    quote = m.QuoteEvent(t.contract_id("MNQ"), 21002.0, timestamp=now, received_at=now)
    rules = [(nm, cls(params)) for nm, cls, params in specs]
    results = {"machine": h.machine(), "n": n, "rules_enabled": [s[0] for s in specs], "cases": []}
    print(f"rule placement ({len(specs)} default-enabled rules; n={n} events per case)")
    print(f"{'event':9} {'K':>2} {'inline ms/event':>15} {'actors p50':>10} {'actors p99':>10} "
          f"{'per rule':>8} {'Evaluate bytes':>14}")
    for label, ev in (("position", viol), ("quote", quote)):
        state = reduce(t.state, ev, now)
        inline_ms, subs = inline_cost(rules, ev, state, now, n)
        evaluate = m.Evaluate(state.account_id, 1, ev, state, now)
        size = len(pickle.dumps(evaluate))
        sub_specs = [s for s in specs if s[0] in subs]
        times = actor_cost(sub_specs, evaluate, n) if sub_specs else []
        s = h.summary(times)
        case = {"event": label, "k": len(subs), "rules": subs, "inline_ms": inline_ms,
                "actors_p50_ms": s["p50"], "actors_p99_ms": s["p99"], "actors_max_ms": s["max"],
                "evaluate_pickle_bytes": size}
        results["cases"].append(case)
        print(f"{label:9} {len(subs):>2} {inline_ms:>15.3f} {s['p50']:>10.3f} {s['p99']:>10.3f} "
              f"{(s['p50'] / max(1, len(subs))):>8.3f} {size:>14}", flush=True)
    # and one rule alone: the bare actor round trip
    one = [specs[0]]
    state = reduce(t.state, viol, now)
    times = actor_cost(one, m.Evaluate(state.account_id, 1, viol, state, now), n)
    s = h.summary(times)
    results["single_rule_roundtrip"] = {"rule": one[0][0], "p50_ms": s["p50"], "p99_ms": s["p99"]}
    print(f"one rule actor ({one[0][0]}) round trip: p50 {s['p50']:.3f} ms  p99 {s['p99']:.3f} ms")
    h.save_results(h.RESULTS / f"placement{'-quick' if args.quick else ''}.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
